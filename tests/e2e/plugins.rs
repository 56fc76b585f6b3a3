//! The example plugin (json-router) in Rust, Python, JavaScript and C, built by
//! `plugins/build.sh all` into `target/plugins/json-router-<lang>.wasm`:
//!
//! * offline: every language's component, loaded by inflow's plugin runtime,
//!   maps every sample in `plugins/samples/` to exactly the expected result in
//!   `plugins/samples/expected/`, and refuses the bad configs of
//!   `expected/init.json` with the expected errors: one expectation, four languages;
//! * end to end: one `inflow run` with a rule per language, a Java producer
//!   sending to RocketMQ, and an MQTT 5 subscriber on Mosquitto.

use inflow_e2e::{inflow_bin, repo_root, unique_name, Mosquitto, MqttMessage, MqttVersion, Produce, RocketMq};
use inflow_plugin::{Limits, MessageView, Payload, Plugin, Publish, RuleContext, Runtime, RuntimeConfig};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const LANGUAGES: [&str; 4] = ["rust", "python", "js", "c"];
/// The rule context the samples' expectations were written for.
const RULE_ID: &str = "json-router-example";
const PARENT_TOPIC: &str = "factory";

fn component(language: &str) -> PathBuf {
    let path = repo_root().join(format!("target/plugins/json-router-{language}.wasm"));
    assert!(path.exists(), "{} is missing: build it with `plugins/build.sh {language}` (scripts/test.sh does)", path.display());
    path
}

fn samples_dir() -> PathBuf {
    repo_root().join("plugins/samples")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

// ---- offline: samples through the runtime ----------------------------------------------------

/// One sample message file (format: plugins/samples/README.md).
struct SampleMessage {
    topic: String,
    tags: Option<String>,
    keys: Vec<String>,
    properties: Vec<(String, String)>,
    body: Vec<u8>,
    message_id: String,
    queue_id: u32,
    queue_offset: u64,
    born_timestamp: u64,
    store_timestamp: u64,
    reconsume_times: u32,
}

impl SampleMessage {
    fn from_json(v: &Value, file: &Path) -> SampleMessage {
        use base64::Engine as _;
        let text = |key: &str| v[key].as_str().map(str::to_owned);
        let number = |key: &str| v[key].as_u64().unwrap_or(0);
        let body = match (text("body"), text("body_base64")) {
            (Some(body), None) => body.into_bytes(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_else(|e| panic!("{}: body_base64 is not base64: {e}", file.display())),
            _ => panic!("{}: give exactly one of body and body_base64", file.display()),
        };
        SampleMessage {
            topic: text("topic").unwrap_or_else(|| panic!("{}: no topic", file.display())),
            tags: text("tags"),
            keys: v["keys"].as_array().into_iter().flatten().filter_map(|k| k.as_str().map(str::to_owned)).collect(),
            properties: v["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_else(|| panic!("{}: property {k} is not a string", file.display())).to_owned()))
                .collect(),
            body,
            message_id: text("message_id").unwrap_or_default(),
            queue_id: number("queue_id") as u32,
            queue_offset: number("queue_offset"),
            born_timestamp: number("born_timestamp"),
            store_timestamp: number("store_timestamp"),
            reconsume_times: number("reconsume_times") as u32,
        }
    }
}

impl MessageView for SampleMessage {
    fn topic(&self) -> &str {
        &self.topic
    }
    fn tags(&self) -> Option<&str> {
        self.tags.as_deref()
    }
    fn keys(&self) -> Vec<&str> {
        self.keys.iter().map(String::as_str).collect()
    }
    fn property(&self, key: &str) -> Option<&str> {
        self.properties.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    fn properties(&self) -> Vec<(&str, &str)> {
        self.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
    fn body(&self) -> &[u8] {
        &self.body
    }
    fn message_id(&self) -> String {
        self.message_id.clone()
    }
    fn queue_id(&self) -> u32 {
        self.queue_id
    }
    fn queue_offset(&self) -> u64 {
        self.queue_offset
    }
    fn born_timestamp(&self) -> u64 {
        self.born_timestamp
    }
    fn store_timestamp(&self) -> u64 {
        self.store_timestamp
    }
    fn reconsume_times(&self) -> u32 {
        self.reconsume_times
    }
}

/// A publish in the samples' expectation format.
fn publish_json(p: &Publish) -> Value {
    use base64::Engine as _;
    json!({
        "topic": p.topic,
        "qos": p.qos.level(),
        "retain": p.retain,
        "payload": match &p.payload {
            Payload::OriginalBody => "original-body".to_string(),
            Payload::Bytes(bytes) => base64::engine::general_purpose::STANDARD.encode(bytes),
        },
        "user_properties": p.user_properties.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "content_type": p.content_type,
        "message_expiry_interval": p.message_expiry_interval,
    })
}

/// One runtime for the offline tests, its compiled-code cache shared across
/// runs (the Python and JavaScript components take seconds to compile).
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeConfig::new(std::env::temp_dir().join("inflow-e2e-compiled"))).expect("start the plugin runtime")
    })
}

fn load(language: &str) -> Arc<Plugin> {
    let path = component(language);
    runtime().load(&path).unwrap_or_else(|e| panic!("{language}: {e}"))
}

fn context() -> RuleContext {
    RuleContext { rule_id: RULE_ID.into(), parent_topic: PARENT_TOPIC.into() }
}

/// Every sample through one language's plugin; returns the mismatches.
fn sample_mismatches(language: &str) -> Vec<String> {
    let plugin = load(language);
    let config = std::fs::read_to_string(samples_dir().join("config.json")).expect("read plugins/samples/config.json");
    let mut instance = plugin.instantiate(context(), &config, Limits::default()).unwrap_or_else(|e| panic!("{language}: {e}"));
    let mut samples: Vec<PathBuf> = std::fs::read_dir(samples_dir())
        .expect("list plugins/samples")
        .map(|entry| entry.expect("list plugins/samples").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && p.file_name().is_some_and(|n| n != "config.json"))
        .collect();
    samples.sort();
    assert!(samples.len() >= 10, "expected the samples of plugins/samples, found {samples:?}");
    let mut mismatches = Vec::new();
    for sample in &samples {
        let name = sample.file_name().unwrap().to_string_lossy().into_owned();
        let expected = read_json(&samples_dir().join("expected").join(&name));
        let message = SampleMessage::from_json(&read_json(sample), sample);
        let got = match instance.map(Arc::new(message)) {
            Ok(publishes) => json!({ "publishes": publishes.iter().map(publish_json).collect::<Vec<_>>() }),
            Err(inflow_plugin::MapError::Plugin { reason, .. }) => json!({ "error": reason }),
            Err(other) => json!({ "failure": other.to_string() }),
        };
        if got != expected {
            mismatches.push(format!("{language} {name}:\n  expected {expected}\n  got      {got}"));
        }
    }
    mismatches
}

/// Every config of expected/init.json through one language's `init`.
fn init_mismatches(language: &str) -> Vec<String> {
    let plugin = load(language);
    let cases = read_json(&samples_dir().join("expected/init.json"));
    let cases = cases.as_array().expect("expected/init.json is a list");
    assert!(!cases.is_empty());
    cases
        .iter()
        .filter_map(|case| {
            let config = case["config"].as_str().expect("config is a string");
            let got = match plugin.instantiate(context(), config, Limits::default()) {
                Ok(_) => Value::Null,
                Err(inflow_plugin::PluginError::Init { reason, .. }) => Value::String(reason),
                Err(other) => Value::String(format!("not an init error: {other}")),
            };
            (got != case["error"]).then(|| format!("{language} init {config:?}: expected {}, got {got}", case["error"]))
        })
        .collect()
}

fn assert_offline(language: &str) {
    let mismatches: Vec<String> = sample_mismatches(language).into_iter().chain(init_mismatches(language)).collect();
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

#[test]
fn rust_plugin_maps_every_sample_as_expected() {
    assert_offline("rust");
}

#[test]
fn python_plugin_maps_every_sample_as_expected() {
    assert_offline("python");
}

#[test]
fn js_plugin_maps_every_sample_as_expected() {
    assert_offline("js");
}

#[test]
fn c_plugin_maps_every_sample_as_expected() {
    assert_offline("c");
}

// ---- end to end: RocketMQ → inflow → Mosquitto -------------------------------------------------

/// `inflow run` on a config, killed on drop; its log is kept for failures.
struct InflowRun {
    child: Child,
    dir: PathBuf,
}

impl InflowRun {
    fn start(dir: PathBuf, config: &str) -> InflowRun {
        std::fs::write(dir.join("inflow.toml"), config).unwrap();
        let log = std::fs::File::create(dir.join("inflow.log")).unwrap();
        let child = Command::new(inflow_bin())
            .args(["run", "-c"])
            .arg(dir.join("inflow.toml"))
            .env("INFLOW_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start inflow");
        InflowRun { child, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("inflow.log")).unwrap_or_default()
    }
}

impl Drop for InflowRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("inflow log ({}):\n{}", self.dir.display(), self.log());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[test]
fn every_language_routes_rocketmq_messages_to_mqtt() {
    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::shared();
    let dir = std::env::temp_dir().join(unique_name("inflow-plugins-e2e"));
    let plugin_dir = dir.join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let parent = unique_name("factory");
    let config = std::fs::read_to_string(samples_dir().join("config.json")).unwrap();

    // One rule per language: topic <lang>-readings → MQTT <parent>-<lang>/...
    let mut rules = String::new();
    let mut topics = Vec::new();
    for language in LANGUAGES {
        std::fs::copy(component(language), plugin_dir.join(format!("json-router-{language}.wasm"))).unwrap();
        let topic = unique_name(&format!("{language}-readings"));
        rules += &format!(
            "[[rule]]\nid = \"json-router-{language}\"\non_error = \"skip\"\n\
             source = {{ topic = \"{topic}\", start = \"earliest\" }}\n\
             target = {{ parent_topic = \"{parent}-{language}\" }}\n\
             plugin = {{ name = \"json-router-{language}\", config = '''{}''' }}\n\n",
            config.trim()
        );
        topics.push(topic);
    }
    let java = rmq.java();
    let mut good_ids = Vec::new();
    for topic in &topics {
        // Filtered out (temp out of range), an error for the skip policy, then one routed reading.
        java.produce(topic, &Produce::new(1).tag("reading").property("site", "plant-b").body(r#"{"device":"oven-2","temp":120}"#));
        java.produce(topic, &Produce::new(1).tag("reading").property("site", "plant-c").body("not json"));
        let sent = java.produce(topic, &Produce::new(1).tag("reading").property("site", "plant-a").body(r#"{"device":"press-7","temp":21.5}"#));
        good_ids.push(sent[0]["msgId"].as_str().expect("the producer prints msgId").to_string());
    }
    let subs: Vec<_> = LANGUAGES.iter().map(|l| mqtt.subscribe(&format!("{parent}-{l}/#"), MqttVersion::V5)).collect();
    let cache = std::env::temp_dir().join("inflow-e2e-compiled");
    let inflow = InflowRun::start(
        dir.clone(),
        &format!(
            "[rocketmq]\nnamesrv = [\"{}\"]\n\n[mqtt]\nurl = \"{}\"\nclient_id = \"{}\"\nprotocol = \"5\"\n\n\
             [plugins]\ndir = \"{}\"\ncache_dir = \"{}\"\n\n{rules}",
            rmq.namesrv,
            mqtt.url(),
            unique_name("inflow-plugins"),
            plugin_dir.display(),
            cache.display()
        ),
    );

    // Two publishes per language (the route and the fan-out); Python and
    // JavaScript compile for seconds on first load.
    for (i, language) in LANGUAGES.iter().enumerate() {
        let (topic, id) = (&topics[i], &good_ids[i]);
        let got = subs[i].wait_for(2, Duration::from_secs(180));
        let expected_properties = vec![
            ("device".to_string(), "press-7".to_string()),
            ("site".to_string(), "plant-a".to_string()),
            ("rocketmq-topic".to_string(), topic.clone()),
            ("rocketmq-message-id".to_string(), id.clone()),
        ];
        for mqtt_topic in [format!("{parent}-{language}/press-7/plant-a"), format!("{parent}-{language}/all-devices/press-7")] {
            let m: &MqttMessage = got
                .iter()
                .find(|m| m.topic == mqtt_topic)
                .unwrap_or_else(|| panic!("{language}: nothing on {mqtt_topic}; got {got:?}; log:\n{}", inflow.log()));
            assert_eq!(m.payload, br#"{"device":"press-7","temp":21.5}"#, "{language}: the original body, unchanged");
            assert_eq!(m.qos, 1, "{language}");
            assert_eq!(m.content_type.as_deref(), Some("application/json"), "{language}");
            let mut properties = m.user_properties.clone();
            properties.sort();
            let mut expected = expected_properties.clone();
            expected.sort();
            assert_eq!(properties, expected, "{language}: user properties on {mqtt_topic}");
        }
    }
    // The "not json" message of each rule went to the skip policy; the filtered one made nothing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while inflow.log().matches("message skipped").count() < LANGUAGES.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = inflow.log();
    assert_eq!(log.matches("message skipped").count(), LANGUAGES.len(), "one skipped message per language:\n{log}");
    assert!(log.contains("body is not valid JSON"), "the plugin's reason is logged:\n{log}");
    for (language, sub) in LANGUAGES.iter().zip(&subs) {
        assert_eq!(sub.drain(), Vec::<MqttMessage>::new(), "{language}: nothing but the routed reading");
    }
}
