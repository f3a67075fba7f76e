//! A test host for the SAM applet: it plays the shop plugin's part (builds SAM APDUs,
//! relays the purse card's answers, keeps contexts and completed records) and records
//! every SAM exchange so a scenario can become replayable vectors.
#![allow(dead_code)]

use purse::apdu::Response;
use purse::card::{Card, MemoryStore};
use purse::commands::CardCommand;
use purse::keys::SamKeys;
use purse::sam::Order;
use purse::sam_applet::host::{self, Identity, SamApdu};
use purse::sam_applet::{MemorySamStore, SamApplet, SamState, SamStore};
use purse::settlement::{Batch, TotalsRecord};
use purse::{Amount, CloseSeq, Currency, DateTime, Key, KeyVersion, Nt, Rnd, StatusWord};

/// One SAM exchange: the command, the random the SAM drew for it, the answer.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    pub apdu: Vec<u8>,
    pub rnd: Rnd,
    pub response: Vec<u8>,
}

pub use purse::sam_applet::host::{Counted, Outcome};

/// The record of an outcome that must be a completion.
pub fn counted(o: Outcome) -> Counted {
    match o {
        Outcome::Completed(c) => c,
        other => panic!("expected a completion, got {other:?}"),
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
        assert!(h.send("select", &host::select().without_le()).sw.is_ok());
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

    /// `apdu` in the form the v1 vectors record; the answer's data when SW is 9000.
    fn ok(&mut self, name: &str, apdu: SamApdu) -> Result<Vec<u8>, StatusWord> {
        let r = self.send(name, &apdu.without_le());
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
        let b = host::begun(&self.ok("begin", host::begin(order, currency))?).expect("BEGIN");
        Ok((b.init_data, b.ctx))
    }

    pub fn authorize_apdu(
        kv: KeyVersion,
        now: DateTime,
        init_resp: &[u8],
        begin_ctx: &[u8],
    ) -> Vec<u8> {
        host::authorize(kv, now, init_resp, begin_ctx).without_le()
    }

    /// AUTHORIZE: `(DebitData, TxCtx)`.
    pub fn authorize(
        &mut self,
        kv: KeyVersion,
        now: DateTime,
        init_resp: &[u8],
        begin_ctx: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), StatusWord> {
        let apdu = host::authorize(kv, now, init_resp, begin_ctx);
        let a = host::authorized(&self.ok("authorize", apdu)?).expect("AUTHORIZE");
        Ok((a.debit_data, a.ctx))
    }

    pub fn complete_apdu(answer: &[u8], ctx: &[u8]) -> Vec<u8> {
        host::complete(answer, ctx).without_le()
    }

    pub fn complete(&mut self, answer: &[u8], ctx: &[u8]) -> Result<Outcome, StatusWord> {
        let d = self.ok("complete", host::complete(answer, ctx))?;
        Ok(host::outcome(&d).expect("COMPLETE"))
    }

    /// TICK: `(TickData, TxCtx)`.
    pub fn tick(&mut self, now: DateTime, ctx: &[u8]) -> Result<(Vec<u8>, Vec<u8>), StatusWord> {
        let t = host::ticked(&self.ok("tick", host::tick(now, ctx))?).expect("TICK");
        Ok((t.tick_data, t.ctx))
    }

    /// STOP with `How` 0 (running), 1 (not debited) or 2 (debited).
    pub fn stop(&mut self, how: u8, ctx: &[u8]) -> Result<Outcome, StatusWord> {
        let how = match how {
            0 => host::StopHow::Running,
            1 => host::StopHow::NotDebited,
            _ => host::StopHow::Debited,
        };
        let d = self.ok("stop", host::stop(how, ctx))?;
        Ok(host::outcome(&d).expect("STOP"))
    }

    /// RECOVERY BEGIN: `(InitData, RecCtx)`.
    pub fn recovery_begin(&mut self, ctx: &[u8]) -> Result<(Vec<u8>, Vec<u8>), StatusWord> {
        let d = self.ok("recovery begin", host::recovery_begin(ctx))?;
        let b = host::recovery_begun(&d).expect("RECOVERY BEGIN");
        Ok((b.init_data, b.ctx))
    }

    pub fn recovery_end(
        &mut self,
        init_resp: &[u8],
        proof: &[u8],
        ctx: &[u8],
    ) -> Result<Outcome, StatusWord> {
        let d = self.ok("recovery end", host::recovery_end(init_resp, proof, ctx))?;
        Ok(host::outcome(&d).expect("RECOVERY END"))
    }

    /// CLOSE BEGIN: `(CloseSeq, Count, Sum)` of the period to stream.
    pub fn close_begin(
        &mut self,
        again: bool,
        close_seq: u32,
    ) -> Result<(u32, u32, u64), StatusWord> {
        let d = self.ok("close begin", host::close_begin(again, CloseSeq(close_seq)))?;
        let (seq, count, sum) = host::close_begun(&d).expect("CLOSE BEGIN");
        Ok((seq.0, count, sum))
    }

    /// CLOSE RECORD with `entries` (`Rec || Tag` each) in one APDU: short up to 3,
    /// extended above.
    pub fn close_record(&mut self, entries: &[Vec<u8>]) -> Result<(), StatusWord> {
        self.ok("close record", host::close_entries(entries.concat()))
            .map(|_| ())
    }

    /// CLOSE END: `TR || TRMAC`.
    pub fn close_end(&mut self) -> Result<Vec<u8>, StatusWord> {
        let d = self.ok("close end", host::close_end())?;
        Ok(host::close_signed(&d).expect("CLOSE END"))
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
            self.ok("close record", host::close_record(chunk))?;
        }
        let signed = self.close_end()?;
        Ok(batch(&self.sam, records, &signed, created_at))
    }
}

/// The batch file from the streamed records and the SAM's `TR || TRMAC`.
pub fn batch(sam: &SamApplet, records: &[Counted], signed: &[u8], created_at: &str) -> Batch {
    let k = &sam.state().keys;
    let id = Identity {
        sam_id: k.sam_id,
        key_version: k.key_version,
        currency: k.currency,
    };
    host::batch(&id, records, signed, created_at).expect("a batch of the SAM's records")
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
