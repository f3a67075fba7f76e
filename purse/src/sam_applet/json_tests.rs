//! Tests of the SAM card file's JSON form ([`super`]): every field round-trips, and a
//! bad file is refused without echoing a key.

use super::*;
use crate::sam_applet::replies::Reply;
use crate::sam_applet::window::Slide;

fn state() -> SamState {
    let mut mk_pur = BTreeMap::new();
    mk_pur.insert(KeyVersion(1), Key::from_bytes([0x53; 16]));
    mk_pur.insert(KeyVersion(2), Key::from_bytes([0x54; 16]));
    let keys = SamKeys {
        sam_id: SamId([0x5A, 0, 0, 0, 0, 0, 0, 1]),
        currency: Currency::EUR,
        key_version: KeyVersion(1),
        k_sam: Key::from_bytes([0xAD; 16]),
        mk_pur,
    };
    let mut s = SamState::personalise(keys, Key::from_bytes([0xC7; 16]));
    s.next_tx_seq = SamTxSeq(9000);
    s.tx_ceiling = 9024;
    s.begin_ceiling = 128;
    for n in 0..=8 {
        s.begins.insert(n);
    }
    // 781 to 808 stay open: laggards once the window slides up to 8999.
    for n in 1..=780 {
        s.finals.insert(n);
    }
    s.finals.make_room(8999, Slide::Keep).unwrap();
    s.finals.insert(8999);
    s.finals.doubt(9000, 24);
    s.last_close_seq = CloseSeq(2);
    s.period = Totals {
        count: 3,
        sum: Sum(4500),
    };
    s.closed = Totals {
        count: 1,
        sum: Sum(100),
    };
    s.replies.push(Reply::nothing(780));
    s.replies.push(Reply {
        seq: 8999,
        period: 3,
        tag: [0xE1; 8],
    });
    s
}

fn same(a: &SamState, b: &SamState) {
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(a.keys.k_sam.expose_hex(), b.keys.k_sam.expose_hex());
    assert_eq!(a.finals, b.finals);
    assert_eq!(a.begins, b.begins);
    assert_eq!(
        (a.next_tx_seq, a.begin_ceiling, a.last_close_seq, a.blocked),
        (b.next_tx_seq, b.begin_ceiling, b.last_close_seq, b.blocked)
    );
    assert_eq!((a.period, a.closed), (b.period, b.closed));
}

#[test]
fn roundtrip_keeps_every_field() {
    let s = state();
    assert!(!s.finals.laggards().is_empty(), "the test covers laggards");
    let back = SamState::from_json(&s.to_json()).unwrap();
    same(&s, &back);
    let mut blocked = state();
    blocked.blocked = true;
    same(&blocked, &SamState::from_json(&blocked.to_json()).unwrap());
}

fn with(from: &str, to: &str) -> Result<SamState, SamCardError> {
    let j = state().to_json();
    assert!(j.contains(from), "{from}");
    SamState::from_json(&j.replacen(from, to, 1))
}

#[test]
fn rejects_bad_files_and_never_echoes_keys() {
    let cases = [
        with(SAM_CARD_FORMAT, "purse-sam-card/2"),
        with("\"key_version\": 1", "\"key_version\": 256"),
        with("\"currency\": 978", "\"currency\": 1000"),
        with("\"next_tx_seq\": 9000", "\"next_tx_seq\": 0"),
        with("\"next_tx_seq\": 9000", "\"next_tx_seq\": 4294967296"),
        with("\"next_tx_seq\": 9000", "\"next_tx_seq\": 5"),
        with("\"begin_ceiling\": 128", "\"begin_ceiling\": 0"),
        with("\"blocked\": false", "\"blocked\": 0"),
        with("\"blocked\": false", "\"blocked\": false, \"extra\": 1"),
        with("\"k_sam\": \"adad", "\"k_sam\": \"ADAD"),
        with("\"k_ctx\": \"c7c7", "\"k_ctx\": \"zzc7"),
        with("\"1\": \"5353", "\"x\": \"5353"),
        with("\"1\": \"5353", "\"01\": \"5353"),
        with("\"2\": \"5454", "\"2\": \"54"),
        with("{\"count\": 3", "{\"count\": -3"),
        with("\"sum\": 100}", "\"sum\": 100, \"x\": 1}"),
        with("\"laggards\": []", "\"laggards\": [9999]"),
        with("\"bits\": \"", "\"bits\": \"00"),
        with("\"sam_id\": \"5a", "\"sam_id\": \"5A"),
        with("[8999, 3,", "[781, 3,"),
        with("[8999, 3,", "[8999, 4,"),
        with("[8999, 3,", "[780, 3,"),
        with("e1e1\"]", "e1\"]"),
        with("\"tx_ceiling\": 9024", "\"tx_ceiling\": 8999"),
        with(
            "[9000, \"0000000000ffffff\"]",
            "[9000, \"0000000000000000\"]",
        ),
        with("[9000, \"0000000000ffffff\"]", "[9000, \"ffffff\"]"),
        with(
            "\"currency\": 978",
            "\"currency\": \"adadadadadadadadadadadadadadadad\"",
        ),
        SamState::from_json("[1]"),
        SamState::from_json("{"),
    ];
    for (i, r) in cases.into_iter().enumerate() {
        let msg = r
            .err()
            .unwrap_or_else(|| panic!("case {i} parsed"))
            .to_string();
        for key in ["adad", "c7c7", "5353", "5454"] {
            assert!(!msg.contains(key), "case {i}: {msg}");
        }
    }
    let no_mk = state().to_json().replace(
        &format!(
            "\"mk_pur\": {{\"1\": \"{}\", \"2\": \"{}\"}}",
            "53".repeat(16),
            "54".repeat(16)
        ),
        "\"mk_pur\": {}",
    );
    assert_eq!(
        SamState::from_json(&no_mk).err(),
        Some(bad("mk_pur", "at least one accepted key version"))
    );
    assert_eq!(
        with("\"last_close_seq\": 2,", "").err(),
        Some(SamCardError::MissingField("last_close_seq"))
    );
    // A card file from before replies and SAM_TxSeq blocks.
    let old_file = state()
        .to_json()
        .replace(", \"doubts\": [[9000, \"0000000000ffffff\"]]", "")
        .replace("\"tx_ceiling\": 9024,\n", "")
        .replace(
            "\"replies\": [[780, 0, \"0000000000000000\"], [8999, 3, \"e1e1e1e1e1e1e1e1\"]],\n",
            "",
        );
    let old = SamState::from_json(&old_file).expect("an older card file");
    assert!(old.replies.is_empty() && old.finals.doubts().is_empty());
    assert_eq!(old.tx_ceiling, 9000);
}
