//! AES-128 and AES-CMAC primitives of spec section 1: CMAC, MAC8, KDF and DIV.
//!
//! Keys live in [`Key`], which zeroizes on drop and never prints its bytes.

use aes::Aes128;
use cmac::{Cmac, Mac};
use core::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::ParseError;
use crate::types::{Mac8, AID};

/// An AES-128 key. `Debug` shows nothing of it; the bytes are wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Key([u8; 16]);

impl Key {
    pub fn from_bytes(b: [u8; 16]) -> Key {
        Key(b)
    }

    pub fn from_slice(b: &[u8]) -> Result<Key, ParseError> {
        let a: [u8; 16] = b.try_into().map_err(|_| ParseError::Length {
            field: "key",
            expected: 16,
            got: b.len(),
        })?;
        Ok(Key(a))
    }

    /// Parses 32 hex digits. The error never contains the input.
    pub fn from_hex(s: &str) -> Result<Key, ParseError> {
        let mut v = hex::decode(s.trim()).map_err(|_| ParseError::Hex("key"))?;
        let k = Key::from_slice(&v);
        v.zeroize();
        k
    }

    /// The key as hex, for writing key files only. The caller must not log it.
    pub fn expose_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn expose(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// `CMAC(K, m)`: AES-128-CMAC (RFC 4493), 16 bytes.
pub fn cmac(key: &Key, msg: &[u8]) -> [u8; 16] {
    let mut m = <Cmac<Aes128> as Mac>::new(&key.0.into());
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// `MAC8(K, m)`: the leftmost 8 bytes of `CMAC(K, m)`.
pub fn mac8(key: &Key, msg: &[u8]) -> Mac8 {
    let full = cmac(key, msg);
    let mut out = [0u8; 8];
    out.copy_from_slice(&full[..8]);
    Mac8(out)
}

/// `KDF(K, label, ctx) = CMAC(K, 01 || label || 00 || ctx || 0080)`.
pub fn kdf(key: &Key, label: u8, ctx: &[u8]) -> Key {
    let mut input = Vec::with_capacity(ctx.len() + 5);
    input.extend_from_slice(&[0x01, label, 0x00]);
    input.extend_from_slice(ctx);
    input.extend_from_slice(&[0x00, 0x80]);
    let k = Key(cmac(key, &input));
    input.zeroize();
    k
}

/// The diversification types `t` of spec section 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DivType {
    /// `K_PUR = DIV(MK_PUR, CardID, 01)`
    Purchase = 1,
    /// `K_TAC = DIV(MK_TAC, CardID, 02)`
    Tac = 2,
    /// `K_SAM = DIV(MK_SAM, SAM_ID, 03)`
    Sam = 3,
}

/// `DIV(MK, ID, t) = CMAC(MK, 01 || ID(8) || AID(7) || t)`.
pub fn div(master: &Key, id: &[u8; 8], t: DivType) -> Key {
    let mut input = [0u8; 17];
    input[0] = 0x01;
    input[1..9].copy_from_slice(id);
    input[9..16].copy_from_slice(&AID);
    input[16] = t as u8;
    Key(cmac(master, &input))
}

/// The KDF labels of the protocol.
pub mod label {
    /// Session key `Ks` from `K_PUR`.
    pub const SESSION: u8 = 0x53;
    /// Proof key `Kt` from `K_TAC`.
    pub const PROOF: u8 = 0x54;
    /// Journal key `KJ` from `K_SAM`.
    pub const JOURNAL: u8 = 0x4A;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4493_example_2() {
        let k = Key::from_hex("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let m = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        assert_eq!(
            hex::encode(cmac(&k, &m)),
            "070a16b46b4d4144f79bdd9dd04a287c"
        );
    }

    #[test]
    fn key_debug_hides_bytes() {
        let k = Key::from_hex("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let s = format!("{k:?}");
        assert!(!s.contains("2b7e"), "{s}");
    }

    #[test]
    fn key_hex_error_does_not_echo_input() {
        let e = Key::from_hex("2b7e151628aed2a6abf7158809cf4f3").unwrap_err();
        assert!(!e.to_string().contains("2b7e"));
    }
}
