//! The APDU guard on arbitrary sessions: a confirmation, then a sequence of commands
//! (arbitrary bytes, or purse commands built from arbitrary fields, near the confirmed
//! ones) with arbitrary answers at arbitrary times. It never panics; only purse
//! commands pass; a payment never charges more units than confirmed, counting lost
//! answers as charged, nor a time-cycle's units faster than its period; a recovery
//! never debits and reads no record but its own NT's.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use native_host::guard::{Answer, Confirmed, Guard, Period, Purpose, TOLERANCE};
use purse::commands::{CardCommand, DebitCmd, InitializeCmd, InitializeResponse, TickCmd};
use purse::{
    Amount, CardId, Currency, DateTime, KeyVersion, Mac8, Mode, Nt, Rnd, SamId, SamTxSeq, Units,
    AID,
};

/// Takes `n` bytes (zeros past the end).
fn take(input: &mut &[u8], n: usize) -> Vec<u8> {
    let k = n.min(input.len());
    let (a, b) = input.split_at(k);
    *input = b;
    let mut v = a.to_vec();
    v.resize(n, 0);
    v
}

fn byte(input: &mut &[u8]) -> u8 {
    take(input, 1)[0]
}

/// One command APDU from the input: raw bytes, or a purse command.
fn command(input: &mut &[u8], c: &Confirmed) -> Vec<u8> {
    let sel = byte(input);
    let near = byte(input);
    match sel % 7 {
        0 => {
            let n = usize::from(byte(input) % 48);
            take(input, n)
        }
        1 => {
            let mut aid = AID;
            if near & 1 == 1 {
                aid[usize::from(near >> 1) % 7] ^= 1;
            }
            CardCommand::Select { aid }.encode()
        }
        2 => {
            let u = u32::from_be_bytes(take(input, 4).try_into().unwrap_or([0; 4]));
            let m = u16::from_be_bytes(take(input, 2).try_into().unwrap_or([0; 2]));
            let mode = Mode::from_p1(near % 3).unwrap_or(Mode::Single);
            CardCommand::Initialize(InitializeCmd {
                mode: if near & 0x10 == 0 { c.mode } else { mode },
                kv: KeyVersion(1),
                sam_id: SamId([0x5A; 8]),
                rnd_s: Rnd([1; 16]),
                u: if near & 0x20 == 0 {
                    c.unit_amount
                } else {
                    Amount(u)
                },
                max_units: if near & 0x40 == 0 {
                    c.max_units
                } else {
                    Units(m)
                },
            })
            .encode()
        }
        3 => CardCommand::Debit(DebitCmd {
            sam_tx_seq: SamTxSeq(1),
            datetime: DateTime(1),
            s2: Mac8([near; 8]),
        })
        .encode(),
        4 => CardCommand::Tick(TickCmd {
            k: Units(u16::from(near % 12)),
            s2k: Mac8([near; 8]),
        })
        .encode(),
        5 => CardCommand::GetProof {
            nt: Nt(u32::from(near)),
        }
        .encode(),
        _ => {
            // A purse command with one byte changed.
            let mut v = CardCommand::select().encode();
            let i = usize::from(near) % v.len();
            v[i] = byte(input);
            v
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let kind = byte(&mut input);
    let period = Period::from_secs(u64::from(byte(&mut input)).max(1))
        .unwrap_or(Period::from_secs(1).expect("1 s is a period"));
    let confirmed = Confirmed {
        mode: if kind & 1 == 0 {
            Mode::Single
        } else {
            Mode::TimeCycle
        },
        unit_amount: Amount(u32::from(byte(&mut input)).max(1)),
        max_units: Units(if kind & 1 == 0 {
            1
        } else {
            u16::from(byte(&mut input) % 6).max(1)
        }),
        currency: Currency::EUR,
        period: (kind & 1 == 1).then_some(period),
    };
    let recovery_nt = Nt(u32::from(kind >> 4));
    let purpose = if kind & 2 == 0 {
        Purpose::Payment(confirmed)
    } else {
        Purpose::Recovery { nt: recovery_nt }
    };
    let mut guard = Guard::new(purpose, Some(KeyVersion(1)));
    let mut charging = 0u32;
    let mut now = Instant::now();
    let mut first: Option<Instant> = None;
    while !input.is_empty() {
        let apdu = command(&mut input, &confirmed);
        let answer = byte(&mut input);
        now += Duration::from_secs(u64::from(byte(&mut input)));
        let Ok(cmd) = guard.check(&apdu, now) else {
            continue;
        };
        if let CardCommand::GetProof { nt } = cmd {
            assert_eq!((kind & 2, nt), (2, recovery_nt), "a proof of {nt} passed");
        }
        assert_eq!(
            CardCommand::decode(&apdu, Some(KeyVersion(1))).as_ref(),
            Ok(&cmd)
        );
        if let CardCommand::Select { aid } = &cmd {
            assert_eq!(*aid, AID);
        }
        let is_charge = matches!(cmd, CardCommand::Debit(_) | CardCommand::Tick(_));
        if is_charge {
            assert!(matches!(purpose, Purpose::Payment(_)), "a recovery debited");
        }
        if let CardCommand::Initialize(i) = &cmd {
            match purpose {
                Purpose::Payment(c) => {
                    assert_eq!(
                        (i.mode, i.u, i.max_units),
                        (c.mode, c.unit_amount, c.max_units)
                    )
                }
                Purpose::Recovery { .. } => assert_eq!(i.mode, Mode::StatusOnly),
            }
        }
        // The answer: a well-formed success, a status word, or no answer at all.
        let response = match (answer % 4, &cmd) {
            (0, CardCommand::Initialize(_)) => {
                let mut r = InitializeResponse {
                    card_id: CardId([1; 8]),
                    nt: Nt(u32::from(answer)),
                    balance: Amount(10_000),
                    currency: Currency::EUR,
                    rnd_c: Rnd([2; 16]),
                    s1: Mac8([3; 8]),
                }
                .encode();
                r.extend_from_slice(&[0x90, 0]);
                r
            }
            (0 | 1, _) => {
                let mut r = vec![0u8; 20];
                r.extend_from_slice(&[0x90, 0]);
                r
            }
            _ => vec![0x69, 0x85],
        };
        // Money moved, or may have: a 9000 or no answer to a DEBIT/TICK.
        if is_charge && confirmed.period.is_some() {
            if let Some(t) = first {
                assert!(
                    now + TOLERANCE >= t + period.duration() * charging,
                    "a unit came early"
                );
            }
        }
        if is_charge && (answer % 4 == 3 || response.ends_with(&[0x90, 0])) {
            charging += 1;
            first.get_or_insert(now);
        }
        let answer = if answer % 4 == 3 {
            Answer::Failed
        } else {
            Answer::Response(&response)
        };
        guard.observe(&cmd, answer, now);
        if let Purpose::Payment(c) = purpose {
            assert!(guard.charged() + guard.in_doubt() <= u32::from(c.max_units.0));
            assert!(charging <= u32::from(c.max_units.0));
        }
    }
});
