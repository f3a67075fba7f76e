//! Tests of the state deltas: a completion with its kept reply fits one journal slot.

use super::*;
use crate::keys::SamKeys;
use crate::sam_applet::journal::SLOT_PAYLOAD;
use crate::types::{Currency, KeyVersion, SamId};
use crate::Key;

#[test]
fn a_completion_with_its_reply_fits_one_journal_slot() {
    let keys = SamKeys {
        sam_id: SamId([0x5A; 8]),
        currency: Currency::EUR,
        key_version: KeyVersion(1),
        k_sam: Key::from_bytes([1; 16]),
        mk_pur: [(KeyVersion(1), Key::from_bytes([2; 16]))].into(),
    };
    let mut old = SamState::personalise(keys, Key::from_bytes([3; 16]));
    old.next_tx_seq = SamTxSeq(20);
    old.tx_ceiling = 64;
    for n in 1..8 {
        old.finals.insert(n);
    }
    // The base moves, a bit is set, the totals change, a reply is remembered.
    let mut new = old.clone();
    new.finals.insert(8);
    new.period = Totals {
        count: 1,
        sum: Sum(250),
    };
    new.replies.push(Reply {
        seq: 8,
        period: 1,
        tag: [9; 8],
    });
    let d = Delta::between(&old, &new).expect("a delta");
    assert!(
        d.encode().len() <= SLOT_PAYLOAD,
        "{} bytes",
        d.encode().len()
    );
    let back = Delta::decode(&d.encode()).expect("decodes");
    let mut applied = old.clone();
    back.apply(&mut applied).expect("applies");
    assert_eq!(applied.replies, new.replies);
    assert_eq!(applied.finals, new.finals);
    // Replies taken away cannot be a delta: the caller rewrites the card file.
    assert!(Delta::between(&new, &old).is_none());
}
