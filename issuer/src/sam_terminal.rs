//! A payment terminal whose SAM is a card in its own reader: it drives the SAM applet
//! (docs/sam-protocol.md) and the purse card over two [`CardLink`]s, relaying each one's
//! answers to the other. The SAM draws the randomness, holds the keys and counts; this
//! side keeps only the sealed contexts and the counted records the close streams back.
//! `pcsc-pay --sam-reader` prints these flows step by step.

use purse::commands::{CardCommand, SelectInfo, INS_DEBIT, INS_INITIALIZE, INS_TICK};
use purse::sam::Order;
use purse::sam_applet::host::{self, AnswerError, Counted, Identity, Outcome, SamApdu, StopHow};
use purse::settlement::Batch;
use purse::surrogate::{CardLink, LinkError};
use purse::{CloseSeq, DateTime, KeyVersion, Nt, StatusWord};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TerminalError {
    #[error("{what}: {e}")]
    Link { what: &'static str, e: LinkError },
    #[error("{what} refused with {sw}")]
    Refused { what: &'static str, sw: StatusWord },
    #[error("{what}: {e}")]
    Answer { what: &'static str, e: AnswerError },
    #[error("{0}")]
    Card(String),
}

/// A purchase whose DEBIT went out: its outcome, or its sealed context and `NT` when the
/// card's answer was lost (recovery decides).
pub enum Debited {
    Answered(Outcome),
    Lost { ctx: Vec<u8>, nt: Nt },
}

/// The SAM card and what the terminal keeps between its commands.
pub struct SamTerminal<S: CardLink> {
    sam: S,
    pub identity: Identity,
    /// The records the SAM counted this period, with their tags, for the close.
    records: Vec<Counted>,
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = d.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// `80 INS P1 P2 Lc data 00`: a purse card command carrying the SAM's data.
fn card_apdu(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, TerminalError> {
    let lc = u8::try_from(data.len())
        .map_err(|_| TerminalError::Card(format!("{} bytes for one card APDU", data.len())))?;
    Ok([&[0x80, ins, p1, p2, lc][..], data, &[0]].concat())
}

/// The card's answer split: its data when SW is 9000.
fn card_ok(what: &'static str, r: &[u8]) -> Result<Vec<u8>, TerminalError> {
    match host::answer(r).map_err(|e| TerminalError::Answer { what, e })? {
        Ok(d) => Ok(d.to_vec()),
        Err(sw) => Err(TerminalError::Refused { what, sw }),
    }
}

fn card_send<C: CardLink>(
    card: &mut C,
    what: &'static str,
    apdu: &[u8],
) -> Result<Vec<u8>, TerminalError> {
    let r = card
        .transmit(apdu)
        .map_err(|e| TerminalError::Link { what, e })?;
    card_ok(what, &r)
}

/// SELECT of the purse application: the card's key version, ID and balance.
pub fn select_card<C: CardLink>(card: &mut C) -> Result<SelectInfo, TerminalError> {
    let d = card_send(card, "card SELECT", &CardCommand::select().encode())?;
    SelectInfo::parse(&d).map_err(|e| TerminalError::Card(format!("card SELECT answer: {e}")))
}

/// `NT` of an INITIALIZE answer (bytes 8..12).
fn nt_of(init_resp: &[u8]) -> Result<Nt, TerminalError> {
    be32(init_resp, 8)
        .map(Nt)
        .ok_or_else(|| TerminalError::Card("INITIALIZE answer too short".into()))
}

impl<S: CardLink> SamTerminal<S> {
    /// SELECTs the SAM application in `sam`.
    pub fn select(mut sam: S) -> Result<SamTerminal<S>, TerminalError> {
        let d = Self::exchange(&mut sam, "SAM SELECT", &host::select())?;
        let identity = host::identity(&d).map_err(|e| TerminalError::Answer {
            what: "SAM SELECT",
            e,
        })?;
        Ok(SamTerminal {
            sam,
            identity,
            records: Vec::new(),
        })
    }

    fn exchange(sam: &mut S, what: &'static str, apdu: &SamApdu) -> Result<Vec<u8>, TerminalError> {
        let r = sam
            .transmit(&apdu.to_bytes())
            .map_err(|e| TerminalError::Link { what, e })?;
        card_ok(what, &r)
    }

    fn send(&mut self, what: &'static str, apdu: &SamApdu) -> Result<Vec<u8>, TerminalError> {
        Self::exchange(&mut self.sam, what, apdu)
    }

    fn parsed<T>(what: &'static str, r: Result<T, AnswerError>) -> Result<T, TerminalError> {
        r.map_err(|e| TerminalError::Answer { what, e })
    }

    /// A final outcome's record is kept for the close.
    fn keep(&mut self, o: Outcome) -> Outcome {
        if let Outcome::Completed(c) = &o {
            self.records.push(c.clone());
        }
        o
    }

    /// SELECT, BEGIN, INITIALIZE, AUTHORIZE, DEBIT, COMPLETE: three SAM commands.
    pub fn purchase<C: CardLink>(
        &mut self,
        card: &mut C,
        order: &Order,
        now: DateTime,
    ) -> Result<Debited, TerminalError> {
        let kv = select_card(card)?.kv;
        let begun = self.send("SAM BEGIN", &host::begin(order, self.identity.currency))?;
        let begun = Self::parsed("SAM BEGIN", host::begun(&begun))?;
        let init = card_apdu(INS_INITIALIZE, order.mode.p1(), kv.0, &begun.init_data)?;
        let resp = card_send(card, "card INITIALIZE", &init)?;
        let nt = nt_of(&resp)?;
        let auth = self.send(
            "SAM AUTHORIZE",
            &host::authorize(kv, now, &resp, &begun.ctx),
        )?;
        let auth = Self::parsed("SAM AUTHORIZE", host::authorized(&auth))?;
        let debit = card_apdu(INS_DEBIT, 0, 0, &auth.debit_data)?;
        match card.transmit(&debit) {
            Ok(answer) => Ok(Debited::Answered(self.complete(&answer, &auth.ctx)?)),
            Err(_) => Ok(Debited::Lost { ctx: auth.ctx, nt }),
        }
    }

    fn complete(&mut self, answer: &[u8], ctx: &[u8]) -> Result<Outcome, TerminalError> {
        let d = self.send("SAM COMPLETE", &host::complete(answer, ctx))?;
        let o = Self::parsed("SAM COMPLETE", host::outcome(&d))?;
        Ok(self.keep(o))
    }

    /// The next unit of a running time-cycle due at `now`: TICK, the card's DEBIT TICK,
    /// COMPLETE.
    pub fn tick<C: CardLink>(
        &mut self,
        card: &mut C,
        ctx: &[u8],
        now: DateTime,
    ) -> Result<Outcome, TerminalError> {
        let t = self.send("SAM TICK", &host::tick(now, ctx))?;
        let t = Self::parsed("SAM TICK", host::ticked(&t))?;
        let answer = card
            .transmit(&card_apdu(INS_TICK, 0, 0, &t.tick_data)?)
            .map_err(|e| TerminalError::Link {
                what: "card DEBIT TICK",
                e,
            })?;
        self.complete(&answer, &t.ctx)
    }

    /// Ends a running time-cycle at its confirmed units.
    pub fn stop(&mut self, ctx: &[u8]) -> Result<Outcome, TerminalError> {
        let d = self.send("SAM STOP", &host::stop(StopHow::Running, ctx))?;
        let o = Self::parsed("SAM STOP", host::outcome(&d))?;
        Ok(self.keep(o))
    }

    /// Recovery of a purchase whose answer was lost, with the card back: RECOVERY BEGIN,
    /// a status-only INITIALIZE, GET TRANSACTION PROOF when the card moved past its `NT`,
    /// RECOVERY END.
    pub fn recover<C: CardLink>(
        &mut self,
        card: &mut C,
        ctx: &[u8],
        pending: Nt,
    ) -> Result<Outcome, TerminalError> {
        let kv: KeyVersion = select_card(card)?.kv;
        let b = self.send("SAM RECOVERY BEGIN", &host::recovery_begin(ctx))?;
        let b = Self::parsed("SAM RECOVERY BEGIN", host::recovery_begun(&b))?;
        let resp = card_send(
            card,
            "card INITIALIZE (status only)",
            &card_apdu(INS_INITIALIZE, 0, kv.0, &b.init_data)?,
        )?;
        let proof = if nt_of(&resp)? > pending {
            card.transmit(&CardCommand::GetProof { nt: pending }.encode())
                .map_err(|e| TerminalError::Link {
                    what: "card GET TRANSACTION PROOF",
                    e,
                })?
        } else {
            Vec::new()
        };
        let d = self.send(
            "SAM RECOVERY END",
            &host::recovery_end(&resp, &proof, &b.ctx),
        )?;
        let o = Self::parsed("SAM RECOVERY END", host::outcome(&d))?;
        Ok(self.keep(o))
    }

    /// The close of the open period: CLOSE BEGIN, the counted records in `SAM_TxSeq`
    /// order, CLOSE END; the settlement batch, stamped `created_at` (RFC 3339).
    pub fn close(&mut self, created_at: &str) -> Result<Batch, TerminalError> {
        let st = self.send("SAM GET STATUS", &host::get_status())?;
        let st = Self::parsed("SAM GET STATUS", host::status(&st))?;
        let seq = CloseSeq(st.last_close_seq.0 + 1);
        self.send("SAM CLOSE BEGIN", &host::close_begin(false, seq))?;
        self.records.sort_by_key(Counted::seq);
        let records = std::mem::take(&mut self.records);
        for chunk in records.chunks(host::RECORDS_PER_APDU) {
            self.send("SAM CLOSE RECORD", &host::close_record(chunk))?;
        }
        let signed = self.send("SAM CLOSE END", &host::close_end())?;
        Self::parsed(
            "the batch",
            host::batch(&self.identity, &records, &signed, created_at),
        )
    }
}
