//! `inflow plugin test --expect FILE`: the expected result of every sample message, compared
//! with what the plugin did, with a readable difference per sample that differs.
//!
//! # Expectation file format
//!
//! One JSON object keyed by sample name (the message file's name, `reading.json`; the n-th
//! message of an array file `batch.json[n]`, of inline JSON `inline[n]`, from 0). Each value is
//! exactly one of:
//!
//! * `{"publishes": [...]}`: the message maps to these publishes, in order (`[]`: dropped). A
//!   publish is written as `inflow plugin test` prints it: `topic`, `qos` (0–2) and the payload
//!   are required — `"payload_source": "original-body"`, or the plugin's bytes as `payload`
//!   (UTF-8 text) or `payload_base64`; `retain` (false), `user_properties` (`[]`, as
//!   `[key, value]` pairs), `content_type` and `message_expiry_interval` (null) may be left out.
//!   With `original-body`, a `payload` is compared only when given.
//! * `{"error": "text"}`: the plugin returns its `err` case with exactly this text.
//! * `{"failure": "text"}`: the message fails otherwise (a trap, the deadline, the memory cap, a
//!   limit, a refused topic), with an error message containing this text.
//!
//! Every sample needs an expectation and every expectation a sample, so a renamed file cannot
//! pass unnoticed.

use super::{payload_shown, MappedSample, Outcome};
use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The format, for `--help`.
pub(super) const FORMAT: &str = r#"Expectations (--expect FILE): one JSON object keyed by sample name (the message
file's name, e.g. "reading.json"; the n-th message of an array file "batch.json[n]",
of inline JSON "inline[n]"), each value exactly one of:

  {"publishes": [{"topic": "factory/press-7/plant-a", "qos": 1,
                  "payload_source": "original-body",
                  "user_properties": [["device", "press-7"]],
                  "content_type": "application/json"}]}
  {"publishes": [{"topic": "factory/x", "qos": 0, "payload": "text"}]}   (or "payload_base64")
  {"publishes": []}                          the message is dropped
  {"error": "body is not valid JSON"}        the plugin's err case, exactly this text
  {"failure": "CPU deadline"}                a trap, deadline, memory cap, limit or refused
                                             topic whose message contains this text

A publish is written as plugin test prints it; retain (false), user_properties ([]),
content_type and message_expiry_interval (null) may be left out. Every sample needs an
expectation and every expectation a sample. Exit 0 when every sample is as expected."#;

/// What one sample must do.
#[derive(Debug, PartialEq)]
enum Expected {
    /// The publishes, each in the shape `inflow plugin test` prints.
    Publishes(Vec<Value>),
    Error(String),
    Failure(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectation {
    publishes: Option<Vec<ExpectedPublish>>,
    error: Option<String>,
    failure: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedPublish {
    topic: String,
    qos: u8,
    #[serde(default)]
    retain: bool,
    payload_source: Option<String>,
    payload: Option<String>,
    payload_base64: Option<String>,
    #[serde(default)]
    user_properties: Vec<(String, String)>,
    content_type: Option<String>,
    message_expiry_interval: Option<u32>,
}

impl ExpectedPublish {
    /// The publish as `inflow plugin test` prints it, so the two compare field by field.
    fn into_shown(self) -> anyhow::Result<Value> {
        let bytes = match (self.payload, self.payload_base64) {
            (Some(_), Some(_)) => bail!("give either `payload` or `payload_base64`, not both"),
            (Some(text), None) => Some(text.into_bytes()),
            (None, Some(encoded)) => Some(BASE64.decode(encoded.trim()).context("`payload_base64` is not base64")?),
            (None, None) => None,
        };
        let source = match (self.payload_source.as_deref(), &bytes) {
            (Some("original-body"), _) => "original-body",
            (Some("plugin") | None, Some(_)) => "plugin",
            (Some("plugin") | None, None) => bail!(
                "publish to {:?} has no payload: give `\"payload_source\": \"original-body\"`, or the plugin's bytes as `payload` or `payload_base64`",
                self.topic
            ),
            (Some(other), _) => bail!("`payload_source` {other:?} is neither \"original-body\" nor \"plugin\""),
        };
        if self.qos > 2 {
            bail!("publish to {:?}: `qos` {} is not 0, 1 or 2", self.topic, self.qos);
        }
        let mut shown = bytes.map_or_else(|| json!({}), |bytes| payload_shown(&bytes));
        let fields = shown.as_object_mut().expect("payload_shown makes an object");
        fields.insert("topic".into(), json!(self.topic));
        fields.insert("qos".into(), json!(self.qos));
        fields.insert("retain".into(), json!(self.retain));
        fields.insert("payload_source".into(), json!(source));
        fields.insert("user_properties".into(), json!(self.user_properties));
        fields.insert("content_type".into(), json!(self.content_type));
        fields.insert("message_expiry_interval".into(), json!(self.message_expiry_interval));
        Ok(shown)
    }
}

fn parse_expectation(value: Value) -> anyhow::Result<Expected> {
    let raw: RawExpectation = serde_json::from_value(value)?;
    Ok(match (raw.publishes, raw.error, raw.failure) {
        (Some(publishes), None, None) => Expected::Publishes(
            publishes
                .into_iter()
                .enumerate()
                .map(|(index, publish)| publish.into_shown().with_context(|| format!("publishes[{index}]")))
                .collect::<anyhow::Result<_>>()?,
        ),
        (None, Some(error), None) => Expected::Error(error),
        (None, None, Some(failure)) => Expected::Failure(failure),
        _ => bail!("give exactly one of `publishes`, `error` or `failure`"),
    })
}

/// Reads and checks an expectation file; each mistake names the sample and the field.
fn read_expectations(path: &Path) -> anyhow::Result<BTreeMap<String, Expected>> {
    let place = format!("the --expect file {}", path.display());
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {place}"))?;
    let value: Value = serde_json::from_str(&text).with_context(|| format!("{place} is not valid JSON"))?;
    let Value::Object(entries) = value else {
        bail!("{place} must be a JSON object keyed by sample name (see `inflow plugin test --help`)");
    };
    entries
        .into_iter()
        .map(|(name, value)| {
            let expected = parse_expectation(value).with_context(|| format!("{place}: sample {name:?}"))?;
            Ok((name, expected))
        })
        .collect()
}

/// How the samples compared with their expectations.
pub(super) struct Report {
    pub lines: Vec<String>,
    pub differing: usize,
}

/// Compares every mapped sample with the expectations of `path`.
pub(super) fn compare_file(path: &Path, mapped: &[MappedSample]) -> anyhow::Result<Report> {
    let mut expectations = read_expectations(path)?;
    let mut report = Report { lines: Vec::new(), differing: 0 };
    for sample in mapped {
        let differences = match expectations.remove(&sample.name) {
            Some(expected) => differences(&expected, &sample.outcome),
            None => vec![format!("no expectation for this sample in {}; add {:?} to it", path.display(), sample.name)],
        };
        if differences.is_empty() {
            report.lines.push(format!("ok       {}", sample.name));
        } else {
            report.differing += 1;
            report.lines.push(format!("DIFFERS  {}", sample.name));
            report.lines.extend(differences.into_iter().map(|line| format!("    {line}")));
        }
    }
    if !expectations.is_empty() {
        let names: Vec<&String> = mapped.iter().map(|sample| &sample.name).collect();
        let unused: Vec<&String> = expectations.keys().collect();
        bail!("{} has expectations for samples that were not given: {unused:?} (the samples are {names:?})", path.display());
    }
    Ok(report)
}

/// What differs between the expectation and the outcome, one readable line each; empty when
/// they match.
fn differences(expected: &Expected, outcome: &Outcome) -> Vec<String> {
    match (expected, outcome) {
        (Expected::Publishes(expected), Outcome::Publishes(got)) => {
            let mut lines = Vec::new();
            if expected.len() != got.len() {
                lines.push(format!("expected {} publishes, got {}: {}", expected.len(), got.len(), topics(got)));
            }
            for (index, (want, have)) in expected.iter().zip(got).enumerate() {
                diff_publish(&format!("publishes[{index}]"), want, have, &mut lines);
            }
            lines
        }
        (Expected::Error(want), Outcome::Error(have)) if want == have => Vec::new(),
        (Expected::Failure(want), Outcome::Failure(have)) if have.contains(want.as_str()) => Vec::new(),
        (expected, outcome) => vec![format!("expected {}", describe_expected(expected)), format!("got      {}", describe_outcome(outcome))],
    }
}

/// One line per field that differs; `original-body` publishes compare the payload only when the
/// expectation gives it.
fn diff_publish(place: &str, want: &Value, have: &Value, lines: &mut Vec<String>) {
    let empty = Map::new();
    let (want, have) = (want.as_object().unwrap_or(&empty), have.as_object().unwrap_or(&empty));
    let original_body = want.get("payload_source") == Some(&json!("original-body"));
    let keys: std::collections::BTreeSet<&String> = want.keys().chain(have.keys()).collect();
    for key in keys {
        let is_payload = key == "payload" || key == "payload_base64";
        if is_payload && original_body && !want.contains_key("payload") && !want.contains_key("payload_base64") {
            continue;
        }
        let (w, h) = (want.get(key).unwrap_or(&Value::Null), have.get(key).unwrap_or(&Value::Null));
        if w != h {
            lines.push(format!("{place}.{key}: expected {}, got {}", shown(want.get(key)), shown(have.get(key))));
        }
    }
}

fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "nothing".to_string(), Value::to_string)
}

fn topics(publishes: &[Value]) -> String {
    let topics: Vec<String> = publishes.iter().map(|p| p["topic"].to_string()).collect();
    format!("[{}]", topics.join(", "))
}

fn describe_expected(expected: &Expected) -> String {
    match expected {
        Expected::Publishes(publishes) => format!("{} publishes {}", publishes.len(), topics(publishes)),
        Expected::Error(text) => format!("the plugin's error {text:?}"),
        Expected::Failure(text) => format!("a failure containing {text:?}"),
    }
}

fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Publishes(publishes) => format!("{} publishes {}", publishes.len(), topics(publishes)),
        Outcome::Error(text) => format!("the plugin's error {text:?}"),
        Outcome::Failure(text) => format!("the failure {text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expectation(json: &str) -> Expected {
        parse_expectation(serde_json::from_str(json).unwrap()).unwrap()
    }

    fn routed(topic: &str, body: &str) -> Value {
        json!({ "topic": topic, "qos": 1, "retain": false, "payload_source": "original-body", "payload": body,
                "user_properties": [["device", "press-7"]], "content_type": "application/json",
                "message_expiry_interval": null })
    }

    const ROUTED: &str = r#"{"publishes": [{"topic": "factory/press-7", "qos": 1, "payload_source": "original-body",
        "user_properties": [["device", "press-7"]], "content_type": "application/json"}]}"#;

    #[test]
    fn a_short_expectation_matches_the_full_output() {
        let got = Outcome::Publishes(vec![routed("factory/press-7", "{}")]);
        assert_eq!(differences(&expectation(ROUTED), &got), Vec::<String>::new());
    }

    #[test]
    fn each_differing_field_is_named_with_both_values() {
        let mut publish = routed("factory/press-8", "{}");
        publish["qos"] = json!(2);
        let lines = differences(&expectation(ROUTED), &Outcome::Publishes(vec![publish]));
        assert_eq!(
            lines,
            vec![r#"publishes[0].qos: expected 1, got 2"#, r#"publishes[0].topic: expected "factory/press-7", got "factory/press-8""#]
        );
    }

    #[test]
    fn a_missing_publish_and_a_payload_the_plugin_made_differ() {
        let two = Outcome::Publishes(vec![routed("factory/press-7", "{}"), routed("factory/all/press-7", "{}")]);
        let lines = differences(&expectation(ROUTED), &two);
        assert_eq!(lines, vec![r#"expected 1 publishes, got 2: ["factory/press-7", "factory/all/press-7"]"#]);

        let made = expectation(r#"{"publishes": [{"topic": "t", "qos": 0, "payload_base64": "aGk="}]}"#);
        let mut publish = routed("t", "ho");
        publish["qos"] = json!(0);
        publish["payload_source"] = json!("plugin");
        publish["user_properties"] = json!([]);
        publish["content_type"] = json!(null);
        assert_eq!(differences(&made, &Outcome::Publishes(vec![publish])), vec![r#"publishes[0].payload: expected "hi", got "ho""#]);
    }

    #[test]
    fn expected_errors_are_part_of_the_result() {
        let error = expectation(r#"{"error": "body is not valid JSON"}"#);
        assert!(differences(&error, &Outcome::Error("body is not valid JSON".into())).is_empty());
        assert_eq!(
            differences(&error, &Outcome::Error("body is not a JSON object".into())),
            vec![r#"expected the plugin's error "body is not valid JSON""#, r#"got      the plugin's error "body is not a JSON object""#]
        );
        let lines = differences(&error, &Outcome::Publishes(vec![routed("factory/a", "{}")]));
        assert_eq!(lines[1], r#"got      1 publishes ["factory/a"]"#);

        let failure = expectation(r#"{"failure": "CPU deadline"}"#);
        assert!(differences(&failure, &Outcome::Failure("plugin p ran past its 100ms CPU deadline and was interrupted".into())).is_empty());
        assert!(!differences(&failure, &Outcome::Error("CPU deadline".into())).is_empty(), "the plugin's own error is not a failure");
    }

    #[test]
    fn expectation_mistakes_are_named() {
        let mistake = |json: &str| format!("{:#}", parse_expectation(serde_json::from_str(json).unwrap()).err().unwrap());
        assert!(mistake(r#"{"error": "x", "publishes": []}"#).contains("exactly one of"));
        assert!(mistake(r#"{"publishes": [{"topic": "t", "qos": 1}]}"#).contains("has no payload"));
        assert!(mistake(r#"{"publishes": [{"topic": "t", "qos": 3, "payload": ""}]}"#).contains("not 0, 1 or 2"));
        assert!(mistake(r#"{"publishes": [{"topic": "t", "qos": 1, "payload": "", "retian": true}]}"#).contains("unknown field `retian`"));
    }

    #[test]
    fn every_sample_needs_an_expectation_and_every_expectation_a_sample() {
        let dir = std::env::temp_dir().join(format!("inflow-expect-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("expected.json");
        std::fs::write(&file, r#"{"a.json": {"publishes": []}, "b.json": {"error": "no"}}"#).unwrap();
        let sample = |name: &str, outcome| MappedSample { name: name.into(), outcome };
        let report = compare_file(&file, &[sample("a.json", Outcome::Publishes(vec![])), sample("b.json", Outcome::Error("no".into()))]).unwrap();
        assert_eq!((report.differing, report.lines), (0, vec!["ok       a.json".to_string(), "ok       b.json".to_string()]));

        let report = compare_file(&file, &[sample("a.json", Outcome::Publishes(vec![])), sample("b.json", Outcome::Error("no".into())), sample("c.json", Outcome::Publishes(vec![]))]).unwrap();
        assert_eq!(report.differing, 1);
        assert!(report.lines[3].contains("no expectation for this sample"), "{:?}", report.lines);

        let err = compare_file(&file, &[sample("a.json", Outcome::Publishes(vec![]))]).err().unwrap();
        assert!(err.to_string().contains(r#"["b.json"]"#), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
