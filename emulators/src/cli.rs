//! The command-line options both emulator binaries share: where vpcd is, the control
//! socket, and how the card behaves in the reader.

use std::path::PathBuf;

use clap::Args;

use crate::run::Options;

#[derive(Args, Debug)]
pub struct Plumbing {
    /// Host of pcscd's vpcd driver.
    #[arg(long, default_value = "127.0.0.1")]
    pub vpcd_host: String,
    /// vpcd port: 35963 is reader "Virtual PCD 00 00", 35964 "Virtual PCD 00 01".
    #[arg(long, default_value_t = 35963)]
    pub vpcd_port: u16,
    /// Unix socket for test control: remove, insert, pull-after INS, pull-before INS,
    /// status (one reply line per command line).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Start with the card removed (wait for `insert` or SIGUSR2).
    #[arg(long)]
    pub removed: bool,
    /// Log every APDU's INS and status word.
    #[arg(long, short)]
    pub verbose: bool,
    /// Be a T=0 card: answers with data come as 61xx and need GET RESPONSE; a GET
    /// RESPONSE with a wrong Le gets 6Cxx.
    #[arg(long)]
    pub t0: bool,
}

impl Plumbing {
    pub fn options(&self) -> Options {
        Options {
            host: self.vpcd_host.clone(),
            port: self.vpcd_port,
            inserted: !self.removed,
            verbose: self.verbose,
            t0: self.t0,
        }
    }
}
