//! `inflow run`: the service, until SIGTERM or Ctrl-C, with the admin server beside it and its
//! rule files watched (SIGHUP reloads them too).

use crate::admin::{self, AdminState};
use crate::config;
use crate::supervisor::lifecycle::Control;
use crate::supervisor::reload;
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
    let config = match config::load_waiting_for_plugins(&args.config) {
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
        let admin_config = config.admin.clone();
        let control = match Control::start(config, &args.config, grace).await {
            Ok(c) => c,
            Err(e) => {
                error!(error = %format!("{e:#}"), "inflow cannot start");
                return 1;
            }
        };
        let (rules, sink, plugins) = control.with_supervisor(|s| (s.rules(), s.sink().clone(), s.plugins())).await;
        let admin_state = AdminState { rules, sink, control: control.clone(), plugins };
        if let Err(e) = admin::start(&admin_config, admin_state).await {
            error!(error = %format!("{e:#}"), "inflow cannot start");
            return 1;
        }
        reload::watch(control.clone());
        info!("inflow running");
        let signal = wait_for_signal().await;
        info!(signal, "stopping: no more pulls; finishing and acknowledging what is in flight");
        // Rules drain within the grace; the commit and disconnect after it get a few seconds more.
        match tokio::time::timeout(grace + Duration::from_secs(5), control.shutdown()).await {
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
