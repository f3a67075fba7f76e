//! The SAM card's non-volatile memory on disk: the `purse-sam-card/1` card file (mode
//! 0600: it holds the keys) and, beside it, its journal `<card file>.journal`
//! ([`purse::sam_applet::journal`]). A change is one 64-byte slot overwritten in the
//! journal and `fdatasync`ed before the SAM answers; the card file is rewritten
//! (temporary file, fsync, rename) only when the journal is full, at start after a
//! replay, and at a clean stop (compaction). The card is the pair of files: a backup or
//! a restore copies both.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use purse::sam_applet::journal::{JournalWriter, Rewrite, Write};
use purse::sam_applet::{Replayed, SamJournal, SamState, SamStore, SamStoreError};
use secure_files::write_atomic;

use crate::store::read_state_file;

/// Slots of a journal file (256 KiB): the card file is rewritten once per this many
/// changes.
pub const JOURNAL_SLOTS: u32 = 4096;

/// The journal file of the SAM card file `card`.
pub fn journal_path(card: &Path) -> PathBuf {
    let mut name = card.file_name().unwrap_or_default().to_os_string();
    name.push(".journal");
    card.with_file_name(name)
}

/// Reads the SAM card file (refusing one that group or others could read) and replays
/// its journal onto it; writes nothing. The journal that follows it is returned too.
pub fn load(card: &Path) -> Result<(Replayed, SamJournal)> {
    let json = read_state_file(card)?;
    let state = SamState::from_json(&json)
        .with_context(|| format!("{} is not a valid SAM card", card.display()))?;
    let journal = SamJournal::following(&state, json.as_bytes());
    let path = journal_path(card);
    let replayed = match std::fs::read(&path) {
        Ok(bytes) => journal
            .replay(state, &bytes)
            .with_context(|| format!("replaying {}", path.display()))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Replayed {
            state,
            applied: 0,
            bound: false,
        },
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok((replayed, journal))
}

/// A [`SamStore`] backed by a SAM card file and its journal.
pub struct SamFileStore {
    card: PathBuf,
    journal: PathBuf,
    writer: JournalWriter,
    /// The open journal; `None` after a failed write: every later change is refused
    /// (6581) until a restart replays what is on disk.
    file: Option<File>,
}

impl SamFileStore {
    /// Loads the SAM card at `card` and gets its files ready for changes: after a
    /// replay the card file is rewritten with the replayed state, and a missing journal
    /// or one that follows another card file is replaced by an empty one.
    pub fn open(card: &Path) -> Result<(SamState, SamFileStore)> {
        let (replayed, journal) = load(card)?;
        let journal_file = journal_path(card);
        if !replayed.bound {
            eprintln!(
                "{}: starting a new journal {} (none followed the card file)",
                crate::sam_card::NAME,
                journal_file.display()
            );
        } else if replayed.applied > 0 {
            eprintln!(
                "{}: {} changes replayed from {}",
                crate::sam_card::NAME,
                replayed.applied,
                journal_file.display()
            );
        }
        let mut writer = JournalWriter::new(journal, &replayed, JOURNAL_SLOTS);
        if replayed.applied > 0 || !replayed.bound {
            let r = writer.rewrite(&replayed.state);
            if replayed.applied > 0 {
                write_atomic(card, r.card_file.as_bytes(), 0o600)?;
            }
            write_atomic(&journal_file, &r.journal_file, 0o600)?;
            writer.done(&replayed.state, Write::Rewrite(r));
        }
        let file = Some(open_journal(&journal_file)?);
        let store = SamFileStore {
            card: card.to_path_buf(),
            journal: journal_file,
            writer,
            file,
        };
        Ok((replayed.state, store))
    }

    pub fn path(&self) -> &Path {
        &self.card
    }

    /// Changes in the journal since the card file was written.
    pub fn journal_records(&self) -> u32 {
        self.writer.records()
    }

    /// Compaction at a clean stop: the card file takes the journal's changes. Not after
    /// a failed write (what is on disk then is for the next start to replay).
    pub fn close(&mut self) -> Result<()> {
        if self.file.is_none() || self.writer.records() == 0 {
            return Ok(());
        }
        let state = self.writer.stored().clone();
        let r = self.writer.rewrite(&state);
        self.rewrite(&r)?;
        self.writer.done(&state, Write::Rewrite(r));
        Ok(())
    }

    /// The card file, then the journal: a crash between leaves a journal that follows
    /// the old card file and is ignored, while the new card file holds every change.
    fn rewrite(&mut self, r: &Rewrite) -> Result<()> {
        self.file = None;
        write_atomic(&self.card, r.card_file.as_bytes(), 0o600)?;
        write_atomic(&self.journal, &r.journal_file, 0o600)?;
        self.file = Some(open_journal(&self.journal)?);
        Ok(())
    }

    fn store(&mut self, write: &Write) -> Result<()> {
        match write {
            Write::Nothing => Ok(()),
            Write::Slot { offset, bytes } => {
                let file = self.file.as_ref().context("no journal open")?;
                file.write_all_at(bytes, *offset)
                    .and_then(|()| file.sync_data())
                    .with_context(|| format!("writing {}", self.journal.display()))
            }
            Write::Rewrite(r) => self.rewrite(r),
        }
    }
}

impl SamStore for SamFileStore {
    fn persist(&mut self, state: &SamState) -> Result<(), SamStoreError> {
        if self.file.is_none() {
            return Err(SamStoreError("the journal failed before".into()));
        }
        let write = self.writer.plan(state);
        match self.store(&write) {
            Ok(()) => {
                self.writer.done(state, write);
                Ok(())
            }
            Err(e) => {
                // What reached the disk is unknown: no later change may go after it.
                self.file = None;
                eprintln!(
                    "{}: persisting the state to {} failed: {e:#}",
                    crate::sam_card::NAME,
                    self.card.display()
                );
                Err(SamStoreError(format!("{e:#}")))
            }
        }
    }
}

fn open_journal(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}
