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

/// Firefox: per user in ~/.mozilla/native-messaging-hosts/, system-wide in
/// /usr/lib/mozilla/... and, on a system that has /usr/lib64, /usr/lib64/mozilla/... too;
/// the doctor says whether the manifest allows the purse add-on's id.
#[test]
fn firefox_places_and_the_doctor_on_its_id() {
    const PURSE: &str = "purse-checkout@purse.invalid";
    let dir = TestDir::new("host-install-firefox");
    let home = dir.join("home");
    let plain = dir.join("root-lib");
    let multilib = dir.join("root-lib64");
    fs::create_dir_all(&home).unwrap();
    fs::create_dir_all(multilib.join("usr/lib64")).unwrap();
    let dead = dir.join("no-pcscd.comm");
    let pcsc_off = [("PCSCLITE_CSOCK_NAME", dead.to_str().unwrap())];
    let file = "mozilla/native-messaging-hosts/org.purse.native_host.json";

    for root in [&plain, &multilib] {
        let o = native_host(
            &home,
            &[
                "install",
                "--scope",
                "system",
                "--root",
                root.to_str().unwrap(),
                "--firefox-id",
                PURSE,
            ],
            &[],
        );
        assert!(o.status.success(), "{}", text(&o));
        let lib = root.join("usr/lib").join(file);
        assert_eq!(
            manifest(&lib)["allowed_extensions"],
            serde_json::json!([PURSE])
        );
        assert!(text(&o).contains(&format!("installed {}", lib.display())));
    }
    assert!(!plain.join("usr/lib64").exists(), "no lib64 made up");
    let lib64 = multilib.join("usr/lib64").join(file);
    assert_eq!(
        manifest(&lib64)["allowed_extensions"],
        serde_json::json!([PURSE])
    );
    assert!(
        !plain.join("usr/lib/chromium").exists(),
        "Firefox only, it alone had an id"
    );

    // The doctor: the id matches in both system places.
    let o = native_host(
        &home,
        &["doctor", "--root", multilib.to_str().unwrap()],
        &pcsc_off,
    );
    let t = text(&o);
    for f in [multilib.join("usr/lib").join(file), lib64.clone()] {
        let prefix = format!("ok  firefox (system): {}: ", f.display());
        let line = t.lines().find(|l| l.starts_with(&prefix));
        assert!(
            line.is_some_and(
                |l| l.ends_with(&format!(" for {PURSE} (the purse extension's id matches)"))
            ),
            "{t}"
        );
    }

    // Per user, for another add-on: installed where Firefox reads, but the doctor says
    // Firefox will refuse the purse add-on.
    let o = native_host(
        &home,
        &[
            "install",
            "--browser",
            "firefox",
            "--firefox-id",
            FIREFOX_ID,
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let user = home.join(".mozilla/native-messaging-hosts/org.purse.native_host.json");
    assert_eq!(
        manifest(&user)["allowed_extensions"],
        serde_json::json!([FIREFOX_ID])
    );
    let o = native_host(
        &home,
        &["doctor", "--root", plain.to_str().unwrap()],
        &pcsc_off,
    );
    let t = text(&o);
    assert!(
        t.contains(&format!(
            "!!  firefox (user): {}: allows {FIREFOX_ID} but not the purse add-on {PURSE}",
            user.display()
        )),
        "{t}"
    );

    // A Firefox manifest that names extensions the Chromium way is not read by Firefox.
    let mut m = manifest(&user);
    m.as_object_mut().unwrap().remove("allowed_extensions");
    m["allowed_origins"] = serde_json::json!([format!("chrome-extension://{CHROME_ID}/")]);
    fs::write(&user, serde_json::to_vec(&m).unwrap()).unwrap();
    let t = text(&native_host(
        &home,
        &["doctor", "--root", plain.to_str().unwrap()],
        &pcsc_off,
    ));
    assert!(
        t.contains(&format!(
            "!!  firefox (user): {}: has no allowed_extensions, the list firefox reads",
            user.display()
        )),
        "{t}"
    );

    // ~/.config/mozilla/ is where Firefox 153 keeps profiles, not where it reads hosts.
    fs::remove_file(&user).unwrap();
    let wrong = home.join(".config/mozilla/native-messaging-hosts");
    fs::create_dir_all(&wrong).unwrap();
    fs::write(
        wrong.join("org.purse.native_host.json"),
        serde_json::to_vec(&m).unwrap(),
    )
    .unwrap();
    let t = text(&native_host(
        &home,
        &["doctor", "--root", plain.to_str().unwrap()],
        &pcsc_off,
    ));
    assert!(
        t.contains(&format!(
            "!!  firefox: {}/org.purse.native_host.json is not read by Firefox",
            wrong.display()
        )),
        "{t}"
    );

    // Uninstall removes every system place.
    let o = native_host(
        &home,
        &[
            "uninstall",
            "--scope",
            "system",
            "--root",
            multilib.to_str().unwrap(),
            "--browser",
            "firefox",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!lib64.exists() && !multilib.join("usr/lib").join(file).exists());
}
