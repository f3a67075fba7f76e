//! The attacks of the threat model, end to end through the real card applet and SAM with
//! a hostile relay between them: replayed DEBIT, changed amount, out-of-order and excess
//! ticks, wrong KV, forged S3, forged TAC (S3 covers it: revision 2), a journal that cannot be written.

mod common;

use purse::card::{Card, MemoryStore};
use purse::clearing::{verify, ClearingState};
use purse::commands::{CardCommand, INS_DEBIT, INS_INITIALIZE};
use purse::keys::{IssuerKeys, SamKeys};
use purse::sam::{Completion, Durable, Exchange, Order, Outcome, Refusal, Sam, SamError, TxState};
use purse::surrogate::{
    CardLink, Journal, JournalError, LinkError, LocalCard, NoJournal, Surrogate, SurrogateError,
};
use purse::{Amount, CardId, Currency, DateTime, KeyVersion, Rnd, SamId, SamTxSeq, Units};

const NOW: DateTime = DateTime(1_795_000_000);

fn issuer() -> IssuerKeys {
    common::test_issuer()
}

fn sam() -> Sam {
    Sam::new(common::test_sam_keys(SamId([0x5A, 0, 0, 0, 0, 0, 0, 9])))
}

fn card(balance: u32) -> Card {
    common::test_card(CardId([0x10, 0, 0, 0, 0, 0, 0, 0x42]), balance)
}

/// Rewrites a command on its way to the card.
type OnCommand<'a> = Box<dyn FnMut(&mut Vec<u8>) + 'a>;
/// Sees (command, answer) and may rewrite the answer; `false` drops it.
type OnAnswer<'a> = Box<dyn FnMut(&[u8], &mut Vec<u8>) -> bool + 'a>;

/// A relay that may rewrite commands and answers, or drop answers.
struct Relay<'a> {
    card: &'a mut Card,
    on_command: OnCommand<'a>,
    on_answer: OnAnswer<'a>,
}

impl<'a> Relay<'a> {
    fn new(card: &'a mut Card) -> Self {
        Relay {
            card,
            on_command: Box::new(|_| {}),
            on_answer: Box::new(|_, _| true),
        }
    }
}

impl CardLink for Relay<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError> {
        let mut cmd = apdu.to_vec();
        (self.on_command)(&mut cmd);
        let mut resp = self.card.process(&cmd, &mut MemoryStore);
        if (self.on_answer)(&cmd, &mut resp) {
            Ok(resp)
        } else {
            Err(LinkError("answer dropped by the relay".into()))
        }
    }
}

fn rnd(n: u8) -> Rnd {
    Rnd([n; 16])
}

#[test]
fn replayed_debit_is_refused_and_debits_once() {
    let mut sam = sam();
    let mut c = card(10_000);
    let mut debits = Vec::new();
    {
        let mut relay = Relay::new(&mut c);
        relay.on_command = Box::new(|cmd| {
            if cmd.get(1) == Some(&INS_DEBIT) {
                debits.push(cmd.clone());
            }
        });
        let mut s = Surrogate {
            sam: &mut sam,
            journal: &mut NoJournal,
        };
        let p = s
            .purchase(&mut relay, Order::single(Amount(1250)), rnd(1), NOW)
            .expect("purchase");
        assert!(matches!(
            p.completion,
            Completion::Confirmed { finished: true, .. }
        ));
    }
    let debit = debits.pop().expect("a DEBIT went through");
    // Same session: the session is debited already.
    assert_eq!(c.process(&debit, &mut MemoryStore), vec![0x69, 0x85]);
    // A fresh session: S2 was for the old NT and RND_C.
    let mut link = LocalCard {
        card: &mut c,
        store: &mut MemoryStore,
    };
    let (_, init) = common::initialize(
        &sam,
        &mut link,
        Order::single(Amount(1250)),
        KeyVersion(1),
        rnd(2),
    );
    assert!(matches!(init, Exchange::Answered(ref r) if r.sw.is_ok()));
    assert_eq!(c.process(&debit, &mut MemoryStore), vec![0x69, 0x82]);
    assert_eq!(c.state().balance, Amount(8750));
}

#[test]
fn changed_amount_fails_s1_and_allocates_nothing() {
    let mut sam = sam();
    let mut c = card(10_000);
    {
        let mut relay = Relay::new(&mut c);
        // The relay lowers U in INITIALIZE from 1250 to 1 (data bytes 24..28: APDU 29..33).
        relay.on_command = Box::new(|cmd| {
            if cmd.get(1) == Some(&INS_INITIALIZE) && cmd.len() >= 35 {
                cmd[29..33].copy_from_slice(&1u32.to_be_bytes());
            }
        });
        let mut s = Surrogate {
            sam: &mut sam,
            journal: &mut NoJournal,
        };
        let e = s
            .purchase(&mut relay, Order::single(Amount(1250)), rnd(1), NOW)
            .unwrap_err();
        assert_eq!(e, SurrogateError::Refused(Refusal::BadS1));
    }
    assert_eq!(sam.next_tx_seq(), SamTxSeq(1));
    assert_eq!(c.state().balance, Amount(10_000));
}

#[test]
fn a_lying_balance_fails_s1() {
    let mut sam = sam();
    let mut c = card(100);
    let mut relay = Relay::new(&mut c);
    // The relay claims the purse holds enough (Balance is bytes 12..16 of the answer).
    relay.on_answer = Box::new(|cmd, resp| {
        if cmd.get(1) == Some(&INS_INITIALIZE) && resp.len() == 44 {
            resp[12..16].copy_from_slice(&99_999u32.to_be_bytes());
        }
        true
    });
    let mut s = Surrogate {
        sam: &mut sam,
        journal: &mut NoJournal,
    };
    let e = s
        .purchase(&mut relay, Order::single(Amount(1250)), rnd(1), NOW)
        .unwrap_err();
    assert_eq!(e, SurrogateError::Refused(Refusal::BadS1));
}

#[test]
fn ticks_out_of_order_early_or_beyond_the_cap_are_refused() {
    let mut sam = sam();
    let mut c = card(10_000);
    let order = Order::time_cycle(Amount(100), Units(3), 60);
    let seq = {
        let mut link = LocalCard {
            card: &mut c,
            store: &mut MemoryStore,
        };
        let mut s = Surrogate {
            sam: &mut sam,
            journal: &mut NoJournal,
        };
        s.purchase(&mut link, order, rnd(1), NOW)
            .expect("debit")
            .sam_tx_seq
    };
    // Not due yet by the shop's clock.
    assert!(matches!(
        sam.tick(seq, DateTime(NOW.0 + 59)),
        Err(SamError::NotDue { .. })
    ));
    // Unit 2 is due at +60; the relay replays the TICK: the card refuses the replay.
    let tick = sam.tick(seq, DateTime(NOW.0 + 60)).expect("tick 2");
    let bytes = CardCommand::Tick(tick.command).encode();
    let first = c.process(&bytes, &mut MemoryStore);
    assert_eq!(&first[first.len() - 2..], &[0x90, 0x00]);
    assert_eq!(c.process(&bytes, &mut MemoryStore), vec![0x69, 0x85]);
    assert_eq!(c.state().balance, Amount(9800));
    // The replay ended the card session; the SAM still completes unit 2 from the answer.
    let (done, _) = sam
        .complete(seq, &Exchange::from_bytes(Some(&first)))
        .expect("complete");
    assert!(matches!(
        done,
        Completion::Confirmed {
            units: Units(2),
            ..
        }
    ));
    // A tick k=3 built for this session but sent out of order after the session died.
    let tick3 = sam.tick(seq, DateTime(NOW.0 + 120)).expect("tick 3");
    let r = c.process(&CardCommand::Tick(tick3.command).encode(), &mut MemoryStore);
    assert_eq!(r, vec![0x69, 0x85]);
    let (done, _) = sam
        .complete(seq, &Exchange::from_bytes(Some(&r)))
        .expect("complete");
    assert_eq!(
        done,
        Completion::Voided {
            kept_units: Units(2)
        }
    );
    assert_eq!(sam.tx(seq).expect("tx").state, TxState::Completed);
    assert!(matches!(
        sam.tick(seq, DateTime(NOW.0 + 600)),
        Err(SamError::NotRunning(_))
    ));
}

#[test]
fn the_cap_ends_a_time_cycle() {
    let mut sam = sam();
    let mut c = card(10_000);
    let mut link = LocalCard {
        card: &mut c,
        store: &mut MemoryStore,
    };
    let mut s = Surrogate {
        sam: &mut sam,
        journal: &mut NoJournal,
    };
    let seq = s
        .purchase(
            &mut link,
            Order::time_cycle(Amount(100), Units(2), 60),
            rnd(1),
            NOW,
        )
        .expect("debit")
        .sam_tx_seq;
    let done = s
        .tick(&mut link, seq, DateTime(NOW.0 + 60))
        .expect("tick 2");
    assert!(matches!(
        done,
        Completion::Confirmed {
            units: Units(2),
            finished: true,
            ..
        }
    ));
    assert!(matches!(
        s.tick(&mut link, seq, DateTime(NOW.0 + 120)),
        Err(SurrogateError::Sam(_))
    ));
    assert_eq!(c.state().balance, Amount(9800));
}

#[test]
fn wrong_kv_is_refused_by_the_card() {
    let mut sam = sam();
    let mut c = card(10_000);
    let mut link = LocalCard {
        card: &mut c,
        store: &mut MemoryStore,
    };
    let (begun, answer) = common::initialize(
        &sam,
        &mut link,
        Order::single(Amount(500)),
        KeyVersion(2),
        rnd(1),
    );
    let e = sam
        .authorize(&begun, KeyVersion(2), &answer, NOW)
        .unwrap_err();
    assert_eq!(e, Refusal::CardStatus(purse::StatusWord::WRONG_P1P2));
    // A SAM that does not hold the card's key version refuses before any debit.
    let keys = SamKeys::issue(
        &issuer(),
        SamId([1; 8]),
        Currency::EUR,
        KeyVersion(1),
        &[KeyVersion(2)],
    )
    .expect("keys");
    let mut only_kv2 = Sam::new(keys);
    let (begun, answer) = common::initialize(
        &only_kv2,
        &mut link,
        Order::single(Amount(500)),
        KeyVersion(1),
        rnd(2),
    );
    let e = only_kv2
        .authorize(&begun, KeyVersion(1), &answer, NOW)
        .unwrap_err();
    assert_eq!(e, Refusal::UnknownKeyVersion(KeyVersion(1)));
    assert_eq!(c.state().balance, Amount(10_000));
}

#[test]
fn forged_s3_is_a_lost_answer_and_recovery_finds_the_truth() {
    let mut sam = sam();
    let mut c = card(10_000);
    let seq = {
        let mut relay = Relay::new(&mut c);
        relay.on_answer = Box::new(|cmd, resp| {
            if cmd.get(1) == Some(&INS_DEBIT) && resp.len() == 22 {
                resp[4] ^= 0x01; // a bit of S3
            }
            true
        });
        let mut s = Surrogate {
            sam: &mut sam,
            journal: &mut NoJournal,
        };
        let p = s
            .purchase(&mut relay, Order::single(Amount(700)), rnd(1), NOW)
            .expect("purchase");
        assert_eq!(p.completion, Completion::Lost);
        p.sam_tx_seq
    };
    assert_eq!(sam.tx(seq).expect("tx").state, TxState::Pending);
    assert_eq!(c.state().balance, Amount(9300), "the card did debit");
    c.reset();
    let mut link = LocalCard {
        card: &mut c,
        store: &mut MemoryStore,
    };
    let mut s = Surrogate {
        sam: &mut sam,
        journal: &mut NoJournal,
    };
    let outcomes = s.recover(&mut link, rnd(2)).expect("recover");
    assert_eq!(outcomes, vec![(seq, Outcome::Completed)]);
    let tx = sam.tx(seq).expect("tx");
    assert_eq!(tx.confirmed.as_ref().map(|c| c.total), Some(Amount(700)));
}

#[test]
fn a_dropped_debit_answer_is_recovered_not_voided() {
    let mut sam = sam();
    let mut c = card(10_000);
    let seq = {
        let mut relay = Relay::new(&mut c);
        relay.on_answer = Box::new(|cmd, _| cmd.get(1) != Some(&INS_DEBIT));
        let mut s = Surrogate {
            sam: &mut sam,
            journal: &mut NoJournal,
        };
        let p = s
            .purchase(&mut relay, Order::single(Amount(700)), rnd(1), NOW)
            .expect("purchase");
        assert_eq!(p.completion, Completion::Lost);
        p.sam_tx_seq
    };
    let mut link = LocalCard {
        card: &mut c,
        store: &mut MemoryStore,
    };
    let mut s = Surrogate {
        sam: &mut sam,
        journal: &mut NoJournal,
    };
    assert_eq!(
        s.recover(&mut link, rnd(2)).expect("recover"),
        vec![(seq, Outcome::Completed)]
    );
    // Nothing left to recover.
    assert_eq!(s.recover(&mut link, rnd(3)).expect("recover"), vec![]);
}

#[test]
fn forged_tac_fails_s3_recovery_restores_the_cards_tac_and_duplicates_are_caught() {
    // Revision 2: S3 covers the TAC. A relay flipping a TAC bit in a genuine DEBIT answer
    // makes S3 fail: the SAM treats the answer as lost (it never stores the forged TAC),
    // recovery reads the card's own record, and the day's batch clears.
    let mut sam = sam();
    let mut c = card(10_000);
    let mut seqs = Vec::new();
    {
        let mut relay = Relay::new(&mut c);
        let mut n = 0;
        relay.on_answer = Box::new(move |cmd, resp| {
            if cmd.get(1) == Some(&INS_DEBIT) && resp.len() == 22 {
                n += 1;
                if n == 2 {
                    resp[19] ^= 0x80; // a bit of the TAC
                }
            }
            true
        });
        let mut s = Surrogate {
            sam: &mut sam,
            journal: &mut NoJournal,
        };
        for i in 1..=3 {
            let p = s
                .purchase(&mut relay, Order::single(Amount(100)), rnd(i), NOW)
                .expect("purchase");
            let want_lost = i == 2;
            assert_eq!(
                p.completion == Completion::Lost,
                want_lost,
                "purchase {i}: {:?}",
                p.completion
            );
            seqs.push(p.sam_tx_seq);
        }
    }
    assert_eq!(sam.tx(seqs[1]).expect("tx").state, TxState::Pending);
    assert_eq!(
        c.state().balance,
        Amount(9700),
        "the card did debit three times"
    );
    c.reset();
    {
        let mut link = LocalCard {
            card: &mut c,
            store: &mut MemoryStore,
        };
        let mut s = Surrogate {
            sam: &mut sam,
            journal: &mut NoJournal,
        };
        assert_eq!(
            s.recover(&mut link, rnd(9)).expect("recover"),
            vec![(seqs[1], Outcome::Completed)]
        );
    }
    let close = sam.close_period("2026-11-24T23:59:00Z".into());
    let issuer = issuer();
    assert_eq!(close.batch.transactions.len(), 3);
    let problems = verify(&close.batch, &issuer, &ClearingState::default());
    assert!(problems.is_empty(), "{problems:?}");

    // An honest batch with one record repeated (J and TRMAC recomputed by an insider).
    let mut sam2 = self::sam();
    let mut c2 = card(10_000);
    let mut link = LocalCard {
        card: &mut c2,
        store: &mut MemoryStore,
    };
    let mut s = Surrogate {
        sam: &mut sam2,
        journal: &mut NoJournal,
    };
    s.purchase(&mut link, Order::single(Amount(100)), rnd(1), NOW)
        .expect("purchase");
    let batch = sam2.close_period("2026-11-24T23:59:00Z".into()).batch;
    assert!(verify(&batch, &issuer, &ClearingState::default()).is_empty());
    let mut dup = batch.transactions.clone();
    dup.push(dup[0].clone());
    let k_sam = issuer.get(KeyVersion(1)).expect("kv").k_sam(batch.sam_id);
    let forged = purse::settlement::seal(purse::settlement::CloseInput {
        sam_id: batch.sam_id,
        key_version: batch.key_version,
        k_sam: &k_sam,
        close_seq: batch.close_seq,
        currency: batch.currency,
        created_at: batch.created_at.clone(),
        transactions: dup,
        unresolved: vec![],
    });
    let problems = verify(&forged, &issuer, &ClearingState::default());
    assert!(
        problems.iter().any(|p| p.code() == "E_DUPLICATE"),
        "{problems:?}"
    );
}

/// A journal that fails: the DEBIT must never leave the SAM.
struct BrokenJournal;

impl Journal for BrokenJournal {
    fn store(&mut self, _: &[Durable]) -> Result<(), JournalError> {
        Err(JournalError("disk full".into()))
    }
}

#[test]
fn no_debit_leaves_without_a_durable_write_ahead_record() {
    let mut sam = sam();
    let mut c = card(10_000);
    let mut sent = Vec::new();
    {
        let mut relay = Relay::new(&mut c);
        relay.on_command = Box::new(|cmd| sent.push(cmd.get(1).copied()));
        let mut s = Surrogate {
            sam: &mut sam,
            journal: &mut BrokenJournal,
        };
        let e = s
            .purchase(&mut relay, Order::single(Amount(100)), rnd(1), NOW)
            .unwrap_err();
        assert!(matches!(e, SurrogateError::Journal(_)));
    }
    assert!(!sent.contains(&Some(INS_DEBIT)), "{sent:?}");
    assert_eq!(c.state().balance, Amount(10_000));
}
