//! The SAM's memory of its last outcomes (sam-protocol section 5): for each of the last
//! [`REPLY_DEPTH`] transactions that became final, the period it was counted in and the
//! tag its record got. A COMPLETE, STOP or RECOVERY END replayed because its answer was
//! lost is checked against it and gets the very same answer, without being counted
//! again: the record alone does not tell the period (a close may have come between),
//! and the same transaction could have been finalized with other units than the replay
//! would give (a card status word, a STOP, an older context), so recomputing is not
//! enough.

use std::collections::VecDeque;

use crate::types::{CloseSeq, Mac8};

/// Final transactions remembered, oldest dropped first.
pub const REPLY_DEPTH: usize = 256;

/// How one transaction became final.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub seq: u32,
    /// The period its record was counted in; 0 when there was nothing to settle.
    pub period: u32,
    /// The record's tag (zero when there was nothing to settle).
    pub tag: [u8; 8],
}

impl Reply {
    /// Counted in `period` with `tag`.
    pub fn counted(seq: u32, period: CloseSeq, tag: &Mac8) -> Reply {
        Reply {
            seq,
            period: period.0,
            tag: tag.0,
        }
    }

    /// Final with nothing to settle.
    pub fn nothing(seq: u32) -> Reply {
        Reply {
            seq,
            period: 0,
            tag: [0; 8],
        }
    }
}

/// The last [`REPLY_DEPTH`] replies, in the order the transactions became final.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replies(VecDeque<Reply>);

impl Replies {
    /// Rebuilds the memory from its persisted entries; `None` when there are too many
    /// or a number appears twice.
    pub fn restore(entries: Vec<Reply>) -> Option<Replies> {
        let mut seen = std::collections::BTreeSet::new();
        let fits = entries.len() <= REPLY_DEPTH && entries.iter().all(|r| seen.insert(r.seq));
        fits.then(|| Replies(entries.into()))
    }

    /// Remembers `r`, forgetting the oldest when full.
    pub fn push(&mut self, r: Reply) {
        if self.0.len() >= REPLY_DEPTH {
            self.0.pop_front();
        }
        self.0.push_back(r);
    }

    /// How transaction `seq` became final, if it is among the remembered.
    pub fn find(&self, seq: u32) -> Option<&Reply> {
        self.0.iter().rev().find(|r| r.seq == seq)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Reply> + ExactSizeIterator {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The card file's form: `[[seq, period, "tag hex"], ...]`, oldest first.
    pub fn to_json(&self) -> String {
        let entries: Vec<String> = self
            .0
            .iter()
            .map(|r| format!("[{}, {}, \"{}\"]", r.seq, r.period, hex::encode(r.tag)))
            .collect();
        format!("[{}]", entries.join(", "))
    }

    /// Parses [`Replies::to_json`]'s form; `None` when it is not that or does not
    /// [`Replies::restore`].
    pub fn from_json(v: &serde_json::Value) -> Option<Replies> {
        let entry = |e: &serde_json::Value| {
            let [seq, period, tag] = e.as_array()?.as_slice() else {
                return None;
            };
            let tag = tag.as_str().filter(|t| t.len() == 16)?;
            Some(Reply {
                seq: u32::try_from(seq.as_u64()?).ok()?,
                period: u32::try_from(period.as_u64()?).ok()?,
                tag: hex::decode(tag).ok()?.try_into().ok()?,
            })
        };
        let entries = v
            .as_array()?
            .iter()
            .map(entry)
            .collect::<Option<Vec<_>>>()?;
        Replies::restore(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_and_finds_them() {
        let mut r = Replies::default();
        for seq in 1..=(REPLY_DEPTH as u32 + 2) {
            r.push(Reply::nothing(seq));
        }
        assert_eq!(r.len(), REPLY_DEPTH);
        assert!(r.find(1).is_none() && r.find(2).is_none());
        assert_eq!(r.find(3), Some(&Reply::nothing(3)));
        let entries: Vec<Reply> = r.iter().copied().collect();
        assert_eq!(Replies::restore(entries), Some(r));
        let twice = vec![Reply::nothing(4), Reply::nothing(4)];
        assert!(Replies::restore(twice).is_none());
    }
}
