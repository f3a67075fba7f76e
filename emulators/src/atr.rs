//! The emulated card's Answer To Reset: ISO 7816-3 direct convention, T=1 only, with
//! the purse AID in the historical bytes, and the check byte TCK that T=1 requires; or,
//! as a T=0 card (`--t0`), T=0 only, which has no TCK.

/// `3B 89 01 | 80 F7 F0 45 50 55 52 53 45 | TCK`:
/// TS=3B (direct), T0=89 (TD1 follows, 9 historical bytes), TD1=01 (T=1, nothing
/// more), historical bytes = category 80 (compact-TLV) + tag F length 7 = application
/// identifier (the purse AID), then TCK = XOR of T0..last historical byte.
pub const ATR: [u8; 13] = [
    0x3B, 0x89, 0x01, 0x80, 0xF7, 0xF0, 0x45, 0x50, 0x55, 0x52, 0x53, 0x45, 0x0B,
];

/// `3B 09 | 80 F7 F0 45 50 55 52 53 45`: TS=3B, T0=09 (no interface bytes, so T=0
/// only; 9 historical bytes), the same historical bytes, no TCK (none with T=0 only).
pub const ATR_T0: [u8; 11] = [
    0x3B, 0x09, 0x80, 0xF7, 0xF0, 0x45, 0x50, 0x55, 0x52, 0x53, 0x45,
];

/// The XOR of all bytes from T0 through TCK; an ATR with a TCK must give 0.
pub fn tck_residue(atr: &[u8]) -> u8 {
    atr.iter().skip(1).fold(0, |acc, b| acc ^ b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atr_check_byte_is_valid_and_historical_bytes_name_the_purse() {
        assert_eq!(tck_residue(&ATR), 0);
        // T0 low nibble = number of historical bytes; they sit after TD1.
        let k = usize::from(ATR[1] & 0x0F);
        assert_eq!(ATR.len(), 3 + k + 1);
        assert_eq!(&ATR[5..5 + 7], &purse::AID);
        // TD1 announces T=1 and no further interface bytes.
        assert_eq!(ATR[2], 0x01);
        // The T=0 ATR: no interface bytes, the same historical bytes, nothing after.
        assert_eq!(ATR_T0[1] & 0xF0, 0);
        assert_eq!(&ATR_T0[2..], &ATR[3..12]);
    }
}
