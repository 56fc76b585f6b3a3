//! The `inflow` commands.

mod check;
mod plugin;
mod rules;
mod run;
mod send;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "inflow", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("INFLOW_COMMIT"), ")"), about = "Carries messages from Apache RocketMQ into MQTT, one rule at a time, through the built-in mapping or WebAssembly plugins.")]
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
    /// Work with mapping plugins offline.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Manage the rules of a running inflow through its admin API (exit 1: refused, 3: no inflow there).
    Rules {
        #[command(flatten)]
        admin: rules::AdminArgs,
        #[command(subcommand)]
        command: rules::RulesCommand,
    },
    /// Whether a running inflow is ready (exit 0; 1 with the reasons when not), and its rules.
    Status(rules::AdminArgs),
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process: boxing saves nothing
pub enum PluginCommand {
    /// Run a plugin on sample messages and print the publishes it would make (or the error), or
    /// compare them with expected results (--expect).
    Test(plugin::PluginTestArgs),
    /// Write a small plugin project (Rust, Python, JavaScript or C) that builds and passes its
    /// own `plugin test --expect`, with a README of its build, test, deploy and log commands.
    New(plugin::new::PluginNewArgs),
}

/// Runs the parsed command; the value is the process exit code.
pub fn main(cli: Cli) -> i32 {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::check(args),
        Command::Send(args) => send::send(args),
        Command::Rules { admin, command } => rules::rules(admin, command),
        Command::Status(admin) => rules::status(admin),
        Command::Plugin(PluginCommand::Test(args)) => exit_code("inflow plugin test", plugin::run(args)),
        Command::Plugin(PluginCommand::New(args)) => exit_code("inflow plugin new", plugin::new::run(args)),
    }
}

/// 0, or 1 with the error on stderr after the command's name.
fn exit_code(command: &str, result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{command}: {e:#}");
            1
        }
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts")
}
