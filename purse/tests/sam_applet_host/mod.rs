//! A test host for the SAM applet: it plays the shop plugin's part (builds SAM APDUs,
//! relays the purse card's answers, keeps contexts and completed records) and records
//! every SAM exchange so a scenario can become replayable vectors.
#![allow(dead_code)]

use purse::apdu::Response;
use purse::card::{Card, MemoryStore};
use purse::commands::{CardCommand, TxRecord};
use purse::keys::SamKeys;
use purse::sam::Order;
use purse::sam_applet::{outcome, MemorySamStore, SamApplet, SamState, SamStore, SAM_AID};
use purse::settlement::{Batch, BatchTx, Totals, TotalsRecord, FORMAT};
use purse::{
    Amount, CardId, CloseSeq, Currency, DateTime, Journal, Key, KeyVersion, Mac8, Nt, Rnd, SamId,
    SamTxSeq, StatusWord, Sum,
};

/// One SAM exchange: the command, the random the SAM drew for it, the answer.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    pub apdu: Vec<u8>,
    pub rnd: Rnd,
    pub response: Vec<u8>,
}

/// A record the SAM counted, with its period and tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counted {
    pub period: CloseSeq,
    pub rec: Vec<u8>,
    pub tag: [u8; 8],
}

impl Counted {
    pub fn seq(&self) -> SamTxSeq {
        SamTxSeq(u32::from_be_bytes([
            self.rec[21],
            self.rec[22],
            self.rec[23],
            self.rec[24],
        ]))
    }

    pub fn batch_tx(&self) -> BatchTx {
        let card = CardId(self.rec[1..9].try_into().expect("8 bytes"));
        let r = TxRecord::parse(&self.rec[9..]).expect("record");
        BatchTx::from_record(KeyVersion(self.rec[0]), card, &r)
    }

    /// `Rec || Tag` for CLOSE RECORD.
    pub fn entry(&self) -> Vec<u8> {
        [self.rec.as_slice(), &self.tag].concat()
    }
}

/// What COMPLETE, STOP or RECOVERY END said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Running(Vec<u8>),
    Completed(Counted),
    Nothing,
    Pending,
}

pub fn outcome_of(data: &[u8]) -> Outcome {
    match data.first() {
        Some(&outcome::RUNNING) => Outcome::Running(data[1..].to_vec()),
        Some(&outcome::COMPLETED) => Outcome::Completed(Counted {
            period: CloseSeq(u32::from_be_bytes(data[1..5].try_into().expect("4"))),
            rec: data[5..65].to_vec(),
            tag: data[65..73].try_into().expect("8"),
        }),
        Some(&outcome::NOTHING) => Outcome::Nothing,
        _ => Outcome::Pending,
    }
}

/// The K_CTX the test SAMs are personalised with (a real SAM draws its own).
pub const K_CTX: [u8; 16] = [0xC7; 16];

pub struct Host<S: SamStore = MemorySamStore> {
    pub sam: SamApplet,
    pub store: S,
    pub rnd: u8,
    pub steps: Vec<Step>,
}

pub fn sam_state(keys: SamKeys) -> SamState {
    SamState::personalise(keys, Key::from_bytes(K_CTX))
}

impl Host<MemorySamStore> {
    pub fn new(keys: SamKeys) -> Self {
        Host::with_store(SamApplet::new(sam_state(keys)), MemorySamStore)
    }
}

impl<S: SamStore> Host<S> {
    /// A host on `sam`, which it selects.
    pub fn with_store(sam: SamApplet, store: S) -> Self {
        let mut h = Host {
            sam,
            store,
            rnd: 0x40,
            steps: Vec::new(),
        };
        let mut select = vec![0x00, 0xA4, 0x04, 0x00, 0x07];
        select.extend_from_slice(&SAM_AID);
        assert!(h.send("select", &select).sw.is_ok());
        h
    }

    /// The next random the SAM draws (counts up, so runs repeat).
    pub fn next_rnd(&mut self) -> Rnd {
        self.rnd = self.rnd.wrapping_add(1);
        Rnd([self.rnd; 16])
    }

    pub fn send(&mut self, name: &str, apdu: &[u8]) -> Response {
        let rnd = self.next_rnd();
        let response = self.sam.process(apdu, rnd, &mut self.store);
        self.steps.push(Step {
            name: name.to_string(),
            apdu: apdu.to_vec(),
            rnd,
            response: response.clone(),
        });
        Response::parse(&response).expect("at least a status word")
    }

    fn ok(&mut self, name: &str, apdu: &[u8]) -> Result<Vec<u8>, StatusWord> {
        let r = self.send(name, apdu);
        if r.sw.is_ok() {
            Ok(r.data)
        } else {
            Err(r.sw)
        }
    }

    /// BEGIN: `(InitData, BeginCtx)`.
    pub fn begin(
        &mut self,
        order: &Order,
        currency: Currency,
    ) -> Result<(Vec<u8>, Vec<u8>), StatusWord> {
        let mut a = vec![0x80, 0x70, order.mode.p1(), 0x00, 12];
        a.extend_from_slice(&order.unit_amount.0.to_be_bytes());
        a.extend_from_slice(&order.max_units.0.to_be_bytes());
        a.extend_from_slice(&order.period_secs.to_be_bytes());
        a.extend_from_slice(&currency.numeric().to_be_bytes());
        let d = self.ok("begin", &a)?;
        Ok((d[..30].to_vec(), d[30..].to_vec()))
    }

    pub fn authorize_apdu(
        kv: KeyVersion,
        now: DateTime,
        init_resp: &[u8],
        begin_ctx: &[u8],
    ) -> Vec<u8> {
        let mut a = vec![0x80, 0x72, 0x00, 0x00, 0x60, kv.0];
        a.extend_from_slice(&now.0.to_be_bytes());
        a.extend_from_slice(init_resp);
        a.extend_from_slice(begin_ctx);
        a
    }

    /// AUTHORIZE: `(DebitData, TxCtx)`.
    pub fn authorize(
        &mut self,
        kv: KeyVersion,
        now: DateTime,
        init_resp: &[u8],
        begin_ctx: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), StatusWord> {
        let d = self.ok(
            "authorize",
            &Self::authorize_apdu(kv, now, init_resp, begin_ctx),
        )?;
        Ok((d[..16].to_vec(), d[16..].to_vec()))
    }

    pub fn complete_apdu(answer: &[u8], ctx: &[u8]) -> Vec<u8> {
        let mut a = vec![0x80, 0x74, 0x00, 0x00, (1 + answer.len() + ctx.len()) as u8];
        a.push(answer.len() as u8);
        a.extend_from_slice(answer);
        a.extend_from_slice(ctx);
        a
    }

    pub fn complete(&mut self, answer: &[u8], ctx: &[u8]) -> Result<Outcome, StatusWord> {
        self.ok("complete", &Self::complete_apdu(answer, ctx))
            .map(|d| outcome_of(&d))
    }

    /// TICK: `(TickData, TxCtx)`.
    pub fn tick(&mut self, now: DateTime, ctx: &[u8]) -> Result<(Vec<u8>, Vec<u8>), StatusWord> {
        let mut a = vec![0x80, 0x76, 0x00, 0x00, 0x7B];
        a.extend_from_slice(&now.0.to_be_bytes());
        a.extend_from_slice(ctx);
        let d = self.ok("tick", &a)?;
        Ok((d[..10].to_vec(), d[10..].to_vec()))
    }

    pub fn stop(&mut self, how: u8, ctx: &[u8]) -> Result<Outcome, StatusWord> {
        let mut a = vec![0x80, 0x78, how, 0x00, 0x77];
        a.extend_from_slice(ctx);
        self.ok("stop", &a).map(|d| outcome_of(&d))
    }

    /// RECOVERY BEGIN: `(InitData, RecCtx)`.
    pub fn recovery_begin(&mut self, ctx: &[u8]) -> Result<(Vec<u8>, Vec<u8>), StatusWord> {
        let mut a = vec![0x80, 0x7A, 0x00, 0x00, 0x77];
        a.extend_from_slice(ctx);
        let d = self.ok("recovery begin", &a)?;
        Ok((d[..30].to_vec(), d[30..].to_vec()))
    }

    pub fn recovery_end(
        &mut self,
        init_resp: &[u8],
        proof: &[u8],
        ctx: &[u8],
    ) -> Result<Outcome, StatusWord> {
        let mut a = vec![0x80, 0x7A, 0x01, 0x00, (43 + proof.len() + ctx.len()) as u8];
        a.extend_from_slice(init_resp);
        a.push(proof.len() as u8);
        a.extend_from_slice(proof);
        a.extend_from_slice(ctx);
        self.ok("recovery end", &a).map(|d| outcome_of(&d))
    }

    /// CLOSE BEGIN: `(CloseSeq, Count, Sum)` of the period to stream.
    pub fn close_begin(
        &mut self,
        again: bool,
        close_seq: u32,
    ) -> Result<(u32, u32, u64), StatusWord> {
        let mut a = vec![0x80, 0x7C, u8::from(again), 0x00, 0x04];
        a.extend_from_slice(&close_seq.to_be_bytes());
        let d = self.ok("close begin", &a)?;
        Ok((
            u32::from_be_bytes(d[..4].try_into().expect("4")),
            u32::from_be_bytes(d[4..8].try_into().expect("4")),
            u64::from_be_bytes(d[8..16].try_into().expect("8")),
        ))
    }

    /// CLOSE RECORD with `entries` in one APDU: short up to 3, extended above.
    pub fn close_record(&mut self, entries: &[Vec<u8>]) -> Result<(), StatusWord> {
        let data = entries.concat();
        let mut a = vec![0x80, 0x7C, 0x02, 0x00];
        if data.len() <= 255 {
            a.push(data.len() as u8);
        } else {
            a.push(0);
            a.extend_from_slice(&(data.len() as u16).to_be_bytes());
        }
        a.extend_from_slice(&data);
        self.ok("close record", &a).map(|_| ())
    }

    /// CLOSE END: `TR || TRMAC`.
    pub fn close_end(&mut self) -> Result<Vec<u8>, StatusWord> {
        self.ok("close end", &[0x80, 0x7C, 0x03, 0x00, 0x00])
    }

    /// A whole close over `records` (in SAM_TxSeq order), streamed in APDUs of up to
    /// `per_apdu` records; returns the batch the plugin would write.
    pub fn close(
        &mut self,
        again: bool,
        close_seq: u32,
        records: &[Counted],
        per_apdu: usize,
        created_at: &str,
    ) -> Result<Batch, StatusWord> {
        self.close_begin(again, close_seq)?;
        for chunk in records.chunks(per_apdu.max(1)) {
            let entries: Vec<Vec<u8>> = chunk.iter().map(Counted::entry).collect();
            self.close_record(&entries)?;
        }
        let signed = self.close_end()?;
        Ok(batch(&self.sam, records, &signed, created_at))
    }
}

/// The batch file from the streamed records and the SAM's `TR || TRMAC`.
pub fn batch(sam: &SamApplet, records: &[Counted], signed: &[u8], created_at: &str) -> Batch {
    let tr = |a: usize, b: usize| &signed[a..b];
    let u32_at = |a: usize| u32::from_be_bytes(tr(a, a + 4).try_into().expect("4"));
    let k = &sam.state().keys;
    Batch {
        format: FORMAT.to_string(),
        sam_id: SamId(tr(0, 8).try_into().expect("8")),
        close_seq: CloseSeq(u32_at(8)),
        currency: k.currency,
        created_at: created_at.to_string(),
        key_version: k.key_version,
        transactions: records.iter().map(Counted::batch_tx).collect(),
        unresolved: Vec::new(),
        totals: Totals {
            count: u32_at(20),
            sum: Sum(u64::from_be_bytes(tr(24, 32).try_into().expect("8"))),
            first_tx_seq: SamTxSeq(u32_at(12)),
            last_tx_seq: SamTxSeq(u32_at(16)),
            journal: Journal(tr(34, 50).try_into().expect("16")),
            mac: Mac8(tr(50, 58).try_into().expect("8")),
        },
    }
}

/// Checks the signed TR against the batch's own fields (what the clearing office MACs).
pub fn tr_of(b: &Batch) -> Vec<u8> {
    TotalsRecord::claimed(b).encode()
}

/// The purse card in the shopper's reader, in process.
pub struct Shopper {
    pub card: Card,
}

impl Shopper {
    pub fn send(&mut self, cmd: &[u8]) -> Response {
        Response::parse(&self.card.process(cmd, &mut MemoryStore)).expect("card answers")
    }

    pub fn select(&mut self) -> Response {
        self.send(&CardCommand::select().encode())
    }

    /// `80 50 P1 KV 1E InitData 00`.
    pub fn initialize(&mut self, mode: u8, kv: KeyVersion, init_data: &[u8]) -> Response {
        let mut a = vec![0x80, 0x50, mode, kv.0, 0x1E];
        a.extend_from_slice(init_data);
        a.push(0);
        self.send(&a)
    }

    pub fn debit(&mut self, debit_data: &[u8]) -> Vec<u8> {
        let mut a = vec![0x80, 0x54, 0, 0, 0x10];
        a.extend_from_slice(debit_data);
        a.push(0);
        self.card.process(&a, &mut MemoryStore)
    }

    pub fn tick(&mut self, tick_data: &[u8]) -> Vec<u8> {
        let mut a = vec![0x80, 0x56, 0, 0, 0x0A];
        a.extend_from_slice(tick_data);
        a.push(0);
        self.card.process(&a, &mut MemoryStore)
    }

    pub fn proof(&mut self, nt: Nt) -> Vec<u8> {
        self.card
            .process(&CardCommand::GetProof { nt }.encode(), &mut MemoryStore)
    }
}

/// A host-side purchase up to the DEBIT that is ready to send: SELECT, BEGIN,
/// INITIALIZE, AUTHORIZE. Returns `(DebitData, TxCtx)`.
pub fn authorize<S: SamStore>(
    host: &mut Host<S>,
    shopper: &mut Shopper,
    order: &Order,
    now: DateTime,
) -> Result<(Vec<u8>, Vec<u8>), StatusWord> {
    assert!(shopper.select().sw.is_ok());
    let kv = shopper.card.state().kv;
    let (init, begin) = host.begin(order, Currency::EUR)?;
    let r = shopper.initialize(order.mode.p1(), kv, &init);
    assert!(r.sw.is_ok(), "card INITIALIZE {:?}", r.sw);
    host.authorize(kv, now, &r.data, &begin)
}

/// A whole single purchase: authorize, DEBIT, COMPLETE.
pub fn purchase<S: SamStore>(
    host: &mut Host<S>,
    shopper: &mut Shopper,
    amount: u32,
    now: DateTime,
) -> Result<Outcome, StatusWord> {
    let (debit, ctx) = authorize(host, shopper, &Order::single(Amount(amount)), now)?;
    let answer = shopper.debit(&debit);
    host.complete(&answer, &ctx)
}

/// Recovery of a pending context: mode-00 INITIALIZE and, when the card moved past the
/// pending NT, GET TRANSACTION PROOF.
pub fn recover<S: SamStore>(
    host: &mut Host<S>,
    shopper: &mut Shopper,
    ctx: &[u8],
    pending_nt: Nt,
) -> Result<Outcome, StatusWord> {
    assert!(shopper.select().sw.is_ok());
    let kv = shopper.card.state().kv;
    let (init, rec) = host.recovery_begin(ctx)?;
    let r = shopper.initialize(0x00, kv, &init);
    let n = Nt(u32::from_be_bytes(r.data[8..12].try_into().expect("4")));
    let proof = if n > pending_nt {
        shopper.proof(pending_nt)
    } else {
        Vec::new()
    };
    host.recovery_end(&r.data, &proof, &rec)
}

/// A single purchase whose DEBIT reaches the card but whose answer is lost
/// (`reaches_card`), or whose DEBIT never reaches the card, then recovered. Returns the
/// recovery's outcome and, when the card answered, what COMPLETE then makes of that late
/// answer.
pub fn lost_and_recovered<S: SamStore>(
    host: &mut Host<S>,
    shopper: &mut Shopper,
    amount: u32,
    at: DateTime,
    reaches_card: bool,
) -> (Outcome, Option<Result<Outcome, StatusWord>>) {
    let order = Order::single(Amount(amount));
    let (debit, ctx) = authorize(host, shopper, &order, at).expect("authorize");
    let nt = Nt(shopper.card.state().nt_last.0 + 1);
    let answer = reaches_card.then(|| shopper.debit(&debit));
    let out = recover(host, shopper, &ctx, nt).expect("recovery");
    (out, answer.map(|a| host.complete(&a, &ctx)))
}
