//! The TOML file as written: every section rejects unknown fields. Values that need checks beyond
//! their type (ids, URLs, policies) stay strings here and are checked in `validate`, so that one
//! run reports all of them.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRocketMq {
    #[serde(default)]
    pub namesrv: Vec<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    pub url: Option<String>,
    pub client_id: Option<String>,
    pub protocol: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub keep_alive_secs: Option<u64>,
    pub max_inflight: Option<u32>,
    pub max_topic_bytes: Option<usize>,
    pub max_packet_bytes: Option<u32>,
    pub connect_timeout_secs: Option<u64>,
    pub tls: Option<RawTls>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub ca: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub server_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPlugins {
    pub dir: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: Option<String>,
    #[serde(default)]
    pub description: String,
    pub enabled: Option<bool>,
    pub source: Option<RawSource>,
    pub target: Option<RawTarget>,
    pub plugin: Option<RawPlugin>,
    pub on_error: Option<String>,
    pub limits: Option<RawLimits>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub topic: Option<String>,
    pub expression: Option<String>,
    pub group: Option<String>,
    pub start: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub parent_topic: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlugin {
    pub name: Option<String>,
    #[serde(default)]
    pub config: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub call_deadline_ms: Option<u64>,
    pub memory_mb: Option<usize>,
    pub max_publishes: Option<usize>,
    pub max_payload_bytes: Option<usize>,
    pub max_unacked_per_queue: Option<usize>,
}
