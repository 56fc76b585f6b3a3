//! The rule lifecycle: which rules run, where each is written down, and every change to them —
//! from the admin API (create, update, delete, enable, disable) or from a reload of the files.
//!
//! A rule lives in the config file (`[[rule]]`) or in the rules folder (`<id>.toml`). The API
//! may enable and disable either, but edits and deletes only rules of the folder: the config
//! file is the operator's, and inflow never rewrites it. The enabled state the API gives a rule
//! of the config file is kept in the folder's state file. Every change is written to disk
//! before it is applied, so a restart brings back the same rules in the same states.
//!
//! A rule of a file whose plugin is not in the plugin folder waits for it (as when a plugin
//! file is removed); a rule sent to the API naming a plugin that is not there is refused, as
//! `inflow check` refuses it: it is most likely a typo.

use super::Supervisor;
use crate::config::rule_files::{self, read_rule_folder, rule_file, rule_file_text, write_atomically};
use crate::config::{self, Config, ConfigErrors, PluginLookup, RuleConfig};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tracing::{error, info, warn};

/// Where a rule is written down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    ConfigFile,
    RulesFolder,
}

/// A rule as the lifecycle knows it: its config (enabled state included) and its file.
#[derive(Debug, Clone)]
pub struct RuleEntry {
    /// Shared with the catalog and the running rule.
    pub config: Arc<RuleConfig>,
    pub origin: Origin,
    pub file: PathBuf,
}

/// Why a change was not made; each says what to do instead.
#[derive(Debug)]
pub enum ChangeError {
    /// The rule does not validate: every mistake, with its place and fix.
    Invalid(ConfigErrors),
    NotFound(String),
    /// The change is not allowed where the rule lives.
    Conflict { problem: String, fix: String },
    /// The change could not be stored or applied.
    Failed { problem: String, fix: String },
}

/// Reloads and refusals, for the metrics.
#[derive(Debug, Default)]
pub struct ReloadCounters {
    pub reloads: AtomicU64,
    /// Config files and rule files that did not validate on a reload (what ran kept running).
    pub refused: AtomicU64,
}

/// The handle the admin API and the file watcher change the rules through; cheap to clone.
/// Changes are applied one at a time.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Mutex<Inner>>,
    counters: Arc<ReloadCounters>,
    rules_dir: PathBuf,
    config_path: PathBuf,
}

struct Inner {
    supervisor: Supervisor,
    catalog: Catalog,
    /// The config the process started with, without its rules (they are in the catalog): its
    /// sections apply only at a restart.
    started: Config,
}

/// The rules as written down.
struct Catalog {
    config_path: PathBuf,
    rules_dir: PathBuf,
    plugin_dir: PathBuf,
    /// The `[[rule]]`s of the config file, as written there.
    main: MainRules,
    /// The rules of the folder, by id.
    files: BTreeMap<String, Arc<RuleConfig>>,
    /// The enabled state the API gave rules of the config file.
    main_enabled: BTreeMap<String, bool>,
}

/// The config file's rules in their order, found by id in constant time (a list of ten
/// thousand rules asks for each). Each config is shared with the rule running it.
struct MainRules {
    rules: Vec<Arc<RuleConfig>>,
    by_id: HashMap<String, usize>,
}

impl MainRules {
    fn new(rules: Vec<RuleConfig>) -> MainRules {
        let by_id = rules.iter().enumerate().map(|(i, r)| (r.id.clone(), i)).collect();
        MainRules { rules: rules.into_iter().map(Arc::new).collect(), by_id }
    }

    fn get(&self, id: &str) -> Option<&Arc<RuleConfig>> {
        self.by_id.get(id).map(|&i| &self.rules[i])
    }
}

impl Control {
    /// Reads the rules folder beside `config`, then starts the shared parts and every rule.
    pub async fn start(mut config: Config, config_path: &Path, drain_grace: Duration) -> anyhow::Result<Control> {
        let counters = Arc::new(ReloadCounters::default());
        // The rules move to the catalog; what is kept of `config` is the sections that apply
        // only at a restart (a copy of ten thousand rules otherwise).
        let rules = std::mem::take(&mut config.rules);
        let mut catalog = Catalog {
            config_path: config_path.to_path_buf(),
            rules_dir: config.rules_dir.clone(),
            plugin_dir: config.plugins.dir.clone(),
            main: MainRules::new(rules),
            files: BTreeMap::new(),
            main_enabled: BTreeMap::new(),
        };
        if let Err(e) = std::fs::create_dir_all(&catalog.rules_dir) {
            warn!(folder = %catalog.rules_dir.display(), error = %e, "cannot create the rules folder: rules created through the admin API cannot be stored; set [rules] dir to a folder inflow may write");
        }
        let refused = catalog.reread_folder();
        counters.refused.fetch_add(refused, Relaxed);
        let mut supervisor = Supervisor::start(config.clone(), drain_grace).await?;
        supervisor.apply(catalog.wanted()).await?;
        info!(rules = catalog.main.rules.len() + catalog.files.len(), from_folder = catalog.files.len(), folder = %catalog.rules_dir.display(), "rules loaded");
        Ok(Control {
            rules_dir: catalog.rules_dir.clone(),
            config_path: config_path.to_path_buf(),
            inner: Arc::new(Mutex::new(Inner { supervisor, catalog, started: config })),
            counters,
        })
    }

    pub fn rules_dir(&self) -> &Path {
        &self.rules_dir
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn counters(&self) -> &ReloadCounters {
        &self.counters
    }

    /// Runs `f` on the supervisor (for what the admin server reads once at start).
    pub async fn with_supervisor<T>(&self, f: impl FnOnce(&Supervisor) -> T) -> T {
        f(&self.inner.lock().await.supervisor)
    }

    /// Every rule, in id order.
    pub async fn list(&self) -> Vec<RuleEntry> {
        let inner = self.inner.lock().await;
        let mut entries: Vec<RuleEntry> = inner.catalog.wanted().into_iter().map(|rule| inner.catalog.entry(rule)).collect();
        entries.sort_by(|a, b| a.config.id.cmp(&b.config.id));
        entries
    }

    pub async fn get(&self, id: &str) -> Option<RuleEntry> {
        let inner = self.inner.lock().await;
        inner.catalog.wanted_rule(id).map(|rule| inner.catalog.entry(rule))
    }

    /// Checks a rule as [`Control::put`] would, changing nothing. A rule with the id of an
    /// existing one is checked as its update.
    pub async fn validate(&self, body: serde_json::Value) -> Result<RuleConfig, ChangeError> {
        let body = rule_files::without_nulls(body);
        let inner = self.inner.lock().await;
        let id = body.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        inner.catalog.check(&id, &body)
    }

    /// Creates or updates the rule `id` of the rules folder; `Ok(true)` when it was created.
    /// An update is applied at a message boundary: the rule drains, commits and restarts.
    pub async fn put(&self, id: &str, body: serde_json::Value) -> Result<(RuleConfig, bool), ChangeError> {
        let mut body = rule_files::without_nulls(body);
        let mut inner = self.inner.lock().await;
        let Some(fields) = body.as_object_mut() else {
            return Err(invalid("rule", "the body is not a JSON object", "send the rule as a JSON object, its fields as in a [[rule]] table"));
        };
        match fields.get("id").and_then(|v| v.as_str()) {
            Some(given) if given != id => {
                return Err(invalid(
                    "rule id",
                    format!("the body's id {given:?} is not the id {id:?} of the address"),
                    "a rule's id never changes: create a rule with the new id and delete the old one",
                ))
            }
            _ => {
                fields.insert("id".into(), id.into());
            }
        }
        inner.catalog.refuse_config_file_rule(id, "edited")?;
        let rule = inner.catalog.check(id, &body)?;
        let text = rule_file_text(&body).map_err(|e| ChangeError::Invalid(ConfigErrors(vec![e])))?;
        let file = rule_file(&inner.catalog.rules_dir, id);
        store(&file, text).await?;
        let created = inner.catalog.files.insert(id.to_string(), Arc::new(rule.clone())).is_none();
        inner.apply().await?;
        info!(rule = id, file = %file.display(), created, "rule stored and applied");
        Ok((rule, created))
    }

    /// Deletes the rule `id` of the rules folder: it drains, commits and stops.
    pub async fn delete(&self, id: &str) -> Result<(), ChangeError> {
        let mut inner = self.inner.lock().await;
        inner.catalog.refuse_config_file_rule(id, "deleted")?;
        if !inner.catalog.files.contains_key(id) {
            return Err(not_found(id));
        }
        let file = rule_file(&inner.catalog.rules_dir, id);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(storage_failed(&file, e)),
        }
        inner.catalog.files.remove(id);
        inner.apply().await?;
        info!(rule = id, "rule deleted");
        Ok(())
    }

    /// Enables or disables the rule `id`, wherever it lives. Disabling drains and commits; the
    /// rule's offsets are held until it is enabled again.
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<RuleConfig, ChangeError> {
        let mut inner = self.inner.lock().await;
        let catalog = &mut inner.catalog;
        if catalog.is_main(id) {
            let mut states = catalog.main_enabled.clone();
            states.insert(id.to_string(), enabled);
            let file = catalog.rules_dir.join(rule_files::STATE_FILE);
            store(&file, rule_files::state_text(&states)).await?;
            catalog.main_enabled = states;
        } else if let Some(rule) = catalog.files.get(id).cloned() {
            let file = rule_file(&catalog.rules_dir, id);
            let mut fields = rule_files::read_rule_file_json(&file).unwrap_or_else(|_| config::rule_json(&rule));
            fields["enabled"] = enabled.into();
            let text = rule_file_text(&fields).map_err(|e| ChangeError::Invalid(ConfigErrors(vec![e])))?;
            store(&file, text).await?;
            catalog.files.insert(id.to_string(), Arc::new(RuleConfig { enabled, ..RuleConfig::clone(&rule) }));
        } else {
            return Err(not_found(id));
        }
        inner.apply().await?;
        info!(rule = id, enabled, "rule enabled state changed");
        Ok(RuleConfig::clone(&inner.catalog.wanted_rule(id).expect("the rule was just changed")))
    }

    /// Reads the config file and the rules folder again and applies what changed. A file that
    /// does not validate is refused with an ERROR line and counted; what runs keeps running.
    pub async fn reload(&self, why: &str) {
        let mut inner = self.inner.lock().await;
        self.counters.reloads.fetch_add(1, Relaxed);
        let path = inner.catalog.config_path.clone();
        // Reading the files blocks: let the runtime move its other tasks off this thread.
        match tokio::task::block_in_place(|| config::load_waiting_for_plugins(&path)) {
            Ok(config) => {
                for section in restart_only_changes(&inner.started, &config) {
                    warn!(file = %path.display(), "{section} changed: inflow applies it only when it restarts; the rules are reloaded");
                }
                inner.catalog.main = MainRules::new(config.rules);
            }
            Err(e) => {
                self.counters.refused.fetch_add(1, Relaxed);
                error!(file = %path.display(), "the config file does not validate, so its rules keep running as they were: {e}");
            }
        }
        let refused = tokio::task::block_in_place(|| inner.catalog.reread_folder());
        self.counters.refused.fetch_add(refused, Relaxed);
        match inner.apply().await {
            Ok(()) => info!(why, "rules reloaded"),
            Err(ChangeError::Failed { problem, .. }) => error!(why, "reloaded rules could not all start: {problem}"),
            Err(e) => error!(why, "reloaded rules could not all start: {e:?}"),
        }
    }

    /// Stops every rule, then closes the MQTT connection.
    pub async fn shutdown(&self) {
        self.inner.lock().await.supervisor.shutdown().await;
    }
}

impl Inner {
    async fn apply(&mut self) -> Result<(), ChangeError> {
        let wanted = self.catalog.wanted();
        self.supervisor.apply(wanted).await.map_err(|e| ChangeError::Failed {
            problem: format!("{e:#}"),
            fix: "see inflow's log for the rule; the change is stored and is applied again on the next change or reload".into(),
        })
    }
}

impl Catalog {
    /// Every rule as it should run: the config file's, with the enabled states the API gave
    /// them, and the folder's.
    fn wanted(&self) -> Vec<Arc<RuleConfig>> {
        self.main.rules.iter().map(|rule| self.with_api_state(rule)).chain(self.files.values().cloned()).collect()
    }

    /// One rule as it should run.
    fn wanted_rule(&self, id: &str) -> Option<Arc<RuleConfig>> {
        match self.main.get(id) {
            Some(rule) => Some(self.with_api_state(rule)),
            None => self.files.get(id).cloned(),
        }
    }

    /// A rule of the config file with the enabled state the API gave it, if any.
    fn with_api_state(&self, rule: &Arc<RuleConfig>) -> Arc<RuleConfig> {
        match self.main_enabled.get(&rule.id) {
            Some(&enabled) if enabled != rule.enabled => Arc::new(RuleConfig { enabled, ..RuleConfig::clone(rule) }),
            _ => rule.clone(),
        }
    }

    /// Whether rule `id` is one of the config file's.
    fn is_main(&self, id: &str) -> bool {
        self.main.get(id).is_some()
    }

    fn entry(&self, config: Arc<RuleConfig>) -> RuleEntry {
        if self.is_main(&config.id) {
            RuleEntry { config, origin: Origin::ConfigFile, file: self.config_path.clone() }
        } else {
            let file = rule_file(&self.rules_dir, &config.id);
            RuleEntry { config, origin: Origin::RulesFolder, file }
        }
    }

    /// The rule `body` checked against every other rule, as the update of rule `id` if it exists.
    fn check(&self, id: &str, body: &serde_json::Value) -> Result<RuleConfig, ChangeError> {
        let others: Vec<RuleConfig> = self.wanted().iter().filter(|r| r.id != id).map(|r| RuleConfig::clone(r)).collect();
        config::validate_rule(body, &others, &PluginLookup::on_disk(&self.plugin_dir)).map_err(ChangeError::Invalid)
    }

    fn refuse_config_file_rule(&self, id: &str, change: &str) -> Result<(), ChangeError> {
        if self.is_main(id) {
            return Err(ChangeError::Conflict {
                problem: format!("rule {id:?} is defined in the config file {} and cannot be {change} through the API", self.config_path.display()),
                fix: format!("edit it in {} and reload (SIGHUP), or move it into the rules folder {}", self.config_path.display(), self.rules_dir.display()),
            });
        }
        Ok(())
    }

    /// Reads the folder and its state file again; returns how many files it refused. A refused
    /// file's rule keeps running as it was, unless the config file now has a rule of its id.
    fn reread_folder(&mut self) -> u64 {
        let main = self.main.rules.iter().map(|r| &**r);
        let folder = read_rule_folder(&self.rules_dir, main, &PluginLookup::waiting(&self.plugin_dir));
        let mut files: BTreeMap<String, Arc<RuleConfig>> = folder.rules.into_iter().map(|r| (r.id.clone(), Arc::new(r))).collect();
        for (path, errors) in &folder.refused {
            error!(file = %path.display(), "rule file refused, the rule keeps running as it was (if it ran): {errors}");
            let id = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if let Some(previous) = self.files.get(id) {
                if !self.is_main(id) && path.exists() {
                    files.insert(id.to_string(), previous.clone());
                }
            }
        }
        self.files = files;
        match rule_files::read_state(&self.rules_dir) {
            Ok(states) => self.main_enabled = states,
            Err(e) => error!("the rules folder's state file is refused; the enabled states stay as they were: {e}"),
        }
        folder.refused.len() as u64
    }
}

/// The sections of `new` that differ from `started` and take effect only at a restart.
fn restart_only_changes(started: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if started.rocketmq != new.rocketmq {
        changed.push("[rocketmq]");
    }
    if started.mqtt != new.mqtt {
        changed.push("[mqtt]");
    }
    if started.plugins != new.plugins {
        changed.push("[plugins]");
    }
    if started.admin != new.admin {
        changed.push("[admin]");
    }
    if started.rules_dir != new.rules_dir {
        changed.push("[rules] dir");
    }
    changed
}

fn invalid(place: &str, problem: impl Into<String>, fix: &str) -> ChangeError {
    ChangeError::Invalid(ConfigErrors::single(place, problem, fix))
}

fn not_found(id: &str) -> ChangeError {
    ChangeError::NotFound(format!("no rule {id:?}"))
}

/// Writes a rule or state file atomically, off the runtime's threads: the sync to disk can take
/// seconds on a busy disk, and the rules' messages must not wait for it.
async fn store(file: &Path, text: String) -> Result<(), ChangeError> {
    let path = file.to_path_buf();
    let written = tokio::task::spawn_blocking(move || write_atomically(&path, text.as_bytes())).await;
    written.unwrap_or_else(|e| Err(std::io::Error::other(e))).map_err(|e| storage_failed(file, e))
}

fn storage_failed(file: &Path, e: std::io::Error) -> ChangeError {
    ChangeError::Failed {
        problem: format!("cannot write {}: {e}", file.display()),
        fix: "make the rules folder ([rules] dir) writable by inflow; nothing was changed".into(),
    }
}
