//! A test host on the real PC/SC stack: the SAM card in one reader and the purse card in
//! another, both through pcscd. It plays the shop plugin's and the shopper's parts
//! (docs/sam-protocol.md section 3): builds the SAM's APDUs, relays the purse card's
//! answers, keeps the contexts and the completed records, and counts SAM round trips.
#![allow(dead_code)]

use pcsc::{Context, Disposition};
use purse::commands::{CardCommand, SelectInfo};
use purse::sam::Order;
use purse::sam_applet::host::{self, Identity};
use purse::sam_applet::{SamApplet, SamStore};
use purse::settlement::Batch;
use purse::{CloseSeq, Currency, DateTime, KeyVersion, Nt, Rnd};
use testkit::{connect, pcsc_context, select_purse, split_sw, transmit, wait_present};

/// A status word other than 9000.
pub type Sw = u16;

pub use purse::sam_applet::host::{Counted, Outcome, Status};

/// A test's expectation on an outcome.
pub trait Expect {
    fn counted(self) -> Counted;
}

impl Expect for Outcome {
    fn counted(self) -> Counted {
        match self {
            Outcome::Completed(c) => c,
            other => panic!("expected a counted completion, got {other:?}"),
        }
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b.try_into().expect("4 bytes"))
}

/// `CLA INS P1 P2 Lc data Le` (short), for the purse card's commands.
fn apdu(head: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut a = head.to_vec();
    a.push(u8::try_from(data.len()).expect("short APDU"));
    a.extend_from_slice(data);
    a.push(0);
    a
}

/// Where the SAM's APDUs go.
enum Transport {
    /// The SAM card in its reader, through pcscd.
    Pcsc(Handle),
    /// The same applet called in this process (benchmark baselines).
    InProcess {
        sam: Box<SamApplet>,
        store: Box<dyn SamStore + Send>,
    },
}

/// The SAM card in its reader (or its applet in process).
pub struct SamLink {
    card: Transport,
    /// SAM APDU exchanges so far (SELECT included).
    pub round_trips: u64,
}

impl SamLink {
    /// Waits for the SAM in `reader`, connects and SELECTs the SAM application.
    pub fn connect(reader: &'static str) -> SamLink {
        SamLink::over(Transport::Pcsc(Handle::connect(reader)))
    }

    /// The SAM applet in this process, persisting through `store`; SELECTed.
    pub fn in_process(sam: SamApplet, store: Box<dyn SamStore + Send>) -> SamLink {
        SamLink::over(Transport::InProcess {
            sam: Box::new(sam),
            store,
        })
    }

    fn over(card: Transport) -> SamLink {
        let mut link = SamLink {
            card,
            round_trips: 0,
        };
        link.select();
        link
    }

    /// After the SAM emulator restarted: a new connection and SELECT.
    pub fn reconnect(&mut self) {
        if let Transport::Pcsc(h) = &mut self.card {
            h.reconnect();
        }
        self.select();
    }

    /// SELECT: who the SAM is.
    pub fn select(&mut self) -> Identity {
        let d = self
            .ok(&host::select().to_bytes())
            .expect("SELECT of the SAM application");
        host::identity(&d).expect("SELECT answer")
    }

    /// One exchange; a transport failure panics (the SAM is in its reader in these
    /// tests unless the test killed it).
    pub fn ok(&mut self, apdu: &[u8]) -> Result<Vec<u8>, Sw> {
        self.round_trips += 1;
        let r = match &mut self.card {
            Transport::Pcsc(h) => {
                transmit(h.get(), apdu).unwrap_or_else(|e| panic!("SAM transmit: {e}"))
            }
            Transport::InProcess { sam, store } => {
                let mut rnd = [0u8; 16];
                rnd[..8].copy_from_slice(&self.round_trips.to_be_bytes());
                sam.process(apdu, Rnd(rnd), store.as_mut())
            }
        };
        let (data, sw) = split_sw(&r);
        if sw == 0x9000 {
            Ok(data.to_vec())
        } else {
            Err(sw)
        }
    }

    pub fn status(&mut self) -> Status {
        let d = self.ok(&host::get_status().to_bytes()).expect("GET STATUS");
        host::status(&d).expect("GET STATUS answer")
    }

    /// BEGIN: `(InitData, BeginCtx)`.
    pub fn begin(&mut self, order: &Order) -> Result<(Vec<u8>, Vec<u8>), Sw> {
        let d = self.ok(&host::begin(order, Currency::EUR).to_bytes())?;
        let b = host::begun(&d).expect("BEGIN answer");
        Ok((b.init_data, b.ctx))
    }

    /// AUTHORIZE: `(DebitData, TxCtx)`.
    pub fn authorize(
        &mut self,
        kv: KeyVersion,
        now: DateTime,
        init_resp: &[u8],
        begin_ctx: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), Sw> {
        let d = self.ok(&host::authorize(kv, now, init_resp, begin_ctx).to_bytes())?;
        let a = host::authorized(&d).expect("AUTHORIZE answer");
        Ok((a.debit_data, a.ctx))
    }

    pub fn complete(&mut self, answer: &[u8], ctx: &[u8]) -> Result<Outcome, Sw> {
        let d = self.ok(&host::complete(answer, ctx).to_bytes())?;
        Ok(host::outcome(&d).expect("COMPLETE answer"))
    }

    /// TICK: `(TickData, TxCtx)`.
    pub fn tick(&mut self, now: DateTime, ctx: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Sw> {
        let d = self.ok(&host::tick(now, ctx).to_bytes())?;
        let t = host::ticked(&d).expect("TICK answer");
        Ok((t.tick_data, t.ctx))
    }

    /// RECOVERY BEGIN: `(InitData, RecCtx)`.
    pub fn recovery_begin(&mut self, ctx: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Sw> {
        let d = self.ok(&host::recovery_begin(ctx).to_bytes())?;
        let b = host::recovery_begun(&d).expect("RECOVERY BEGIN answer");
        Ok((b.init_data, b.ctx))
    }

    pub fn recovery_end(
        &mut self,
        init_resp: &[u8],
        proof: &[u8],
        rec_ctx: &[u8],
    ) -> Result<Outcome, Sw> {
        let d = self.ok(&host::recovery_end(init_resp, proof, rec_ctx).to_bytes())?;
        Ok(host::outcome(&d).expect("RECOVERY END answer"))
    }

    /// A whole close of the open period as `close_seq`: CLOSE BEGIN, the records in
    /// SAM_TxSeq order three per CLOSE RECORD, CLOSE END; the batch the plugin writes.
    pub fn close(&mut self, close_seq: u32, records: &[Counted]) -> Result<Batch, Sw> {
        self.ok(&host::close_begin(false, CloseSeq(close_seq)).to_bytes())?;
        for chunk in records.chunks(host::RECORDS_PER_APDU) {
            self.ok(&host::close_record(chunk).to_bytes())?;
        }
        let signed = self.ok(&host::close_end().to_bytes())?;
        let id = self.select();
        Ok(host::batch(&id, records, &signed, "2026-11-19T10:00:00Z").expect("the batch"))
    }
}

/// A card handle that can be replaced by a new connection to its reader. The stale
/// handle is let go first, and without a reset: dropping it (the `pcsc` crate resets on
/// drop) would reset the reader's new card under the new handle.
struct Handle {
    ctx: Context,
    reader: &'static str,
    card: Option<pcsc::Card>,
}

impl Handle {
    fn connect(reader: &'static str) -> Handle {
        let mut h = Handle {
            ctx: pcsc_context(),
            reader,
            card: None,
        };
        h.reconnect();
        h
    }

    fn reconnect(&mut self) {
        if let Some(stale) = self.card.take() {
            if let Err((card, _)) = stale.disconnect(Disposition::LeaveCard) {
                std::mem::forget(card);
            }
        }
        wait_present(&self.ctx, self.reader);
        self.card = Some(connect(&self.ctx, self.reader));
    }

    fn get(&self) -> &pcsc::Card {
        self.card.as_ref().expect("connected")
    }
}

/// The shopper's purse card in its reader.
pub struct CardLink {
    card: Handle,
}

impl CardLink {
    pub fn connect(reader: &'static str) -> CardLink {
        CardLink {
            card: Handle::connect(reader),
        }
    }

    /// After the card was pulled and put back.
    pub fn reconnect(&mut self) {
        self.card.reconnect();
    }

    pub fn select(&mut self) -> SelectInfo {
        select_purse(self.card.get())
    }

    /// `80 50 P1 KV 1E InitData 00`: the INITIALIZE response data (42 bytes).
    pub fn initialize(&mut self, p1: u8, kv: KeyVersion, init_data: &[u8]) -> Vec<u8> {
        let r = transmit(self.card.get(), &apdu([0x80, 0x50, p1, kv.0], init_data))
            .unwrap_or_else(|e| panic!("INITIALIZE transmit: {e}"));
        let (data, sw) = split_sw(&r);
        assert_eq!(sw, 0x9000, "card INITIALIZE");
        data.to_vec()
    }

    /// DEBIT: the card's whole answer, or the transport error of a lost answer.
    pub fn debit(&mut self, debit_data: &[u8]) -> Result<Vec<u8>, pcsc::Error> {
        transmit(self.card.get(), &apdu([0x80, 0x54, 0x00, 0x00], debit_data))
    }

    pub fn tick(&mut self, tick_data: &[u8]) -> Result<Vec<u8>, pcsc::Error> {
        transmit(self.card.get(), &apdu([0x80, 0x56, 0x00, 0x00], tick_data))
    }

    pub fn proof(&mut self, nt: Nt) -> Vec<u8> {
        transmit(self.card.get(), &CardCommand::GetProof { nt }.encode())
            .unwrap_or_else(|e| panic!("GET TRANSACTION PROOF transmit: {e}"))
    }
}

/// SELECT, BEGIN, INITIALIZE, AUTHORIZE: `(DebitData, TxCtx, NT of the session)`.
pub fn authorize(
    sam: &mut SamLink,
    card: &mut CardLink,
    order: &Order,
    now: DateTime,
) -> Result<(Vec<u8>, Vec<u8>, Nt), Sw> {
    let kv = card.select().kv;
    let (init, begin) = sam.begin(order)?;
    let resp = card.initialize(order.mode.p1(), kv, &init);
    let nt = Nt(be32(&resp[8..12]));
    let (debit, ctx) = sam.authorize(kv, now, &resp, &begin)?;
    Ok((debit, ctx, nt))
}

/// A whole single purchase: three SAM commands (BEGIN, AUTHORIZE, COMPLETE).
pub fn purchase(
    sam: &mut SamLink,
    card: &mut CardLink,
    order: &Order,
    now: DateTime,
) -> Result<Outcome, Sw> {
    let (debit, ctx, _) = authorize(sam, card, order, now)?;
    let answer = card.debit(&debit).expect("DEBIT answer");
    sam.complete(&answer, &ctx)
}

/// Recovery of a pending context: RECOVERY BEGIN, mode-00 INITIALIZE, GET TRANSACTION
/// PROOF when the card moved past the pending NT, RECOVERY END.
pub fn recover(
    sam: &mut SamLink,
    card: &mut CardLink,
    ctx: &[u8],
    pending_nt: Nt,
) -> Result<Outcome, Sw> {
    let kv = card.select().kv;
    let (init, rec) = sam.recovery_begin(ctx)?;
    let resp = card.initialize(0x00, kv, &init);
    let proof = if Nt(be32(&resp[8..12])) > pending_nt {
        card.proof(pending_nt)
    } else {
        Vec::new()
    };
    sam.recovery_end(&resp, &proof, &rec)
}
