//! Tests of the host codec: no answer bytes make a parser panic, and the APDU framing.

use super::*;
use proptest::prelude::*;

proptest! {
    /// Every parser takes any bytes without panicking.
    #[test]
    fn parsers_take_any_bytes(d in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = answer(&d);
        let _ = identity(&d);
        let _ = status(&d);
        let _ = begun(&d);
        let _ = authorized(&d);
        let _ = ticked(&d);
        let _ = recovery_begun(&d);
        let _ = close_begun(&d);
        let _ = close_signed(&d);
        if let Ok(Outcome::Completed(c)) = outcome(&d) {
            prop_assert!(c.batch_tx().is_ok());
        }
        let c = Counted { period: CloseSeq(1), rec: d.clone(), tag: [0; 8] };
        let _ = (c.seq(), c.batch_tx());
        let id = Identity { sam_id: SamId([0; 8]), key_version: KeyVersion(1), currency: Currency::EUR };
        let _ = batch(&id, &[], &d, "");
    }

    /// Commands frame as ISO 7816-4 says: Lc counts the data, Le only when asked.
    #[test]
    fn framing(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let a = recovery_begin(&data);
        let (with, without) = (a.to_bytes(), a.without_le());
        // Lc (one byte, or three extended); a case-2 command keeps its Le.
        let lc = if data.len() > 255 { 3 } else { 1 };
        prop_assert_eq!(without.len(), 4 + lc + data.len());
        prop_assert_eq!(&with[..without.len()], &without[..]);
        prop_assert!(with[without.len()..].iter().all(|&b| b == 0));
    }
}

#[test]
fn case_two_keeps_its_le() {
    assert_eq!(close_end().without_le(), [0x80, 0x7C, 0x03, 0x00, 0x00]);
    assert_eq!(get_status().to_bytes(), [0x80, 0x7E, 0x00, 0x00, 0x00]);
}
