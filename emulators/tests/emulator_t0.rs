//! `card-emulator --t0` through the real PC/SC stack (pcscd + vpcd): the card offers
//! T=0 only in its ATR, pcscd connects it as T=0, and every answer with data comes as
//! `61xx` that GET RESPONSE fetches; a GET RESPONSE asking for more than is waiting
//! gets `6Cxx`. The host's side of this (following 61xx/6Cxx) is tested in
//! native-host's tests.
//!
//! Needs a running pcscd with the vpcd driver (scripts/test-all starts one).

use card_emulators::atr::ATR_T0;
use purse::commands::{CardCommand, SelectInfo};
use purse::{Amount, CardId};
use testkit::*;

const CARD_EMULATOR: &str = env!("CARGO_BIN_EXE_card-emulator");

#[test]
fn a_t0_card_announces_its_answers_and_hands_them_out_by_get_response() {
    let lock = SlotLock::acquire(SLOT_0);
    let dir = TestDir::new("emu-t0");
    let path = dir.join("card.json");
    let id = CardId([0xC0, 0xFF, 0xEE, 0, 0, 0, 0, 0x70]);
    write_card_state(&path, &new_card_state(id, Amount(4_321)));
    let _emu = Emulator::spawn_with(CARD_EMULATOR, &lock, &path, &["--t0"]);
    let ctx = pcsc_context();
    wait_present(&ctx, SLOT_0.reader);
    let card = connect(&ctx, SLOT_0.reader);
    let status = card.status2_owned().expect("SCardStatus");
    assert_eq!(status.atr(), &ATR_T0[..]);
    assert_eq!(status.protocol2(), Some(pcsc::Protocol::T0));

    let get = |le: u8| transmit(&card, &[0x00, 0xC0, 0x00, 0x00, le]).expect("GET RESPONSE");
    // SELECT's 20 bytes wait behind 6114.
    let r = transmit(&card, &CardCommand::select().encode()).expect("SELECT");
    assert_eq!(r, vec![0x61, 20]);
    // Asked for too much (00 is 256): 6C14 says how much to ask for.
    assert_eq!(get(0), vec![0x6C, 20]);
    assert_eq!(get(21), vec![0x6C, 20]);
    // In two pieces: 8 bytes and 610C, then the 12 left and 9000.
    let mut first = get(8);
    assert_eq!(split_sw(&first).1, 0x610C);
    first.truncate(8);
    let rest = get(12);
    let (tail, sw) = split_sw(&rest);
    assert_eq!(sw, 0x9000);
    first.extend_from_slice(tail);
    let info = SelectInfo::parse(&first).expect("the FCI, whole");
    assert_eq!((info.card_id, info.balance), (id, Amount(4_321)));
    // Nothing waits any more; status words alone pass as they are.
    assert_eq!(split_sw(&get(1)).1, 0x6985);
    let r = transmit(&card, &CardCommand::GetProof { nt: purse::Nt(1) }.encode()).expect("proof");
    assert_eq!(split_sw(&r).1, 0x6A83);
}
