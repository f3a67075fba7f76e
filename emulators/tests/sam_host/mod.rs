//! A test host on the real PC/SC stack: the SAM card in one reader and the purse card in
//! another, both through pcscd. It plays the shop plugin's and the shopper's parts
//! (docs/sam-protocol.md section 3): builds the SAM's APDUs, relays the purse card's
//! answers, keeps the contexts and the completed records, and counts SAM round trips.
#![allow(dead_code)]

use pcsc::{Context, Disposition};
use purse::commands::{CardCommand, SelectInfo, TxRecord};
use purse::sam::Order;
use purse::sam_applet::{outcome, SamApplet, SamStore, SAM_AID};
use purse::settlement::{Batch, BatchTx, Totals, FORMAT};
use purse::{
    CardId, CloseSeq, Currency, DateTime, Journal, KeyVersion, Mac8, Nt, Rnd, SamId, SamTxSeq, Sum,
};
use testkit::{connect, pcsc_context, select_purse, split_sw, transmit, wait_present};

/// A status word other than 9000.
pub type Sw = u16;

/// A record the SAM counted, with its period and tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counted {
    pub period: CloseSeq,
    pub rec: Vec<u8>,
    pub tag: [u8; 8],
}

impl Counted {
    pub fn seq(&self) -> SamTxSeq {
        SamTxSeq(be32(&self.rec[21..25]))
    }

    pub fn batch_tx(&self) -> BatchTx {
        let card = CardId(self.rec[1..9].try_into().expect("8 bytes"));
        let r = TxRecord::parse(&self.rec[9..]).expect("record");
        BatchTx::from_record(KeyVersion(self.rec[0]), card, &r)
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

impl Outcome {
    pub fn counted(self) -> Counted {
        match self {
            Outcome::Completed(c) => c,
            other => panic!("expected a counted completion, got {other:?}"),
        }
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b.try_into().expect("4 bytes"))
}

fn outcome_of(data: &[u8]) -> Outcome {
    match data.first() {
        Some(&outcome::RUNNING) => Outcome::Running(data[1..].to_vec()),
        Some(&outcome::COMPLETED) => Outcome::Completed(Counted {
            period: CloseSeq(be32(&data[1..5])),
            rec: data[5..65].to_vec(),
            tag: data[65..73].try_into().expect("8"),
        }),
        Some(&outcome::NOTHING) => Outcome::Nothing,
        _ => Outcome::Pending,
    }
}

/// `CLA INS P1 P2 Lc data Le` (short).
fn apdu(head: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut a = head.to_vec();
    a.push(u8::try_from(data.len()).expect("short APDU"));
    a.extend_from_slice(data);
    a.push(0);
    a
}

/// GET STATUS, the fields a test looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamStatus {
    pub next_tx_seq: u32,
    pub last_close_seq: u32,
    pub period_count: u32,
    pub blocked: bool,
}

/// Where the SAM's APDUs go.
enum Transport {
    /// The SAM card in its reader, through pcscd.
    Pcsc(Handle),
    /// The same applet called in this process (benchmark baselines).
    InProcess {
        sam: Box<SamApplet>,
        store: Box<dyn SamStore>,
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
    pub fn in_process(sam: SamApplet, store: Box<dyn SamStore>) -> SamLink {
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

    /// SELECT: `(SAM_ID, KeyVersion, Currency)`.
    pub fn select(&mut self) -> (SamId, KeyVersion, Currency) {
        let mut a = vec![0x00, 0xA4, 0x04, 0x00, 0x07];
        a.extend_from_slice(&SAM_AID);
        a.push(0);
        let d = self.ok(&a).expect("SELECT of the SAM application");
        assert_eq!(d.len(), 12, "SELECT answer");
        (
            SamId(d[1..9].try_into().expect("8")),
            KeyVersion(d[9]),
            Currency::from_numeric(u16::from_be_bytes([d[10], d[11]])).expect("currency"),
        )
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

    pub fn status(&mut self) -> SamStatus {
        let d = self
            .ok(&[0x80, 0x7E, 0x00, 0x00, 0x00])
            .expect("GET STATUS");
        SamStatus {
            next_tx_seq: be32(&d[11..15]),
            last_close_seq: be32(&d[15..19]),
            period_count: be32(&d[19..23]),
            blocked: d[44] != 0,
        }
    }

    /// BEGIN: `(InitData, BeginCtx)`.
    pub fn begin(&mut self, order: &Order) -> Result<(Vec<u8>, Vec<u8>), Sw> {
        let mut d = order.unit_amount.0.to_be_bytes().to_vec();
        d.extend_from_slice(&order.max_units.0.to_be_bytes());
        d.extend_from_slice(&order.period_secs.to_be_bytes());
        d.extend_from_slice(&Currency::EUR.numeric().to_be_bytes());
        let r = self.ok(&apdu([0x80, 0x70, order.mode.p1(), 0x00], &d))?;
        Ok((r[..30].to_vec(), r[30..].to_vec()))
    }

    /// AUTHORIZE: `(DebitData, TxCtx)`.
    pub fn authorize(
        &mut self,
        kv: KeyVersion,
        now: DateTime,
        init_resp: &[u8],
        begin_ctx: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), Sw> {
        let d = [&[kv.0][..], &now.0.to_be_bytes(), init_resp, begin_ctx].concat();
        let r = self.ok(&apdu([0x80, 0x72, 0x00, 0x00], &d))?;
        Ok((r[..16].to_vec(), r[16..].to_vec()))
    }

    pub fn complete(&mut self, answer: &[u8], ctx: &[u8]) -> Result<Outcome, Sw> {
        let d = [&[answer.len() as u8][..], answer, ctx].concat();
        self.ok(&apdu([0x80, 0x74, 0x00, 0x00], &d))
            .map(|r| outcome_of(&r))
    }

    /// TICK: `(TickData, TxCtx)`.
    pub fn tick(&mut self, now: DateTime, ctx: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Sw> {
        let d = [&now.0.to_be_bytes()[..], ctx].concat();
        let r = self.ok(&apdu([0x80, 0x76, 0x00, 0x00], &d))?;
        Ok((r[..10].to_vec(), r[10..].to_vec()))
    }

    /// RECOVERY BEGIN: `(InitData, RecCtx)`.
    pub fn recovery_begin(&mut self, ctx: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Sw> {
        let r = self.ok(&apdu([0x80, 0x7A, 0x00, 0x00], ctx))?;
        Ok((r[..30].to_vec(), r[30..].to_vec()))
    }

    pub fn recovery_end(
        &mut self,
        init_resp: &[u8],
        proof: &[u8],
        rec_ctx: &[u8],
    ) -> Result<Outcome, Sw> {
        let d = [init_resp, &[proof.len() as u8], proof, rec_ctx].concat();
        self.ok(&apdu([0x80, 0x7A, 0x01, 0x00], &d))
            .map(|r| outcome_of(&r))
    }

    /// A whole close of the open period as `close_seq`: CLOSE BEGIN, the records in
    /// SAM_TxSeq order three per CLOSE RECORD, CLOSE END; the batch the plugin writes.
    pub fn close(&mut self, close_seq: u32, records: &[Counted]) -> Result<Batch, Sw> {
        self.ok(&apdu([0x80, 0x7C, 0x00, 0x00], &close_seq.to_be_bytes()))?;
        for chunk in records.chunks(3) {
            let entries: Vec<u8> = chunk
                .iter()
                .flat_map(|c| [c.rec.as_slice(), &c.tag].concat())
                .collect();
            let mut a = vec![0x80, 0x7C, 0x02, 0x00, entries.len() as u8];
            a.extend_from_slice(&entries);
            self.ok(&a)?;
        }
        let signed = self.ok(&[0x80, 0x7C, 0x03, 0x00, 0x00])?;
        let (sam_id, kv, currency) = self.select();
        let tr = |a: usize, b: usize| &signed[a..b];
        Ok(Batch {
            format: FORMAT.to_string(),
            sam_id,
            close_seq: CloseSeq(be32(tr(8, 12))),
            currency,
            created_at: "2026-11-19T10:00:00Z".to_string(),
            key_version: kv,
            transactions: records.iter().map(Counted::batch_tx).collect(),
            unresolved: Vec::new(),
            totals: Totals {
                count: be32(tr(20, 24)),
                sum: Sum(u64::from_be_bytes(tr(24, 32).try_into().expect("8"))),
                first_tx_seq: SamTxSeq(be32(tr(12, 16))),
                last_tx_seq: SamTxSeq(be32(tr(16, 20))),
                journal: Journal(tr(34, 50).try_into().expect("16")),
                mac: Mac8(tr(50, 58).try_into().expect("8")),
            },
        })
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
