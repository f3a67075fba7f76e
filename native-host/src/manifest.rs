//! The browsers' native-messaging host manifests, pure: where each browser looks for
//! them (per user or system-wide, on Linux and macOS; Windows registry keys for the
//! documentation), what they contain, which extension ids are well-formed, and the
//! ids of the purse extension itself.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The name extensions pass to `connectNative`.
pub const HOST_NAME: &str = "org.purse.native_host";

/// The purse extension's Firefox add-on id (`browser_specific_settings.gecko.id` of
/// `extension/manifests/firefox.json`): the same for a temporary add-on and for AMO.
pub const PURSE_FIREFOX_ID: &str = "purse-checkout@purse.invalid";

/// The purse extension's Chromium id from the `key` of `extension/manifests/chromium.json`
/// (development and self-hosted builds; a store may assign its own).
pub const PURSE_CHROME_ID: &str = "cbppddcfeidagakjkenjdiachfllkgom";

const DESCRIPTION: &str = "Purse card payments: the card reader for the purse extension";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Browser {
    Chrome,
    Chromium,
    Firefox,
}

impl Browser {
    pub const ALL: [Browser; 3] = [Browser::Chrome, Browser::Chromium, Browser::Firefox];

    pub fn name(self) -> &'static str {
        match self {
            Browser::Chrome => "chrome",
            Browser::Chromium => "chromium",
            Browser::Firefox => "firefox",
        }
    }

    /// Chrome and Chromium name extensions by origin, Firefox by extension id.
    pub fn is_chromium_family(self) -> bool {
        !matches!(self, Browser::Firefox)
    }

    /// The registry key (under HKEY_CURRENT_USER or HKEY_LOCAL_MACHINE) whose default
    /// value is the manifest's path on Windows.
    pub fn windows_key(self) -> String {
        let vendor = match self {
            Browser::Chrome => r"Google\Chrome",
            Browser::Chromium => "Chromium",
            Browser::Firefox => "Mozilla",
        };
        format!(r"Software\{vendor}\NativeMessagingHosts\{HOST_NAME}")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    User,
    System,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Linux,
    MacOs,
}

impl Platform {
    pub fn current() -> Platform {
        if cfg!(target_os = "macos") {
            Platform::MacOs
        } else {
            Platform::Linux
        }
    }
}

/// One directory a browser reads host manifests from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestDir {
    pub path: PathBuf,
    /// The directory is read (and written) only on systems that have this one:
    /// `/usr/lib64` exists on multilib distributions only.
    pub only_with: Option<PathBuf>,
}

/// The directories `browser` reads host manifests from, most usual first. User paths
/// are under `home`; system paths under `root` (`/` normally; a staging directory for
/// packagers and tests).
pub fn manifest_dirs(
    browser: Browser,
    scope: Scope,
    platform: Platform,
    home: &Path,
    root: &Path,
) -> Vec<ManifestDir> {
    let always = |base: &Path, rel: &str| ManifestDir {
        path: base.join(rel),
        only_with: None,
    };
    let one = |base: &Path, rel: &str| vec![always(base, rel)];
    match (platform, scope, browser) {
        (Platform::Linux, Scope::User, Browser::Chrome) => {
            one(home, ".config/google-chrome/NativeMessagingHosts")
        }
        (Platform::Linux, Scope::User, Browser::Chromium) => {
            one(home, ".config/chromium/NativeMessagingHosts")
        }
        // Not ~/.config/mozilla/, even where Firefox keeps its profiles there.
        (Platform::Linux, Scope::User, Browser::Firefox) => {
            one(home, ".mozilla/native-messaging-hosts")
        }
        (Platform::Linux, Scope::System, Browser::Chrome) => {
            one(root, "etc/opt/chrome/native-messaging-hosts")
        }
        (Platform::Linux, Scope::System, Browser::Chromium) => {
            one(root, "etc/chromium/native-messaging-hosts")
        }
        (Platform::Linux, Scope::System, Browser::Firefox) => vec![
            always(root, "usr/lib/mozilla/native-messaging-hosts"),
            ManifestDir {
                path: root.join("usr/lib64/mozilla/native-messaging-hosts"),
                only_with: Some(root.join("usr/lib64")),
            },
        ],
        (Platform::MacOs, Scope::User, Browser::Chrome) => one(
            home,
            "Library/Application Support/Google/Chrome/NativeMessagingHosts",
        ),
        (Platform::MacOs, Scope::User, Browser::Chromium) => one(
            home,
            "Library/Application Support/Chromium/NativeMessagingHosts",
        ),
        (Platform::MacOs, Scope::User, Browser::Firefox) => one(
            home,
            "Library/Application Support/Mozilla/NativeMessagingHosts",
        ),
        (Platform::MacOs, Scope::System, Browser::Chrome) => {
            one(root, "Library/Google/Chrome/NativeMessagingHosts")
        }
        (Platform::MacOs, Scope::System, Browser::Chromium) => one(
            root,
            "Library/Application Support/Chromium/NativeMessagingHosts",
        ),
        (Platform::MacOs, Scope::System, Browser::Firefox) => one(
            root,
            "Library/Application Support/Mozilla/NativeMessagingHosts",
        ),
    }
}

/// A place that looks right but that `browser` never reads (a manifest there is a
/// mistake the doctor points out): Firefox on Linux and `~/.config/mozilla/`.
pub fn unread_dir(browser: Browser, platform: Platform, home: &Path) -> Option<PathBuf> {
    (platform == Platform::Linux && browser == Browser::Firefox)
        .then(|| home.join(".config/mozilla/native-messaging-hosts"))
}

/// Whether `manifest` names extensions the way `browser` reads them: Chrome and
/// Chromium read `allowed_origins`, Firefox `allowed_extensions`.
pub fn allow_key_fits(browser: Browser, manifest: &Value) -> bool {
    let key = if browser.is_chromium_family() {
        "allowed_origins"
    } else {
        "allowed_extensions"
    };
    manifest.get(key).is_some_and(Value::is_array)
}

/// The purse extension's own id for `browser`.
pub fn purse_id(browser: Browser) -> &'static str {
    if browser.is_chromium_family() {
        PURSE_CHROME_ID
    } else {
        PURSE_FIREFOX_ID
    }
}

/// The manifest file for `browser` in `dir`.
pub fn manifest_file(dir: &Path) -> PathBuf {
    dir.join(format!("{HOST_NAME}.json"))
}

/// The manifest's content: `binary` (absolute) may be started for the given extensions.
pub fn manifest_json(browser: Browser, binary: &Path, extension_ids: &[String]) -> Value {
    let mut m = json!({
        "name": HOST_NAME,
        "description": DESCRIPTION,
        "path": binary.to_string_lossy(),
        "type": "stdio",
    });
    if browser.is_chromium_family() {
        let origins: Vec<String> = extension_ids
            .iter()
            .map(|id| format!("chrome-extension://{id}/"))
            .collect();
        m["allowed_origins"] = json!(origins);
    } else {
        m["allowed_extensions"] = json!(extension_ids);
    }
    m
}

/// The extensions a manifest allows (ids, without the origin's decoration).
pub fn allowed_ids(manifest: &Value) -> Vec<String> {
    let strings = |k: &str| -> Vec<String> {
        manifest
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut ids: Vec<String> = strings("allowed_origins")
        .into_iter()
        .map(|o| {
            o.trim_start_matches("chrome-extension://")
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    ids.extend(strings("allowed_extensions"));
    ids
}

/// A Chrome/Chromium extension id: 32 letters `a` to `p`.
pub fn check_chrome_id(id: &str) -> Result<(), String> {
    if id.len() == 32 && id.bytes().all(|b| (b'a'..=b'p').contains(&b)) {
        Ok(())
    } else {
        Err(format!(
            "'{id}' is not a Chrome extension id (32 letters a to p)"
        ))
    }
}

/// A Firefox add-on id: `name@domain` or a braced UUID.
pub fn check_firefox_id(id: &str) -> Result<(), String> {
    let email = id.split_once('@').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && id.len() <= 80
            && id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"@._-+".contains(&c))
    });
    let uuid = id.len() == 38
        && id.starts_with('{')
        && id.ends_with('}')
        && id[1..37].bytes().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if email || uuid {
        Ok(())
    } else {
        Err(format!(
            "'{id}' is not a Firefox add-on id (name@domain or {{UUID}})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_browser_has_its_place() {
        let (h, r) = (Path::new("/home/u"), Path::new("/"));
        let d = |b, s, p| manifest_dirs(b, s, p, h, r)[0].path.clone();
        assert_eq!(
            d(Browser::Chromium, Scope::User, Platform::Linux),
            Path::new("/home/u/.config/chromium/NativeMessagingHosts")
        );
        assert_eq!(
            d(Browser::Chromium, Scope::System, Platform::Linux),
            Path::new("/etc/chromium/native-messaging-hosts")
        );
        assert_eq!(
            d(Browser::Chrome, Scope::System, Platform::Linux),
            Path::new("/etc/opt/chrome/native-messaging-hosts")
        );
        assert_eq!(
            d(Browser::Firefox, Scope::User, Platform::Linux),
            Path::new("/home/u/.mozilla/native-messaging-hosts")
        );
        let ff = manifest_dirs(Browser::Firefox, Scope::System, Platform::Linux, h, r);
        assert_eq!(
            ff,
            vec![
                ManifestDir {
                    path: "/usr/lib/mozilla/native-messaging-hosts".into(),
                    only_with: None
                },
                ManifestDir {
                    path: "/usr/lib64/mozilla/native-messaging-hosts".into(),
                    only_with: Some("/usr/lib64".into())
                },
            ]
        );
        assert_eq!(
            unread_dir(Browser::Firefox, Platform::Linux, h),
            Some("/home/u/.config/mozilla/native-messaging-hosts".into())
        );
        assert_eq!(unread_dir(Browser::Chromium, Platform::Linux, h), None);
        assert_eq!(
            d(Browser::Chrome, Scope::User, Platform::MacOs),
            Path::new("/home/u/Library/Application Support/Google/Chrome/NativeMessagingHosts")
        );
        assert_eq!(
            d(Browser::Firefox, Scope::System, Platform::MacOs),
            Path::new("/Library/Application Support/Mozilla/NativeMessagingHosts")
        );
        assert_eq!(
            Browser::Chrome.windows_key(),
            r"Software\Google\Chrome\NativeMessagingHosts\org.purse.native_host"
        );
    }

    #[test]
    fn manifests_name_extensions_the_browser_way() {
        let ids = vec!["abcdefghijklmnopabcdefghijklmnop".to_string()];
        let m = manifest_json(Browser::Chromium, Path::new("/usr/bin/native-host"), &ids);
        assert_eq!(m["name"], HOST_NAME);
        assert_eq!(m["type"], "stdio");
        assert_eq!(
            m["allowed_origins"][0],
            "chrome-extension://abcdefghijklmnopabcdefghijklmnop/"
        );
        assert_eq!(allowed_ids(&m), ids);
        let ff = vec!["purse@example.org".to_string()];
        let m = manifest_json(Browser::Firefox, Path::new("/usr/bin/native-host"), &ff);
        assert_eq!(m["allowed_extensions"][0], "purse@example.org");
        assert!(m.get("allowed_origins").is_none());
        assert!(allow_key_fits(Browser::Firefox, &m));
        assert!(!allow_key_fits(Browser::Chromium, &m));
    }

    /// The constants follow the extension's manifests (the ids the doctor expects).
    #[test]
    fn the_purse_ids_are_the_extension_manifests_ids() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../extension/manifests");
        let read = |n: &str| -> Value {
            let t = std::fs::read_to_string(dir.join(n)).expect("extension manifest");
            serde_json::from_str(&t).expect("extension manifest JSON")
        };
        assert_eq!(
            read("firefox.json")["browser_specific_settings"]["gecko"]["id"],
            PURSE_FIREFOX_ID
        );
        assert!(check_firefox_id(PURSE_FIREFOX_ID).is_ok());
        assert!(check_chrome_id(PURSE_CHROME_ID).is_ok());
        assert!(read("chromium.json")["key"].is_string());
    }

    #[test]
    fn extension_ids_are_checked() {
        assert!(check_chrome_id("abcdefghijklmnopabcdefghijklmnop").is_ok());
        assert!(check_chrome_id("abcdefghijklmnopabcdefghijklmnoq").is_err());
        assert!(check_chrome_id("short").is_err());
        assert!(check_firefox_id("purse@example.org").is_ok());
        assert!(check_firefox_id("{12345678-1234-1234-1234-123456789abc}").is_ok());
        assert!(check_firefox_id("no-at-sign").is_err());
        assert!(check_firefox_id("a@b/../../x").is_err());
    }
}
