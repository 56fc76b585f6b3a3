//! The service-wide sections of the file — `[rocketmq]`, `[mqtt]`, `[plugins]`, `[admin]` and
//! `[rules]` — checked and defaulted, secrets taken from the environment.

use super::address::{namesrv_list, parse_host_port, parse_listen, parse_mqtt_url};
use super::error::Errors;
use super::model::*;
use super::raw::*;
use super::rule::is_rocketmq_name;
use super::{env, Context};
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEFAULT_MAX_TOPIC_BYTES: usize = 65535;
/// MQTT's own limit on a packet: its remaining length is at most 268 435 455 bytes.
const MAX_MQTT_PACKET_BYTES: u32 = 268_435_455 + 5;
/// The smallest packet limit that still fits a publish with a short topic and some payload.
const MIN_MQTT_PACKET_BYTES: u32 = 128;
const COMMIT_INTERVAL_MS: std::ops::RangeInclusive<u64> = 100..=60_000;

pub(super) fn check_rocketmq(raw: RawRocketMq, ctx: &Context<'_>, errors: &mut Errors) -> Option<RocketMqConfig> {
    let namesrv = match (ctx.env)(env::ROCKETMQ_NAMESRV) {
        Some(list) => namesrv_list([list.as_str()]),
        None => namesrv_list(raw.namesrv.iter().map(String::as_str)),
    };
    let before = errors.count();
    if namesrv.is_empty() {
        errors.add(
            "[rocketmq] namesrv",
            "no name server given",
            format!("set namesrv = [\"host:9876\"] or the environment variable {}", env::ROCKETMQ_NAMESRV),
        );
    }
    for (i, addr) in namesrv.iter().enumerate() {
        if parse_host_port(addr).is_none() {
            errors.add(
                format!("[rocketmq] namesrv[{i}]"),
                format!("{addr:?} is not host:port"),
                "write each name server as host:port, e.g. \"127.0.0.1:9876\"",
            );
        }
    }
    let access_key = (ctx.env)(env::ROCKETMQ_ACCESS_KEY).or(raw.access_key).filter(|s| !s.is_empty());
    let secret_key = (ctx.env)(env::ROCKETMQ_SECRET_KEY).or(raw.secret_key).filter(|s| !s.is_empty());
    if access_key.is_some() != secret_key.is_some() {
        errors.add(
            "[rocketmq] access_key / secret_key",
            "only one of the two ACL credentials is set",
            format!("set both (secret_key may come from {}) or neither", env::ROCKETMQ_SECRET_KEY),
        );
    }
    let namespace = raw.namespace.filter(|s| !s.is_empty());
    if let Some(ns) = &namespace {
        if !is_rocketmq_name(ns) {
            errors.add("[rocketmq] namespace", format!("{ns:?} has characters RocketMQ refuses"), "use letters, digits, '-' and '_' only");
        }
    }
    let commit_interval_ms = raw.commit_interval_ms.unwrap_or(RocketMqConfig::DEFAULT_COMMIT_INTERVAL.as_millis() as u64);
    if !COMMIT_INTERVAL_MS.contains(&commit_interval_ms) {
        errors.add(
            "[rocketmq] commit_interval_ms",
            format!("{commit_interval_ms} is out of range"),
            format!(
                "use {}..={} milliseconds; 1000 is a good start (shorter: fewer duplicates after a crash, more requests)",
                COMMIT_INTERVAL_MS.start(),
                COMMIT_INTERVAL_MS.end()
            ),
        );
    }
    (errors.count() == before).then(|| RocketMqConfig {
        namesrv,
        access_key,
        secret_key: secret_key.map(Secret::new),
        namespace,
        commit_interval: Duration::from_millis(commit_interval_ms),
    })
}

pub(super) fn check_mqtt(raw: RawMqtt, ctx: &Context<'_>, errors: &mut Errors) -> Option<MqttConfig> {
    let before = errors.count();
    let url = raw.url.unwrap_or_default();
    let endpoint = match parse_mqtt_url(&url) {
        Ok(e) => Some(e),
        Err(problem) => {
            errors.add("[mqtt] url", problem, "write mqtt://host:port (plain) or mqtts://host:port (TLS), e.g. \"mqtt://127.0.0.1:1883\"");
            None
        }
    };
    let protocol = match raw.protocol.as_deref().unwrap_or("5") {
        "5" | "5.0" => Protocol::V5,
        "3.1.1" | "4" => Protocol::V311,
        other => {
            errors.add("[mqtt] protocol", format!("unknown MQTT protocol {other:?}"), "use \"3.1.1\" or \"5\"");
            Protocol::V5
        }
    };
    let client_id = raw.client_id.unwrap_or_else(default_client_id);
    if client_id.is_empty() || client_id.len() > 65535 {
        errors.add("[mqtt] client_id", "empty or too long", "give each inflow host its own client id, e.g. \"inflow-host1\"");
    }
    let max_inflight = raw.max_inflight.unwrap_or(256);
    if !(1..=65535).contains(&max_inflight) {
        errors.add("[mqtt] max_inflight", format!("{max_inflight} is out of range"), "use 1..=65535 (MQTT packet ids); 256 is a good start");
    }
    let max_topic_bytes = raw.max_topic_bytes.unwrap_or(DEFAULT_MAX_TOPIC_BYTES);
    if !(1..=DEFAULT_MAX_TOPIC_BYTES).contains(&max_topic_bytes) {
        errors.add("[mqtt] max_topic_bytes", format!("{max_topic_bytes} is out of range"), "use 1..=65535, the broker's topic length limit");
    }
    if let Some(limit) = raw.max_packet_bytes {
        if !(MIN_MQTT_PACKET_BYTES..=MAX_MQTT_PACKET_BYTES).contains(&limit) {
            errors.add(
                "[mqtt] max_packet_bytes",
                format!("{limit} is out of range"),
                format!(
                    "use {MIN_MQTT_PACKET_BYTES}..={MAX_MQTT_PACKET_BYTES}, the broker's packet size limit \
                     (Mosquitto max_packet_size, HiveMQ max-packet-size), or leave it out"
                ),
            );
        }
    }
    let keep_alive = raw.keep_alive_secs.unwrap_or(30);
    if keep_alive > 65535 {
        errors.add("[mqtt] keep_alive_secs", format!("{keep_alive} is out of range"), "use 0..=65535 seconds");
    }
    let tls = raw.tls.map(|t| TlsConfig {
        ca: t.ca.map(|p| ctx.base_dir.join(p)),
        client_cert: t.client_cert.map(|p| ctx.base_dir.join(p)),
        client_key: t.client_key.map(|p| ctx.base_dir.join(p)),
        server_name: t.server_name,
    });
    if let Some(t) = &tls {
        if t.client_cert.is_some() != t.client_key.is_some() {
            errors.add("[mqtt.tls]", "client_cert and client_key must be given together", "set both PEM files, or neither");
        }
        for (field, path) in [("ca", &t.ca), ("client_cert", &t.client_cert), ("client_key", &t.client_key)] {
            if let Some(p) = path.as_ref().filter(|p| !p.is_file()) {
                errors.add(format!("[mqtt.tls] {field}"), format!("{} is not a readable file", p.display()), "give the path of a PEM file");
            }
        }
    }
    let (host, port, secure) = endpoint?;
    if tls.is_some() && !secure {
        errors.add("[mqtt.tls]", "TLS settings given for a plain mqtt:// url", "use an mqtts:// url, or remove [mqtt.tls]");
    }
    let username = (ctx.env)(env::MQTT_USERNAME).or(raw.username).filter(|s| !s.is_empty());
    let password = (ctx.env)(env::MQTT_PASSWORD).or(raw.password).filter(|s| !s.is_empty()).map(Secret::new);
    (errors.count() == before).then(|| MqttConfig {
        host,
        port,
        tls: if secure { Some(tls.unwrap_or_default()) } else { None },
        client_id,
        protocol,
        username,
        password,
        keep_alive: Duration::from_secs(keep_alive),
        max_inflight: max_inflight as u16,
        max_topic_bytes,
        max_packet_bytes: raw.max_packet_bytes,
        connect_timeout: Duration::from_secs(raw.connect_timeout_secs.unwrap_or(10).max(1)),
    })
}

fn default_client_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    match host.trim() {
        "" => "inflow".to_string(),
        h => format!("inflow-{h}"),
    }
}

pub(super) fn check_plugins(raw: RawPlugins, base_dir: &Path) -> PluginsConfig {
    let dir = base_dir.join(raw.dir.unwrap_or_else(|| PathBuf::from("plugins")));
    let cache_dir = match raw.cache_dir {
        Some(p) => base_dir.join(p),
        None => inflow_plugin::RuntimeConfig::default_cache_dir(),
    };
    PluginsConfig { dir, cache_dir }
}

/// The admin section; without `listen`, the server listens on loopback. The token is not checked here
/// (see [`AdminConfig::check_token`]).
pub(super) fn check_admin(raw: RawAdmin, ctx: &Context<'_>, errors: &mut Errors) -> AdminConfig {
    let listen = match (raw.enabled, raw.listen.as_deref()) {
        (Some(false), _) | (_, Some("")) => None,
        (_, None) => Some(AdminConfig::DEFAULT_LISTEN),
        (_, Some(text)) => {
            let addr = parse_listen(text);
            if addr.is_none() {
                errors.add(
                    "[admin] listen",
                    format!("{text:?} is not an IP address and port"),
                    "write e.g. \"127.0.0.1:9464\" (this host only) or \"0.0.0.0:9464\" (every interface; needs INFLOW_ADMIN_TOKEN); \
                     enabled = false turns the admin server off",
                );
            }
            addr
        }
    };
    let max_body_bytes = raw.max_body_bytes.unwrap_or(AdminConfig::DEFAULT_MAX_BODY_BYTES);
    if !(1024..=64 << 20).contains(&max_body_bytes) {
        errors.add("[admin] max_body_bytes", format!("{max_body_bytes} is out of range"), "use 1024..=67108864 bytes; 1048576 (1 MiB) is the default");
    }
    let token = (ctx.env)(env::ADMIN_TOKEN).filter(|s| !s.is_empty()).map(Secret::new);
    AdminConfig { listen, max_body_bytes, token }
}

pub(super) fn check_rules_folder(raw: RawRulesFolder, base_dir: &Path) -> PathBuf {
    base_dir.join(raw.dir.unwrap_or_else(|| PathBuf::from("rules.d")))
}
