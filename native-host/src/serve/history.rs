//! `card_history`: the shopper's own card, read by the host for the extension's popup.
//! The host chooses every APDU itself (SELECT, then GET TRANSACTION PROOF of the last
//! [`LOG_CAPACITY`] NTs below the card's `NT_last`); nothing of the request reaches the
//! card, and a session's `apdu` relay never reads a record this way (there the guard
//! lets through only the recovered payment's own proof). Only the extension can reach
//! the host at all (the host manifest's `allowed_origins` names the extension alone),
//! and a shop never talks to the host directly: a shop cannot read the shopper's other
//! payments through this request.

use std::io::Write;

use pcsc::Disposition;
use purse::apdu::StatusWord;
use purse::card::LOG_CAPACITY;
use purse::commands::{CardCommand, TxRecord};
use purse::Nt;

use super::Host;
use crate::catalogue::{ErrorCode, Failure};
use crate::message::reply::{HistoryRecord, Reply};
use crate::message::CardView;
use crate::readers::{select_purse, transmit};

impl<W: Write> Host<W> {
    /// The card in `reader` (or the purse card's reader) with its recent records,
    /// newest first. Read in one PC/SC transaction on an exclusive connection, so no
    /// other client's command comes between (a card held by a payment is `busy`).
    pub(super) fn card_history(&mut self, reader: Option<&str>) -> Result<Reply, Failure> {
        if self.busy.is_some() {
            return Err(Failure::new(
                ErrorCode::Busy,
                "the card is held by a session of this host",
            ));
        }
        let reader = self.pcsc.choose(reader)?;
        let mut connected = self.pcsc.connect(&reader, true)?;
        let card = connected
            .card_mut()
            .ok_or_else(|| Failure::new(ErrorCode::Internal, "card handle gone"))?;
        let tx = card
            .transaction()
            .map_err(|e| crate::readers::failure(e, "SCardBeginTransaction"))?;
        let read = read_history(&tx);
        let _ = tx.end(Disposition::LeaveCard);
        let (card, records) = read?;
        Ok(Reply::CardHistory {
            reader,
            card,
            records,
        })
    }
}

/// SELECT, then the records of the newest NTs; an NT without a record (6A83) is skipped.
fn read_history(card: &pcsc::Card) -> Result<(CardView, Vec<HistoryRecord>), Failure> {
    let info = select_purse(card)?;
    let mut records = Vec::new();
    let newest = info.nt_last.0;
    let oldest = newest.saturating_sub(LOG_CAPACITY as u32 - 1).max(1);
    for nt in (oldest..=newest).rev() {
        let r = transmit(card, &CardCommand::GetProof { nt: Nt(nt) }.encode())?;
        if let Some(record) = record_of(nt, &r)? {
            records.push(record);
        }
    }
    Ok((CardView::from(&info), records))
}

/// The card's answer to GET TRANSACTION PROOF of `nt`: its record, `None` when it has
/// none, `card_error` for anything a conforming purse does not answer.
fn record_of(nt: u32, response: &[u8]) -> Result<Option<HistoryRecord>, Failure> {
    let bad = |why: String| Failure::new(ErrorCode::CardError, format!("record of NT {nt}: {why}"));
    let (data, sw) = match response {
        [data @ .., a, b] => (data, StatusWord(u16::from_be_bytes([*a, *b]))),
        _ => return Err(bad("no status word".into())),
    };
    if sw == StatusWord::RECORD_NOT_FOUND {
        return Ok(None);
    }
    if !sw.is_ok() {
        return Err(bad(format!("the card answered {sw}")));
    }
    let record = TxRecord::parse(data).map_err(|e| bad(e.to_string()))?;
    if record.nt != Nt(nt) {
        return Err(bad(format!(
            "the card sent the record of NT {}",
            record.nt.0
        )));
    }
    HistoryRecord::of(&record)
        .map(Some)
        .ok_or_else(|| bad(format!("mode {:02X}", record.mode)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use purse::{Amount, DateTime, Mac8, SamId, SamTxSeq, Units};

    fn record(nt: u32, mode: u8) -> TxRecord {
        TxRecord {
            nt: Nt(nt),
            sam_id: SamId([0x5A, 0, 0, 0, 0, 0, 0, 1]),
            sam_tx_seq: SamTxSeq(9),
            datetime: DateTime(1_795_000_000),
            mode,
            u: Amount(200),
            units: Units(3),
            total: Amount(600),
            balance_after: Amount(9_400),
            s3: Mac8([3; 8]),
            tac: Mac8([4; 8]),
        }
    }

    fn answer(r: &TxRecord) -> Vec<u8> {
        let mut v = r.encode();
        v.extend_from_slice(&[0x90, 0x00]);
        v
    }

    #[test]
    fn a_record_is_shown_without_its_macs() {
        let got = record_of(5, &answer(&record(5, 2))).unwrap().unwrap();
        assert_eq!(
            serde_json::to_value(&got).unwrap(),
            serde_json::json!({"nt":5,"sam_id":"5a00000000000001","sam_tx_seq":9,
                "datetime":1_795_000_000u32,"mode":"time_cycle","unit_amount":200,"units":3,
                "total":600,"balance_after":9_400})
        );
    }

    #[test]
    fn answers_a_purse_does_not_give_are_card_errors() {
        assert_eq!(record_of(5, &[0x6A, 0x83]).unwrap(), None);
        for bad in [
            vec![0x90],
            vec![0x69, 0x85],
            vec![0x01, 0x90, 0x00],
            answer(&record(4, 1)),
            answer(&record(5, 0)),
            answer(&record(5, 7)),
        ] {
            assert_eq!(
                record_of(5, &bad).unwrap_err().code,
                ErrorCode::CardError,
                "{bad:02X?}"
            );
        }
    }
}
