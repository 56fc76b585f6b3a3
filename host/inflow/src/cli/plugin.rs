//! `inflow plugin test`: runs a plugin offline on sample messages and prints
//! the publishes it would make, so plugin authors can iterate without brokers.
//!
//! # Sample message format (`--message`)
//!
//! A JSON object, or an array of them to map in order through one instance.
//! Every field is optional:
//!
//! ```json
//! {
//!   "topic": "sensors",
//!   "tags": "temp",
//!   "keys": ["order-1", "order-2"],
//!   "properties": { "device": "dev-7", "kind": "temp" },
//!   "body": "{\"celsius\": 21.5}",
//!   "queue_id": 0,
//!   "queue_offset": 42,
//!   "born_timestamp": 1700000000000,
//!   "store_timestamp": 1700000000005,
//!   "reconsume_times": 0,
//!   "message_id": "7F0000010001000000000000000A0001"
//! }
//! ```
//!
//! * `body` is UTF-8 text; for binary bodies give `body_base64` (standard
//!   alphabet) instead. Default: empty.
//! * `keys` may also be one string of space-separated keys, as RocketMQ stores them.
//! * `tags`, `keys` and `message_id` also appear among the properties, as the
//!   system properties `TAGS`, `KEYS` and `UNIQ_KEY`, as they do on a real message.
//! * Defaults: topic `test-topic`, queue 0 / offset 0, timestamps now,
//!   message id `00000000000000000000000000000000`.
//! * Unknown fields are an error (so a typo does not pass unnoticed).
//!
//! # Output
//!
//! For one message, a JSON object `{"plugin", "version", "publishes": [...]}`;
//! each publish has `topic`, `qos` (0–2), `retain`, `payload_source`
//! (`original-body` or `plugin`), the payload as `payload` (UTF-8 text) or
//! `payload_base64`, `user_properties` (pairs), `content_type`,
//! `message_expiry_interval`. A mapping error is the command's error (exit 1), and so is a
//! publish the service would refuse: its topic is checked by the service's own code (a valid
//! topic name, `--max-topic-bytes`, under `--parent-topic` or matched by an `--allow-topic`).
//! For an array, a JSON array with one such object per message, where a
//! failed message has `"error"` instead of `"publishes"`; exit 1 if any failed.

use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use crate::mapping::{MapError, TopicScope};
use inflow_plugin::{Limits, OwnedMessage, Payload, Publish, RuleContext, Runtime, RuntimeConfig};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `--message` format, for `--help`.
const MESSAGE_FORMAT: &str = r#"Sample message (--message): one JSON object, or an array of them mapped in order
through one instance. Every field is optional; unknown fields are an error:

  {"topic": "sensors", "tags": "temp", "keys": ["order-1", "order-2"],
   "properties": {"device": "dev-7"}, "body": "{\"celsius\": 21.5}",
   "queue_id": 0, "queue_offset": 42, "born_timestamp": 1700000000000,
   "store_timestamp": 1700000000005, "reconsume_times": 0,
   "message_id": "7F0000010001000000000000000A0001"}

"body" is UTF-8 text; give "body_base64" for binary bodies. "keys" may be one
space-separated string. Tags, keys and message id also appear as the properties
TAGS, KEYS and UNIQ_KEY, as on a real message.

Output: {"plugin", "version", "publishes": [...]} per message (an array for an
array); a mapping error exits 1."#;

#[derive(clap::Args, Debug)]
#[command(after_long_help = MESSAGE_FORMAT)]
pub struct PluginTestArgs {
    /// The plugin component (`.wasm`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// A sample message: a JSON file, or inline JSON (starts with `{` or `[`);
    /// its format is shown at the end of `inflow plugin test --help`.
    #[arg(short, long, value_name = "JSON|FILE")]
    pub message: String,
    /// The rule's config string, passed to the plugin's `init` as it is.
    #[arg(short, long, default_value = "")]
    pub config: String,
    /// The rule id the plugin is told.
    #[arg(long, default_value = "plugin-test")]
    pub rule_id: String,
    /// The rule's MQTT parent topic the plugin is told.
    #[arg(long, default_value = "test")]
    pub parent_topic: String,
    /// A topic filter the rule may publish to besides its parent topic (`target.allow_topics`);
    /// repeat for more.
    #[arg(long = "allow-topic", value_name = "FILTER")]
    pub allow_topics: Vec<String>,
    /// The MQTT broker's longest topic, in bytes (`[mqtt] max_topic_bytes`).
    #[arg(long, default_value_t = 65535)]
    pub max_topic_bytes: usize,
    /// CPU deadline per call, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub deadline_ms: u64,
    /// Memory cap of the instance, in MiB.
    #[arg(long, default_value_t = 64)]
    pub memory_mib: usize,
}

/// One sample message, as read from `--message`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct SampleMessage {
    topic: Option<String>,
    tags: Option<String>,
    keys: Option<Keys>,
    #[serde(default)]
    properties: serde_json::Map<String, Value>,
    body: Option<String>,
    body_base64: Option<String>,
    #[serde(default)]
    queue_id: u32,
    #[serde(default)]
    queue_offset: u64,
    born_timestamp: Option<u64>,
    store_timestamp: Option<u64>,
    #[serde(default)]
    reconsume_times: u32,
    message_id: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum Keys {
    List(Vec<String>),
    Spaced(String),
}

impl SampleMessage {
    fn into_sample(self, index: usize) -> anyhow::Result<OwnedMessage> {
        let place = format!("message {index}");
        let body = match (self.body, self.body_base64) {
            (Some(_), Some(_)) => bail!("{place}: give either `body` or `body_base64`, not both"),
            (Some(text), None) => text.into_bytes(),
            (None, Some(encoded)) => decode_base64(&encoded).with_context(|| format!("{place}: `body_base64`"))?,
            (None, None) => Vec::new(),
        };
        let mut properties = Vec::new();
        if let Some(tags) = self.tags {
            properties.push(("TAGS".to_string(), tags));
        }
        match self.keys {
            Some(Keys::List(keys)) => properties.push(("KEYS".to_string(), keys.join(" "))),
            Some(Keys::Spaced(keys)) => properties.push(("KEYS".to_string(), keys)),
            None => {}
        }
        let message_id = self.message_id.unwrap_or_else(|| "0".repeat(32));
        properties.push(("UNIQ_KEY".to_string(), message_id));
        for (key, value) in self.properties {
            let Value::String(value) = value else {
                bail!("{place}: property {key:?} must be a string (RocketMQ properties are strings), got {value}");
            };
            properties.push((key, value));
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        Ok(OwnedMessage {
            topic: self.topic.unwrap_or_else(|| "test-topic".to_string()),
            properties,
            body,
            queue_id: self.queue_id,
            queue_offset: self.queue_offset,
            born_timestamp: self.born_timestamp.unwrap_or(now),
            store_timestamp: self.store_timestamp.unwrap_or(now),
            reconsume_times: self.reconsume_times,
        })
    }
}

/// Reads `--message`: inline JSON or a file; one message or an array.
/// The flag says whether it was an array.
fn read_samples(arg: &str) -> anyhow::Result<(Vec<OwnedMessage>, bool)> {
    let trimmed = arg.trim_start();
    let (text, origin) = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        (arg.to_string(), "the inline --message JSON".to_string())
    } else {
        let text = std::fs::read_to_string(arg).with_context(|| format!("cannot read the --message file {arg}"))?;
        (text, format!("the --message file {arg}"))
    };
    let value: Value = serde_json::from_str(&text).with_context(|| format!("{origin} is not valid JSON"))?;
    let (raw, is_array) = match value {
        Value::Array(items) => (items, true),
        single => (vec![single], false),
    };
    let samples = raw
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let sample: SampleMessage = serde_json::from_value(item)
                .with_context(|| format!("{origin}: message {index} does not match the sample message format"))?;
            sample.into_sample(index)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((samples, is_array))
}

fn payload_json(payload: &Payload, original: &[u8]) -> (&'static str, Value) {
    let (source, bytes) = match payload {
        Payload::OriginalBody => ("original-body", original),
        Payload::Bytes(bytes) => ("plugin", bytes.as_slice()),
    };
    let shown = match std::str::from_utf8(bytes) {
        Ok(text) => json!({ "payload": text }),
        Err(_) => json!({ "payload_base64": BASE64.encode(bytes) }),
    };
    (source, shown)
}

fn publish_json(publish: &Publish, original: &[u8]) -> Value {
    let (source, mut shown) = payload_json(&publish.payload, original);
    let fields = shown.as_object_mut().expect("payload_json makes an object");
    fields.insert("topic".into(), json!(publish.topic));
    fields.insert("qos".into(), json!(publish.qos.level()));
    fields.insert("retain".into(), json!(publish.retain));
    fields.insert("payload_source".into(), json!(source));
    fields.insert("user_properties".into(), json!(publish.user_properties));
    fields.insert("content_type".into(), json!(publish.content_type));
    fields.insert("message_expiry_interval".into(), json!(publish.message_expiry_interval));
    shown
}

/// Loads the plugin, starts one instance with the rule's context and config,
/// maps every sample message and prints the result as JSON on stdout.
pub fn run(args: PluginTestArgs) -> anyhow::Result<()> {
    let (samples, is_array) = read_samples(&args.message)?;
    let runtime = Runtime::new(RuntimeConfig::new(RuntimeConfig::default_cache_dir()))?;
    let plugin = runtime.load(&args.file)?;
    eprintln!(
        "loaded {} (version {}) in {:.1} ms{}",
        plugin.name(),
        plugin.content_hash(),
        plugin.load_time().as_secs_f64() * 1e3,
        if plugin.from_cache() { " from the compiled-code cache" } else { ", compiled" }
    );
    let limits = Limits {
        call_deadline: Duration::from_millis(args.deadline_ms),
        memory_bytes: args.memory_mib << 20,
        ..Limits::default()
    };
    // The service's own topic checks, so what passes here is what passes live.
    let topics = TopicScope { parent: args.parent_topic.clone(), allow: args.allow_topics, max_bytes: args.max_topic_bytes };
    let context = RuleContext { rule_id: args.rule_id, parent_topic: args.parent_topic };
    let mut instance = plugin.instantiate(context, &args.config, limits)?;
    let mut results = Vec::with_capacity(samples.len());
    let mut failures = 0;
    for sample in samples {
        let sample = Arc::new(sample);
        let mut result = json!({ "plugin": plugin.name(), "version": plugin.content_hash() });
        let mapped = instance.map(sample.clone()).map_err(MapError::from).and_then(|publishes| {
            publishes.iter().try_for_each(|p| topics.check(&p.topic)).map(|()| publishes)
        });
        match mapped {
            Ok(publishes) => {
                result["publishes"] = publishes.iter().map(|p| publish_json(p, &sample.body)).collect();
            }
            Err(err) if !is_array => return Err(anyhow!(err)),
            Err(err) => {
                failures += 1;
                result["error"] = json!(err.to_string());
            }
        }
        results.push(result);
    }
    let output = if is_array { Value::Array(results) } else { results.remove(0) };
    println!("{}", serde_json::to_string_pretty(&output)?);
    if failures > 0 {
        bail!("{failures} of the messages failed to map");
    }
    Ok(())
}

/// Decodes `body_base64`, standard alphabet with padding; line breaks and spaces are ignored, as
/// in a base64 body pasted from elsewhere.
fn decode_base64(text: &str) -> anyhow::Result<Vec<u8>> {
    let digits: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64.decode(digits).map_err(|e| anyhow!("not base64 (standard alphabet, padded): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use inflow_plugin::MessageView;

    #[test]
    fn body_base64_ignores_line_breaks_and_refuses_what_is_not_base64() {
        assert_eq!(decode_base64("aGVs\nbG8=").unwrap(), b"hello");
        assert!(decode_base64("aGVsbG8").is_err());
        assert!(decode_base64("aGVs*G8=").is_err());
    }

    #[test]
    fn sample_message_fills_the_system_properties() {
        let (samples, is_array) = read_samples(
            r#"{"topic":"t","tags":"a","keys":"k1 k2","properties":{"p":"v"},"body_base64":"AP8=","message_id":"M1","queue_offset":7}"#,
        )
        .unwrap();
        assert!(!is_array);
        let sample = &samples[0];
        assert_eq!(sample.tags(), Some("a"));
        assert_eq!(sample.keys(), vec!["k1", "k2"]);
        assert_eq!(sample.message_id(), "M1");
        assert_eq!(sample.property("p"), Some("v"));
        assert_eq!(sample.body(), &[0, 255]);
        assert_eq!(sample.queue_offset(), 7);
    }

    #[test]
    fn sample_message_mistakes_are_named() {
        let err = read_samples(r#"{"topik":"t"}"#).err().unwrap();
        assert!(format!("{err:#}").contains("unknown field `topik`"), "{err:#}");
        let err = read_samples(r#"[{}, {"properties":{"n":1}}]"#).err().unwrap();
        assert!(format!("{err:#}").contains("message 1: property \"n\" must be a string"), "{err:#}");
        let err = read_samples(r#"{"body":"x","body_base64":"eA=="}"#).err().unwrap();
        assert!(format!("{err:#}").contains("not both"), "{err:#}");
    }
}
