//! The SAM card's journal (how the emulator keeps what sam-protocol section 1 lists):
//! the changes since the card file was last written, one fixed-size record each, so a change costs
//! one small write and one `fdatasync` instead of a 6 KB file, an fsync and a rename.
//! Pure: the SAM emulator (`emulators/`) owns the files.
//!
//! Layout: a 64-byte header `"purse-sam-jrnl/1" || Binding(16) || 00…` and then slots
//! of 64 bytes, `Len(1) || Delta(Len) || 00… || Tag(8)`, where
//! `Binding = CMAC(K_JRN, card file bytes)`, `Tag = MAC8(K_JRN, Binding || Index(4) ||
//! the slot's first 56 bytes)` and `K_JRN = KDF(K_CTX, 6A, SAM_ID)`. The file is
//! created with its slots zeroed and records overwrite them in order.
//!
//! Replay takes the valid slots from the first on and stops at the first one that is
//! not: an unused slot, or the torn write of a change that was never acknowledged. A
//! valid slot after that stop cannot come from a torn write: the file was damaged and
//! replay refuses it. A journal bound to other card file bytes (the card file was
//! rewritten and the crash came before the new journal, or an older card file was put
//! back) applies nothing; the second case is a rollback the applet detects as before.

use thiserror::Error;

use super::delta::{Delta, DeltaError};
use super::state::SamState;
use crate::crypto::{cmac, kdf, mac8, Key};
use crate::types::Mac8;

/// The header's first 16 bytes.
pub const JOURNAL_MAGIC: &[u8; 16] = b"purse-sam-jrnl/1";
pub const HEADER_LEN: usize = 64;
pub const SLOT_LEN: usize = 64;
const TAG_LEN: usize = 8;
/// The largest delta a slot holds; a larger change is written as a new card file.
pub const SLOT_PAYLOAD: usize = SLOT_LEN - 1 - TAG_LEN;
const LABEL_JOURNAL: u8 = 0x6A;

/// Why a journal was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum JournalError {
    #[error(
        "not a SAM journal (no {} header)",
        String::from_utf8_lossy(JOURNAL_MAGIC)
    )]
    NotAJournal,
    #[error("SAM journal slot {slot}: {source}")]
    Record { slot: u32, source: DeltaError },
    #[error(
        "SAM journal damaged: slot {slot} is not valid but a later slot is (not a torn \
         last write); refusing to guess the SAM's state"
    )]
    Damaged { slot: u32 },
}

/// The journal that follows one card file: its key (redacted in `Debug`) and binding.
#[derive(Debug)]
pub struct SamJournal {
    key: Key,
    binding: [u8; 16],
}

/// The state a card file and its journal hold.
#[derive(Debug)]
pub struct Replayed {
    pub state: SamState,
    /// Records applied; the next change goes to this slot.
    pub applied: u32,
    /// Whether the journal followed this card file (else it applied nothing).
    pub bound: bool,
}

impl SamJournal {
    /// The journal of the card file whose bytes are `card_file`, holding `state`.
    pub fn following(state: &SamState, card_file: &[u8]) -> SamJournal {
        let key = kdf(&state.k_ctx, LABEL_JOURNAL, &state.keys.sam_id.0);
        let binding = cmac(&key, card_file);
        SamJournal { key, binding }
    }

    /// A new journal file: the header and `slots` empty slots.
    pub fn empty_file(&self, slots: u32) -> Vec<u8> {
        let slots = usize::try_from(slots).unwrap_or(0);
        let mut v = vec![0u8; HEADER_LEN + slots * SLOT_LEN];
        v[..16].copy_from_slice(JOURNAL_MAGIC);
        v[16..32].copy_from_slice(&self.binding);
        v
    }

    /// Where slot `index` starts in the file.
    pub fn offset(index: u32) -> u64 {
        HEADER_LEN as u64 + u64::from(index) * SLOT_LEN as u64
    }

    /// Slot `index` holding `delta`; `None` when the delta does not fit.
    pub fn slot(&self, index: u32, delta: &Delta) -> Option<[u8; SLOT_LEN]> {
        let payload = delta.encode();
        let len = u8::try_from(payload.len())
            .ok()
            .filter(|l| (1..=SLOT_PAYLOAD as u8).contains(l))?;
        let mut s = [0u8; SLOT_LEN];
        s[0] = len;
        s[1..1 + payload.len()].copy_from_slice(&payload);
        let tag = self.tag(index, &s);
        s[SLOT_LEN - TAG_LEN..].copy_from_slice(&tag.0);
        Some(s)
    }

    fn tag(&self, index: u32, slot: &[u8; SLOT_LEN]) -> Mac8 {
        let mut m = Vec::with_capacity(16 + 4 + SLOT_LEN);
        m.extend_from_slice(&self.binding);
        m.extend_from_slice(&index.to_be_bytes());
        m.extend_from_slice(&slot[..SLOT_LEN - TAG_LEN]);
        mac8(&self.key, &m)
    }

    /// The delta in slot `index` if the slot is a valid record of this journal.
    fn record(&self, index: u32, file: &[u8]) -> Option<Result<Delta, DeltaError>> {
        let start = usize::try_from(Self::offset(index)).ok()?;
        let slot: &[u8; SLOT_LEN] = file.get(start..start + SLOT_LEN)?.try_into().ok()?;
        let len = usize::from(slot[0]);
        if !(1..=SLOT_PAYLOAD).contains(&len) {
            return None;
        }
        let tag = Mac8(slot[SLOT_LEN - TAG_LEN..].try_into().ok()?);
        if !self.tag(index, slot).verify(&tag) {
            return None;
        }
        Some(Delta::decode(&slot[1..1 + len]))
    }

    /// `state` (read from the card file this journal follows) with the journal `file`
    /// replayed onto it.
    pub fn replay(&self, mut state: SamState, file: &[u8]) -> Result<Replayed, JournalError> {
        if file.len() < HEADER_LEN || &file[..16] != JOURNAL_MAGIC {
            return Err(JournalError::NotAJournal);
        }
        if file[16..32] != self.binding {
            return Ok(Replayed {
                state,
                applied: 0,
                bound: false,
            });
        }
        let slots = u32::try_from((file.len() - HEADER_LEN) / SLOT_LEN).unwrap_or(u32::MAX);
        let mut applied = 0;
        while applied < slots {
            let Some(delta) = self.record(applied, file) else {
                break;
            };
            delta
                .and_then(|d| d.apply(&mut state))
                .map_err(|source| JournalError::Record {
                    slot: applied,
                    source,
                })?;
            applied += 1;
        }
        if (applied + 1..slots).any(|i| self.record(i, file).is_some()) {
            return Err(JournalError::Damaged { slot: applied });
        }
        Ok(Replayed {
            state,
            applied,
            bound: true,
        })
    }
}

/// How one change is stored, decided by [`JournalWriter::plan`].
pub enum Write {
    /// The state did not change.
    Nothing,
    /// Overwrite the slot at `offset` and `fdatasync`.
    Slot { offset: u64, bytes: [u8; SLOT_LEN] },
    /// The journal is full or the change does not fit a slot: replace the card file,
    /// then the journal (each atomically: a crash between leaves a journal bound to the
    /// old card file, which applies nothing, as it should).
    Rewrite(Rewrite),
}

/// A new card file and the empty journal that follows it.
pub struct Rewrite {
    pub card_file: zeroize::Zeroizing<String>,
    pub journal_file: Vec<u8>,
    journal: SamJournal,
}

/// The sans-IO part of a journaled store: what to write for each change, and where the
/// next record goes once a write is done.
pub struct JournalWriter {
    journal: SamJournal,
    last: SamState,
    next: u32,
    slots: u32,
}

impl JournalWriter {
    /// A writer after `replayed`, whose journal has `slots` slots.
    pub fn new(journal: SamJournal, replayed: &Replayed, slots: u32) -> JournalWriter {
        JournalWriter {
            journal,
            last: replayed.state.clone(),
            next: replayed.applied,
            slots,
        }
    }

    /// Records in the journal since the card file was written.
    pub fn records(&self) -> u32 {
        self.next
    }

    /// What storing `new` takes.
    pub fn plan(&self, new: &SamState) -> Write {
        let slot = Delta::between(&self.last, new).and_then(|d| {
            if d.is_empty() {
                return Some(None);
            }
            (self.next < self.slots)
                .then(|| self.journal.slot(self.next, &d))
                .flatten()
                .map(Some)
        });
        match slot {
            Some(None) => Write::Nothing,
            Some(Some(bytes)) => Write::Slot {
                offset: SamJournal::offset(self.next),
                bytes,
            },
            None => Write::Rewrite(self.rewrite(new)),
        }
    }

    /// A new card file holding `state` and its empty journal (compaction).
    pub fn rewrite(&self, state: &SamState) -> Rewrite {
        let card_file = zeroize::Zeroizing::new(state.to_json());
        let journal = SamJournal::following(state, card_file.as_bytes());
        Rewrite {
            journal_file: journal.empty_file(self.slots),
            card_file,
            journal,
        }
    }

    /// `write` (planned for `new`) is durable: `new` is the stored state.
    pub fn done(&mut self, new: &SamState, write: Write) {
        match write {
            Write::Nothing => {}
            Write::Slot { .. } => self.next += 1,
            Write::Rewrite(r) => {
                self.journal = r.journal;
                self.next = 0;
            }
        }
        self.last = new.clone();
    }

    /// The state last stored.
    pub fn stored(&self) -> &SamState {
        &self.last
    }
}
