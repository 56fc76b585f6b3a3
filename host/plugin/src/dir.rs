//! The watched plugin folder.
//!
//! Every `<name>.wasm` file directly in the folder is the plugin `<name>`.
//! Files are loaded at start and whenever they change; a change is acted on
//! once the file has been quiet for the debounce period, so a file being
//! copied in is not loaded half-written.
//!
//! **Deploy with an atomic rename**: write the new file under a name inflow
//! ignores, in the same folder (so the rename does not cross file systems),
//! then rename it over the old one:
//!
//! ```sh
//! cp build/foo.wasm plugins/.foo.wasm.tmp && mv plugins/.foo.wasm.tmp plugins/foo.wasm
//! ```
//!
//! Ignored: dot files, and anything not ending in `.wasm` (`*.tmp`, `*.part`, ...).
//! A replaced file that fails to load is refused with a log line and a
//! counter, and the version that was serving goes on serving. A removed file
//! withdraws the plugin (subscribers see `None`) until a valid file returns.

use crate::plugin::{LoadOptions, Plugin};
use crate::runtime::Runtime;
use crate::stats::PluginStats;
use std::sync::atomic::Ordering::Relaxed;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// What the folder watcher has done since start, over all plugins (the
/// runtime's [`crate::PluginStats`] has them per plugin).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirCounters {
    /// Plugin versions loaded and made live (at start and later).
    pub loads: u64,
    /// Plugins withdrawn because their file went away.
    pub removals: u64,
    /// Files refused, by [`crate::LoadError::reason`].
    pub refusals: BTreeMap<&'static str, u64>,
}

type Slot = watch::Sender<Option<Arc<Plugin>>>;

struct Shared {
    runtime: Runtime,
    dir: PathBuf,
    slots: Mutex<HashMap<String, Slot>>,
    /// Per plugin name, across its versions.
    stats: Mutex<BTreeMap<String, Arc<PluginStats>>>,
    /// The last refusal per plugin name, cleared when a version loads.
    refusals: Mutex<HashMap<String, Refusal>>,
}

/// Why and when a plugin's latest file was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Unix seconds.
    pub at: u64,
    pub reason: String,
}

/// One plugin of the folder: the version serving (if any) and its latest refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginReport {
    pub name: String,
    /// Hex sha256 of the serving file; the three `None` while no version serves.
    pub version: Option<String>,
    /// When the serving version was loaded, Unix seconds.
    pub loaded_at: Option<u64>,
    /// Whether its compiled code came from the cache.
    pub from_cache: Option<bool>,
    /// Why the latest file was refused, if it was and no version loaded since.
    pub last_refusal: Option<Refusal>,
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Watches a plugin folder and keeps the current version of each plugin.
pub struct PluginDir {
    shared: Arc<Shared>,
    // Dropping the watcher closes the event channel, which ends the loader thread.
    _watcher: notify::RecommendedWatcher,
}

/// Lock a mutex even if a thread panicked while holding it: the data here
/// (maps and counters) stays consistent at every step.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PluginDir {
    /// Starts watching `dir`, loading every plugin in it before returning
    /// (blocking: call it from a blocking context). `debounce` is how long a
    /// file must be quiet before it is (re)loaded; 200–500 ms suits copies
    /// and atomic renames alike.
    pub fn open(runtime: Runtime, dir: &Path, debounce: Duration) -> Result<PluginDir, std::io::Error> {
        let dir = dir.canonicalize().map_err(|err| {
            std::io::Error::new(err.kind(), format!("plugin folder {}: {err}; create it or fix the path", dir.display()))
        })?;
        if let Ok(cache) = runtime.cache_dir().canonicalize() {
            if cache.starts_with(&dir) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "the compiled-code cache {} is inside the plugin folder {}; move it elsewhere (the cache must be host-private)",
                        cache.display(),
                        dir.display()
                    ),
                ));
            }
        }
        let shared = Arc::new(Shared {
            runtime,
            dir: dir.clone(),
            slots: Mutex::new(HashMap::new()),
            stats: Mutex::default(),
            refusals: Mutex::new(HashMap::new()),
        });
        // Watch before the first scan so no change falls between the two.
        let (events_tx, events_rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(events_tx).map_err(notify_error)?;
        watcher.watch(&dir, RecursiveMode::NonRecursive).map_err(notify_error)?;
        for path in shared.candidates() {
            shared.refresh(&path);
        }
        let loader = shared.clone();
        std::thread::Builder::new()
            .name("inflow-plugin-dir".into())
            .spawn(move || loader.watch_loop(events_rx, debounce))?;
        Ok(PluginDir { shared, _watcher: watcher })
    }

    /// The current version of plugin `name` and every later change; `None`
    /// while no valid `<name>.wasm` is in the folder. Check it between
    /// messages: that is where a new version takes over.
    pub fn subscribe(&self, name: &str) -> watch::Receiver<Option<Arc<Plugin>>> {
        lock(&self.shared.slots).entry(name.to_string()).or_insert_with(|| watch::channel(None).0).subscribe()
    }

    /// The version of `name` serving now, if any.
    pub fn current(&self, name: &str) -> Option<Arc<Plugin>> {
        lock(&self.shared.slots).get(name).and_then(|slot| slot.borrow().clone())
    }

    /// Why the latest file for `name` was refused, if it was and no valid
    /// version has loaded since.
    pub fn last_refusal(&self, name: &str) -> Option<String> {
        lock(&self.shared.refusals).get(name).map(|r| r.reason.clone())
    }

    /// The sums of every plugin's counters.
    pub fn counters(&self) -> DirCounters {
        let mut sums = DirCounters::default();
        for (_, stats) in self.stats() {
            sums.loads += stats.loads.load(Relaxed);
            sums.removals += stats.removals.load(Relaxed);
            for (reason, count) in stats.refusals() {
                *sums.refusals.entry(reason).or_default() += count;
            }
        }
        sums
    }

    /// The counters of every plugin seen, by name.
    pub fn stats(&self) -> Vec<(String, Arc<PluginStats>)> {
        lock(&self.shared.stats).iter().map(|(name, stats)| (name.clone(), stats.clone())).collect()
    }

    /// Every plugin with a file serving or refused now, by name.
    pub fn report(&self) -> Vec<PluginReport> {
        let slots = lock(&self.shared.slots);
        let refusals = lock(&self.shared.refusals);
        let mut reports: Vec<PluginReport> = slots
            .iter()
            .filter_map(|(name, slot)| {
                let serving = slot.borrow().clone();
                let last_refusal = refusals.get(name).cloned();
                (serving.is_some() || last_refusal.is_some()).then(|| PluginReport {
                    name: name.clone(),
                    version: serving.as_ref().map(|p| p.content_hash().to_string()),
                    loaded_at: serving.as_ref().map(|p| unix_seconds(p.loaded_at())),
                    from_cache: serving.as_ref().map(|p| p.from_cache()),
                    last_refusal,
                })
            })
            .collect();
        reports.sort_by(|a, b| a.name.cmp(&b.name));
        reports
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}

fn notify_error(err: notify::Error) -> std::io::Error {
    std::io::Error::other(format!("cannot watch the plugin folder: {err}"))
}

/// `<dir>/<name>.wasm` with a name that does not start with a dot.
fn is_plugin_file(dir: &Path, path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    path.parent() == Some(dir) && !name.starts_with('.') && name.len() > ".wasm".len() && name.ends_with(".wasm")
}

/// Whether an event can mean new content or a removal. Opening or reading a
/// file (the loader's own reads included) cannot.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

impl Shared {
    /// Plugin files in the folder now, plus the names already known (so a
    /// rescan notices removals).
    fn candidates(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| is_plugin_file(&self.dir, p)).collect(),
            Err(err) => {
                tracing::error!(dir = %self.dir.display(), error = %err, "cannot list the plugin folder");
                Vec::new()
            }
        };
        for name in lock(&self.slots).keys() {
            let path = self.dir.join(format!("{name}.wasm"));
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
        paths
    }

    fn watch_loop(&self, events: mpsc::Receiver<notify::Result<notify::Event>>, debounce: Duration) {
        let mut pending: HashMap<PathBuf, Instant> = HashMap::new();
        loop {
            let wait = pending
                .values()
                .min()
                .map(|&last| (last + debounce).saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(3600));
            match events.recv_timeout(wait) {
                Ok(Ok(event)) if is_change(&event.kind) => {
                    for path in event.paths.into_iter().filter(|p| is_plugin_file(&self.dir, p)) {
                        pending.insert(path, Instant::now());
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    // E.g. the kernel's event queue overflowed: look at everything again.
                    tracing::warn!(dir = %self.dir.display(), error = %err, "plugin folder watch error; rescanning the folder");
                    for path in self.candidates() {
                        pending.insert(path, Instant::now());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            let due: Vec<PathBuf> = pending.iter().filter(|(_, &last)| now >= last + debounce).map(|(p, _)| p.clone()).collect();
            for path in due {
                pending.remove(&path);
                self.refresh(&path);
            }
        }
    }

    fn stats(&self, name: &str) -> Arc<PluginStats> {
        lock(&self.stats).entry(name.to_string()).or_default().clone()
    }

    fn slot(&self, name: &str) -> Slot {
        lock(&self.slots).entry(name.to_string()).or_insert_with(|| watch::channel(None).0).clone()
    }

    /// Brings plugin `path` up to date with the file: load, refuse or withdraw.
    fn refresh(&self, path: &Path) {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_string) else { return };
        let slot = self.slot(&name);
        if !path.is_file() {
            lock(&self.refusals).remove(&name);
            if slot.send_replace(None).is_some() {
                self.stats(&name).removals.fetch_add(1, Relaxed);
                tracing::info!(plugin = %name, path = %path.display(), "plugin file removed; rules using it stop until it returns");
            }
            return;
        }
        let serving = slot.borrow().clone();
        match self.runtime.load_counting(path, LoadOptions::Cached, self.stats(&name)) {
            Ok(plugin) => {
                lock(&self.refusals).remove(&name);
                if serving.as_ref().is_some_and(|old| old.content_hash() == plugin.content_hash()) {
                    return;
                }
                tracing::info!(
                    plugin = %name,
                    version = %plugin.content_hash(),
                    from_cache = plugin.from_cache(),
                    load_ms = plugin.load_time().as_secs_f64() * 1e3,
                    "plugin loaded; it serves from the next message"
                );
                plugin.stats.loads.fetch_add(1, Relaxed);
                slot.send_replace(Some(plugin));
            }
            Err(err) => {
                let serving_note = match &serving {
                    Some(old) => format!("version {} goes on serving", old.content_hash()),
                    None => "no version is serving".to_string(),
                };
                tracing::warn!(plugin = %name, reason = err.reason(), "plugin file refused: {err}; {serving_note}");
                self.stats(&name).refused(err.reason());
                lock(&self.refusals).insert(name, Refusal { at: unix_seconds(SystemTime::now()), reason: err.to_string() });
            }
        }
    }
}
