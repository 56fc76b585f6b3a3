//! Reloads the rules when their files change: the config file and the rules folder are watched,
//! and SIGHUP asks for a reload too. Changes are gathered for a quiet [`DEBOUNCE`] first, so an
//! editor's save (or a burst of API writes) costs one reload.

use super::lifecycle::Control;
use crate::config::rule_files::{is_rule_file, STATE_FILE};
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::warn;

const DEBOUNCE: Duration = Duration::from_millis(250);

/// Watches the files of `control`'s rules and reloads them on change or SIGHUP, in the
/// background, for the life of the process.
pub fn watch(control: Control) {
    let (changed_tx, mut changed) = mpsc::unbounded_channel::<&'static str>();
    let watcher = file_watcher(&control, changed_tx.clone());
    tokio::spawn(async move {
        let _watcher = watcher;
        while let Some(mut why) = changed.recv().await {
            // Quiet for DEBOUNCE: what arrives meanwhile joins this reload.
            while let Ok(Some(more)) = tokio::time::timeout(DEBOUNCE, changed.recv()).await {
                if more == "SIGHUP" {
                    why = more;
                }
            }
            control.reload(why).await;
        }
    });
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            warn!("cannot watch SIGHUP; the rules reload only when their files change");
            return;
        };
        while hangup.recv().await.is_some() {
            if changed_tx.send("SIGHUP").is_err() {
                return;
            }
        }
    });
}

/// A watcher of the config file (through its folder: editors replace files) and the rules
/// folder; `None`, with a WARN, when the system cannot watch them.
fn file_watcher(control: &Control, changed: mpsc::UnboundedSender<&'static str>) -> Option<notify::RecommendedWatcher> {
    let config_path = absolute(control.config_path());
    let rules_dir = absolute(control.rules_dir());
    let config_name = config_path.file_name().map(|n| n.to_os_string());
    let (config_dir, watched_rules_dir) = (config_path.parent().map(Path::to_path_buf), rules_dir.clone());
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        for path in &event.paths {
            let why = if path.parent() == Some(watched_rules_dir.as_path()) && (is_rule_file(path) || path.file_name().is_some_and(|n| n == STATE_FILE)) {
                "rules folder changed"
            } else if path.parent() == config_dir.as_deref() && path.file_name().map(|n| n.to_os_string()) == config_name {
                "config file changed"
            } else {
                continue;
            };
            let _ = changed.send(why);
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            warn!(error = %e, "cannot watch the rule files; send SIGHUP to reload them");
            return None;
        }
    };
    for dir in [config_path.parent().map(Path::to_path_buf), Some(rules_dir)].into_iter().flatten() {
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            warn!(folder = %dir.display(), error = %e, "cannot watch this folder; send SIGHUP to reload its rules");
        }
    }
    Some(watcher)
}

/// `path` made absolute (and its symbolic links resolved when it exists), as the watcher names
/// the paths of its events.
fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}
