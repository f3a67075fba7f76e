//! The surrogate (the seed's "client surrogate program"): it stands between the SAM and
//! a card it cannot touch directly, turning SAM output into card commands and card
//! answers into SAM input, over any [`CardLink`] (PC/SC, a relay across the Internet,
//! an in-process card).
//!
//! [`Surrogate`] drives whole flows synchronously: a purchase, the ticks of a
//! time-cycle, a recovery. It stores every [`Durable`] through the [`Journal`] before
//! the command that came with it is sent, so the write-ahead rule holds here too.

use thiserror::Error;

use crate::card::{Card, CardStore};
use crate::commands::{CardCommand, SelectInfo};
use crate::sam::{
    Authorized, Completion, Durable, Exchange, Order, Outcome, RecoveryStep, Refusal, Sam, SamError,
};
use crate::types::{DateTime, Rnd, SamTxSeq};

/// A failed exchange with the card: it was pulled, the reader or relay failed, no answer.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("exchange with the card failed: {0}")]
pub struct LinkError(pub String);

/// One APDU to the card and its answer.
pub trait CardLink {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError>;
}

/// An in-process card is a link too (tests, benchmarks, the shop plugin's simulations).
pub struct LocalCard<'a> {
    pub card: &'a mut Card,
    pub store: &'a mut dyn CardStore,
}

impl CardLink for LocalCard<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError> {
        Ok(self.card.process(apdu, self.store))
    }
}

/// Where the SAM's durable records go (SQLite in the shop plugin).
pub trait Journal {
    fn store(&mut self, records: &[Durable]) -> Result<(), JournalError>;
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("the SAM journal could not be written: {0}")]
pub struct JournalError(pub String);

/// A journal in memory: every record, in the order stored (tests, simulations).
#[derive(Debug, Default)]
pub struct MemoryJournal(pub Vec<Durable>);

impl Journal for MemoryJournal {
    fn store(&mut self, records: &[Durable]) -> Result<(), JournalError> {
        self.0.extend_from_slice(records);
        Ok(())
    }
}

/// A journal that keeps nothing (the SAM's memory is all there is).
#[derive(Debug, Default)]
pub struct NoJournal;

impl Journal for NoJournal {
    fn store(&mut self, _records: &[Durable]) -> Result<(), JournalError> {
        Ok(())
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SurrogateError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("the card refused SELECT of the purse: {0}")]
    NotAPurse(crate::apdu::StatusWord),
    #[error("the card's answer is malformed: {0}")]
    Malformed(String),
    #[error("purchase refused: {0}")]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Sam(#[from] SamError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Sends one command and classifies the answer the way the SAM needs it: a transport
/// failure or a non-response is a failed exchange, never a status word.
pub fn exchange(link: &mut dyn CardLink, cmd: &CardCommand) -> Exchange {
    match link.transmit(&cmd.encode()) {
        Ok(bytes) => Exchange::from_bytes(Some(&bytes)),
        Err(_) => Exchange::Failed,
    }
}

/// SELECT the purse and parse its FCI.
pub fn select(link: &mut dyn CardLink) -> Result<SelectInfo, SurrogateError> {
    let bytes = link.transmit(&CardCommand::select().encode())?;
    match Exchange::from_bytes(Some(&bytes)) {
        Exchange::Answered(r) if r.sw.is_ok() => {
            SelectInfo::parse(&r.data).map_err(|e| SurrogateError::Malformed(e.to_string()))
        }
        Exchange::Answered(r) => Err(SurrogateError::NotAPurse(r.sw)),
        Exchange::Failed => Err(SurrogateError::Malformed(
            "answer shorter than a status word".into(),
        )),
    }
}

/// The result of a purchase step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purchase {
    pub sam_tx_seq: SamTxSeq,
    pub card: SelectInfo,
    pub completion: Completion,
}

/// Drives the SAM against one card.
pub struct Surrogate<'a> {
    pub sam: &'a mut Sam,
    pub journal: &'a mut dyn Journal,
}

impl Surrogate<'_> {
    /// SELECT, INITIALIZE, authorize (journal), DEBIT, complete (journal).
    pub fn purchase(
        &mut self,
        link: &mut dyn CardLink,
        order: Order,
        rnd_s: Rnd,
        now: DateTime,
    ) -> Result<Purchase, SurrogateError> {
        let card = select(link)?;
        let begun = self.sam.begin(order, rnd_s)?;
        let init = CardCommand::Initialize(begun.initialize(card.kv));
        let answer = exchange(link, &init);
        let Authorized { durable, debit } = self.sam.authorize(&begun, card.kv, &answer, now)?;
        let seq = durable.tx.sam_tx_seq;
        self.journal.store(&[durable])?;
        let answer = exchange(link, &CardCommand::Debit(debit));
        let completion = self.finish(seq, &answer)?;
        Ok(Purchase {
            sam_tx_seq: seq,
            card,
            completion,
        })
    }

    /// Issues the next tick of a running time-cycle if the clock says it is due.
    pub fn tick(
        &mut self,
        link: &mut dyn CardLink,
        seq: SamTxSeq,
        now: DateTime,
    ) -> Result<Completion, SurrogateError> {
        let tick = self.sam.tick(seq, now)?;
        self.journal.store(&[tick.durable])?;
        let answer = exchange(link, &CardCommand::Tick(tick.command));
        self.finish(seq, &answer)
    }

    fn finish(&mut self, seq: SamTxSeq, answer: &Exchange) -> Result<Completion, SurrogateError> {
        let (completion, durable) = self.sam.complete(seq, answer)?;
        if let Some(d) = durable {
            self.journal.store(&[d])?;
        }
        Ok(completion)
    }

    /// Recovers every pending transaction of the card in the reader. Returns each
    /// transaction's outcome (empty when nothing of this card was pending).
    pub fn recover(
        &mut self,
        link: &mut dyn CardLink,
        rnd_s: Rnd,
    ) -> Result<Vec<(SamTxSeq, Outcome)>, SurrogateError> {
        let card = select(link)?;
        let Some((mut rec, mut cmd)) = self.sam.start_recovery(card.card_id, card.kv, rnd_s) else {
            return Ok(Vec::new());
        };
        loop {
            let answer = exchange(link, &cmd);
            match self.sam.recovery_answer(&mut rec, &answer) {
                RecoveryStep::Send { command, durable } => {
                    self.journal.store(&durable)?;
                    cmd = command;
                }
                RecoveryStep::Done { outcomes, durable } => {
                    self.journal.store(&durable)?;
                    return Ok(outcomes);
                }
            }
        }
    }
}
