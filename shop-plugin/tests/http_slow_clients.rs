//! Slow clients (issue 11): 1,000 connections that stall halfway through a request head
//! hold no service hostage. The server keeps serving payments while they stall, closes
//! each once the header read timeout has passed (the test waits on the closes, not on a
//! clock), closes an idle kept-alive connection the same way, and under its connection
//! limit makes a new client wait for a slot rather than fail. Loopback only, bounded.

mod support;

use std::time::{Duration, Instant};

use support::{temp_dir, Plugin, TestCard};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const STALLED: usize = 1_000;
/// Long enough that the payments below finish while every stalled connection is open.
const HEADER_TIMEOUT: Duration = Duration::from_secs(4);
/// A bound on every wait: a broken server fails the test instead of hanging it.
const BOUND: Duration = Duration::from_secs(60);

/// Two descriptors per connection (client and server side) live in this process.
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur >= (2 * STALLED + 200) as u64,
        "RLIMIT_NOFILE {} is too low for this test",
        lim.rlim_cur
    );
}

/// A connection that sent part of a request head and stops.
async fn stall(p: &Plugin) -> TcpStream {
    let mut s = TcpStream::connect(p.addr).await.expect("connect");
    s.write_all(b"POST /v1/payments HTTP/1.1\r\nHost: shop.example\r\nContent-Ty")
        .await
        .expect("half a head");
    s
}

/// Whether the server has closed `s` (EOF, or a reset), without waiting.
fn closed_now(s: &TcpStream) -> bool {
    let mut b = [0u8; 256];
    match s.try_read(&mut b) {
        Ok(0) => true,
        Ok(_) => false, // an answer (e.g. 408) precedes the close
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// Waits until the server closes `s` (reading and dropping whatever it says first).
async fn wait_closed(mut s: TcpStream) {
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b).await {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_neither_block_service_nor_stay_open() {
    raise_nofile_limit();
    let limits = shop_plugin::http::Limits {
        max_connections: 4 * STALLED,
        header_read_timeout: HEADER_TIMEOUT,
    };
    let p = Plugin::start_in_with(temp_dir("slow-clients"), limits).await;
    let opened = Instant::now();
    let mut stalled = Vec::with_capacity(STALLED);
    for _ in 0..STALLED {
        stalled.push(stall(&p).await);
    }

    // Payments go through while all of them stall.
    for i in 0..5u8 {
        let mut card = TestCard::new(0x60 + i, 1_000);
        p.pay(&mut card, 100).await;
        assert_eq!(card.balance(), 900);
    }
    let open = stalled.iter().filter(|s| !closed_now(s)).count();
    assert_eq!(
        open, STALLED,
        "the payments finished while every stalled connection was still open"
    );

    // Each stalled connection is closed, and not before the header read timeout.
    let closes = futures_join(stalled.into_iter().map(wait_closed));
    tokio::time::timeout(BOUND, closes)
        .await
        .expect("every stalled connection closed within the bound");
    assert!(opened.elapsed() >= HEADER_TIMEOUT);

    // An idle kept-alive connection is closed the same way.
    let mut idle = TcpStream::connect(p.addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: shop.example\r\n\r\n")
        .await
        .expect("request");
    let mut b = [0u8; 1024];
    let n = idle.read(&mut b).await.expect("answer");
    assert!(b[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &b[..n]);
    let answered = Instant::now();
    tokio::time::timeout(BOUND, wait_closed(idle))
        .await
        .expect("the idle connection closed within the bound");
    assert!(answered.elapsed() >= HEADER_TIMEOUT - Duration::from_millis(100));
}

#[tokio::test]
async fn past_the_connection_limit_a_client_waits_for_a_slot() {
    let limits = shop_plugin::http::Limits {
        max_connections: 8,
        header_read_timeout: Duration::from_secs(2),
    };
    let p = Plugin::start_in_with(temp_dir("conn-limit"), limits).await;
    let mut stalled = Vec::new();
    for _ in 0..8 {
        stalled.push(stall(&p).await);
    }
    // The ninth client is served only once a stalled one has been closed.
    let (s, v) = tokio::time::timeout(BOUND, p.request("GET", "/healthz", None, &[]))
        .await
        .expect("served within the bound");
    assert_eq!((s, &v["ok"]), (200, &serde_json::json!(true)));
    assert!(
        stalled.iter().any(closed_now),
        "a slot was freed by the header timeout first"
    );
}

/// Awaits every future (a join without another dependency).
async fn futures_join<F: std::future::Future<Output = ()> + Send + 'static>(
    fs: impl Iterator<Item = F>,
) {
    let mut set = tokio::task::JoinSet::new();
    for f in fs {
        set.spawn(f);
    }
    while let Some(r) = set.join_next().await {
        r.expect("a close waiter");
    }
}
