//! The test control channel: a line-based Unix domain socket. Each connection sends
//! commands, one per line, and gets one reply line per command. Connections are served
//! on their own threads; the commands themselves are applied by the emulator loop (which
//! owns the card and the vpcd connection), woken through a [`Waker`].

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::{fs, thread};

use anyhow::{bail, Context, Result};

use super::wake::Waker;

/// Longest command line accepted; longer lines close the connection.
const MAX_LINE: u64 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Disconnect from vpcd and stay out.
    Remove,
    /// Connect to vpcd (and keep reconnecting).
    Insert,
    /// On the next APDU with this INS: process (and persist) it, then disconnect
    /// without sending the response.
    PullAfter(u8),
    /// On the next APDU with this INS: disconnect without processing it.
    PullBefore(u8),
    Status,
}

/// Parses one command line, e.g. `pull-after 54`.
pub fn parse(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or("");
    let arg = words.next();
    if words.next().is_some() {
        return Err(format!("too many arguments for '{cmd}'"));
    }
    let ins = |arg: Option<&str>| -> Result<u8, String> {
        let a = arg.ok_or_else(|| format!("'{cmd}' needs an INS in hex, e.g. '{cmd} 54'"))?;
        let a = a.strip_prefix("0x").unwrap_or(a);
        if a.is_empty() || a.len() > 2 || !a.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("INS '{a}' is not one hex byte"));
        }
        u8::from_str_radix(a, 16).map_err(|_| format!("INS '{a}' is not one hex byte"))
    };
    let no_arg = |c: Command| match arg {
        None => Ok(c),
        Some(_) => Err(format!("'{cmd}' takes no argument")),
    };
    match cmd {
        "remove" => no_arg(Command::Remove),
        "insert" => no_arg(Command::Insert),
        "status" => no_arg(Command::Status),
        "pull-after" => ins(arg).map(Command::PullAfter),
        "pull-before" => ins(arg).map(Command::PullBefore),
        "" => Err("empty command".to_string()),
        other => Err(format!(
            "unknown command '{other}' (remove, insert, pull-after INS, pull-before INS, status)"
        )),
    }
}

/// A command for the emulator loop, with where its reply line goes.
pub struct Request {
    pub command: Command,
    pub reply: Sender<String>,
}

/// Binds the control socket (mode 0600, replacing a stale socket file) and serves it on
/// a background thread. Returns a guard that removes the socket file when dropped.
pub fn serve(path: &Path, requests: Sender<Request>, waker: Waker) -> Result<SocketFile> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!("{} exists and is not a socket", path.display());
        }
        fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    // Whoever can write the socket can pull the card: owner only.
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod {}", path.display()))?;
    thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => {
                        let (requests, waker) = (requests.clone(), waker.clone());
                        let spawned = thread::Builder::new()
                            .name("control-conn".into())
                            .spawn(move || serve_connection(stream, requests, waker));
                        if let Err(e) = spawned {
                            eprintln!("emulator control socket: cannot spawn a thread: {e}");
                        }
                    }
                    Err(e) => eprintln!("emulator control socket: accept failed: {e}"),
                }
            }
        })
        .context("spawning the control thread")?;
    Ok(SocketFile(path.to_path_buf()))
}

fn serve_connection(stream: UnixStream, requests: Sender<Request>, waker: Waker) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let mut line = String::new();
        match (&mut reader).take(MAX_LINE).read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if !line.ends_with('\n') {
            let _ = writeln!(writer, "err line too long or not terminated");
            return;
        }
        let reply = match parse(line.trim()) {
            Err(e) => format!("err {e}"),
            Ok(command) => {
                let (tx, rx) = mpsc::channel();
                if requests.send(Request { command, reply: tx }).is_err() {
                    return; // The emulator is shutting down.
                }
                waker.wake();
                match rx.recv() {
                    Ok(r) => r,
                    Err(_) => return,
                }
            }
        };
        if writeln!(writer, "{reply}").is_err() {
            return;
        }
    }
}

/// Removes the control socket file on drop.
#[derive(Debug)]
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse("remove"), Ok(Command::Remove));
        assert_eq!(parse(" insert "), Ok(Command::Insert));
        assert_eq!(parse("status"), Ok(Command::Status));
        assert_eq!(parse("pull-after 54"), Ok(Command::PullAfter(0x54)));
        assert_eq!(parse("pull-before a4"), Ok(Command::PullBefore(0xA4)));
        assert_eq!(parse("pull-before 0x5A"), Ok(Command::PullBefore(0x5A)));
    }

    #[test]
    fn bad_commands_are_errors() {
        for bad in [
            "",
            "eject",
            "remove now",
            "pull-after",
            "pull-after 154",
            "pull-after zz",
            "pull-after +5",
            "pull-after 54 55",
            "pull-before 0x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
