//! The card emulator against a fake vpcd (a TCP listener in the test; no pcscd): the
//! framing, control bytes, garbage APDUs, oversize frames, connection refused and
//! reconnection, and pulls, all observed on the wire.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use card_emulators::atr::ATR;
use purse::commands::{CardCommand, SelectInfo};
use purse::{Amount, CardId};
use testkit::*;

/// The binary under test (these tests exercise the process, signals included).
const CARD_EMULATOR: &str = env!("CARGO_BIN_EXE_card-emulator");

const WIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts the emulator's next connection, waiting in poll(2) for at most WIRE_TIMEOUT.
fn accept(listener: &TcpListener) -> TcpStream {
    let mut p = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut p, 1, WIRE_TIMEOUT.as_millis() as i32) };
    assert_eq!(
        rc, 1,
        "the emulator did not connect within {WIRE_TIMEOUT:?}"
    );
    let (s, _) = listener.accept().expect("accept");
    s.set_read_timeout(Some(WIRE_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn send(s: &mut TcpStream, payload: &[u8]) {
    let mut f = (payload.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    s.write_all(&f).expect("send to the emulator");
}

fn recv(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)
        .expect("frame length from the emulator");
    let mut v = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut v)
        .expect("frame payload from the emulator");
    v
}

fn exchange(s: &mut TcpStream, payload: &[u8]) -> Vec<u8> {
    send(s, payload);
    recv(s)
}

/// Whether the emulator closed the connection (EOF or reset) before sending anything.
fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

#[test]
fn speaks_vpcd_survives_garbage_and_reconnects() {
    let dir = TestDir::new("emu-wire");
    let path = dir.join("card.json");
    let id = CardId([0xC0, 0xFF, 0xEE, 0, 0, 0, 1, 0]);
    write_card_state(&path, &new_card_state(id, Amount(900)));

    // A port with nothing listening: the emulator's first connects are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let emu = Emulator::spawn_on_port(CARD_EMULATOR, port, &path, &[]);
    assert!(!emu.status().connected);
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("rebinding the test port");
    let mut s = accept(&listener);

    // vpcd's presence poll, power-up, and a SELECT.
    assert_eq!(exchange(&mut s, &[0x04]), ATR);
    send(&mut s, &[0x01]);
    let r = exchange(&mut s, &CardCommand::select().encode());
    assert_eq!(&r[20..], &[0x90, 0x00]);
    assert_eq!(SelectInfo::parse(&r[..20]).unwrap().card_id, id);

    // Control bytes other than get-ATR get no reply: the next frame answered is the ATR.
    for c in [0x00, 0x01, 0x02, 0x03, 0xFF] {
        send(&mut s, &[c]);
    }
    assert_eq!(exchange(&mut s, &[0x04]), ATR);

    // A frame dribbled in byte by byte is still one APDU.
    for b in [0x00, 0x04, 0x80, 0x5A, 0x00, 0x00] {
        s.write_all(&[b]).unwrap();
    }
    assert_eq!(recv(&mut s), [0x67, 0x00]);

    // Garbage APDUs of every short length are answered with a status word, never a crash.
    let mut x: u32 = 0x9E37_79B9;
    for len in (0..300).chain([1000, 4096]) {
        if len == 1 {
            continue; // One byte is control, not an APDU.
        }
        let apdu: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let r = exchange(&mut s, &apdu);
        assert!(r.len() >= 2, "len {len}: answer {r:02X?}");
    }

    // An oversize frame: the emulator drops the connection and comes back.
    s.write_all(&[0x10, 0x01]).unwrap();
    assert!(closed_by_peer(&mut s));
    let mut s = accept(&listener);
    assert_eq!(exchange(&mut s, &[0x04]), ATR);

    // vpcd going away (pcscd restarting): the emulator reconnects on its own.
    drop(s);
    let mut s = accept(&listener);
    assert_eq!(exchange(&mut s, &[0x04]), ATR);

    // remove closes the connection; insert connects again.
    emu.remove();
    assert!(closed_by_peer(&mut s));
    emu.insert();
    let mut s = accept(&listener);

    // pull-before: the connection closes on the command, with no answer.
    emu.pull_before(0xA4);
    send(&mut s, &CardCommand::select().encode());
    assert!(closed_by_peer(&mut s));
    assert!(!emu.status().inserted);
    emu.stop();
}
