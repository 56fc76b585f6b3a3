//! The `inflow` binary: logging set-up, then the commands of [`inflow::cli`].

use clap::Parser;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

// jemalloc on every Linux build: against glibc's allocator it took 9-12 % off the CPU per
// forwarded message; against musl's (the static release) ~15 % (mimalloc cost more): README.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// jemalloc keeps freed pages 10 s by default; here they go back within a second, by its own
// thread. With 10 000 rules the start-up's and the admin API's transient allocations otherwise
// stay resident: 421 -> 267 MiB (README). `_RJEM_MALLOC_CONF` still overrides it.
#[cfg(target_os = "linux")]
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

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
