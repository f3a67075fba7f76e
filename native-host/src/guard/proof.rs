//! GET TRANSACTION PROOF, the card's record of a debit: it names another shop's SAM,
//! amounts, times and balances, so the card's log is the shopper's private business.
//! A shop reads one record only: in a recovery session, the record of the NT the
//! extension opened that recovery for, below the card's next NT (from the session's own
//! status-only INITIALIZE), and only when the record names the SAM that INITIALIZE
//! named. Anything else is refused, or read but withheld.

use purse::commands::TxRecord;
use purse::{Nt, SamId};

use super::{Purpose, Refusal};

/// What the session's last answered status-only INITIALIZE told: the SAM it named and
/// the card's next NT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StatusSeen {
    pub sam_id: SamId,
    pub card_nt: Nt,
}

/// Whether GET TRANSACTION PROOF for `asked` may go to the card.
pub(super) fn check(purpose: Purpose, seen: Option<StatusSeen>, asked: Nt) -> Result<(), Refusal> {
    let Purpose::Recovery { nt } = purpose else {
        return Err(Refusal::ProofInPayment);
    };
    if asked != nt {
        return Err(Refusal::ProofOfAnotherNt { asked, nt });
    }
    let Some(seen) = seen else {
        return Err(Refusal::ProofBeforeInitialize);
    };
    if asked >= seen.card_nt {
        return Err(Refusal::ProofNotBelowCardNt {
            asked,
            card_nt: seen.card_nt,
        });
    }
    Ok(())
}

/// Whether the card's record `data` (a 9000 answer to GET TRANSACTION PROOF for
/// `asked`) may be relayed.
pub(super) fn screen(seen: Option<StatusSeen>, asked: Nt, data: &[u8]) -> Result<(), Refusal> {
    let record = TxRecord::parse(data).map_err(|_| Refusal::RecordWithheld("malformed"))?;
    if record.nt != asked {
        return Err(Refusal::RecordWithheld("of another NT"));
    }
    match seen {
        Some(s) if s.sam_id == record.sam_id => Ok(()),
        _ => Err(Refusal::RecordWithheld(
            "of another SAM than the session's INITIALIZE named",
        )),
    }
}
