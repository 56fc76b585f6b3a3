//! The example plugin (json-router) in Rust, Python, JavaScript and C, built by
//! `plugins/build.sh all` into `target/plugins/json-router-<lang>.wasm`:
//!
//! * offline, through `inflow plugin test --expect` (what a plugin author runs):
//!   every language's component maps every sample in `plugins/samples/messages/`
//!   to exactly the expected result in `plugins/samples/expected.json`, and
//!   refuses the bad configs of `init.json` with the expected errors: one
//!   expectation, four languages;
//! * end to end: one `inflow run` with a rule per language, a Java producer
//!   sending to RocketMQ, and an MQTT 5 subscriber on Mosquitto.

use inflow_e2e::{inflow_bin, repo_root, unique_name, Config, Inflow, Mosquitto, MqttMessage, MqttVersion, Produce, RocketMq, Rule};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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

// ---- offline: samples through `inflow plugin test --expect` ---------------------------------

/// The sample message files, sorted by name.
fn sample_files() -> Vec<PathBuf> {
    let mut samples: Vec<PathBuf> = std::fs::read_dir(samples_dir().join("messages"))
        .expect("list plugins/samples/messages")
        .map(|entry| entry.expect("list plugins/samples/messages").path())
        .collect();
    samples.sort();
    assert!(samples.len() >= 10, "expected the samples of plugins/samples/messages, found {samples:?}");
    samples
}

/// `inflow plugin test <component> --config <config> --message <messages>... [extra]` in the
/// samples' rule context.
fn plugin_test(language: &str, config: &str, messages: &[PathBuf], extra: &[&str]) -> std::process::Output {
    Command::new(inflow_bin())
        .args(["plugin", "test"])
        .arg(component(language))
        .args(["--config", config, "--rule-id", RULE_ID, "--parent-topic", PARENT_TOPIC])
        .arg("--message")
        .args(messages)
        .args(extra)
        .output()
        .expect("run inflow plugin test")
}

fn samples_config() -> String {
    std::fs::read_to_string(samples_dir().join("config.json")).expect("read plugins/samples/config.json")
}

/// `plugin test --expect` over every sample: what a plugin author runs. Its report, when it is
/// not all as expected.
fn sample_mismatches(language: &str, expect: &Path) -> Option<String> {
    let output = plugin_test(language, &samples_config(), &sample_files(), &["--expect", expect.to_str().unwrap()]);
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (!output.status.success()).then(|| format!("{language}: plugin test --expect exited {}:\n{report}", output.status))
}

/// Every config of init.json: accepted, or refused by `init` with the expected reason.
fn init_mismatches(language: &str) -> Vec<String> {
    let cases = read_json(&samples_dir().join("init.json"));
    let cases = cases.as_array().expect("init.json is a list");
    assert!(!cases.is_empty());
    let message = [samples_dir().join("messages/reading.json")];
    cases
        .iter()
        .filter_map(|case| {
            let config = case["config"].as_str().expect("config is a string");
            let output = plugin_test(language, config, &message, &[]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            let ok = match case["error"].as_str() {
                None => output.status.success(),
                Some(reason) => !output.status.success() && stderr.contains(&format!("init refused the rule's config: {reason}")),
            };
            (!ok).then(|| format!("{language} init {config:?}: expected {}, got {}:\n{stderr}", case["error"], output.status))
        })
        .collect()
}

fn assert_offline(language: &str) {
    let expected = samples_dir().join("expected.json");
    let mismatches: Vec<String> = sample_mismatches(language, &expected).into_iter().chain(init_mismatches(language)).collect();
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

/// `--expect` can fail: one changed expectation makes the run exit 1 and name the sample and
/// the field, with both values.
#[test]
fn plugin_test_expect_reports_a_difference() {
    let scratch = std::env::temp_dir().join(unique_name("inflow-plugin-expect"));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut expected = read_json(&samples_dir().join("expected.json"));
    expected["reading.json"]["publishes"][0]["topic"] = json!("factory/press-7/plant-b");
    expected["not-json.json"] = json!({ "error": "body is fine" });
    let file = scratch.join("expected.json");
    std::fs::write(&file, serde_json::to_string_pretty(&expected).unwrap()).unwrap();
    let output = plugin_test("rust", &samples_config(), &sample_files(), &["--expect", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    for line in [
        "DIFFERS  reading.json",
        r#"publishes[0].topic: expected "factory/press-7/plant-b", got "factory/press-7/plant-a""#,
        "DIFFERS  not-json.json",
        r#"expected the plugin's error "body is fine""#,
        r#"got      the plugin's error "body is not valid JSON""#,
        "ok       unicode.json",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert!(stderr.contains("2 of 12 samples differ"), "{stderr}");
    let _ = std::fs::remove_dir_all(&scratch);
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

// ---- the guest toolchains' own checks -----------------------------------------------------------

/// Runs one of the repository's check scripts; its output is the failure's message.
fn run_script(script: &str) {
    let output = Command::new(repo_root().join(script)).output().unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{script} failed:\n{report}");
    eprintln!("{}", report.trim());
}

/// An exception a JavaScript plugin lets escape reaches `plugin test` with its text (a
/// TypeError), not only "unreachable", with the flags plugins/build.sh and the guide use.
#[test]
fn js_exception_text_reaches_plugin_test() {
    run_script("plugins/js/test-errors.sh");
}

/// The committed C bindings are what the pinned wit-bindgen makes of wit/mapping (skipped,
/// passing, where the generator is not installed: `guest-toolchains.sh c-bindgen`).
#[test]
fn c_bindings_match_the_wit() {
    run_script("plugins/c/check-bindings.sh");
}

// ---- inflow plugin new: a project per language that builds and passes its own test --------------

/// `inflow plugin new --lang <language> by-tag <dir>`, then its `./build.sh` with the real
/// toolchain, then the README's test command: exit 0.
fn scaffold_builds_and_passes(language: &str) {
    let setup = Command::new(repo_root().join("scripts/install/guest-toolchains.sh")).arg(language).status().unwrap();
    assert!(setup.success(), "guest-toolchains.sh {language}");
    let dir = std::env::temp_dir().join(unique_name(&format!("inflow-plugin-new-{language}")));
    let new = Command::new(inflow_bin()).args(["plugin", "new", "--lang", language, "by-tag"]).arg(&dir).output().unwrap();
    assert!(new.status.success(), "{language}: plugin new: {}", String::from_utf8_lossy(&new.stderr));
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for command in ["./build.sh", "inflow plugin test by-tag.wasm", "mv /var/lib/inflow/plugins/.by-tag.wasm.tmp", "journalctl -u inflow -f"] {
        assert!(readme.contains(command), "{language}: the README names {command:?}:\n{readme}");
    }

    // Rust builds share one target folder, so each run does not compile wit-bindgen again.
    let build = Command::new(dir.join("build.sh"))
        .env("CARGO_TARGET_DIR", repo_root().join("target/guest-scaffold"))
        .output()
        .unwrap();
    assert!(build.status.success(), "{language}: build.sh:\n{}{}", String::from_utf8_lossy(&build.stdout), String::from_utf8_lossy(&build.stderr));

    let test = Command::new(inflow_bin())
        .current_dir(&dir)
        .args(["plugin", "test", "by-tag.wasm", "--parent-topic", "plant", "--message", "samples/tagged.json", "samples/untagged.json", "--expect", "expected.json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success(), "{language}: plugin test --expect:\n{stdout}{}", String::from_utf8_lossy(&test.stderr));
    assert!(stdout.contains("all 2 samples as expected"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plugin_new_rust_builds_and_passes_its_test() {
    scaffold_builds_and_passes("rust");
}

#[test]
fn plugin_new_python_builds_and_passes_its_test() {
    scaffold_builds_and_passes("python");
}

#[test]
fn plugin_new_js_builds_and_passes_its_test() {
    scaffold_builds_and_passes("js");
}

#[test]
fn plugin_new_c_builds_and_passes_its_test() {
    scaffold_builds_and_passes("c");
}

#[test]
fn plugin_new_refuses_a_bad_name_and_a_folder_with_files() {
    let dir = std::env::temp_dir().join(unique_name("inflow-plugin-new-refused"));
    std::fs::create_dir_all(&dir).unwrap();
    let bad_name = Command::new(inflow_bin()).args(["plugin", "new", "--lang", "rust", "By_Tag"]).arg(dir.join("x")).output().unwrap();
    assert_eq!(bad_name.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_name.stderr).contains("\"By_Tag\" is not a plugin name"), "{bad_name:?}");
    std::fs::write(dir.join("mine.txt"), "keep").unwrap();
    let taken = Command::new(inflow_bin()).args(["plugin", "new", "--lang", "c", "by-tag"]).arg(&dir).output().unwrap();
    assert_eq!(taken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&taken.stderr).contains("exists and is not empty"), "{taken:?}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "nothing written");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- end to end: RocketMQ → inflow → Mosquitto -------------------------------------------------

#[test]
fn every_language_routes_rocketmq_messages_to_mqtt() {
    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::shared();
    let plugin_dir = std::env::temp_dir().join(unique_name("inflow-plugins-e2e"));
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let parent = unique_name("factory");
    let config = std::fs::read_to_string(samples_dir().join("config.json")).unwrap();

    // One rule per language: topic <lang>-readings → MQTT <parent>-<lang>/...
    let mut inflow_config = Config::new(rmq, mqtt).plugin_dir(&plugin_dir);
    let mut topics = Vec::new();
    for language in LANGUAGES {
        std::fs::copy(component(language), plugin_dir.join(format!("json-router-{language}.wasm"))).unwrap();
        let topic = unique_name(&format!("{language}-readings"));
        let plugin = format!("json-router-{language}");
        inflow_config = inflow_config.rule(
            Rule::new(&plugin, &topic, &format!("{parent}-{language}")).on_error("skip").plugin(&plugin).plugin_config(config.trim()),
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
    let inflow = Inflow::start(&inflow_config);

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
    inflow.wait_for_log("message skipped", LANGUAGES.len(), Duration::from_secs(30));
    let log = inflow.log();
    assert_eq!(log.matches("message skipped").count(), LANGUAGES.len(), "one skipped message per language:\n{log}");
    assert!(log.contains("body is not valid JSON"), "the plugin's reason is logged:\n{log}");
    for (language, sub) in LANGUAGES.iter().zip(&subs) {
        assert_eq!(sub.drain(), Vec::<MqttMessage>::new(), "{language}: nothing but the routed reading");
    }
    let _ = std::fs::remove_dir_all(&plugin_dir);
}
