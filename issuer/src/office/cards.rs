//! Card state files (`purse-card-state/1`, the emulated card's memory): issuing a card
//! from the issuer's master keys, loading value onto it, and describing it for people.
//!
//! A card file holds `K_PUR` and `K_TAC`: it is written 0600, read only when private,
//! and [`describe`] shows everything but the keys.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use purse::card::CardState;
use purse::commands::TxRecord;
use purse::settlement::rfc3339;
use purse::{Amount, CardId, Currency, KeyVersion, Mode};
use zeroize::Zeroizing;

use super::keys::load_issuer_keys;
use super::lockfile::{create_private, lock};
use crate::files::{read_private, write_atomic};

/// What a new card is personalised with.
#[derive(Clone, Debug)]
pub struct NewCard {
    pub card_id: CardId,
    pub kv: KeyVersion,
    pub currency: Currency,
    pub balance: Amount,
}

/// Derives the card's `K_PUR` and `K_TAC` from key version `kv` of the issuer key file
/// and writes a fresh card (NT_last 0, empty log) to `out`, refusing to replace an
/// existing card unless `force`: that would reset its balance and NT.
pub fn issue_card(keys_path: &Path, out: &Path, card: &NewCard, force: bool) -> Result<CardState> {
    let issuer = load_issuer_keys(keys_path)?;
    let mk = issuer
        .get(card.kv)
        .with_context(|| format!("issuing a card from {}", keys_path.display()))?;
    let state = CardState::new(
        card.card_id,
        card.kv,
        card.currency,
        card.balance,
        mk.k_pur(card.card_id),
        mk.k_tac(card.card_id),
    );
    let json = Zeroizing::new(state.to_json());
    ensure!(!json.is_empty(), "the card state could not be serialized");
    create_private(out, json.as_bytes(), force)?;
    Ok(state)
}

/// Reads a card state file, refusing it when group or others may access it.
pub fn read_card(path: &Path) -> Result<CardState> {
    let text = Zeroizing::new(read_private(path)?);
    CardState::from_json(&text)
        .with_context(|| format!("{} is not a valid card state", path.display()))
}

/// The result of a load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    pub card_id: CardId,
    pub currency: Currency,
    pub amount: Amount,
    pub before: Amount,
    pub after: Amount,
}

/// Adds `amount` minor units to the card's balance, atomically; refuses a zero amount
/// and a balance beyond the card's 4-byte field. Stop a card emulator using the file
/// first: it would write its own copy of the state back.
pub fn load_value(path: &Path, amount: Amount) -> Result<Loaded> {
    ensure!(
        amount.0 > 0,
        "the amount to load must be at least 1 minor unit"
    );
    let _lock = lock(path)?;
    let mut state = read_card(path)?;
    let before = state.balance;
    let Some(after) = before.checked_add(amount) else {
        bail!(
            "loading {} onto a balance of {} exceeds the card's maximum balance of {} \
             minor units; nothing was loaded",
            amount.0,
            before.0,
            u32::MAX
        );
    };
    state.balance = after;
    let json = Zeroizing::new(state.to_json());
    ensure!(!json.is_empty(), "the card state could not be serialized");
    write_atomic(path, json.as_bytes(), 0o600)?;
    Ok(Loaded {
        card_id: state.card_id,
        currency: state.currency,
        amount,
        before,
        after,
    })
}

fn mode_name(p1: u8) -> String {
    match Mode::from_p1(p1) {
        Some(Mode::Single) => "single".into(),
        Some(Mode::TimeCycle) => "time-cycle".into(),
        Some(Mode::StatusOnly) => "status-only".into(),
        None => format!("unknown({p1})"),
    }
}

fn record_line(out: &mut String, c: Currency, r: &TxRecord) {
    let _ = writeln!(
        out,
        "  {:>5}  {}  {:>9}  {}  {:<10}  {:>12}  {:>5}  {:>12}  {:>12}",
        r.nt.0,
        r.sam_id,
        r.sam_tx_seq.0,
        rfc3339(u64::from(r.datetime.0)),
        mode_name(r.mode),
        c.format(r.u),
        r.units.0,
        c.format(r.total),
        c.format(r.balance_after),
    );
}

/// A description of the card and its log for people. Never includes a key.
pub fn describe(s: &CardState) -> String {
    let c = s.currency;
    let mut out = String::new();
    let _ = writeln!(out, "card        {}", s.card_id);
    let _ = writeln!(out, "key version {}", s.kv);
    let _ = writeln!(out, "currency    {} ({})", c, c.numeric());
    let _ = writeln!(out, "balance     {}", c.format(s.balance));
    let _ = writeln!(out, "NT_last     {}", s.nt_last);
    if s.log.is_empty() {
        let _ = writeln!(out, "log         (no records)");
        return out;
    }
    let _ = writeln!(out, "log         {} record(s), by NT:", s.log.len());
    let _ = writeln!(
        out,
        "  {:>5}  {:<16}  {:>9}  {:<20}  {:<10}  {:>12}  {:>5}  {:>12}  {:>12}",
        "NT", "SAM", "SAM_TxSeq", "datetime", "mode", "unit", "units", "total", "balance after"
    );
    for r in &s.log {
        record_line(&mut out, c, r);
    }
    out
}
