//! Starts, stops and reports the rules: one task per rule ([`crate::rule`]), sharing one
//! RocketMQ client, one MQTT sink and one plugin runtime. [`Supervisor::apply`] brings the
//! running rules to a wanted set by their differences; [`lifecycle`] decides that set from the
//! config file, the rules folder and the admin API, and [`reload`] watches the files.

pub mod lifecycle;
pub mod reload;

pub use crate::rule::{QueueReport, RuleCounters, RuleStatus};

use crate::config::{Config, PluginsConfig, RuleConfig};
use crate::sink::Sink;
use crate::source::RocketMq;
use anyhow::Context as _;
use inflow_plugin::{PluginDir, Runtime, RuntimeConfig};
use crate::rule::{self, RuleEnv};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct RuleHandle {
    /// Shared with the rule's task: one copy of each config (thousands of rules per host).
    config: Arc<RuleConfig>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The rules as the admin server and the metrics see them; cheap to clone.
#[derive(Clone, Default)]
pub struct Rules(Arc<RwLock<BTreeMap<String, RuleView>>>);

struct RuleView {
    status: watch::Receiver<RuleStatus>,
    counters: Arc<RuleCounters>,
}

impl Rules {
    /// Every rule now, in id order.
    pub fn snapshot(&self) -> Vec<RuleReport> {
        let rules = self.0.read().unwrap_or_else(|e| e.into_inner());
        rules
            .iter()
            .map(|(id, v)| v.report(id))
            .collect()
    }

    /// One rule now.
    pub fn get(&self, id: &str) -> Option<RuleReport> {
        let rules = self.0.read().unwrap_or_else(|e| e.into_inner());
        rules.get(id).map(|v| v.report(id))
    }
}

impl RuleView {
    fn report(&self, id: &str) -> RuleReport {
        RuleReport { id: id.to_string(), status: self.status.borrow().clone(), counters: self.counters.clone() }
    }
}

/// The plugin folder once it is open (the first rule with a plugin opens it); cheap to clone.
pub type Plugins = Arc<std::sync::OnceLock<Arc<PluginDir>>>;

pub struct Supervisor {
    source: RocketMq,
    sink: Sink,
    plugins: Plugins,
    plugins_config: PluginsConfig,
    max_topic_bytes: usize,
    drain_grace: Duration,
    rules: BTreeMap<String, RuleHandle>,
    view: Rules,
    /// Kept for a rule id across its restarts, so its counters stay monotonic.
    counters: HashMap<String, Arc<RuleCounters>>,
}

/// A rule as the supervisor reports it.
#[derive(Debug, Clone)]
pub struct RuleReport {
    pub id: String,
    pub status: RuleStatus,
    pub counters: Arc<RuleCounters>,
}

impl Supervisor {
    /// Connects the shared parts and starts the rules of the config file.
    pub async fn start(config: Config, drain_grace: Duration) -> anyhow::Result<Supervisor> {
        let client = crate::source::client(&config.rocketmq).context("RocketMQ client")?;
        let sink = Sink::start(config.mqtt.clone()).context("MQTT sink")?;
        let mut supervisor = Supervisor {
            source: RocketMq { client, config: Arc::new(config.rocketmq.clone()) },
            sink,
            plugins: Plugins::default(),
            plugins_config: config.plugins.clone(),
            max_topic_bytes: config.mqtt.max_topic_bytes,
            drain_grace,
            rules: BTreeMap::new(),
            view: Rules::default(),
            counters: HashMap::new(),
        };
        supervisor.apply(config.rules.into_iter().map(Arc::new).collect()).await?;
        Ok(supervisor)
    }

    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    /// Brings the running rules to `wanted`: stops the rules it lacks, restarts the rules whose
    /// config changed (each drains and commits first, so nothing is lost or delivered twice by
    /// the change) and starts the new ones. Rules that did not change are not touched.
    pub async fn apply(&mut self, wanted: Vec<Arc<RuleConfig>>) -> anyhow::Result<()> {
        let plan = Plan::new(&self.rules.iter().map(|(id, h)| (id.as_str(), &*h.config)).collect(), wanted);
        let changed = plan.start.iter().map(|r| &r.id).filter(|id| self.rules.contains_key(*id));
        let stopping: Vec<String> = plan.stop.iter().chain(changed).cloned().collect();
        self.stop_rules(&stopping).await;
        for rule in plan.start {
            self.start_rule(rule).await?;
        }
        Ok(())
    }

    /// Starts one rule (a disabled rule is registered and consumes nothing).
    pub async fn start_rule(&mut self, rule: Arc<RuleConfig>) -> anyhow::Result<()> {
        anyhow::ensure!(!self.rules.contains_key(&rule.id), "rule {:?} is already running; stop it first", rule.id);
        let plugin = match &rule.plugin {
            None => None,
            Some(p) => Some(self.plugin_dir().await?.subscribe(&p.name)),
        };
        let env = RuleEnv {
            source: self.source.clone(),
            publisher: self.sink.clone(),
            max_topic_bytes: self.max_topic_bytes,
            plugin,
            drain_grace: self.drain_grace,
        };
        let (stop, stop_rx) = watch::channel(false);
        let (status_tx, status) = watch::channel(RuleStatus::Starting);
        let counters = self.counters.entry(rule.id.clone()).or_default().clone();
        let task = tokio::spawn(rule::run(rule.clone(), env, stop_rx, status_tx, counters.clone()));
        self.view.0.write().unwrap_or_else(|e| e.into_inner()).insert(rule.id.clone(), RuleView { status, counters });
        self.rules.insert(rule.id.clone(), RuleHandle { config: rule, stop, task });
        Ok(())
    }

    /// Stops rules, all at once: each stops pulling, finishes and acknowledges what is in
    /// flight, and commits.
    async fn stop_rules(&mut self, ids: &[String]) {
        let handles: Vec<RuleHandle> = ids.iter().filter_map(|id| self.rules.remove(id)).collect();
        for handle in &handles {
            let _ = handle.stop.send(true);
        }
        for handle in handles {
            let _ = handle.task.await;
            self.view.0.write().unwrap_or_else(|e| e.into_inner()).remove(&handle.config.id);
        }
    }

    /// The watched plugin folder, opened when the first rule with a plugin starts.
    async fn plugin_dir(&mut self) -> anyhow::Result<Arc<PluginDir>> {
        if let Some(dir) = self.plugins.get() {
            return Ok(dir.clone());
        }
        let dir = Arc::new(open_plugin_dir(self.plugins_config.clone()).await?);
        Ok(self.plugins.get_or_init(|| dir).clone())
    }

    /// The watched plugin folder, for the admin server: empty until a rule uses a plugin.
    pub fn plugins(&self) -> Plugins {
        self.plugins.clone()
    }

    /// The rules, for the admin server.
    pub fn rules(&self) -> Rules {
        self.view.clone()
    }

    /// Stops every rule (in parallel), then closes the RocketMQ and MQTT connections.
    pub async fn shutdown(&mut self) {
        let rules = std::mem::take(&mut self.rules);
        self.source.client.leave();
        for handle in rules.values() {
            let _ = handle.stop.send(true);
        }
        for (_, handle) in rules {
            let _ = handle.task.await;
        }
        self.source.client.close().await;
        self.sink.close(Duration::from_secs(1)).await;
    }
}

async fn open_plugin_dir(config: PluginsConfig) -> anyhow::Result<PluginDir> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<PluginDir> {
        let runtime = Runtime::new(RuntimeConfig::new(config.cache_dir.clone())).context("plugin runtime")?;
        PluginDir::open(runtime, &config.dir, Duration::from_millis(300))
            .with_context(|| format!("cannot watch the plugin folder {}", config.dir.display()))
    })
    .await?
}

/// What [`Supervisor::apply`] does: the ids to stop for good, and the rules to (re)start.
#[derive(Debug, PartialEq)]
struct Plan {
    stop: Vec<String>,
    /// New rules, and rules whose config changed (stopped first).
    start: Vec<Arc<RuleConfig>>,
}

impl Plan {
    fn new(running: &BTreeMap<&str, &RuleConfig>, wanted: Vec<Arc<RuleConfig>>) -> Plan {
        let wanted_ids: std::collections::HashSet<&str> = wanted.iter().map(|r| r.id.as_str()).collect();
        let stop = running.keys().filter(|id| !wanted_ids.contains(*id)).map(|id| id.to_string()).collect();
        let start = wanted.into_iter().filter(|rule| running.get(rule.id.as_str()).is_none_or(|now| **now != **rule)).collect();
        Plan { stop, start }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{validate_rule, PluginLookup};
    use std::path::Path;

    fn rule(id: &str, parent: &str) -> RuleConfig {
        let body = serde_json::json!({"id": id, "source": {"topic": "T"}, "target": {"parent_topic": parent}});
        validate_rule(body, &[], &PluginLookup { dir: Path::new("/p"), exists: &|_, _| true }).unwrap()
    }

    #[test]
    fn a_plan_touches_only_what_changed() {
        let (a, b, c) = (rule("rule-a", "a"), rule("rule-b", "b"), rule("rule-c", "c"));
        let b2 = rule("rule-b", "b2");
        let running = BTreeMap::from([("rule-a", &a), ("rule-b", &b), ("rule-c", &c)]);
        let shared = |rules: &[&RuleConfig]| rules.iter().map(|r| Arc::new(RuleConfig::clone(r))).collect::<Vec<_>>();
        let d = rule("rule-d", "d");
        let plan = Plan::new(&running, shared(&[&a, &b2, &d]));
        assert_eq!(plan, Plan { stop: vec!["rule-c".into()], start: shared(&[&b2, &d]) });
        let mut off = a.clone();
        off.enabled = false;
        assert_eq!(Plan::new(&running, shared(&[&off, &b, &c])).start, shared(&[&off]), "disabling is a change");
        assert_eq!(Plan::new(&BTreeMap::new(), vec![]), Plan { stop: vec![], start: vec![] });
    }
}
