//! Property tests of the pure core, in the normal suite (the same properties the
//! cargo-fuzz targets in `fuzz/` check for longer: `scripts/fuzz`): the frame decoder
//! decodes the same however its input is split and never yields an oversized frame;
//! the request parser never panics; the guard never lets a payment charge more units
//! than confirmed, counting lost answers, nor a time-cycle's units come faster than its
//! period; it never lets a recovery debit, and reads no record but the recovery's own.

use native_host::frame::{Decoder, Event, MAX_INBOUND};
use std::time::{Duration, Instant};

use native_host::guard::{Answer, Confirmed, Guard, Period, Purpose, TOLERANCE};
use native_host::message::request::parse;
use proptest::prelude::*;
use purse::commands::{CardCommand, DebitCmd, InitializeCmd, TickCmd};
use purse::{Amount, Currency, DateTime, KeyVersion, Mac8, Mode, Nt, Rnd, SamId, SamTxSeq, Units};

fn decode_all(pieces: &[&[u8]]) -> (Vec<Event>, bool) {
    let mut dec = Decoder::new();
    let mut out = Vec::new();
    for p in pieces {
        let mut input = *p;
        while let Some(e) = dec.decode(&mut input) {
            if let Event::Frame(f) = &e {
                assert!(f.len() <= MAX_INBOUND);
            }
            out.push(e);
        }
    }
    (out, dec.finish().is_ok())
}

/// A command from arbitrary numbers: a purse command near the confirmed terms, or bytes.
fn command(c: &Confirmed, sel: u8, a: u8, b: u32, raw: &[u8]) -> Vec<u8> {
    match sel % 6 {
        0 => raw.to_vec(),
        1 => CardCommand::select().encode(),
        2 => CardCommand::Initialize(InitializeCmd {
            mode: Mode::from_p1(a % 3).unwrap_or(Mode::Single),
            kv: KeyVersion(1),
            sam_id: SamId([0x5A; 8]),
            rnd_s: Rnd([1; 16]),
            u: if a & 0x10 == 0 {
                c.unit_amount
            } else {
                Amount(b % 3000)
            },
            max_units: if a & 0x20 == 0 {
                c.max_units
            } else {
                Units((b % 6) as u16)
            },
        })
        .encode(),
        3 => CardCommand::Debit(DebitCmd {
            sam_tx_seq: SamTxSeq(1),
            datetime: DateTime(1),
            s2: Mac8([0; 8]),
        })
        .encode(),
        4 => CardCommand::Tick(TickCmd {
            k: Units(u16::from(a % 8)),
            s2k: Mac8([0; 8]),
        })
        .encode(),
        _ => CardCommand::GetProof { nt: Nt(b % 4) }.encode(),
    }
}

proptest! {
    #[test]
    fn frames_decode_the_same_however_split(data in proptest::collection::vec(any::<u8>(), 0..300), cut in any::<usize>()) {
        let at = cut % (data.len() + 1);
        prop_assert_eq!(decode_all(&[&data]), decode_all(&[&data[..at], &data[at..]]));
    }

    #[test]
    fn the_request_parser_is_total(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse(&data);
    }

    #[test]
    fn the_guard_never_charges_beyond_the_confirmation(
        time_cycle in any::<bool>(),
        recovery in any::<bool>(),
        u in 1u32..2000,
        max in 1u16..5,
        period in 1u64..120,
        steps in proptest::collection::vec(
            (any::<u8>(), any::<u8>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..40), 0u8..4, 0u64..90),
            0..40,
        ),
    ) {
        let period = Period::from_secs(period).unwrap();
        let c = Confirmed {
            mode: if time_cycle { Mode::TimeCycle } else { Mode::Single },
            unit_amount: Amount(u),
            max_units: Units(if time_cycle { max } else { 1 }),
            currency: Currency::EUR,
            period: time_cycle.then_some(period),
        };
        let purpose = if recovery { Purpose::Recovery { nt: Nt(1) } } else { Purpose::Payment(c) };
        let mut g = Guard::new(purpose, Some(KeyVersion(1)));
        let mut moved = 0u32;
        let mut now = Instant::now();
        let mut first: Option<Instant> = None;
        for (sel, a, b, raw, answer, wait) in steps {
            now += Duration::from_secs(wait);
            let apdu = command(&c, sel, a, b, &raw);
            let Ok(cmd) = g.check(&apdu, now) else { continue };
            let charge = matches!(cmd, CardCommand::Debit(_) | CardCommand::Tick(_));
            prop_assert!(!(charge && recovery), "a recovery session debited");
            if let CardCommand::GetProof { nt } = cmd {
                prop_assert!(recovery && nt == Nt(1), "a proof of {nt} passed");
            }
            if let (true, Some(t)) = (charge && time_cycle, first) {
                // The (moved + 1)-th unit, no earlier than `moved` periods after the first.
                prop_assert!(now + TOLERANCE >= t + period.duration() * moved, "a unit came early");
            }
            if let (CardCommand::Initialize(i), Purpose::Payment(c)) = (&cmd, purpose) {
                prop_assert_eq!((i.mode, i.u, i.max_units), (c.mode, c.unit_amount, c.max_units));
            }
            let mut ok = vec![0u8; 42];
            // An INITIALIZE's answer names NT 0 to 3 (CardID, then NT).
            ok[11] = a % 4;
            ok.extend_from_slice(&[0x90, 0]);
            let answer = match answer {
                0 | 1 => Answer::Response(&ok),
                2 => Answer::Response(&[0x69, 0x85]),
                _ => Answer::Failed,
            };
            if charge && !matches!(answer, Answer::Response([0x69, 0x85])) {
                moved += 1;
                first.get_or_insert(now);
            }
            g.observe(&cmd, answer, now);
            prop_assert!(moved <= u32::from(c.max_units.0));
            prop_assert!(g.charged() + g.in_doubt() <= u32::from(c.max_units.0));
        }
    }
}
