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
    pub commit_interval_ms: Option<u64>,
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

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub enabled: Option<bool>,
    pub listen: Option<String>,
    pub max_body_bytes: Option<usize>,
}

/// `[rules]`: where the rules beside the file's `[[rule]]`s live.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRulesFolder {
    pub dir: Option<PathBuf>,
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
    pub workers: Option<usize>,
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
    #[serde(default)]
    pub allow_topics: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::{self, Deserializer, Visitor};
    use std::collections::BTreeSet;

    const EXAMPLE: &str = include_str!("../../../../examples/inflow.toml");

    /// The field names a `Deserialize` struct accepts, as its derive hands them to the deserializer.
    fn fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
        #[derive(Debug)]
        struct Caught(&'static [&'static str]);
        impl std::fmt::Display for Caught {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl std::error::Error for Caught {}
        impl de::Error for Caught {
            fn custom<M: std::fmt::Display>(_: M) -> Self {
                Caught(&[])
            }
        }
        struct Catcher;
        impl<'de> Deserializer<'de> for Catcher {
            type Error = Caught;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Caught> {
                Err(Caught(&[]))
            }
            fn deserialize_struct<V: Visitor<'de>>(self, _: &'static str, fields: &'static [&'static str], _: V) -> Result<V::Value, Caught> {
                Err(Caught(fields))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
                unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
            }
        }
        match T::deserialize(Catcher) {
            Err(Caught(fields)) if !fields.is_empty() => fields,
            _ => panic!("not a struct"),
        }
    }

    /// Every `section.key` the example writes, set or shown in a comment (`# key = value` under a
    /// `[section]` or `# [section]` line); inline tables count with their keys.
    /// Every `section.key` the example writes, set or shown in a comment (`# key = value` under a
    /// `[section]` or `# [section]` line); inline tables count with their keys.
    fn documented_keys(text: &str) -> BTreeSet<String> {
        fn collect(prefix: &str, table: &toml::Table, keys: &mut BTreeSet<String>) {
            for (key, value) in table {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                keys.insert(path.clone());
                match value {
                    toml::Value::Table(inner) => collect(&path, inner, keys),
                    toml::Value::Array(items) => {
                        for inner in items.iter().filter_map(toml::Value::as_table) {
                            collect(&path, inner, keys);
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut keys = BTreeSet::new();
        collect("", &toml::from_str(text).expect("the example is TOML"), &mut keys);
        let mut section = String::new();
        for line in text.lines() {
            let line = line.trim_start().trim_start_matches('#').trim();
            if let Some(header) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
                section = header.trim_matches('[').to_string();
                keys.insert(section.clone());
            } else if let Ok(table) = toml::from_str::<toml::Table>(line) {
                collect(&section, &table, &mut keys);
            }
        }
        keys
    }

    #[test]
    fn the_example_documents_every_setting() {
        let sections: [(&str, &[&str]); 11] = [
            ("rocketmq", fields::<RawRocketMq>()),
            ("mqtt", fields::<RawMqtt>()),
            ("mqtt.tls", fields::<RawTls>()),
            ("plugins", fields::<RawPlugins>()),
            ("admin", fields::<RawAdmin>()),
            ("rules", fields::<RawRulesFolder>()),
            ("rule", fields::<RawRule>()),
            ("rule.source", fields::<RawSource>()),
            ("rule.target", fields::<RawTarget>()),
            ("rule.plugin", fields::<RawPlugin>()),
            ("rule.limits", fields::<RawLimits>()),
        ];
        let documented = documented_keys(EXAMPLE);
        let missing: Vec<String> = sections
            .iter()
            .flat_map(|(section, fields)| fields.iter().map(move |field| format!("{section}.{field}")))
            .filter(|key| !documented.contains(key))
            .collect();
        assert!(missing.is_empty(), "examples/inflow.toml does not show these settings: {missing:?}");
    }
}
