//! The TCP link to pcscd's vpcd driver: connecting, the socket options that keep an
//! APDU round trip near 0.2 ms instead of ~48 ms (TCP_NODELAY on, TCP_QUICKACK before
//! every receive), reading into the frame decoder, and the reconnect backoff.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::framing::{self, FrameDecoder, FrameError};

/// How long one connection attempt may take (vpcd is local in every sane setup).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One connection to vpcd: the card is inserted while it is open.
pub struct Link {
    stream: TcpStream,
    decoder: FrameDecoder,
}

impl Link {
    pub fn connect(host: &str, port: u16) -> io::Result<Link> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for the vpcd host");
        for addr in (host, port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    // Each response is one small write: never hold it back (Nagle).
                    stream.set_nodelay(true)?;
                    return Ok(Link {
                        stream,
                        decoder: FrameDecoder::new(),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Reads what the socket holds (call it when poll reports it readable). Returns
    /// `false` when vpcd closed the connection.
    pub fn receive(&mut self) -> io::Result<bool> {
        // Linux leaves quick-ack mode on its own: re-arm it before every receive so
        // our ACK of vpcd's command is not delayed (the 48 ms pitfall).
        set_quickack(self.stream.as_raw_fd());
        let mut buf = [0u8; framing::MAX_FRAME + 2];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.decoder.push(&buf[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        self.decoder.next_frame()
    }

    /// Sends one frame in a single write.
    pub fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        let frame = framing::encode(payload).map_err(io::Error::other)?;
        self.stream.write_all(&frame)
    }

    /// Closes the connection both ways: to vpcd the card is gone.
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

fn set_quickack(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a c_int option of the right size. A failure
    // only costs latency, so it is ignored.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Exponential backoff between connection attempts: quick when pcscd is merely slow to
/// come up or restarting, bounded so an absent pcscd costs little.
#[derive(Debug)]
pub struct Backoff {
    delay: Duration,
    due: Instant,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_millis(500);

    pub fn new() -> Backoff {
        Backoff {
            delay: Self::FIRST,
            due: Instant::now(),
        }
    }

    /// The next attempt may happen now, and the one after a failure soon.
    pub fn reset(&mut self) {
        self.delay = Self::FIRST;
        self.due = Instant::now();
    }

    /// Schedules the next attempt after the current delay, then doubles the delay.
    pub fn failed(&mut self) {
        self.due = Instant::now() + self.delay;
        self.delay = (self.delay * 2).min(Self::MAX);
    }

    /// Milliseconds until the next attempt is due (rounded up), 0 when due.
    pub fn wait_ms(&self) -> i32 {
        let left = self.due.saturating_duration_since(Instant::now());
        i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new();
        assert_eq!(b.wait_ms(), 0);
        b.failed();
        assert!(b.wait_ms() > 0 && b.wait_ms() <= 10);
        for _ in 0..20 {
            b.failed();
        }
        assert!(b.wait_ms() > 250 && b.wait_ms() <= 500, "{}", b.wait_ms());
        b.reset();
        assert_eq!(b.wait_ms(), 0);
    }

    #[test]
    fn connect_to_a_closed_port_is_refused_not_a_panic() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let e = Link::connect("127.0.0.1", port).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    }
}
