//! `native-host`: started by the browser (Chrome, Chromium: `native-host
//! chrome-extension://ID/`; Firefox: `native-host MANIFEST EXTENSION_ID`), it serves
//! native messaging on stdin/stdout until the browser closes the pipe. Started by a
//! person, `install`, `uninstall` and `doctor` manage the browsers' host manifests.
//! Logs go to stderr: stdout is the framing channel.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use native_host::doctor;
use native_host::install::{self, Install, Target};
use native_host::manifest::{Browser, Platform, Scope};
use native_host::readers::Pcsc;
use native_host::serve::{self, Config, Exit};

/// The purse card reader for the browser (native messaging host).
#[derive(Parser, Debug)]
#[command(name = "native-host", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the host manifest for the browsers (those with an id when none is named).
    Install {
        #[command(flatten)]
        place: Place,
        /// Chrome/Chromium extension id (32 letters a-p); repeatable.
        #[arg(long = "chrome-id", value_name = "ID")]
        chrome_ids: Vec<String>,
        /// Firefox add-on id (name@domain or {UUID}); repeatable.
        #[arg(long = "firefox-id", value_name = "ID")]
        firefox_ids: Vec<String>,
        /// The host binary the browsers start (default: this program).
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// Remove the host manifest of the browsers (all when none is named).
    Uninstall {
        #[command(flatten)]
        place: Place,
    },
    /// Show what is installed where, and whether pcscd, a reader and a purse card work.
    Doctor {
        /// The file-system root of system-wide manifests.
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
    },
}

#[derive(Args, Debug)]
struct Place {
    /// The browsers (repeatable): chrome, chromium, firefox.
    #[arg(long = "browser", value_enum)]
    browsers: Vec<Browser>,
    /// Per user (in $HOME) or for every user of the machine (needs root).
    #[arg(long, value_enum, default_value = "user")]
    scope: Scope,
    /// The file-system root of system-wide manifests (a staging directory for packages).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
}

fn main() -> ExitCode {
    let first = std::env::args().nth(1);
    let cli_words = [
        "install",
        "uninstall",
        "doctor",
        "help",
        "--help",
        "-h",
        "--version",
        "-V",
    ];
    if first.as_deref().is_some_and(|a| cli_words.contains(&a)) {
        let cli = Cli::parse();
        return match run(cli.command) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("native-host: error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // Started by a browser: the arguments name the caller (origin or manifest + id).
    let caller: Vec<String> = std::env::args().skip(1).collect();
    eprintln!(
        "native-host {}: serving native messaging (caller: {})",
        env!("CARGO_PKG_VERSION"),
        if caller.is_empty() {
            "-".into()
        } else {
            caller.join(" ")
        }
    );
    let config = Config {
        state_dir: native_host::held::state_dir(|k| std::env::var_os(k)),
    };
    match serve::serve(std::io::stdin(), std::io::stdout(), config) {
        Exit::Closed => ExitCode::SUCCESS,
        Exit::Truncated => ExitCode::from(2),
        Exit::Broken(why) => {
            eprintln!("native-host: {why}");
            ExitCode::FAILURE
        }
    }
}

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set")
}

fn target(scope: Scope, root: PathBuf) -> Result<Target> {
    Ok(Target {
        scope,
        platform: Platform::current(),
        home: home()?,
        root,
    })
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Install {
            place,
            chrome_ids,
            firefox_ids,
            binary,
        } => {
            let binary = match binary {
                Some(b) => b,
                None => std::env::current_exe()
                    .context("finding this program's path")?
                    .canonicalize()
                    .context("resolving this program's path")?,
            };
            let req = Install {
                target: target(place.scope, place.root)?,
                browsers: place.browsers,
                binary,
                chrome_ids,
                firefox_ids,
            };
            for f in install::install(&req).context("installing the host manifests")? {
                println!("installed {}", f.display());
            }
            if cfg!(windows) {
                println!(
                    "on Windows, point the registry keys of docs/architecture.md at the files"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Uninstall { place } => {
            let t = target(place.scope, place.root)?;
            for (f, was) in
                install::uninstall(&t, &place.browsers).context("removing the host manifests")?
            {
                let what = if was { "removed" } else { "not installed:" };
                println!("{what} {}", f.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor { root } => {
            let user = target(Scope::User, root.clone())?;
            let system = target(Scope::System, root)?;
            let report = doctor::examine(&user, &system, &mut Pcsc::default());
            print!("{}", report.text);
            Ok(if report.problems == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
