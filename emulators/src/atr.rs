//! The emulated cards' Answers To Reset: ISO 7816-3 direct convention, T=1 only, with
//! the card's AID (the purse's or the SAM's) in the historical bytes, and the check byte
//! TCK that T=1 requires; or, as a T=0 card (`--t0`), T=0 only, which has no TCK.

use purse::sam_applet::SAM_AID;

/// `3B 89 01 | 80 F7 AID(7) | TCK`:
/// TS=3B (direct), T0=89 (TD1 follows, 9 historical bytes), TD1=01 (T=1, nothing
/// more), historical bytes = category 80 (compact-TLV) + tag F length 7 = application
/// identifier, then TCK = XOR of T0..last historical byte.
const fn t1(aid: [u8; 7]) -> [u8; 13] {
    let mut a = [0x3B, 0x89, 0x01, 0x80, 0xF7, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut i = 0;
    while i < 7 {
        a[5 + i] = aid[i];
        i += 1;
    }
    let mut tck = 0;
    let mut j = 1;
    while j < 12 {
        tck ^= a[j];
        j += 1;
    }
    a[12] = tck;
    a
}

/// `3B 09 | 80 F7 AID(7)`: TS=3B, T0=09 (no interface bytes, so T=0 only; 9 historical
/// bytes), the same historical bytes, no TCK (none with T=0 only).
const fn t0(aid: [u8; 7]) -> [u8; 11] {
    let mut a = [0x3B, 0x09, 0x80, 0xF7, 0, 0, 0, 0, 0, 0, 0];
    let mut i = 0;
    while i < 7 {
        a[4 + i] = aid[i];
        i += 1;
    }
    a
}

/// The purse card's ATR.
pub const ATR: [u8; 13] = t1(purse::AID);
/// The purse card's ATR as a T=0 card.
pub const ATR_T0: [u8; 11] = t0(purse::AID);
/// The SAM card's ATR.
pub const SAM_ATR: [u8; 13] = t1(SAM_AID);
/// The SAM card's ATR as a T=0 card.
pub const SAM_ATR_T0: [u8; 11] = t0(SAM_AID);

/// The XOR of all bytes from T0 through TCK; an ATR with a TCK must give 0.
pub fn tck_residue(atr: &[u8]) -> u8 {
    atr.iter().skip(1).fold(0, |acc, b| acc ^ b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atr_check_byte_is_valid_and_historical_bytes_name_the_application() {
        // The purse card's ATR as it has always been.
        assert_eq!(
            ATR,
            [0x3B, 0x89, 0x01, 0x80, 0xF7, 0xF0, 0x45, 0x50, 0x55, 0x52, 0x53, 0x45, 0x0B]
        );
        for (atr, atr_t0, aid) in [(ATR, ATR_T0, purse::AID), (SAM_ATR, SAM_ATR_T0, SAM_AID)] {
            assert_eq!(tck_residue(&atr), 0);
            // T0 low nibble = number of historical bytes; they sit after TD1.
            let k = usize::from(atr[1] & 0x0F);
            assert_eq!(atr.len(), 3 + k + 1);
            assert_eq!(&atr[5..5 + 7], &aid);
            // TD1 announces T=1 and no further interface bytes.
            assert_eq!(atr[2], 0x01);
            // The T=0 ATR: no interface bytes, the same historical bytes, nothing after.
            assert_eq!(atr_t0[1] & 0xF0, 0);
            assert_eq!(&atr_t0[2..], &atr[3..12]);
        }
    }
}
