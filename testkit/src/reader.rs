//! PC/SC helpers for tests: a context that fails loudly without pcscd, waiting for a
//! card to arrive or leave on pcscd's notifications, and APDU exchange.

use std::ffi::CString;
use std::time::Duration;

use pcsc::{Context, Protocols, Scope, ShareMode};
use purse::commands::{CardCommand, SelectInfo};

use purse_issuer::pcsc_link::wait_for_card;

use super::CARD_EVENT_TIMEOUT;

/// A PC/SC context. Panics with instructions when pcscd is not running: tests that
/// need PC/SC must fail, not skip.
pub fn pcsc_context() -> Context {
    match Context::establish(Scope::User) {
        Ok(ctx) => ctx,
        Err(pcsc::Error::NoService | pcsc::Error::ServiceStopped) => panic!(
            "pcscd is not running (SCardEstablishContext: no service). These tests need \
             the real PC/SC stack: run scripts/test-all, or start it with `pcscd -f -a &` \
             (packages pcscd vsmartcard-vpcd)"
        ),
        Err(e) => panic!("SCardEstablishContext failed: {e}"),
    }
}

/// Waits for the card to be present (or absent: the reader reports EMPTY) in `reader`,
/// on pcscd's notifications.
pub fn wait_card(
    ctx: &Context,
    reader: &str,
    present: bool,
    timeout: Duration,
) -> Result<(), String> {
    wait_for_card(ctx, reader, present, timeout).map_err(|e| e.to_string())
}

/// [`wait_card`] for presence with [`CARD_EVENT_TIMEOUT`]; panics on failure.
pub fn wait_present(ctx: &Context, reader: &str) {
    wait_card(ctx, reader, true, CARD_EVENT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
}

/// [`wait_card`] for absence with [`CARD_EVENT_TIMEOUT`]; panics on failure.
pub fn wait_absent(ctx: &Context, reader: &str) {
    wait_card(ctx, reader, false, CARD_EVENT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
}

/// Connects (shared, T=0 or T=1) to the card in `reader`.
pub fn connect(ctx: &Context, reader: &str) -> pcsc::Card {
    let name = CString::new(reader).unwrap_or_else(|_| panic!("bad reader name {reader:?}"));
    ctx.connect(&name, ShareMode::Shared, Protocols::ANY)
        .unwrap_or_else(|e| panic!("SCardConnect to '{reader}': {e}"))
}

/// One APDU exchange. An empty answer (what pcscd can return when the card left
/// mid-exchange) is reported as [`pcsc::Error::NotTransacted`].
pub fn transmit(card: &pcsc::Card, apdu: &[u8]) -> Result<Vec<u8>, pcsc::Error> {
    let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE];
    let r = card.transmit(apdu, &mut buf)?;
    if r.len() < 2 {
        return Err(pcsc::Error::NotTransacted);
    }
    Ok(r.to_vec())
}

/// Whether a transmit error means the card left the reader. A card pulled during a
/// transmit surfaces as `NotTransacted` rather than `RemovedCard`.
pub fn is_card_removed(e: &pcsc::Error) -> bool {
    matches!(
        e,
        pcsc::Error::NotTransacted | pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard
    )
}

/// Splits a response APDU into data and status word.
pub fn split_sw(response: &[u8]) -> (&[u8], u16) {
    match response {
        [data @ .., a, b] => (data, u16::from_be_bytes([*a, *b])),
        _ => panic!("response of {} bytes has no status word", response.len()),
    }
}

/// SELECTs the purse, asserting 9000 and a well-formed FCI.
pub fn select_purse(card: &pcsc::Card) -> SelectInfo {
    let r = transmit(card, &CardCommand::select().encode())
        .unwrap_or_else(|e| panic!("SELECT transmit: {e}"));
    let (data, sw) = split_sw(&r);
    assert_eq!(sw, 0x9000, "SELECT answered {sw:04X}");
    SelectInfo::parse(data).unwrap_or_else(|e| panic!("SELECT response: {e}"))
}
