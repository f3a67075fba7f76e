//! `doctor`: which SAM readers pcscd knows, and for each configured one whether its SAM
//! answers: SAM_ID, currency and counters (GET STATUS). A running `serve` holds its SAM
//! exclusively: the reader then shows as in use.

use std::path::Path;

use anyhow::Result;
use shop_plugin::sam::pcsc::{list_readers, PcscSam};
use shop_plugin::sam::{SamError, SecurityModule};

use super::load_config;

pub fn run(config_path: &Path) -> Result<std::process::ExitCode> {
    let config = load_config(config_path)?;
    let sam = &config.sam;
    if let Some(f) = &sam.in_process_card {
        println!(
            "SAM: applet in process from {} (tests and benchmarks only)",
            f.display()
        );
    }
    let present = match list_readers() {
        Ok(r) => r,
        Err(e) => {
            println!("PC/SC: {e}");
            Vec::new()
        }
    };
    for r in &present {
        let role = if sam.readers.contains(r) {
            "configured SAM reader"
        } else {
            "other reader"
        };
        println!("reader '{r}': {role}");
    }
    let mut ok = 0;
    for reader in &sam.readers {
        if !present.contains(reader) {
            println!("SAM reader '{reader}': not present");
            continue;
        }
        match PcscSam::connect(reader).and_then(|mut s| Ok((s.identity(), s.status()?))) {
            Ok((id, st)) => {
                ok += 1;
                println!(
                    "SAM reader '{reader}': SAM {} key version {} {}: next SAM_TxSeq {}, \
                     last close {}, open period {} completions for {}, closed period {} \
                     for {}, laggards {}{}",
                    id.sam_id.to_hex(),
                    id.key_version.0,
                    id.currency,
                    st.next_tx_seq.0,
                    st.last_close_seq.0,
                    st.period_count,
                    st.period_sum,
                    st.closed_count,
                    st.closed_sum,
                    st.laggards,
                    if st.blocked { ", BLOCKED" } else { "" }
                );
            }
            Err(SamError::Unavailable(e)) if e.contains("haring") => {
                println!("SAM reader '{reader}': in use (a running serve holds it): {e}");
                ok += 1;
            }
            Err(e) => println!("SAM reader '{reader}': {e}"),
        }
    }
    Ok(if ok > 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
