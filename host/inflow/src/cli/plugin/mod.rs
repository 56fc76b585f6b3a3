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
//! For one message, a JSON object `{"sample", "plugin", "version", "publishes": [...]}`;
//! each publish has `topic`, `qos` (0–2), `retain`, `payload_source`
//! (`original-body` or `plugin`), the payload as `payload` (UTF-8 text) or
//! `payload_base64`, `user_properties` (pairs), `content_type`,
//! `message_expiry_interval`. A mapping error is the command's error (exit 1). For several
//! messages (an array, or several `--message`), a JSON array with one such object per message,
//! where a failed message has `"error"` (the plugin's `err` case) or `"failure"` (a trap, the
//! deadline, the memory cap, a limit, a refused topic) instead of `"publishes"`; exit 1 if any
//! failed. With `--expect FILE` (format in [`expect`]) it prints, instead, `ok` or the
//! differences per sample and exits 0 only when every sample is as expected.
//!
//! The checks are the service's: the plugin runs with the service's sandbox limits (deadline,
//! memory cap, publish count and payload size; the same defaults as a rule's `limits`), and
//! every publish topic goes through the rule's [`TopicScope`] (a valid topic name,
//! `--max-topic-bytes`, under `--parent-topic` or matched by an `--allow-topic`).

mod expect;
pub mod new;


use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use crate::config::RuleLimits;
use crate::mapping::{MapError, TopicScope};
use inflow_plugin::{OwnedMessage, Payload, Publish, RuleContext, Runtime, RuntimeConfig};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `--message` format, for `--help`.
const MESSAGE_FORMAT: &str = r#"Sample messages (--message): JSON files or inline JSON (starting with { or [),
each one message or an array of them; all are mapped in order through one instance.
Every field is optional; unknown fields are an error:

  {"topic": "sensors", "tags": "temp", "keys": ["order-1", "order-2"],
   "properties": {"device": "dev-7"}, "body": "{\"celsius\": 21.5}",
   "queue_id": 0, "queue_offset": 42, "born_timestamp": 1700000000000,
   "store_timestamp": 1700000000005, "reconsume_times": 0,
   "message_id": "7F0000010001000000000000000A0001"}

"body" is UTF-8 text; give "body_base64" for binary bodies. "keys" may be one
space-separated string. Tags, keys and message id also appear as the properties
TAGS, KEYS and UNIQ_KEY, as on a real message.

Output: {"sample", "plugin", "version", "publishes": [...]} for one message, a mapping
error exits 1; for several, an array where a failed message has "error" (the plugin's
err case) or "failure" (trap, deadline, memory cap, limit, refused topic) instead of
"publishes", exit 1 if any failed. The plugin runs under the service's checks and
limits, with a rule's default limits unless given."#;

#[derive(clap::Args, Debug)]
#[command(after_long_help = format!("{MESSAGE_FORMAT}\n\n{}", expect::FORMAT))]
pub struct PluginTestArgs {
    /// The plugin component (`.wasm`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Sample messages: JSON files, or inline JSON (starts with `{` or `[`), each one message or
    /// an array; their format is shown at the end of `inflow plugin test --help`.
    #[arg(short, long, value_name = "JSON|FILE", num_args = 1.., required = true)]
    pub message: Vec<String>,
    /// Compare each sample's result with this file's expectations and print the differences
    /// (exit 0 only when all match); its format is shown at the end of `--help`.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
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
    /// CPU deadline per call, in milliseconds (`limits.call_deadline_ms`; default: a rule's, 100).
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// Memory cap of the instance, in MiB (`limits.memory_mb`; default: a rule's, 64).
    #[arg(long)]
    pub memory_mib: Option<usize>,
    /// Most publishes per message (`limits.max_publishes`; default: a rule's, 100).
    #[arg(long)]
    pub max_publishes: Option<usize>,
    /// Largest payload the plugin may make, in bytes (`limits.max_payload_bytes`; default: a rule's).
    #[arg(long)]
    pub max_payload_bytes: Option<usize>,
    /// The compiled-code cache (`[plugins] cache_dir`); default: the service's default, so
    /// `plugin test` and `inflow run` share what either compiled.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl PluginTestArgs {
    /// The sandbox limits: the service's conversion of a rule's `limits`, its defaults for
    /// what is not given.
    fn limits(&self) -> inflow_plugin::Limits {
        let mut limits = RuleLimits::default();
        if let Some(ms) = self.deadline_ms {
            limits.call_deadline = Duration::from_millis(ms);
        }
        if let Some(mib) = self.memory_mib {
            limits.memory_bytes = mib << 20;
        }
        limits.max_publishes = self.max_publishes.unwrap_or(limits.max_publishes);
        limits.max_payload_bytes = self.max_payload_bytes.unwrap_or(limits.max_payload_bytes);
        limits.plugin_limits()
    }
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

/// One sample message and the name its expectation is keyed by.
struct NamedSample {
    name: String,
    message: OwnedMessage,
}

/// Reads one `--message` value: inline JSON or a file; one message or an array. A file's one
/// message is named by the file name, the n-th of an array `name[n]`, inline ones `inline[n]`.
fn read_samples(arg: &str) -> anyhow::Result<(Vec<NamedSample>, bool)> {
    let trimmed = arg.trim_start();
    let (text, origin, name) = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        (arg.to_string(), "the inline --message JSON".to_string(), "inline".to_string())
    } else {
        let text = std::fs::read_to_string(arg).with_context(|| format!("cannot read the --message file {arg}"))?;
        let name = Path::new(arg).file_name().map_or_else(|| arg.to_string(), |n| n.to_string_lossy().into_owned());
        (text, format!("the --message file {arg}"), name)
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
            let name = if is_array || name == "inline" { format!("{name}[{index}]") } else { name.clone() };
            Ok(NamedSample { name, message: sample.into_sample(index)? })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((samples, is_array))
}

/// A payload as printed: `payload` when it is UTF-8 text, else `payload_base64`.
fn payload_shown(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => json!({ "payload": text }),
        Err(_) => json!({ "payload_base64": BASE64.encode(bytes) }),
    }
}

fn publish_json(publish: &Publish, original: &[u8]) -> Value {
    let (source, bytes) = match &publish.payload {
        Payload::OriginalBody => ("original-body", original),
        Payload::Bytes(bytes) => ("plugin", bytes.as_slice()),
    };
    let mut shown = payload_shown(bytes);
    let fields = shown.as_object_mut().expect("payload_shown makes an object");
    fields.insert("topic".into(), json!(publish.topic));
    fields.insert("qos".into(), json!(publish.qos.level()));
    fields.insert("retain".into(), json!(publish.retain));
    fields.insert("payload_source".into(), json!(source));
    fields.insert("user_properties".into(), json!(publish.user_properties));
    fields.insert("content_type".into(), json!(publish.content_type));
    fields.insert("message_expiry_interval".into(), json!(publish.message_expiry_interval));
    shown
}

/// What mapping one sample did.
#[derive(Debug)]
enum Outcome {
    /// The publishes, as printed.
    Publishes(Vec<Value>),
    /// The plugin's `err` case for the message.
    Error(String),
    /// Any other failure the service would hand to the on-error policy: the whole message.
    Failure(String),
}

impl Outcome {
    fn of(mapped: Result<Vec<Publish>, MapError>, body: &[u8]) -> Outcome {
        match mapped {
            Ok(publishes) => Outcome::Publishes(publishes.iter().map(|p| publish_json(p, body)).collect()),
            Err(MapError::Plugin(inflow_plugin::MapError::Plugin { reason, .. })) => Outcome::Error(reason),
            Err(other) => Outcome::Failure(other.to_string()),
        }
    }

    fn is_ok(&self) -> bool {
        matches!(self, Outcome::Publishes(_))
    }
}

struct MappedSample {
    name: String,
    outcome: Outcome,
}

/// Loads the plugin, starts one instance with the rule's context and config, maps every sample
/// message, and prints the results as JSON on stdout, or with `--expect` how they compare.
pub fn run(args: PluginTestArgs) -> anyhow::Result<()> {
    let mut samples = Vec::new();
    let mut any_array = false;
    for arg in &args.message {
        let (read, is_array) = read_samples(arg)?;
        any_array |= is_array;
        samples.extend(read);
    }
    let one_message = samples.len() == 1 && !any_array;
    let cache_dir = args.cache_dir.clone().unwrap_or_else(RuntimeConfig::default_cache_dir);
    let runtime = Runtime::new(RuntimeConfig::new(cache_dir))?;
    let plugin = runtime.load(&args.file)?;
    eprintln!(
        "loaded {} (version {}) in {:.1} ms{}",
        plugin.name(),
        plugin.content_hash(),
        plugin.load_time().as_secs_f64() * 1e3,
        if plugin.from_cache() { " from the compiled-code cache" } else { ", compiled" }
    );
    let limits = args.limits();
    // The service's own topic checks, so what passes here is what passes live.
    let topics = TopicScope { parent: args.parent_topic.clone(), allow: args.allow_topics, max_bytes: args.max_topic_bytes };
    let context = RuleContext { rule_id: args.rule_id, parent_topic: args.parent_topic };
    let mut instance = plugin.instantiate(context, &args.config, limits)?;
    let mut mapped = Vec::with_capacity(samples.len());
    for NamedSample { name, message } in samples {
        let message = Arc::new(message);
        let result = instance
            .map(message.clone())
            .map_err(MapError::from)
            .and_then(|publishes| topics.check_all(publishes.iter().map(|p| p.topic.as_str())).map(|()| publishes));
        match result {
            Err(err) if one_message && args.expect.is_none() => return Err(anyhow!(err)),
            result => mapped.push(MappedSample { name, outcome: Outcome::of(result, &message.body) }),
        }
    }
    if let Some(expect_file) = &args.expect {
        return print_comparison(expect_file, &mapped);
    }
    let results: Vec<Value> = mapped
        .iter()
        .map(|sample| {
            let mut result = json!({ "sample": sample.name, "plugin": plugin.name(), "version": plugin.content_hash() });
            match &sample.outcome {
                Outcome::Publishes(publishes) => result["publishes"] = json!(publishes),
                Outcome::Error(reason) => result["error"] = json!(reason),
                Outcome::Failure(message) => result["failure"] = json!(message),
            }
            result
        })
        .collect();
    let failures = mapped.iter().filter(|sample| !sample.outcome.is_ok()).count();
    let output = if one_message { results.into_iter().next().expect("one sample") } else { Value::Array(results) };
    println!("{}", serde_json::to_string_pretty(&output)?);
    if failures > 0 {
        bail!("{failures} of the messages failed to map");
    }
    Ok(())
}

fn print_comparison(expect_file: &Path, mapped: &[MappedSample]) -> anyhow::Result<()> {
    let report = expect::compare_file(expect_file, mapped)?;
    for line in &report.lines {
        println!("{line}");
    }
    if report.differing > 0 {
        bail!("{} of {} samples differ from {}", report.differing, mapped.len(), expect_file.display());
    }
    println!("all {} samples as expected in {}", mapped.len(), expect_file.display());
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
        assert_eq!(samples[0].name, "inline[0]");
        let sample = &samples[0].message;
        assert_eq!(sample.tags(), Some("a"));
        assert_eq!(sample.keys(), vec!["k1", "k2"]);
        assert_eq!(sample.message_id(), "M1");
        assert_eq!(sample.property("p"), Some("v"));
        assert_eq!(sample.body(), &[0, 255]);
        assert_eq!(sample.queue_offset(), 7);
    }

    #[test]
    fn samples_are_named_by_their_file_and_place() {
        let dir = std::env::temp_dir().join(format!("inflow-sample-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("one.json"), "{}").unwrap();
        std::fs::write(dir.join("batch.json"), "[{}, {}]").unwrap();
        let names = |file: &str| -> Vec<String> {
            read_samples(dir.join(file).to_str().unwrap()).unwrap().0.into_iter().map(|s| s.name).collect()
        };
        assert_eq!(names("one.json"), ["one.json"]);
        assert_eq!(names("batch.json"), ["batch.json[0]", "batch.json[1]"]);
        let _ = std::fs::remove_dir_all(&dir);
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
