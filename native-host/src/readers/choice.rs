//! Which reader is the purse card's when the extension names none, sans-IO. A computer
//! may hold other smart cards (a laptop's reader with an ID or bank card, a shop's SAM):
//! every reader holding a card has been probed with the purse application's SELECT, and
//! this decides from what each answered. A purse card is chosen, the first by reader
//! name when there are several; a card that refuses the SELECT is never chosen; a card
//! that could not be looked at (held by another payment, gone mid-probe) may be a purse
//! card, so its failure is reported when no purse card answered.

use purse::commands::SelectInfo;

use crate::catalogue::{ErrorCode, Failure};

/// What a probe found in one reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holding {
    /// No card (or one pcscd is still tearing down).
    Empty,
    /// A purse card of our application version: its SELECT answer.
    Purse(SelectInfo),
    /// A card that is not a purse card that can pay here, and why (its answer to the
    /// purse SELECT, or that it does not answer at all).
    Other(String),
    /// A card that could not be looked at: it may be a purse card.
    Unknown(Failure),
}

impl Holding {
    /// Whether the card may be the purse card: what a wait for it to arrive or leave
    /// watches.
    pub fn may_be_purse(&self) -> bool {
        matches!(self, Holding::Purse(_) | Holding::Unknown(_))
    }
}

/// One reader and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probed {
    pub reader: String,
    pub holding: Holding,
}

/// The reader chosen, and the other readers that hold a purse card too.
#[derive(Debug, PartialEq, Eq)]
pub struct Pick {
    pub reader: String,
    pub passed_over: Vec<String>,
}

/// The purse card's reader among `probed` (at least one reader): the first purse card by
/// reader name; else the failure of a card that could not be looked at (`busy`, …);
/// else `no_card`, naming what each reader holds instead.
pub fn pick(probed: &[Probed]) -> Result<Pick, Failure> {
    let mut by_name: Vec<&Probed> = probed.iter().collect();
    by_name.sort_by(|a, b| a.reader.cmp(&b.reader));
    let mut purses = by_name
        .iter()
        .filter(|p| matches!(p.holding, Holding::Purse(_)))
        .map(|p| p.reader.clone());
    if let Some(reader) = purses.next() {
        return Ok(Pick {
            reader,
            passed_over: purses.collect(),
        });
    }
    if let Some((reader, f)) = by_name.iter().find_map(|p| match &p.holding {
        Holding::Unknown(f) => Some((&p.reader, f)),
        _ => None,
    }) {
        return Err(Failure::new(
            f.code,
            format!("the card in '{reader}': {}", f.detail),
        ));
    }
    let others: Vec<String> = by_name
        .iter()
        .filter_map(|p| match &p.holding {
            Holding::Other(why) => Some(format!("'{}' holds another card ({why})", p.reader)),
            _ => None,
        })
        .collect();
    if others.is_empty() {
        return Err(Failure::new(
            ErrorCode::NoCard,
            format!("no card in {} reader(s)", probed.len()),
        ));
    }
    // `no_card`, not `unsupported_card`: the shopper may still insert the purse card
    // beside a card that stays (a laptop's ID card), and the extension waits for it.
    Err(Failure::new(
        ErrorCode::NoCard,
        format!("no purse card in any reader: {}", others.join("; ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use purse::{Amount, CardId, Currency, KeyVersion, Nt};

    fn purse() -> Holding {
        Holding::Purse(SelectInfo {
            app_version: purse::APP_VERSION,
            card_id: CardId([1; 8]),
            kv: KeyVersion(1),
            currency: Currency::EUR,
            balance: Amount(100),
            nt_last: Nt(0),
        })
    }

    fn at(reader: &str, holding: Holding) -> Probed {
        Probed {
            reader: reader.into(),
            holding,
        }
    }

    fn other() -> Holding {
        Holding::Other("SELECT of the purse answered 6A82".into())
    }

    #[test]
    fn the_purse_card_is_chosen_beside_other_cards_in_either_order() {
        for probed in [
            vec![at("A", other()), at("B", purse())],
            vec![at("B", purse()), at("A", other())],
            vec![at("A", Holding::Empty), at("B", purse()), at("C", other())],
        ] {
            assert_eq!(
                pick(&probed),
                Ok(Pick {
                    reader: "B".into(),
                    passed_over: vec![]
                }),
                "{probed:?}"
            );
        }
    }

    #[test]
    fn of_several_purse_cards_the_first_by_reader_name() {
        let p = pick(&[at("Z", purse()), at("M", purse()), at("Q", purse())]).unwrap();
        assert_eq!(p.reader, "M");
        assert_eq!(p.passed_over, vec!["Q".to_string(), "Z".to_string()]);
    }

    #[test]
    fn a_card_that_could_not_be_looked_at_is_reported_when_no_purse_answered() {
        let busy = Holding::Unknown(Failure::new(ErrorCode::Busy, "sharing violation"));
        let f = pick(&[at("A", other()), at("B", busy.clone())]).unwrap_err();
        assert_eq!(f.code, ErrorCode::Busy);
        assert!(f.detail.contains("'B'"), "{f}");
        // A purse card elsewhere is chosen all the same.
        assert_eq!(
            pick(&[at("A", busy), at("B", purse())]).unwrap().reader,
            "B"
        );
    }

    #[test]
    fn other_cards_only_is_no_card_naming_each_reader() {
        let f = pick(&[
            at("A", other()),
            at("B", Holding::Empty),
            at("C", Holding::Other("its card does not answer".into())),
        ])
        .unwrap_err();
        assert_eq!(f.code, ErrorCode::NoCard);
        assert!(f.detail.contains("no purse card"), "{f}");
        assert!(f.detail.contains("'A' holds another card (SELECT"), "{f}");
        assert!(f.detail.contains("'C' holds another card (its card"), "{f}");
        assert!(!f.detail.contains("'B'"), "{f}");
        let f = pick(&[at("A", Holding::Empty), at("B", Holding::Empty)]).unwrap_err();
        assert_eq!(f, Failure::new(ErrorCode::NoCard, "no card in 2 reader(s)"));
    }

    #[test]
    fn only_purse_and_unknown_cards_may_be_the_purse() {
        assert!(purse().may_be_purse());
        assert!(Holding::Unknown(Failure::new(ErrorCode::CardRemoved, "x")).may_be_purse());
        assert!(!other().may_be_purse());
        assert!(!Holding::Empty.may_be_purse());
    }
}
