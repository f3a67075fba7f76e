//! `native-host doctor`: what is installed where (each browser's manifest, per user and
//! system-wide, whether it names the extension the way that browser reads and allows the
//! purse extension's id), and whether pcscd, a reader and a purse card are reachable. A
//! report of findings, printed by the binary; problems are counted so the exit code can
//! tell.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::catalogue::ErrorCode;
use crate::install::Target;
use crate::manifest::{
    allow_key_fits, allowed_ids, manifest_file, purse_id, unread_dir, Browser, Scope, HOST_NAME,
};
use crate::readers::choice::{self, Holding};
use crate::readers::Pcsc;

/// The doctor's findings.
#[derive(Debug, Default)]
pub struct Report {
    pub text: String,
    pub problems: usize,
    /// How many manifests were found.
    pub installed: usize,
}

impl Report {
    fn line(&mut self, ok: bool, s: impl AsRef<str>) {
        let mark = if ok { "ok " } else { "!! " };
        if !ok {
            self.problems += 1;
        }
        let _ = writeln!(self.text, "{mark} {}", s.as_ref());
    }

    fn info(&mut self, s: impl AsRef<str>) {
        let _ = writeln!(self.text, "   {}", s.as_ref());
    }
}

/// Examines the manifests under `user` and `system` targets and the PC/SC stack.
pub fn examine(user: &Target, system: &Target, pcsc: &mut Pcsc) -> Report {
    let mut r = Report::default();
    let _ = writeln!(
        r.text,
        "native-host {} ({HOST_NAME})",
        env!("CARGO_PKG_VERSION")
    );
    for target in [user, system] {
        for b in Browser::ALL {
            for file in target.files(b) {
                manifest(&mut r, target, b, &file);
            }
        }
    }
    if let Some(dir) = unread_dir(Browser::Firefox, user.platform, &user.home) {
        unread(&mut r, &manifest_file(&dir));
    }
    if r.installed == 0 {
        r.line(
            false,
            "no browser has the host installed: run `native-host install`",
        );
    }
    reader_stack(&mut r, pcsc);
    let _ = writeln!(
        r.text,
        "{}",
        if r.problems == 0 {
            "no problems found".to_string()
        } else {
            format!("{} problem(s) found", r.problems)
        }
    );
    r
}

fn manifest(r: &mut Report, target: &Target, b: Browser, file: &Path) {
    let scope = match target.scope {
        Scope::User => "user",
        Scope::System => "system",
    };
    let what = format!("{} ({scope}): {}", b.name(), file.display());
    let text = match fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            r.info(format!("{what}: not installed"));
            return;
        }
        Err(e) => return r.line(false, format!("{what}: unreadable: {e}")),
    };
    r.installed += 1;
    let m: Value = match serde_json::from_str(&text) {
        Ok(m) => m,
        Err(e) => return r.line(false, format!("{what}: not valid JSON: {e}")),
    };
    if m["name"] != HOST_NAME {
        return r.line(
            false,
            format!("{what}: names host {} instead of {HOST_NAME}", m["name"]),
        );
    }
    let path = m["path"].as_str().unwrap_or("");
    if !executable(Path::new(path)) {
        return r.line(
            false,
            format!("{what}: host binary '{path}' is missing or not executable"),
        );
    }
    if !allow_key_fits(b, &m) {
        let key = if b.is_chromium_family() {
            "allowed_origins"
        } else {
            "allowed_extensions"
        };
        return r.line(
            false,
            format!("{what}: has no {key}, the list {} reads", b.name()),
        );
    }
    let ids = allowed_ids(&m);
    if ids.is_empty() {
        return r.line(false, format!("{what}: allows no extension"));
    }
    let ours = purse_id(b);
    if ids.iter().any(|id| id == ours) {
        return r.line(
            true,
            format!(
                "{what}: {path} for {} (the purse extension's id matches)",
                ids.join(", ")
            ),
        );
    }
    if b.is_chromium_family() {
        // A store may give the extension an id of its own: worth saying, not an error.
        r.line(true, format!("{what}: {path} for {}", ids.join(", ")));
        r.info(format!(
            "none is the development id {ours}; fine if your store build has one of these"
        ));
    } else {
        // Firefox's add-on id is fixed by the extension's manifest, in every build.
        r.line(
            false,
            format!(
                "{what}: allows {} but not the purse add-on {ours}: Firefox will refuse to start the host (native-host install --firefox-id {ours})",
                ids.join(", ")
            ),
        );
    }
}

/// A Firefox manifest where Firefox never looks (`~/.config/mozilla/`).
fn unread(r: &mut Report, file: &Path) {
    if file.exists() {
        r.line(
            false,
            format!(
                "firefox: {} is not read by Firefox (it reads ~/.mozilla/native-messaging-hosts/): remove it and run `native-host install --firefox-id {}`",
                file.display(),
                purse_id(Browser::Firefox)
            ),
        );
    }
}

fn executable(p: &Path) -> bool {
    p.is_absolute()
        && fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn reader_stack(r: &mut Report, pcsc: &mut Pcsc) {
    let readers = match pcsc.readers() {
        Ok(readers) => readers,
        Err(f) => {
            return r.line(
                false,
                format!("PC/SC: {} ({})", f.code.sentence(), f.detail),
            )
        }
    };
    r.line(true, "PC/SC service (pcscd) is running");
    if readers.is_empty() {
        return r.line(false, "no card reader is connected");
    }
    let probed = match pcsc.probe_all(&readers) {
        Ok(p) => p,
        Err(f) => {
            return r.line(
                false,
                format!("PC/SC: {} ({})", f.code.sentence(), f.detail),
            )
        }
    };
    for p in &probed {
        let reader = &p.reader;
        match &p.holding {
            Holding::Empty => r.info(format!("reader '{reader}': no card")),
            Holding::Purse(info) => r.line(
                true,
                format!(
                    "reader '{reader}': purse card {} holding {}",
                    info.card_id,
                    info.currency.format(info.balance)
                ),
            ),
            // Not a problem by itself: the host passes it over for the purse card.
            Holding::Other(why) => r.info(format!(
                "reader '{reader}': another card, not a purse card ({why}): payments pass it over"
            )),
            Holding::Unknown(f) => r.line(
                false,
                format!("reader '{reader}': {} ({})", f.code.sentence(), f.detail),
            ),
        }
    }
    match choice::pick(&probed) {
        Ok(pick) if !pick.passed_over.is_empty() => r.info(format!(
            "purse cards in several readers: a payment uses the one in '{}' (the first by name)",
            pick.reader
        )),
        Ok(_) => {}
        // A card that could not be looked at was reported above.
        Err(f) if f.code != ErrorCode::NoCard => {}
        Err(_) if probed.iter().all(|p| p.holding == Holding::Empty) => {
            r.line(false, "no card in any reader")
        }
        Err(_) => r.line(false, "no purse card in any reader"),
    }
}
