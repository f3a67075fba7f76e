//! Waking the emulator loop out of `poll`: a socket pair whose read end the loop polls.
//! Control threads and signal handlers write one byte; the loop drains and re-checks.
//! Signal handlers only set flags and `write(2)`, which is async-signal-safe.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::Arc;

/// The loop's side: poll [`WakeReceiver::fd`], then [`WakeReceiver::drain`].
pub struct WakeReceiver(UnixStream);

/// A cloneable handle that wakes the loop.
#[derive(Clone)]
pub struct Waker(Arc<UnixStream>);

pub fn channel() -> io::Result<(Waker, WakeReceiver)> {
    let (tx, rx) = UnixStream::pair()?;
    // Never block: a full buffer already means a wake-up is pending.
    tx.set_nonblocking(true)?;
    rx.set_nonblocking(true)?;
    Ok((Waker(Arc::new(tx)), WakeReceiver(rx)))
}

impl Waker {
    pub fn wake(&self) {
        let _ = raw_wake(self.0.as_raw_fd());
    }

    fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl WakeReceiver {
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Empties the socket so that the next poll blocks until the next wake-up.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 64];
        while matches!(self.0.read(&mut buf), Ok(n) if n > 0) {}
    }
}

fn raw_wake(fd: RawFd) -> isize {
    let b = 1u8;
    // SAFETY: writes one byte from a live local to a descriptor we own.
    unsafe { libc::write(fd, (&b as *const u8).cast(), 1) }
}

/// Signals seen since the last [`take_signals`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signals {
    pub terminate: bool,
    pub remove: bool,
    pub insert: bool,
}

const TERMINATE: u32 = 1;
const REMOVE: u32 = 2;
const INSERT: u32 = 4;

static PENDING: AtomicU32 = AtomicU32::new(0);
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let bit = match sig {
        libc::SIGUSR1 => REMOVE,
        libc::SIGUSR2 => INSERT,
        _ => TERMINATE,
    };
    PENDING.fetch_or(bit, Ordering::SeqCst);
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let _ = raw_wake(fd);
    }
}

/// Routes SIGTERM/SIGINT (exit), SIGUSR1 (remove) and SIGUSR2 (insert) to the loop.
/// The waker must live as long as the process (the handler writes to its descriptor).
pub fn install_signal_handlers(waker: &Waker) -> io::Result<()> {
    // Keep the descriptor open for good: the handler may run at any time.
    std::mem::forget(waker.clone());
    WAKE_FD.store(waker.fd(), Ordering::SeqCst);
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1, libc::SIGUSR2] {
        // SAFETY: a zeroed sigaction plus a handler that only touches atomics and
        // calls write(2) is a valid, async-signal-safe installation.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

pub fn take_signals() -> Signals {
    let bits = PENDING.swap(0, Ordering::SeqCst);
    Signals {
        terminate: bits & TERMINATE != 0,
        remove: bits & REMOVE != 0,
        insert: bits & INSERT != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_makes_the_receiver_readable_and_drain_empties_it() {
        let (w, mut r) = channel().unwrap();
        let readable = |fd| {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, zero timeout.
            unsafe { libc::poll(&mut p, 1, 0) == 1 }
        };
        assert!(!readable(r.fd()));
        w.clone().wake();
        w.wake();
        assert!(readable(r.fd()));
        r.drain();
        assert!(!readable(r.fd()));
    }
}
