//! A typed builder for inflow's TOML config: the `[rocketmq]`, `[mqtt]` and `[plugins]`
//! sections filled in for the rig's brokers, and `[[rule]]`s with their source, target,
//! plugin and limits. Settings without a typed method yet go in as raw lines
//! ([`Config::line`], [`Rule::line`], [`Rule::table_line`]).

use std::path::Path;

use crate::mosquitto::{Mosquitto, MqttVersion};
use crate::rocketmq::RocketMq;

/// A TOML basic string: quoted, with `\`, `"` and control characters escaped.
pub fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One TOML table: its header and its `key = value` lines, in order.
#[derive(Clone, Debug)]
struct Table {
    name: String,
    lines: Vec<String>,
}

impl Table {
    fn new(name: &str) -> Table {
        Table { name: name.to_owned(), lines: Vec::new() }
    }

    /// Sets `key` to the rendered `value`, replacing an earlier setting of it.
    fn set(&mut self, key: &str, value: String) {
        let line = format!("{key} = {value}");
        let prefix = format!("{key} =");
        match self.lines.iter_mut().find(|l| l.starts_with(&prefix)) {
            Some(existing) => *existing = line,
            None => self.lines.push(line),
        }
    }

    fn render(&self, header: &str, out: &mut String) {
        out.push_str(&format!("{header}\n"));
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
}

fn table<'a>(tables: &'a mut Vec<Table>, name: &str) -> &'a mut Table {
    match tables.iter().position(|t| t.name == name) {
        Some(i) => &mut tables[i],
        None => {
            tables.push(Table::new(name));
            tables.last_mut().expect("just pushed")
        }
    }
}

/// An inflow config file.
#[derive(Clone, Debug)]
pub struct Config {
    tables: Vec<Table>,
    rules: Vec<Rule>,
}

impl Config {
    /// A config for these brokers: the name server, the MQTT URL, MQTT 5,
    /// and the compiled-plugin cache shared by all tests (compiling Python and JavaScript
    /// components takes seconds). For a secure Mosquitto, its username and CA; the password
    /// is left to `INFLOW_MQTT_PASSWORD`.
    pub fn new(rmq: &RocketMq, mqtt: &Mosquitto) -> Config {
        let mut config = Config { tables: Vec::new(), rules: Vec::new() };
        config.table("rocketmq").set("namesrv", format!("[{}]", toml_string(&rmq.namesrv)));
        let mqtt_table = config.table("mqtt");
        mqtt_table.set("url", toml_string(&mqtt.url()));
        let config = config.protocol(MqttVersion::V5);
        let cache = std::env::temp_dir().join("inflow-e2e-compiled");
        let mut config = config.plugin_cache_dir(&cache);
        if let Some(secure) = &mqtt.secure {
            config.table("mqtt").set("username", toml_string(&secure.user));
            config.table("mqtt.tls").set("ca", toml_string(&secure.ca.to_string_lossy()));
        }
        config
    }

    fn table(&mut self, name: &str) -> &mut Table {
        table(&mut self.tables, name)
    }

    /// `[mqtt] client_id`.
    pub fn client_id(mut self, id: &str) -> Config {
        self.table("mqtt").set("client_id", toml_string(id));
        self
    }

    /// `[mqtt] protocol`.
    pub fn protocol(mut self, version: MqttVersion) -> Config {
        let name = match version {
            MqttVersion::V311 => "3.1.1",
            MqttVersion::V5 => "5",
        };
        self.table("mqtt").set("protocol", toml_string(name));
        self
    }

    /// `[mqtt] url`, e.g. to reach the broker by another name than its address.
    pub fn mqtt_url(mut self, url: &str) -> Config {
        self.table("mqtt").set("url", toml_string(url));
        self
    }

    /// `[mqtt] max_topic_bytes`.
    pub fn max_topic_bytes(mut self, bytes: usize) -> Config {
        self.table("mqtt").set("max_topic_bytes", bytes.to_string());
        self
    }

    /// `[mqtt] max_inflight`.
    pub fn max_inflight(mut self, publishes: usize) -> Config {
        self.table("mqtt").set("max_inflight", publishes.to_string());
        self
    }

    /// `[plugins] dir`: the watched plugin folder.
    pub fn plugin_dir(mut self, dir: &Path) -> Config {
        self.table("plugins").set("dir", toml_string(&dir.to_string_lossy()));
        self
    }

    /// `[plugins] cache_dir`.
    pub fn plugin_cache_dir(mut self, dir: &Path) -> Config {
        self.table("plugins").set("cache_dir", toml_string(&dir.to_string_lossy()));
        self
    }

    /// A raw `key = value` line in `[section]` (created if missing, e.g. `admin`), for settings
    /// without a typed method yet: `.line("rocketmq", "commit_interval_ms = 200")`.
    pub fn line(mut self, section: &str, line: &str) -> Config {
        self.table(section).lines.push(line.to_owned());
        self
    }

    /// Adds a `[[rule]]`.
    pub fn rule(mut self, rule: Rule) -> Config {
        self.rules.push(rule);
        self
    }

    /// The TOML text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for t in &self.tables {
            t.render(&format!("[{}]", t.name), &mut out);
        }
        for rule in &self.rules {
            rule.render(&mut out);
        }
        out
    }
}

/// One `[[rule]]`: rule-level keys, then its `source`, `target`, `plugin` and `limits` tables.
#[derive(Clone, Debug)]
pub struct Rule {
    keys: Table,
    tables: Vec<Table>,
}

impl Rule {
    /// Rule `id` from `topic` (all tags, from the earliest offset, the group derived from the
    /// id) to the MQTT parent topic `parent`, with the built-in mapping.
    pub fn new(id: &str, topic: &str, parent: &str) -> Rule {
        let mut keys = Table::new("rule");
        keys.set("id", toml_string(id));
        let mut rule = Rule { keys, tables: Vec::new() };
        rule.table("source").set("topic", toml_string(topic));
        rule.table("source").set("start", toml_string("earliest"));
        rule.table("target").set("parent_topic", toml_string(parent));
        rule
    }

    fn table(&mut self, name: &str) -> &mut Table {
        table(&mut self.tables, name)
    }

    /// `source.group`, instead of the one derived from the rule id.
    pub fn group(mut self, group: &str) -> Rule {
        self.table("source").set("group", toml_string(group));
        self
    }

    /// `enabled`.
    pub fn enabled(mut self, enabled: bool) -> Rule {
        self.keys.set("enabled", enabled.to_string());
        self
    }

    /// `on_error`: `dead-letter`, `skip` or `pause`.
    pub fn on_error(mut self, policy: &str) -> Rule {
        self.keys.set("on_error", toml_string(policy));
        self
    }

    /// `plugin.name`: map with this component of the plugin folder.
    pub fn plugin(mut self, name: &str) -> Rule {
        self.table("plugin").set("name", toml_string(name));
        self
    }

    /// `plugin.config`, the opaque string handed to the plugin at start.
    pub fn plugin_config(mut self, config: &str) -> Rule {
        self.table("plugin").set("config", toml_string(config));
        self
    }

    /// `limits.<key> = <value>`, e.g. `.limit("max_unacked_per_queue", 64)`.
    pub fn limit(mut self, key: &str, value: u64) -> Rule {
        self.table("limits").set(key, value.to_string());
        self
    }

    /// A raw rule-level line, e.g. `.line("workers = 4")`.
    pub fn line(mut self, line: &str) -> Rule {
        self.keys.lines.push(line.to_owned());
        self
    }

    /// A raw line in one of the rule's tables, e.g. `.table_line("target", r#"allow_topics = ["x/#"]"#)`.
    pub fn table_line(mut self, table: &str, line: &str) -> Rule {
        self.table(table).lines.push(line.to_owned());
        self
    }

    fn render(&self, out: &mut String) {
        self.keys.render("[[rule]]", out);
        for t in &self.tables {
            t.render(&format!("[rule.{}]", t.name), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_toml_strings() {
        assert_eq!(toml_string(r#"{"a": "b\c"}"#), r#""{\"a\": \"b\\c\"}""#);
        assert_eq!(toml_string("x\ny"), r#""x\ny""#);
    }

    #[test]
    fn renders_a_rule_with_its_tables() {
        let rule = Rule::new("r1", "T", "p").on_error("skip").group("g").line("workers = 2").plugin("json");
        let mut out = String::new();
        rule.render(&mut out);
        assert_eq!(
            out,
            "[[rule]]\nid = \"r1\"\non_error = \"skip\"\nworkers = 2\n\n\
             [rule.source]\ntopic = \"T\"\nstart = \"earliest\"\ngroup = \"g\"\n\n\
             [rule.target]\nparent_topic = \"p\"\n\n[rule.plugin]\nname = \"json\"\n\n"
        );
    }
}
