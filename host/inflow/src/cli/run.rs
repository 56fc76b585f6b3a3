//! `inflow run`: the service, until SIGTERM or Ctrl-C, with the admin server beside it.

use crate::admin::{self, AdminState};
use crate::config;
use crate::supervisor::Supervisor;
use std::path::PathBuf;
use std::time::Duration;
use tracing::{error, info, warn};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The config file (TOML).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
    /// On SIGTERM / Ctrl-C: how long in-flight publishes may take to be acknowledged before
    /// inflow stops waiting (those not acknowledged are delivered again after a restart).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub stop_grace: u64,
}

pub fn run(args: RunArgs) -> i32 {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", args.config.display());
            return 2;
        }
    };
    if let Err(e) = config.admin.check_token() {
        eprintln!("{}: {e}", args.config.display());
        return 2;
    }
    let grace = Duration::from_secs(args.stop_grace);
    super::runtime().block_on(async move {
        let rules = config.rules.len();
        let admin_config = config.admin.clone();
        let supervisor = match Supervisor::start(config, grace).await {
            Ok(s) => s,
            Err(e) => {
                error!(error = %format!("{e:#}"), "inflow cannot start");
                return 1;
            }
        };
        let admin_state = AdminState { rules: supervisor.rules(), sink: supervisor.sink().clone(), plugins: supervisor.plugins() };
        if let Err(e) = admin::start(&admin_config, admin_state).await {
            error!(error = %format!("{e:#}"), "inflow cannot start");
            return 1;
        }
        info!(rules, "inflow running");
        let signal = wait_for_signal().await;
        info!(signal, "stopping: no more pulls; finishing and acknowledging what is in flight");
        // Rules drain within the grace; the commit and disconnect after it get a few seconds more.
        match tokio::time::timeout(grace + Duration::from_secs(5), supervisor.shutdown()).await {
            Ok(()) => info!("inflow stopped"),
            Err(_) => warn!("inflow stopped before every rule finished; unacknowledged messages will be delivered again"),
        }
        0
    })
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops inflow");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}
