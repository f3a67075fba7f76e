//! The SAM card's files without pcscd: changes replayed from the journal after a crash
//! (the store dropped without its clean stop), a torn last slot dropped, a damaged
//! journal refused, compaction when the journal is full and at a clean stop, a crash
//! between the two rewrites of a compaction, and an old card file restored without its
//! journal (the journal that followed the newer file is ignored: a rollback).
//!
//! The changes are those the applet makes: AUTHORIZE (next SAM_TxSeq, the begin bit)
//! and COMPLETE (the final bit, the period totals).

use std::fs;
use std::os::unix::fs::FileExt;

use card_emulators::sam_store::{journal_path, load, SamFileStore, JOURNAL_SLOTS};
use purse::sam_applet::window::Slide;
use purse::sam_applet::{SamState, SamStore};
use purse::{SamId, SamTxSeq, Sum};
use testkit::*;

const SAM_ID: SamId = SamId([0x5A, 0, 0, 0, 0, 0, 0, 0x4A]);

/// A fresh SAM card file in `dir`.
fn card(dir: &TestDir) -> std::path::PathBuf {
    let file = dir.join("sam.json");
    write_sam_card(&file, &new_sam_card_state(SAM_ID));
    file
}

/// AUTHORIZE then COMPLETE of one purchase of `amount`, each persisted as the applet
/// does; returns the state after both.
fn purchase(state: &SamState, store: &mut SamFileStore, amount: u64) -> SamState {
    let mut next = state.clone();
    let seq = next.next_tx_seq;
    next.next_tx_seq = SamTxSeq(seq.0 + 1);
    // Every AUTHORIZE here opens a block, so that each one writes. The begin window is
    // not journaled (a restart expires it): only its ceiling.
    next.tx_ceiling = seq.0 + 64;
    next.finals
        .make_room(seq.0 + 63, Slide::Keep)
        .expect("room");
    let begin = seq.0 - 1;
    next.begin_ceiling = next.begin_ceiling.max(begin + 64);
    store.persist(&next).expect("authorize stored");
    next.finals.insert(seq.0);
    next.period.count += 1;
    next.period.sum = Sum(next.period.sum.0 + amount);
    store.persist(&next).expect("complete stored");
    next
}

fn same(a: &SamState, b: &SamState) {
    assert_eq!(a.to_json(), b.to_json());
}

#[test]
fn a_crash_leaves_every_stored_change_in_the_journal() {
    let dir = TestDir::new("sam-journal-crash");
    let file = card(&dir);
    let before = fs::read(&file).expect("card file");
    let (mut state, mut store) = SamFileStore::open(&file).expect("open");
    for i in 0..100 {
        state = purchase(&state, &mut store, 10 + i);
    }
    assert_eq!(store.journal_records(), 200);
    // kill -9: no clean stop. The card file is untouched, the journal holds it all.
    drop(store);
    assert_eq!(fs::read(&file).expect("card file"), before);
    let replayed = read_sam_card(&file);
    same(&replayed, &state);
    assert_eq!(replayed.next_tx_seq.0, 101);
    assert_eq!(replayed.period.count, 100);
    // The restart folds the journal into the card file and starts an empty one.
    let (again, store) = SamFileStore::open(&file).expect("reopen");
    same(&again, &state);
    assert_eq!(store.journal_records(), 0);
    assert_ne!(fs::read(&file).expect("card file"), before);
}

#[test]
fn a_torn_last_slot_is_dropped_and_a_damaged_journal_refused() {
    let dir = TestDir::new("sam-journal-torn");
    let file = card(&dir);
    let (mut state, mut store) = SamFileStore::open(&file).expect("open");
    let mut states = vec![state.clone()];
    for i in 0..5 {
        state = purchase(&state, &mut store, 100 + i);
        states.push(state.clone());
    }
    drop(store);
    let journal = journal_path(&file);
    let j = fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .expect("journal");
    // The last change (COMPLETE of purchase 5, slot 9) half written when the power went:
    // never acknowledged, dropped. The state is purchase 5 authorized, not completed.
    j.write_all_at(&[0xEE; 20], 64 + 9 * 64 + 30).expect("tear");
    let torn = read_sam_card(&file);
    assert_eq!(torn.next_tx_seq.0, 6, "AUTHORIZE of purchase 5 stays");
    assert_eq!(torn.period.count, 4, "its COMPLETE never was acknowledged");
    assert!(!torn.finals.contains(5));
    same(&read_sam_card(&file), &torn);

    // A slot in the middle damaged while later ones are valid: not a torn write.
    j.write_all_at(&[0xEE; 8], 64 + 3 * 64 + 10)
        .expect("damage");
    let e = format!("{:#}", load(&file).expect_err("damaged"));
    assert!(e.contains("damaged") && e.contains("slot 3"), "{e}");
    assert!(SamFileStore::open(&file).is_err(), "the SAM does not start");
}

#[test]
fn the_card_file_takes_the_journal_when_it_is_full_and_at_a_clean_stop() {
    let dir = TestDir::new("sam-journal-compact");
    let file = card(&dir);
    let (mut state, mut store) = SamFileStore::open(&file).expect("open");
    let n = JOURNAL_SLOTS / 2 + 3;
    for i in 0..n {
        state = purchase(&state, &mut store, u64::from(i % 7));
    }
    // 2n changes: the journal filled once; the card file took the first JOURNAL_SLOTS + 1
    // (the last of them an AUTHORIZE).
    assert_eq!(store.journal_records(), 2 * n - JOURNAL_SLOTS - 1);
    let on_file = SamState::from_json(&fs::read_to_string(&file).expect("file")).expect("json");
    assert_eq!(on_file.period.count, JOURNAL_SLOTS / 2);
    same(&read_sam_card(&file), &state);
    assert_eq!(
        fs::metadata(journal_path(&file)).expect("journal").len(),
        64 + 64 * u64::from(JOURNAL_SLOTS)
    );
    // A clean stop: everything in the card file, the journal empty.
    store.close().expect("close");
    assert_eq!(store.journal_records(), 0);
    let on_file = SamState::from_json(&fs::read_to_string(&file).expect("file")).expect("json");
    same(&on_file, &state);
    same(&read_sam_card(&file), &state);
}

#[test]
fn a_crash_between_the_card_file_and_the_new_journal_applies_nothing_twice() {
    let dir = TestDir::new("sam-journal-between");
    let file = card(&dir);
    let (mut state, mut store) = SamFileStore::open(&file).expect("open");
    for i in 0..3 {
        state = purchase(&state, &mut store, 50 + i);
    }
    drop(store);
    let old_journal = fs::read(journal_path(&file)).expect("journal");
    // Compaction wrote the new card file; the crash came before the new journal.
    let (_, mut store) = SamFileStore::open(&file).expect("reopen");
    store.close().expect("close");
    fs::write(journal_path(&file), &old_journal).expect("old journal back");
    let after = read_sam_card(&file);
    same(&after, &state);
    assert_eq!(
        after.period.count, 3,
        "not 6: the old journal follows the old file"
    );
}

#[test]
fn an_old_card_file_restored_alone_is_the_old_state() {
    let dir = TestDir::new("sam-journal-restore");
    let file = card(&dir);
    let (mut state, mut store) = SamFileStore::open(&file).expect("open");
    state = purchase(&state, &mut store, 5);
    store.close().expect("close");
    let backup = fs::read(&file).expect("backup");
    let (_, mut store) = SamFileStore::open(&file).expect("reopen");
    for i in 0..4 {
        state = purchase(&state, &mut store, i);
    }
    store.close().expect("close");
    assert_eq!(read_sam_card(&file).next_tx_seq.0, 6);
    // The old file back; the journal (empty, following the newer file) stays.
    fs::write(&file, &backup).expect("restore");
    let rolled_back = read_sam_card(&file);
    assert_eq!(
        rolled_back.next_tx_seq.0, 2,
        "the SAM's counter went back: the applet blocks at the first newer context"
    );
    let (reopened, store) = SamFileStore::open(&file).expect("reopen");
    assert_eq!(reopened.next_tx_seq.0, 2);
    assert_eq!(store.journal_records(), 0);
}
