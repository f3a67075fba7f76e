//! The real `shop-plugin serve` as a child process: its directory (config, 0600 key
//! files, database), start-up (ready when it logs the address it listens on), `kill -9`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{sam_keys, Http, API_KEY, ORIGIN};
use shop_plugin::engine::sha256_hex;

/// How long a start may take before the test fails (a cold binary on a busy machine).
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Runs `shop-plugin --config <config> <args>` to its end (off the async threads).
pub async fn run(config: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shop-plugin"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env("NO_COLOR", "1");
    tokio::task::spawn_blocking(move || cmd.output().expect("run shop-plugin"))
        .await
        .expect("join")
}

/// Writes a private file (mode 0600), as the operator would.
pub fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write private file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

/// Lays out a plugin directory: config (listening on an ephemeral loopback port), SAM
/// card file (the applet runs in the plugin's process: tests only) and webhook secret
/// (both 0600). Returns the config's path.
pub fn write_config(dir: &Path) -> PathBuf {
    super::sam_card_file(dir, sam_keys());
    write_private(&dir.join("webhook-secret"), "whsec_test_0123456789abcdef\n");
    let config = format!(
        r#"listen = "127.0.0.1:0"
database = "plugin.db"
allowed_origins = ["{ORIGIN}"]

[sam]
in_process_card = "sam-card.json"

[merchant]
api_key_sha256 = ["{}"]

[webhooks]
secret_file = "webhook-secret"

[settlement]
outbox = "outbox"
"#,
        sha256_hex(API_KEY.as_bytes())
    );
    let path = dir.join("shop-plugin.toml");
    std::fs::write(&path, config).expect("config");
    path
}

/// Lays out a plugin directory ([`write_config`]) that uploads its batches to a real
/// clearing office started in it, under a credential the office registered. Returns the
/// config's path and the office.
pub async fn write_config_with_office(dir: &Path) -> (PathBuf, super::office::Office) {
    let config = write_config(dir);
    let office = super::office::Office::start(dir);
    let credential = office.register().await;
    write_private(&dir.join("clearing-credential"), &format!("{credential}\n"));
    let mut toml = std::fs::read_to_string(&config).expect("config");
    // [settlement] is the file's last table.
    toml.push_str(&format!(
        "clearing_url = \"{}\"\nclearing_credential_file = \"clearing-credential\"\n\
         upload_retry_first_ms = 20\n",
        office.url
    ));
    std::fs::write(&config, toml).expect("config");
    (config, office)
}

/// A running `shop-plugin serve`.
pub struct Server {
    child: Child,
    pub http: Http,
    /// Everything it wrote to stderr so far (for failure messages).
    pub log: Arc<Mutex<String>>,
}

impl std::ops::Deref for Server {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

/// The address in a `listening on <addr>` log line, if this is one.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// Spawns `cmd` (stderr piped) and waits until it logs `listening on <addr>`: it does
/// so only after binding. Returns the child, the address and its log so far (kept
/// growing: stderr is drained for the child's whole life, a full pipe would block it).
pub fn spawn_listening(mut cmd: Command, what: &str) -> (Child, SocketAddr, Arc<Mutex<String>>) {
    let mut child = cmd
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let log2 = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = listening_addr(&line) {
                let _ = tx.send(a);
            }
            log2.lock().expect("log").push_str(&(line + "\n"));
        }
    });
    match rx.recv_timeout(START_DEADLINE) {
        Ok(addr) => (child, addr, log),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not start:\n{}", log.lock().expect("log"));
        }
    }
}

impl Server {
    /// Starts the server over `dir` (laid out by [`write_config`]) and returns once it
    /// accepts connections.
    pub fn start(dir: &Path) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shop-plugin"));
        cmd.arg("--config")
            .arg(dir.join("shop-plugin.toml"))
            .arg("serve");
        let (child, addr, log) = spawn_listening(cmd, "shop-plugin serve");
        Server {
            child,
            http: Http::new(addr),
            log,
        }
    }

    /// `kill -9`: no chance to flush or finish anything.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("wait");
        assert!(!status.success(), "killed, not exited: {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
