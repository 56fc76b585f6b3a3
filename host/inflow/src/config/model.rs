//! The validated configuration the service runs with.
//!
//! Built only by [`super::load`] / [`super::parse`]: every value here has passed validation.

use super::{env, ConfigError};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A secret string (a password or a key): never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub rocketmq: RocketMqConfig,
    pub mqtt: MqttConfig,
    pub plugins: PluginsConfig,
    pub admin: AdminConfig,
    /// The rules folder (`[rules] dir`): one `<id>.toml` per rule, beside the `[[rule]]`s of the
    /// file. Absolute; by default `rules.d` beside the config file. Not read by the loader.
    pub rules_dir: PathBuf,
    /// The `[[rule]]`s of the file.
    pub rules: Vec<RuleConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RocketMqConfig {
    pub namesrv: Vec<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<Secret>,
    pub namespace: Option<String>,
    /// How often consumed offsets are committed to the broker. What was delivered since the last
    /// commit is delivered again after a crash: shorter means fewer duplicates, more requests.
    pub commit_interval: Duration,
}

impl RocketMqConfig {
    pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_secs(1);
}

/// No name servers and no ACL, the rest defaulted: for commands that take the name servers from
/// their flags.
impl Default for RocketMqConfig {
    fn default() -> Self {
        RocketMqConfig {
            namesrv: Vec::new(),
            access_key: None,
            secret_key: None,
            namespace: None,
            commit_interval: Self::DEFAULT_COMMIT_INTERVAL,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V311,
    V5,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub tls: Option<TlsConfig>,
    pub client_id: String,
    pub protocol: Protocol,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub keep_alive: Duration,
    /// Publishes awaiting their acknowledgement, over all rules: the back-pressure window.
    pub max_inflight: u16,
    /// Longest topic (UTF-8 bytes) the broker accepts; longer ones are mapping errors.
    pub max_topic_bytes: usize,
    /// Largest MQTT packet the broker accepts, as the operator states it. An MQTT 3.1.1 broker
    /// cannot announce its limit (it closes the connection on a larger packet), so a publish
    /// whose encoded packet is larger is refused before sending. `None`: no limit stated (under
    /// MQTT 5 the broker's announced maximum applies).
    pub max_packet_bytes: Option<u32>,
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsConfig {
    /// PEM file with the CA certificates to trust; the public web roots when unset.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain and key, for brokers that ask for one.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Name checked against the broker's certificate; the URL's host when unset.
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PluginsConfig {
    pub dir: PathBuf,
    pub cache_dir: PathBuf,
}

/// The admin HTTP server (rules API, health, readiness, metrics, console).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// Where it listens; `None` when turned off. Default `127.0.0.1:9464`.
    pub listen: Option<SocketAddr>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// The bearer token clients must send, from the environment variable `INFLOW_ADMIN_TOKEN`
    /// only (never from the file).
    pub token: Option<Secret>,
}

impl AdminConfig {
    pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);
    pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

    /// Refuses a server reachable from other hosts without a token. Not part of validation,
    /// because `inflow check` may run without the service's environment; `inflow run` calls it.
    pub fn check_token(&self) -> Result<(), ConfigError> {
        match self.listen {
            Some(addr) if !addr.ip().is_loopback() && self.token.is_none() => Err(ConfigError::new(
                "[admin] listen",
                format!("the admin API would listen on {addr}, reachable from other hosts, without a token"),
                format!(
                    "set the environment variable {} to a long random string (clients send it as \
                     `Authorization: Bearer <token>`), or listen on 127.0.0.1",
                    env::ADMIN_TOKEN
                ),
            )),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Send the message back to RocketMQ (retry topic of the group, then `%DLQ%`).
    DeadLetter,
    /// Log, count, and go on.
    Skip,
    /// Stop the rule and hold its offsets.
    Pause,
}

impl OnError {
    pub const NAMES: [&'static str; 3] = ["dead-letter", "skip", "pause"];

    pub fn parse(name: &str) -> Option<OnError> {
        match name {
            "dead-letter" => Some(OnError::DeadLetter),
            "skip" => Some(OnError::Skip),
            "pause" => Some(OnError::Pause),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OnError::DeadLetter => "dead-letter",
            OnError::Skip => "skip",
            OnError::Pause => "pause",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleConfig {
    pub id: String,
    pub description: String,
    pub enabled: bool,
    pub source: SourceConfig,
    pub parent_topic: String,
    /// MQTT topic filters the rule may publish to besides its parent topic and what is under it.
    /// Valid filters, none reaching another rule's parent topic.
    pub allow_topics: Vec<String>,
    pub plugin: Option<PluginRef>,
    pub on_error: OnError,
    /// How many workers map the rule's messages at once, each with its own plugin instance, so
    /// messages of different queues are mapped in parallel (order per queue holds). 1..=64;
    /// default: the number of cores.
    pub workers: usize,
    pub limits: RuleLimits,
}

impl RuleConfig {
    /// The rule as its plugin instances are told about it.
    pub fn plugin_context(&self) -> inflow_plugin::RuleContext {
        inflow_plugin::RuleContext { rule_id: self.id.clone(), parent_topic: self.parent_topic.clone() }
    }

    /// The sandbox limits of the rule's plugin instances.
    pub fn plugin_limits(&self) -> inflow_plugin::Limits {
        self.limits.plugin_limits()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    pub topic: String,
    pub expression: String,
    pub group: String,
    pub start: StartFrom,
}

/// Where a group with no committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    Latest,
    Earliest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    pub name: String,
    pub config: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleLimits {
    pub call_deadline: Duration,
    pub memory_bytes: usize,
    pub max_publishes: usize,
    pub max_payload_bytes: usize,
    /// Messages of the rule taken from RocketMQ but not yet acknowledged by MQTT, per queue.
    pub max_unacked_per_queue: usize,
}

impl RuleLimits {
    /// The sandbox limits of plugin instances under these limits (`inflow plugin test` too).
    pub fn plugin_limits(&self) -> inflow_plugin::Limits {
        inflow_plugin::Limits {
            call_deadline: self.call_deadline,
            memory_bytes: self.memory_bytes,
            max_publishes: self.max_publishes,
            max_payload_bytes: self.max_payload_bytes,
            ..inflow_plugin::Limits::default()
        }
    }
}

impl Default for RuleLimits {
    fn default() -> Self {
        RuleLimits {
            call_deadline: Duration::from_millis(100),
            memory_bytes: 64 << 20,
            max_publishes: 100,
            max_payload_bytes: 256 << 20,
            max_unacked_per_queue: 1000,
        }
    }
}
