//! The `inflow` commands.

mod check;
mod run;
mod send;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "inflow", version, about = "Carries messages from Apache RocketMQ into MQTT, one rule at a time, through the built-in mapping or WebAssembly plugins.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the service: every enabled rule of the config, until SIGTERM or Ctrl-C.
    Run(run::RunArgs),
    /// Validate a config and load its plugins; exits non-zero on any error.
    Check(check::CheckArgs),
    /// Send test messages to RocketMQ (tags, keys, properties, body).
    Send(send::SendArgs),
}

/// Runs the parsed command; the value is the process exit code.
pub fn main(cli: Cli) -> i32 {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::check(args),
        Command::Send(args) => send::send(args),
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts")
}
