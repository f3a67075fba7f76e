//! The shop plugin: a hyper service beside a shop's checkout that embeds the surrogate
//! and the SAM of crate `purse` and keeps payments in SQLite (issue 4). Until then it
//! refuses to start, with a clear message.

fn main() -> std::process::ExitCode {
    eprintln!(
        "shop-plugin {}: not implemented yet; the SAM (purse::sam) and surrogate are ready for it",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}
