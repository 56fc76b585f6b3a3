//! Starts, stops and reports the rules: one task per rule ([`crate::rule`]), sharing one
//! RocketMQ client, one MQTT sink and one plugin runtime. Rules start and stop one by one ([`Supervisor::start_rule`], [`Supervisor::stop_rule`]),
//! the building blocks of the admin API and of config hot reload.

pub use crate::rule::{QueueReport, RuleCounters, RuleStatus};

use crate::config::{Config, RuleConfig};
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
    config: RuleConfig,
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
            .map(|(id, v)| RuleReport { id: id.clone(), status: v.status.borrow().clone(), counters: v.counters.clone() })
            .collect()
    }
}

pub struct Supervisor {
    source: RocketMq,
    sink: Sink,
    plugins: Option<Arc<PluginDir>>,
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
    /// Connects the shared parts and starts every rule of the config.
    pub async fn start(config: Config, drain_grace: Duration) -> anyhow::Result<Supervisor> {
        let client = crate::source::client(&config.rocketmq).context("RocketMQ client")?;
        let sink = Sink::start(config.mqtt.clone()).context("MQTT sink")?;
        let plugins = if config.rules.iter().any(|r| r.plugin.is_some()) {
            let plugins_cfg = config.plugins.clone();
            Some(Arc::new(
                tokio::task::spawn_blocking(move || -> anyhow::Result<PluginDir> {
                    let runtime = Runtime::new(RuntimeConfig::new(plugins_cfg.cache_dir.clone())).context("plugin runtime")?;
                    Ok(PluginDir::open(runtime, &plugins_cfg.dir, Duration::from_millis(300))?)
                })
                .await??,
            ))
        } else {
            None
        };
        let mut supervisor = Supervisor {
            source: RocketMq { client, config: config.rocketmq.clone() },
            sink,
            plugins,
            max_topic_bytes: config.mqtt.max_topic_bytes,
            drain_grace,
            rules: BTreeMap::new(),
            view: Rules::default(),
            counters: HashMap::new(),
        };
        for rule in config.rules {
            supervisor.start_rule(rule)?;
        }
        Ok(supervisor)
    }

    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    /// Starts one rule (a disabled rule is registered and consumes nothing).
    pub fn start_rule(&mut self, rule: RuleConfig) -> anyhow::Result<()> {
        anyhow::ensure!(!self.rules.contains_key(&rule.id), "rule {:?} is already running; stop it first", rule.id);
        let plugin = match &rule.plugin {
            None => None,
            Some(p) => Some(
                self.plugins
                    .as_ref()
                    .with_context(|| format!("rule {:?} names plugin {:?} but no plugin folder is watched", rule.id, p.name))?
                    .subscribe(&p.name),
            ),
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

    /// Stops one rule: it stops pulling, finishes and acknowledges what is in flight, commits.
    pub async fn stop_rule(&mut self, id: &str) -> Option<RuleConfig> {
        let handle = self.rules.remove(id)?;
        let _ = handle.stop.send(true);
        let _ = handle.task.await;
        self.view.0.write().unwrap_or_else(|e| e.into_inner()).remove(id);
        Some(handle.config)
    }

    /// The watched plugin folder (None: no rule uses a plugin), for the admin server.
    pub fn plugins(&self) -> Option<Arc<PluginDir>> {
        self.plugins.clone()
    }

    /// The rules, for the admin server.
    pub fn rules(&self) -> Rules {
        self.view.clone()
    }

    /// Stops every rule (in parallel), then closes the MQTT connection.
    pub async fn shutdown(mut self) {
        let rules = std::mem::take(&mut self.rules);
        for handle in rules.values() {
            let _ = handle.stop.send(true);
        }
        for (_, handle) in rules {
            let _ = handle.task.await;
        }
        self.sink.close(Duration::from_secs(1)).await;
    }
}
