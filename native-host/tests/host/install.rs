//! `native-host install`, `uninstall` and `doctor`, in a temporary HOME and a staging
//! root: never the real system paths.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use testkit::{TestDir, SLOT_0};

use crate::Rig;

const CHROME_ID: &str = "abcdefghijklmnopabcdefghijklmnop";
const FIREFOX_ID: &str = "purse@example.org";

fn native_host(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_native-host"));
    cmd.args(args).env("HOME", home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running native-host")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn manifest(path: &Path) -> Value {
    let t = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&t).expect("a manifest is JSON")
}

#[test]
fn install_and_uninstall_per_user_and_system_wide() {
    let dir = TestDir::new("host-install");
    let home = dir.join("home");
    let root = dir.join("root");
    fs::create_dir_all(&home).unwrap();
    let bin = env!("CARGO_BIN_EXE_native-host");

    let o = native_host(
        &home,
        &[
            "install",
            "--chrome-id",
            CHROME_ID,
            "--firefox-id",
            FIREFOX_ID,
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let chromium = home.join(".config/chromium/NativeMessagingHosts/org.purse.native_host.json");
    let chrome = home.join(".config/google-chrome/NativeMessagingHosts/org.purse.native_host.json");
    let firefox = home.join(".mozilla/native-messaging-hosts/org.purse.native_host.json");
    for f in [&chromium, &chrome, &firefox] {
        let m = manifest(f);
        assert_eq!(m["name"], "org.purse.native_host");
        assert_eq!(m["type"], "stdio");
        let path = Path::new(m["path"].as_str().unwrap());
        assert!(path.is_absolute());
        assert_eq!(
            path.canonicalize().unwrap(),
            Path::new(bin).canonicalize().unwrap()
        );
        assert_eq!(fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o644);
    }
    assert_eq!(
        manifest(&chromium)["allowed_origins"],
        serde_json::json!([format!("chrome-extension://{CHROME_ID}/")])
    );
    assert_eq!(
        manifest(&firefox)["allowed_extensions"],
        serde_json::json!([FIREFOX_ID])
    );

    // System-wide into a staging root.
    let o = native_host(
        &home,
        &[
            "install",
            "--scope",
            "system",
            "--root",
            root.to_str().unwrap(),
            "--browser",
            "chromium",
            "--chrome-id",
            CHROME_ID,
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let system = root.join("etc/chromium/native-messaging-hosts/org.purse.native_host.json");
    assert_eq!(
        manifest(&system)["allowed_origins"][0],
        format!("chrome-extension://{CHROME_ID}/")
    );
    assert!(!root.join("etc/opt").exists(), "only the browser asked for");

    // The doctor sees both (PC/SC is not reachable here: that is reported too).
    let dead = dir.join("no-pcscd.comm");
    let o = native_host(
        &home,
        &["doctor", "--root", root.to_str().unwrap()],
        &[("PCSCLITE_CSOCK_NAME", dead.to_str().unwrap())],
    );
    let t = text(&o);
    assert!(
        t.contains(&format!("ok  chromium (user): {}", chromium.display())),
        "{t}"
    );
    assert!(
        t.contains(&format!("ok  chromium (system): {}", system.display())),
        "{t}"
    );
    assert!(t.contains("!!  PC/SC"), "{t}");
    assert!(!o.status.success(), "a problem makes the doctor fail: {t}");

    // Bad ids are refused, nothing written.
    let o = native_host(&home, &["install", "--chrome-id", "not-an-id"], &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("not a Chrome extension id"),
        "{}",
        text(&o)
    );

    let o = native_host(&home, &["uninstall"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    for f in [&chromium, &chrome, &firefox] {
        assert!(!f.exists(), "{} left behind", f.display());
    }
    assert!(system.exists(), "user uninstall leaves the system manifest");
    let o = native_host(
        &home,
        &[
            "uninstall",
            "--scope",
            "system",
            "--root",
            root.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!system.exists());
    assert!(text(&o).contains("not installed:"), "{}", text(&o));
}

#[test]
fn the_doctor_finds_the_purse_card() {
    let rig = Rig::new(SLOT_0, "host-doctor", 10, 4_321);
    let home = rig.dir.join("home");
    fs::create_dir_all(&home).unwrap();
    let o = native_host(
        &home,
        &["install", "--browser", "chromium", "--chrome-id", CHROME_ID],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = native_host(
        &home,
        &[
            "doctor",
            "--root",
            rig.dir.join("empty-root").to_str().unwrap(),
        ],
        &[],
    );
    let t = text(&o);
    assert!(t.contains("ok  PC/SC service (pcscd) is running"), "{t}");
    assert!(
        t.contains(&format!(
            "ok  reader '{}': purse card 1000000000004e0a holding 43.21 EUR",
            rig.reader
        )),
        "{t}"
    );
}
