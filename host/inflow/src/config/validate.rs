use super::model::*;
use super::raw::*;
use super::{env, Context};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One mistake in the config: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub place: String,
    pub problem: String,
    pub fix: String,
}

/// Every mistake found in one config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn single(place: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError { place: place.into(), problem: problem.into(), fix: fix.into() }])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the config:", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {}: {}\n      fix: {}", e.place, e.problem, e.fix)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn add(&mut self, place: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) {
        self.0.push(ConfigError { place: place.into(), problem: problem.into(), fix: fix.into() });
    }
}

const TOP_LEVEL: [&str; 4] = ["rocketmq", "mqtt", "plugins", "rule"];
const DEFAULT_MAX_TOPIC_BYTES: usize = 65535;

pub fn parse(text: &str, ctx: &Context<'_>) -> Result<Config, ConfigErrors> {
    let mut errors = Errors::default();
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        ConfigErrors::single("the file", format!("not valid TOML: {e}"), "fix the TOML syntax at the place shown")
    })?;
    for key in table.keys().filter(|k| !TOP_LEVEL.contains(&k.as_str())) {
        errors.add(
            format!("[{key}]"),
            "unknown section",
            format!("remove it; the sections are {}", TOP_LEVEL.map(|s| format!("[{s}]")).join(", ").replace("[rule]", "[[rule]]")),
        );
    }
    let rocketmq: RawRocketMq = section(&table, "rocketmq", &mut errors).unwrap_or_default();
    let mqtt: RawMqtt = section(&table, "mqtt", &mut errors).unwrap_or_default();
    let plugins: RawPlugins = section(&table, "plugins", &mut errors).unwrap_or_default();

    let rocketmq = check_rocketmq(rocketmq, ctx, &mut errors);
    let mqtt = check_mqtt(mqtt, ctx, &mut errors);
    let plugins = check_plugins(plugins, ctx.base_dir);
    let rules = check_rules(&table, &plugins.dir, ctx, &mut errors);

    match (errors.0.is_empty(), rocketmq, mqtt) {
        (true, Some(rocketmq), Some(mqtt)) => Ok(Config { rocketmq, mqtt, plugins, rules }),
        _ => Err(ConfigErrors(errors.0)),
    }
}

fn section<T: DeserializeOwned + Default>(table: &toml::Table, name: &str, errors: &mut Errors) -> Option<T> {
    let value = table.get(name)?;
    match value.clone().try_into::<T>() {
        Ok(v) => Some(v),
        Err(e) => {
            errors.add(format!("[{name}]"), clean(&e), "use only the fields this section documents, with their types");
            None
        }
    }
}

/// serde's message without the trailing location noise toml adds for values (it has no span here).
fn clean(e: &toml::de::Error) -> String {
    e.message().trim().to_string()
}

fn check_rocketmq(raw: RawRocketMq, ctx: &Context<'_>, errors: &mut Errors) -> Option<RocketMqConfig> {
    let namesrv: Vec<String> = match (ctx.env)(env::ROCKETMQ_NAMESRV) {
        Some(list) => list.split(';').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        None => raw.namesrv,
    };
    let mut ok = true;
    if namesrv.is_empty() {
        ok = false;
        errors.add(
            "[rocketmq] namesrv",
            "no name server given",
            format!("set namesrv = [\"host:9876\"] or the environment variable {}", env::ROCKETMQ_NAMESRV),
        );
    }
    for (i, addr) in namesrv.iter().enumerate() {
        if parse_host_port(addr).is_none() {
            ok = false;
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
        ok = false;
        errors.add(
            "[rocketmq] access_key / secret_key",
            "only one of the two ACL credentials is set",
            format!(
                "set both (secret_key may come from {}) or neither",
                env::ROCKETMQ_SECRET_KEY
            ),
        );
    }
    let namespace = raw.namespace.filter(|s| !s.is_empty());
    if let Some(ns) = &namespace {
        if !is_rocketmq_name(ns) {
            ok = false;
            errors.add("[rocketmq] namespace", format!("{ns:?} has characters RocketMQ refuses"), "use letters, digits, '-' and '_' only");
        }
    }
    ok.then(|| RocketMqConfig { namesrv, access_key, secret_key: secret_key.map(Secret::new), namespace })
}

fn check_mqtt(raw: RawMqtt, ctx: &Context<'_>, errors: &mut Errors) -> Option<MqttConfig> {
    let mut ok = true;
    let url = raw.url.unwrap_or_default();
    let endpoint = match parse_mqtt_url(&url) {
        Ok(e) => Some(e),
        Err(problem) => {
            ok = false;
            errors.add("[mqtt] url", problem, "write mqtt://host:port (plain) or mqtts://host:port (TLS), e.g. \"mqtt://127.0.0.1:1883\"");
            None
        }
    };
    let protocol = match raw.protocol.as_deref().unwrap_or("5") {
        "5" | "5.0" => Protocol::V5,
        "3.1.1" | "4" => Protocol::V311,
        other => {
            ok = false;
            errors.add("[mqtt] protocol", format!("unknown MQTT protocol {other:?}"), "use \"3.1.1\" or \"5\"");
            Protocol::V5
        }
    };
    let client_id = raw.client_id.unwrap_or_else(default_client_id);
    if client_id.is_empty() || client_id.len() > 65535 {
        ok = false;
        errors.add("[mqtt] client_id", "empty or too long", "give each inflow host its own client id, e.g. \"inflow-host1\"");
    }
    let max_inflight = raw.max_inflight.unwrap_or(256);
    if !(1..=65535).contains(&max_inflight) {
        ok = false;
        errors.add("[mqtt] max_inflight", format!("{max_inflight} is out of range"), "use 1..=65535 (MQTT packet ids); 256 is a good start");
    }
    let max_topic_bytes = raw.max_topic_bytes.unwrap_or(DEFAULT_MAX_TOPIC_BYTES);
    if !(1..=DEFAULT_MAX_TOPIC_BYTES).contains(&max_topic_bytes) {
        ok = false;
        errors.add("[mqtt] max_topic_bytes", format!("{max_topic_bytes} is out of range"), "use 1..=65535, the broker's topic length limit");
    }
    let keep_alive = raw.keep_alive_secs.unwrap_or(30);
    if keep_alive > 65535 {
        ok = false;
        errors.add("[mqtt] keep_alive_secs", format!("{keep_alive} is out of range"), "use 0..=65535 seconds");
    }
    let tls = raw.tls.map(|t| TlsConfig { ca: t.ca, client_cert: t.client_cert, client_key: t.client_key, server_name: t.server_name });
    if let Some(t) = &tls {
        if t.client_cert.is_some() != t.client_key.is_some() {
            ok = false;
            errors.add("[mqtt.tls]", "client_cert and client_key must be given together", "set both PEM files, or neither");
        }
        for (field, path) in [("ca", &t.ca), ("client_cert", &t.client_cert), ("client_key", &t.client_key)] {
            if let Some(p) = path {
                let p = ctx.base_dir.join(p);
                if !p.is_file() {
                    ok = false;
                    errors.add(format!("[mqtt.tls] {field}"), format!("{} is not a readable file", p.display()), "give the path of a PEM file");
                }
            }
        }
    }
    let tls = tls.map(|t| TlsConfig {
        ca: t.ca.map(|p| ctx.base_dir.join(p)),
        client_cert: t.client_cert.map(|p| ctx.base_dir.join(p)),
        client_key: t.client_key.map(|p| ctx.base_dir.join(p)),
        server_name: t.server_name,
    });
    let (host, port, secure) = endpoint?;
    if tls.is_some() && !secure {
        ok = false;
        errors.add("[mqtt.tls]", "TLS settings given for a plain mqtt:// url", "use an mqtts:// url, or remove [mqtt.tls]");
    }
    let username = (ctx.env)(env::MQTT_USERNAME).or(raw.username).filter(|s| !s.is_empty());
    let password = (ctx.env)(env::MQTT_PASSWORD).or(raw.password).filter(|s| !s.is_empty()).map(Secret::new);
    ok.then(|| MqttConfig {
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

/// `mqtt://host[:port]` or `mqtts://host[:port]` → (host, port, tls).
pub(crate) fn parse_mqtt_url(url: &str) -> Result<(String, u16, bool), String> {
    let (rest, secure) = if let Some(r) = url.strip_prefix("mqtt://") {
        (r, false)
    } else if let Some(r) = url.strip_prefix("mqtts://") {
        (r, true)
    } else if url.is_empty() {
        return Err("no MQTT broker url".into());
    } else {
        return Err(format!("{url:?} does not start with mqtt:// or mqtts://"));
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') || rest.contains('@') {
        return Err(format!("{url:?} has a path or user info; credentials go in username / password"));
    }
    let default_port = if secure { 8883 } else { 1883 };
    let hp = if let Some(host) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        (host.to_string(), default_port)
    } else if rest.contains(':') {
        parse_host_port(rest).ok_or_else(|| format!("{url:?} has a bad host or port"))?
    } else {
        (rest.to_string(), default_port)
    };
    if hp.0.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok((hp.0, hp.1, secure))
}

/// `host:port` or `[v6]:port` → (host, port); host without brackets.
fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h, p)
    } else {
        s.rsplit_once(':')?
    };
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| (host.to_string(), port))
}

fn check_plugins(raw: RawPlugins, base_dir: &Path) -> PluginsConfig {
    let dir = base_dir.join(raw.dir.unwrap_or_else(|| PathBuf::from("plugins")));
    let cache_dir = match raw.cache_dir {
        Some(p) => base_dir.join(p),
        None => inflow_plugin::RuntimeConfig::default_cache_dir(),
    };
    PluginsConfig { dir, cache_dir }
}

fn check_rules(table: &toml::Table, plugin_dir: &Path, ctx: &Context<'_>, errors: &mut Errors) -> Vec<RuleConfig> {
    let items = match table.get("rule") {
        None => return Vec::new(),
        Some(toml::Value::Array(items)) => items.clone(),
        Some(_) => {
            errors.add("rule", "rules must be an array of tables", "write each rule as a [[rule]] table");
            return Vec::new();
        }
    };
    let mut rules = Vec::new();
    // (parent topic / group) → place of the first rule that used it
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut parents: HashMap<String, String> = HashMap::new();
    let mut groups: HashMap<String, String> = HashMap::new();
    for (index, item) in items.into_iter().enumerate() {
        let id_hint = item.get("id").and_then(|v| v.as_str()).map(str::to_string);
        let place = match &id_hint {
            Some(id) => format!("rule[{index}] (id {id:?})"),
            None => format!("rule[{index}]"),
        };
        let raw: RawRule = match item.try_into() {
            Ok(r) => r,
            Err(e) => {
                errors.add(&place, clean(&e), "use only the documented rule fields: id, description, enabled, source, target, plugin, on_error, limits");
                continue;
            }
        };
        let before = errors.0.len();
        let rule = check_rule(raw, &place, plugin_dir, ctx, errors);
        let valid = errors.0.len() == before;
        // Duplicates are checked for every rule, so a rule with other mistakes still shows them.
        if let Some(first) = ids.insert(rule.id.clone(), place.clone()) {
            errors.add(&place, format!("rule id {:?} is also used by {first}", rule.id), "give every rule its own id");
        }
        if let Some(first) = parents.insert(rule.parent_topic.clone(), place.clone()) {
            errors.add(
                &place,
                format!("parent topic {:?} is also the target of {first}; one rule per MQTT parent topic", rule.parent_topic),
                "give one of the two rules another target.parent_topic, or merge them",
            );
        }
        if let Some(first) = groups.insert(rule.source.group.clone(), place.clone()) {
            errors.add(
                &place,
                format!("consumer group {:?} is also used by {first}", rule.source.group),
                "give each rule its own source.group (or leave it out: it defaults to inflow-<id>)",
            );
        }
        if valid {
            rules.push(rule);
        }
    }
    rules
}

/// The rule as written, with its mistakes added to `errors`.
fn check_rule(raw: RawRule, place: &str, plugin_dir: &Path, ctx: &Context<'_>, errors: &mut Errors) -> RuleConfig {
    let id = raw.id.unwrap_or_default();
    if let Err(problem) = check_rule_id(&id) {
        errors.add(format!("{place} id"), problem, "use 3 to 64 letters, digits, '-' or '_', with at least one letter or digit");
    }
    let (topic, expression, group, start) = match raw.source {
        None => {
            errors.add(format!("{place} source"), "missing", "add [rule.source] with topic = \"...\"");
            (String::new(), String::new(), String::new(), StartFrom::Latest)
        }
        Some(s) => {
            let topic = s.topic.unwrap_or_default();
            if !is_rocketmq_name(&topic) || topic.len() > 127 {
                errors.add(
                    format!("{place} source.topic"),
                    format!("{topic:?} is not a valid RocketMQ topic"),
                    "use 1 to 127 letters, digits, '-', '_', '%' or '|'",
                );
            }
            let expression = s.expression.unwrap_or_else(|| "*".to_string());
            if let Err(problem) = check_expression(&expression) {
                errors.add(format!("{place} source.expression"), problem, "use \"*\" or tags joined by ||, e.g. \"tagA || tagB\"");
            }
            let group = s.group.unwrap_or_else(|| format!("inflow-{id}"));
            if !is_rocketmq_name(&group) || group.len() > 255 {
                errors.add(format!("{place} source.group"), format!("{group:?} is not a valid consumer group"), "use letters, digits, '-', '_', '%' or '|'");
            }
            let start = match s.start.as_deref().unwrap_or("latest") {
                "latest" => StartFrom::Latest,
                "earliest" => StartFrom::Earliest,
                other => {
                    errors.add(format!("{place} source.start"), format!("unknown start {other:?}"), "use \"latest\" or \"earliest\"");
                    StartFrom::Latest
                }
            };
            (topic, expression, group, start)
        }
    };
    let parent_topic = raw.target.and_then(|t| t.parent_topic).unwrap_or_default();
    if let Err(problem) = check_parent_topic(&parent_topic) {
        errors.add(format!("{place} target.parent_topic"), problem, "use one MQTT topic level without '/', '+', '#', e.g. \"devices\"");
    }
    let plugin = match raw.plugin {
        None => None,
        Some(p) => {
            let name = p.name.unwrap_or_default();
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                errors.add(format!("{place} plugin.name"), format!("{name:?} is not a plugin name"), "give the file name of the plugin without .wasm, e.g. \"my-mapping\"");
            } else if !(ctx.plugin_exists)(plugin_dir, &name) {
                errors.add(
                    format!("{place} plugin.name"),
                    format!("unknown plugin {name:?}: no {}", super::plugin_file(plugin_dir, &name).display()),
                    format!("put {name}.wasm into {} or fix the name", plugin_dir.display()),
                );
            }
            Some(PluginRef { name, config: p.config })
        }
    };
    let on_error = match raw.on_error.as_deref() {
        None => OnError::DeadLetter,
        Some(name) => OnError::parse(name).unwrap_or_else(|| {
            errors.add(format!("{place} on_error"), format!("unknown policy {name:?}"), format!("use one of {}", OnError::NAMES.join(", ")));
            OnError::DeadLetter
        }),
    };
    let limits = check_limits(raw.limits, place, errors);
    RuleConfig {
        id,
        description: raw.description,
        enabled: raw.enabled.unwrap_or(true),
        source: SourceConfig { topic, expression, group, start },
        parent_topic,
        plugin,
        on_error,
        limits,
    }
}

fn check_limits(raw: Option<RawLimits>, place: &str, errors: &mut Errors) -> RuleLimits {
    let mut limits = RuleLimits::default();
    let Some(raw) = raw else { return limits };
    let mut range = |field: &str, value: Option<usize>, min: usize, max: usize, unit: &str| -> Option<usize> {
        let v = value?;
        if (min..=max).contains(&v) {
            Some(v)
        } else {
            errors.add(format!("{place} limits.{field}"), format!("{v} is out of range"), format!("use {min}..={max} {unit}"));
            None
        }
    };
    if let Some(ms) = range("call_deadline_ms", raw.call_deadline_ms.map(|v| v as usize), 1, 60_000, "milliseconds") {
        limits.call_deadline = Duration::from_millis(ms as u64);
    }
    if let Some(mb) = range("memory_mb", raw.memory_mb, 1, 4096, "MiB") {
        limits.memory_bytes = mb << 20;
    }
    if let Some(n) = range("max_publishes", raw.max_publishes, 1, 10_000, "publishes per message") {
        limits.max_publishes = n;
    }
    if let Some(n) = range("max_payload_bytes", raw.max_payload_bytes, 1, 256 << 20, "bytes") {
        limits.max_payload_bytes = n;
    }
    if let Some(n) = range("max_unacked_per_queue", raw.max_unacked_per_queue, 1, 100_000, "messages") {
        limits.max_unacked_per_queue = n;
    }
    limits
}

pub(crate) fn check_rule_id(id: &str) -> Result<(), String> {
    if !(3..=64).contains(&id.len()) {
        return Err(format!("rule id {id:?} has {} characters, not 3 to 64", id.chars().count()));
    }
    if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return Err(format!("rule id {id:?} contains {c:?}"));
    }
    if !id.chars().any(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("rule id {id:?} has no letter or digit"));
    }
    Ok(())
}

fn check_parent_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("missing".into());
    }
    if let Some(c) = topic.chars().find(|c| matches!(c, '/' | '+' | '#' | '\0')) {
        return Err(format!("{topic:?} contains {c:?}"));
    }
    if topic.starts_with('$') {
        return Err(format!("{topic:?} starts with '$', which MQTT reserves for the broker"));
    }
    if topic.len() > 1024 {
        return Err(format!("{topic:?} is longer than 1024 bytes"));
    }
    Ok(())
}

fn check_expression(expr: &str) -> Result<(), String> {
    let expr = expr.trim();
    if expr.is_empty() {
        return Err("empty expression".into());
    }
    if expr == "*" {
        return Ok(());
    }
    for tag in expr.split("||").map(str::trim) {
        if tag.is_empty() || tag == "*" || tag.contains('|') {
            return Err(format!("{expr:?} is not a tag list"));
        }
    }
    Ok(())
}

fn is_rocketmq_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '%' | '|'))
}

#[cfg(test)]
mod tests {
    use super::super::{Context, OnError, Protocol};
    use super::*;

    const BASE: &str = r#"
[rocketmq]
namesrv = ["127.0.0.1:9876"]
[mqtt]
url = "mqtt://127.0.0.1:1883"
client_id = "c1"
"#;

    fn parse_with(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |k: &str| env.get(k).cloned();
        let exists = |_: &Path, name: &str| name == "known";
        parse(text, &Context { base_dir: Path::new("/etc/inflow"), env: &lookup, plugin_exists: &exists })
    }

    fn errors(text: &str) -> Vec<ConfigError> {
        parse_with(text, &[]).expect_err("must fail").0
    }

    #[test]
    fn a_full_config_parses_with_defaults() {
        let c = parse_with(
            &format!(
                "{BASE}\n[[rule]]\nid = \"rule1\"\nsource = {{ topic = \"T1\" }}\ntarget = {{ parent_topic = \"p1\" }}\n\
                 [[rule]]\nid = \"r-2\"\nenabled = false\nsource = {{ topic = \"T2\", expression = \"a || b\", group = \"G\" }}\n\
                 target = {{ parent_topic = \"p2\" }}\nplugin = {{ name = \"known\", config = \"{{}}\" }}\non_error = \"pause\"\n\
                 limits = {{ call_deadline_ms = 20, memory_mb = 8, max_publishes = 3 }}\n"
            ),
            &[],
        )
        .unwrap();
        assert_eq!(c.mqtt.protocol, Protocol::V5);
        assert_eq!((c.mqtt.host.as_str(), c.mqtt.port, c.mqtt.tls.is_none()), ("127.0.0.1", 1883, true));
        assert_eq!(c.plugins.dir, Path::new("/etc/inflow/plugins"));
        let (r1, r2) = (&c.rules[0], &c.rules[1]);
        assert_eq!(r1.source.group, "inflow-rule1");
        assert_eq!(r1.source.expression, "*");
        assert_eq!(r1.on_error, OnError::DeadLetter);
        assert!(r1.enabled && !r2.enabled);
        assert_eq!(r2.source.group, "G");
        assert_eq!(r2.plugin.as_ref().unwrap().name, "known");
        assert_eq!(r2.on_error, OnError::Pause);
        assert_eq!(r2.limits.call_deadline, Duration::from_millis(20));
        assert_eq!(r2.limits.memory_bytes, 8 << 20);
        assert_eq!(r2.limits.max_publishes, 3);
    }

    #[test]
    fn every_mistake_is_reported_at_once_with_its_place() {
        let text = format!(
            "{BASE}\n[[rule]]\nid = \"x\"\nsource = {{ topic = \"T\" }}\ntarget = {{ parent_topic = \"a/b\" }}\non_error = \"retry\"\n\
             [[rule]]\nid = \"ok-1\"\nsource = {{ topic = \"T\" }}\ntarget = {{ parent_topic = \"same\" }}\nplugin = {{ name = \"nope\" }}\n\
             [[rule]]\nid = \"ok-1\"\nsource = {{ topic = \"T\" }}\ntarget = {{ parent_topic = \"same\" }}\n\
             [[rule]]\nid = \"---\"\nsource = {{ topic = \"T\" }}\ntarget = {{ parent_topic = \"q\" }}\n\
             [[rule]]\nid = \"typo\"\nsourse = {{ topic = \"T\" }}\n"
        );
        let errs = errors(&text);
        let has = |place: &str, problem: &str| errs.iter().any(|e| e.place.contains(place) && e.problem.contains(problem));
        assert!(has("rule[0] (id \"x\") id", "1 characters"), "{errs:#?}");
        assert!(has("rule[0]", "a/b"), "{errs:#?}");
        assert!(has("rule[0] (id \"x\") on_error", "unknown policy \"retry\""), "{errs:#?}");
        assert!(has("rule[1] (id \"ok-1\") plugin.name", "unknown plugin \"nope\""), "{errs:#?}");
        assert!(has("rule[2]", "also used by rule[1]"), "{errs:#?}");
        assert!(has("rule[2]", "parent topic \"same\" is also the target of rule[1]"), "{errs:#?}");
        assert!(has("rule[3]", "no letter or digit"), "{errs:#?}");
        assert!(has("rule[4] (id \"typo\")", "sourse"), "{errs:#?}");
        assert!(errs.iter().all(|e| !e.fix.is_empty()));
    }

    #[test]
    fn rule_ids() {
        assert!(check_rule_id("abc").is_ok());
        assert!(check_rule_id("a_b-C9").is_ok());
        assert!(check_rule_id(&"a".repeat(64)).is_ok());
        assert!(check_rule_id("ab").is_err());
        assert!(check_rule_id(&"a".repeat(65)).is_err());
        assert!(check_rule_id("a b c").is_err());
        assert!(check_rule_id("___").is_err());
        assert!(check_rule_id("ab.c").is_err());
    }

    #[test]
    fn urls_and_protocols() {
        assert_eq!(parse_mqtt_url("mqtts://broker.example"), Ok(("broker.example".into(), 8883, true)));
        assert_eq!(parse_mqtt_url("mqtt://[::1]:1884"), Ok(("::1".into(), 1884, false)));
        for bad in ["http://x:1883", "mqtt://", "mqtt://h:0", "mqtt://h:99999", "mqtt://u:p@h", "mqtt://h/path", ""] {
            assert!(parse_mqtt_url(bad).is_err(), "{bad}");
        }
        let errs = errors("[rocketmq]\nnamesrv = [\"nohost\"]\n[mqtt]\nurl = \"tcp://x\"\nprotocol = \"4.0\"\nmax_inflight = 0\n");
        for place in ["namesrv[0]", "[mqtt] url", "[mqtt] protocol", "[mqtt] max_inflight"] {
            assert!(errs.iter().any(|e| e.place.contains(place)), "{place}: {errs:#?}");
        }
    }

    #[test]
    fn unknown_fields_and_sections_are_refused() {
        let errs = errors(&format!("{BASE}\n[metrics]\nport = 1\n"));
        assert!(errs.iter().any(|e| e.place == "[metrics]"), "{errs:#?}");
        let errs = errors("[rocketmq]\nnamesrv = [\"h:1\"]\nsecret = \"x\"\n[mqtt]\nurl = \"mqtt://h\"\n");
        assert!(errs.iter().any(|e| e.place == "[rocketmq]" && e.problem.contains("secret")), "{errs:#?}");
    }

    #[test]
    fn secrets_come_from_the_environment_and_never_show() {
        let c = parse_with(
            BASE,
            &[("INFLOW_ROCKETMQ_ACCESS_KEY", "ak"), ("INFLOW_ROCKETMQ_SECRET_KEY", "s3cr3t"), ("INFLOW_MQTT_PASSWORD", "pw-123")],
        )
        .unwrap();
        assert_eq!(c.rocketmq.secret_key.as_ref().unwrap().expose(), "s3cr3t");
        assert_eq!(c.mqtt.password.as_ref().unwrap().expose(), "pw-123");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("pw-123"), "{shown}");
        let errs = parse_with(BASE, &[("INFLOW_ROCKETMQ_ACCESS_KEY", "ak")]).unwrap_err().0;
        assert!(errs.iter().any(|e| e.problem.contains("only one of the two ACL credentials")), "{errs:#?}");
    }
}
