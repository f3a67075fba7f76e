//! The SAM's bounded memory of which numbers are used up: a base, a fixed bitmap above
//! it and a few *laggards* below it (sam-protocol section 6).
//!
//! The final window marks every `SAM_TxSeq` that became final, so a completion is
//! counted once; the begin window marks every begin number that was authorized, so a
//! begin context authorizes once. Both cost a fixed 1 KiB whatever the load.
//!
//! The final window also keeps *doubts*: after a restart the SAM cannot know which
//! numbers of the `SAM_TxSeq` block it had reserved were handed out (it persists the
//! block, not each number), so the rest of that block stays open without taking
//! laggard places: most of it was never used and never becomes final.

use std::collections::BTreeMap;

use std::collections::BTreeSet;

use thiserror::Error;

/// Numbers the bitmap covers above its base.
pub const WINDOW_BITS: u32 = 8192;
/// Non-final transactions the final window keeps track of below its base.
pub const MAX_LAGGARDS: usize = 64;
/// Restarts whose doubted numbers are kept; an older one's count as final.
pub const MAX_DOUBTS: usize = 8;
/// Numbers one doubt covers at most (a `SAM_TxSeq` block).
pub const DOUBT_SPAN: u32 = 64;

/// The window cannot slide: too many old numbers are not used up yet.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("the SAM's window is full: {MAX_LAGGARDS} old transactions are not final")]
pub struct WindowFull;

/// What happens to a number that is not set when the window slides past it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slide {
    /// It is kept as a laggard (at most [`MAX_LAGGARDS`]): an open transaction.
    Keep,
    /// It counts as used from then on: an expired begin.
    Expire,
}

/// A set of used numbers: all below `base` except the laggards, and the bits above it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqWindow {
    base: u32,
    bits: Vec<u8>,
    laggards: BTreeSet<u32>,
    /// By first number: bit i set while `first + i` may be in use and is not final.
    doubts: BTreeMap<u32, u64>,
}

impl SeqWindow {
    /// An empty window whose first number is `base`.
    pub fn new(base: u32) -> SeqWindow {
        SeqWindow {
            base,
            bits: vec![0; (WINDOW_BITS / 8) as usize],
            laggards: BTreeSet::new(),
            doubts: BTreeMap::new(),
        }
    }

    /// Rebuilds a window from its persisted parts; `None` when they do not fit.
    pub fn restore(base: u32, bits: Vec<u8>, laggards: BTreeSet<u32>) -> Option<SeqWindow> {
        let fits = bits.len() == (WINDOW_BITS / 8) as usize
            && laggards.len() <= MAX_LAGGARDS
            && laggards.iter().all(|l| *l < base);
        fits.then_some(SeqWindow {
            base,
            bits,
            laggards,
            doubts: BTreeMap::new(),
        })
    }

    /// The window with `doubts` (by first number, a bit per number); `None` when there
    /// are too many or one is empty.
    pub fn with_doubts(mut self, doubts: BTreeMap<u32, u64>) -> Option<SeqWindow> {
        let fits = doubts.len() <= MAX_DOUBTS && doubts.values().all(|b| *b != 0);
        self.doubts = doubts;
        fits.then_some(self)
    }

    pub fn doubts(&self) -> &BTreeMap<u32, u64> {
        &self.doubts
    }

    /// The numbers `first..first + len` (at most [`DOUBT_SPAN`]) may be in use: those
    /// not final stay open. The oldest doubt goes when [`MAX_DOUBTS`] are held.
    pub fn doubt(&mut self, first: u32, len: u32) {
        let bits = (0..len.min(DOUBT_SPAN))
            .filter(|i| first.checked_add(*i).is_some_and(|n| !self.contains(n)))
            .fold(0u64, |b, i| b | 1 << i);
        if bits == 0 {
            return;
        }
        if self.doubts.len() >= MAX_DOUBTS {
            if let Some((old, old_bits)) = self.doubts.pop_first() {
                // Given up: these numbers count as final from now on.
                (0..DOUBT_SPAN)
                    .filter(|i| old_bits & 1 << i != 0)
                    .for_each(|i| self.insert(old + i));
            }
        }
        self.doubts.insert(first, bits);
    }

    /// Whether `n` is in a doubt and not final.
    fn doubtful(&self, n: u32) -> bool {
        self.doubts
            .range(..=n)
            .next_back()
            .is_some_and(|(first, bits)| n - first < DOUBT_SPAN && bits & 1 << (n - first) != 0)
    }

    /// `n` is final: out of its doubt, if any.
    fn clear_doubt(&mut self, n: u32) {
        let Some((&first, bits)) = self.doubts.range_mut(..=n).next_back() else {
            return;
        };
        if n - first < DOUBT_SPAN {
            *bits &= !(1 << (n - first));
            if *bits == 0 {
                self.doubts.remove(&first);
            }
        }
    }

    pub fn base(&self) -> u32 {
        self.base
    }

    pub fn bits(&self) -> &[u8] {
        &self.bits
    }

    pub fn laggards(&self) -> &BTreeSet<u32> {
        &self.laggards
    }

    /// Whether `n` is used up.
    pub fn contains(&self, n: u32) -> bool {
        if n < self.base {
            return !self.laggards.contains(&n) && !self.doubtful(n);
        }
        let i = n - self.base;
        i < WINDOW_BITS && self.bits[(i / 8) as usize] & (1 << (i % 8)) != 0
    }

    /// Slides the window until `n` is inside it. On error the caller drops this copy.
    pub fn make_room(&mut self, n: u32, slide: Slide) -> Result<(), WindowFull> {
        while u64::from(n) >= u64::from(self.base) + u64::from(WINDOW_BITS) {
            let first = self.bits[0];
            if slide == Slide::Keep {
                for i in 0..8 {
                    if first & (1 << i) == 0 && !self.doubtful(self.base + i) {
                        if self.laggards.len() >= MAX_LAGGARDS {
                            return Err(WindowFull);
                        }
                        self.laggards.insert(self.base + i);
                    }
                }
            }
            self.shift();
        }
        Ok(())
    }

    /// Marks `n` used. A number above the window must have been made room for first.
    pub fn insert(&mut self, n: u32) {
        self.clear_doubt(n);
        if n < self.base {
            self.laggards.remove(&n);
            return;
        }
        let i = n - self.base;
        if i < WINDOW_BITS {
            self.bits[(i / 8) as usize] |= 1 << (i % 8);
        }
        // Whole bytes of used numbers need no bits: the base moves past them.
        while self.bits[0] == 0xFF && self.base <= u32::MAX - 8 {
            self.shift();
        }
    }

    fn shift(&mut self) {
        self.bits.remove(0);
        self.bits.push(0);
        self.base = self.base.saturating_add(8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_numbers_compact_and_laggards_are_kept() {
        let mut w = SeqWindow::new(1);
        for n in 1..=9 {
            w.insert(n);
        }
        assert_eq!(w.base(), 9);
        assert!(w.contains(5) && w.contains(9) && !w.contains(10));
        // 10 stays open while numbers far above it are used.
        let far = 10 + WINDOW_BITS;
        w.make_room(far, Slide::Keep).unwrap();
        w.insert(far);
        assert!(!w.contains(10) && w.laggards().contains(&10));
        w.insert(10);
        assert!(w.contains(10) && !w.laggards().contains(&10));
        assert_eq!(w.laggards().len(), 6, "11 to 16 are still open");
    }

    #[test]
    fn full_when_too_many_laggards() {
        let mut w = SeqWindow::new(0);
        let far = (MAX_LAGGARDS as u32 / 8 + 1) * 8 + WINDOW_BITS;
        assert_eq!(w.make_room(far, Slide::Keep), Err(WindowFull));
        let mut e = SeqWindow::new(0);
        e.make_room(far, Slide::Expire).unwrap();
        assert!(e.contains(0) && e.laggards().is_empty());
    }

    #[test]
    fn doubts_stay_open_without_laggard_places_and_the_oldest_go() {
        let mut w = SeqWindow::new(0);
        w.doubt(2, 4);
        w.insert(3);
        for n in (0..WINDOW_BITS).filter(|n| !(2..6).contains(n)) {
            w.insert(n);
        }
        // 2, 4 and 5 stay open when the window slides past them, as no laggards.
        let far = WINDOW_BITS + 8;
        w.make_room(far, Slide::Keep).unwrap();
        assert!(w.base() > 5 && w.laggards().is_empty());
        assert!(!w.contains(2) && w.contains(3) && !w.contains(4) && w.contains(6));
        w.insert(4);
        assert!(w.contains(4) && !w.contains(2));
        // The oldest doubt is given up when a newer one needs its place.
        for i in 0..MAX_DOUBTS as u32 {
            w.doubt(far + 64 * i, 1);
        }
        assert_eq!(w.doubts().len(), MAX_DOUBTS);
        assert!(
            w.contains(2) && w.contains(5),
            "given up: final from now on"
        );
    }

    #[test]
    fn restore_checks_its_parts() {
        let w = SeqWindow::new(16);
        assert_eq!(
            SeqWindow::restore(16, w.bits().to_vec(), BTreeSet::new()),
            Some(w)
        );
        assert!(SeqWindow::restore(16, vec![0; 3], BTreeSet::new()).is_none());
        assert!(SeqWindow::restore(16, vec![0; 1024], [20].into()).is_none());
    }
}
