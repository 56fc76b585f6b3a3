use clap::Parser;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = inflow::cli::Cli::parse();
    // INFLOW_LOG (or RUST_LOG) picks the log level, e.g. INFLOW_LOG=debug; info by default.
    let filter = std::env::var("INFLOW_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).init();
    std::process::exit(inflow::cli::main(cli));
}
