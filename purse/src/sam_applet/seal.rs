//! Sealed contexts (sam-protocol section 2): a deterministic authenticated encryption
//! of the SIV kind, `SIV = CMAC(K_MAC, 01 || Kind || SAM_ID || P)` and
//! `C = P XOR AES-CTR(K_ENC, SIV)`, and the completion tag under `K_TAG`.
//!
//! The keys come from `K_CTX`, which the SAM drew at personalisation and never outputs.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use subtle::ConstantTimeEq;

use crate::crypto::{cmac, kdf, mac8, Key};
use crate::types::{CloseSeq, Mac8, SamId};

/// The format byte of every context.
pub const CTX_VERSION: u8 = 0x01;
/// Version, kind and SIV before the ciphertext.
pub const CTX_OVERHEAD: usize = 18;

const LABEL_ENC: u8 = 0x63;
const LABEL_MAC: u8 = 0x6D;
const LABEL_TAG: u8 = 0x74;

/// The keys derived from `K_CTX`.
#[derive(Clone, Debug)]
pub struct SealKeys {
    sam_id: SamId,
    enc: Key,
    mac: Key,
    tag: Key,
}

impl SealKeys {
    pub fn derive(k_ctx: &Key, sam_id: SamId) -> SealKeys {
        SealKeys {
            sam_id,
            enc: kdf(k_ctx, LABEL_ENC, &sam_id.0),
            mac: kdf(k_ctx, LABEL_MAC, &sam_id.0),
            tag: kdf(k_ctx, LABEL_TAG, &sam_id.0),
        }
    }

    fn siv(&self, kind: u8, p: &[u8]) -> [u8; 16] {
        let mut m = Vec::with_capacity(10 + p.len());
        m.extend_from_slice(&[CTX_VERSION, kind]);
        m.extend_from_slice(&self.sam_id.0);
        m.extend_from_slice(p);
        cmac(&self.mac, &m)
    }

    /// `01 || Kind || SIV || C`.
    pub fn seal(&self, kind: u8, p: &[u8]) -> Vec<u8> {
        let siv = self.siv(kind, p);
        let mut out = Vec::with_capacity(CTX_OVERHEAD + p.len());
        out.extend_from_slice(&[CTX_VERSION, kind]);
        out.extend_from_slice(&siv);
        out.extend_from_slice(p);
        ctr(&self.enc, siv, &mut out[CTX_OVERHEAD..]);
        out
    }

    /// The plaintext of a context of `kind`, or `None` if it is not one this SAM sealed.
    pub fn open(&self, kind: u8, ctx: &[u8]) -> Option<Vec<u8>> {
        let (head, c) = ctx.split_at_checked(CTX_OVERHEAD)?;
        let mut siv = [0u8; 16];
        siv.copy_from_slice(&head[2..]);
        let mut p = c.to_vec();
        ctr(&self.enc, siv, &mut p);
        let good =
            self.siv(kind, &p).ct_eq(&siv) & head[0].ct_eq(&CTX_VERSION) & head[1].ct_eq(&kind);
        bool::from(good).then_some(p)
    }

    /// `Tag = MAC8(K_TAG, 06 || Period || Rec)`: the SAM counted `rec` in `period`.
    pub fn tag(&self, period: CloseSeq, rec: &[u8]) -> Mac8 {
        let mut m = Vec::with_capacity(5 + rec.len());
        m.push(0x06);
        m.extend_from_slice(&period.0.to_be_bytes());
        m.extend_from_slice(rec);
        mac8(&self.tag, &m)
    }
}

/// XORs `data` with the AES-CTR keystream from counter block `iv`.
fn ctr(key: &Key, iv: [u8; 16], data: &mut [u8]) {
    let aes = Aes128::new(&(*key.expose()).into());
    let mut counter = u128::from_be_bytes(iv);
    for chunk in data.chunks_mut(16) {
        let mut block = counter.to_be_bytes().into();
        aes.encrypt_block(&mut block);
        for (d, k) in chunk.iter_mut().zip(block.iter()) {
            *d ^= k;
        }
        counter = counter.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_opens_only_unaltered_and_own() {
        let k = SealKeys::derive(&Key::from_bytes([7; 16]), SamId([1; 8]));
        let p: Vec<u8> = (0..101).collect();
        let c = k.seal(0x54, &p);
        assert_eq!(c.len(), CTX_OVERHEAD + p.len());
        assert_ne!(&c[CTX_OVERHEAD..], &p[..], "encrypted");
        assert_eq!(k.open(0x54, &c), Some(p.clone()));
        assert_eq!(k.open(0x42, &c), None, "another kind");
        for i in 0..c.len() {
            let mut bad = c.clone();
            bad[i] ^= 0x80;
            assert_eq!(k.open(0x54, &bad), None, "byte {i} flipped");
        }
        let other = SealKeys::derive(&Key::from_bytes([7; 16]), SamId([2; 8]));
        assert_eq!(other.open(0x54, &c), None, "another SAM");
        assert_eq!(k.open(0x54, &c[..10]), None);
    }
}
