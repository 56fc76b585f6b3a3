//! The `inflow` binary: logging set-up, then the commands of [`inflow::cli`].

use clap::Parser;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

// jemalloc on every Linux build: against glibc's allocator it took 9-12 % off the CPU per
// forwarded message; against musl's (the static release) ~15 % (mimalloc cost more): README.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let cli = inflow::cli::Cli::parse();
    // INFLOW_LOG (or RUST_LOG) picks the log level, e.g. INFLOW_LOG=debug; info by default.
    let filter = std::env::var("INFLOW_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    // INFLOW_LOG_FORMAT=json: one JSON object per line, the rule, plugin and queue as fields.
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("INFLOW_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().flatten_event(true).init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    std::process::exit(inflow::cli::main(cli));
}
