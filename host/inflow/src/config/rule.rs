//! One rule on its own: every field checked, defaults filled in. [`validate_rule`] adds the
//! cross-rule checks of [`super::rule_set`], so the admin API checks a rule exactly as the config
//! file's loader does, with the same messages.

use super::error::{ConfigError, ConfigErrors, Errors};
use super::model::*;
use super::raw::{RawLimits, RawRule};
use super::rule_set::RuleSet;
use super::topic::check_topic_filter;
use serde::{Deserialize, Deserializer};
use std::path::Path;
use std::time::Duration;

/// The fields a `[[rule]]` table may have, for the fix of a field mistake.
const RULE_FIELDS: &str = "id, description, enabled, source, target, plugin, on_error, workers, limits";
const MAX_WORKERS: usize = 64;

/// Where a rule's plugin is looked for: the one thing checking a rule needs besides the rule.
pub struct PluginLookup<'a> {
    pub dir: &'a Path,
    /// Whether a plugin of this name is in the folder.
    pub exists: &'a dyn Fn(&Path, &str) -> bool,
}

impl<'a> PluginLookup<'a> {
    /// Looks for `<name>.wasm` files in `dir`.
    pub fn on_disk(dir: &'a Path) -> PluginLookup<'a> {
        PluginLookup { dir, exists: &super::plugin_on_disk }
    }

    /// Takes every plugin of `dir` as present: for rules that wait for their plugin's file.
    pub fn waiting(dir: &'a Path) -> PluginLookup<'a> {
        PluginLookup { dir, exists: &super::any_plugin }
    }
}

/// Validates one rule as written — a TOML table of a rules file or the JSON body of the admin
/// API, anything serde reads — against the rules it is to run beside: its id, parent topic and
/// consumer group must be its own, and no topic filter it may publish to may reach another
/// rule's parent topic, nor another's reach its parent (those errors name the other rule).
/// For an update, `existing` is the running set without the rule's current version.
///
/// Every mistake is reported at once; places read `rule "<id>" <field>`.
pub fn validate_rule<'de, D: Deserializer<'de>>(
    rule: D,
    existing: &[RuleConfig],
    plugins: &PluginLookup<'_>,
) -> Result<RuleConfig, ConfigErrors> {
    let raw = RawRule::deserialize(rule).map_err(|e| ConfigErrors(vec![unreadable_rule("rule", e.to_string())]))?;
    let place = match &raw.id {
        Some(id) => format!("rule {id:?}"),
        None => "rule".to_string(),
    };
    let mut errors = Errors::default();
    let rule = check_rule(raw, &place, plugins, &mut errors);
    RuleSet::of(existing).check(&rule, &place, &mut errors);
    errors.into_result(rule)
}

/// A rule as JSON with every default filled in: what `GET /api/v1/rules/{id}` shows, and a body
/// [`validate_rule`] reads back as the same rule.
pub fn rule_json(rule: &RuleConfig) -> serde_json::Value {
    let l = &rule.limits;
    serde_json::json!({
        "id": rule.id,
        "description": rule.description,
        "enabled": rule.enabled,
        "source": {
            "topic": rule.source.topic,
            "expression": rule.source.expression,
            "group": rule.source.group,
            "start": match rule.source.start { StartFrom::Latest => "latest", StartFrom::Earliest => "earliest" },
        },
        "target": { "parent_topic": rule.parent_topic, "allow_topics": rule.allow_topics },
        "plugin": rule.plugin.as_ref().map(|p| serde_json::json!({ "name": p.name, "config": p.config })),
        "on_error": rule.on_error.name(),
        "workers": rule.workers,
        "limits": {
            "call_deadline_ms": l.call_deadline.as_millis() as u64,
            "memory_mb": l.memory_bytes >> 20,
            "max_publishes": l.max_publishes,
            "max_payload_bytes": l.max_payload_bytes,
            "max_unacked_per_queue": l.max_unacked_per_queue,
        },
    })
}

/// A rule whose fields serde could not read (an unknown field, a wrong type).
pub(super) fn unreadable_rule(place: &str, problem: String) -> ConfigError {
    ConfigError::new(place, problem.trim(), format!("use only the documented rule fields: {RULE_FIELDS}"))
}

/// The rule as written, with its mistakes added to `errors` and its places starting with `place`.
pub(super) fn check_rule(raw: RawRule, place: &str, plugins: &PluginLookup<'_>, errors: &mut Errors) -> RuleConfig {
    let id = raw.id.unwrap_or_default();
    if let Err(problem) = check_rule_id(&id) {
        errors.add(format!("{place} id"), problem, "use 3 to 64 letters, digits, '-' or '_', with at least one letter or digit");
    }
    let source = match raw.source {
        None => {
            errors.add(format!("{place} source"), "missing", "add [rule.source] with topic = \"...\"");
            SourceConfig { topic: String::new(), expression: String::new(), group: String::new(), start: StartFrom::Latest }
        }
        Some(s) => {
            let topic = s.topic.unwrap_or_default();
            if let Err((problem, fix)) = check_source_topic(&topic) {
                errors.add(format!("{place} source.topic"), problem, fix);
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
            SourceConfig { topic, expression, group, start }
        }
    };
    let (parent_topic, allow_topics) = raw.target.map(|t| (t.parent_topic.unwrap_or_default(), t.allow_topics)).unwrap_or_default();
    if let Err(problem) = check_parent_topic(&parent_topic) {
        errors.add(format!("{place} target.parent_topic"), problem, "use one MQTT topic level without '/', '+', '#', e.g. \"devices\"");
    }
    for (index, filter) in allow_topics.iter().enumerate() {
        if let Err(problem) = check_topic_filter(filter) {
            errors.add(
                format!("{place} target.allow_topics[{index}]"),
                problem,
                "write an MQTT topic filter: levels separated by '/', '+' for one whole level, '#' for the rest as the last level, e.g. \"alarms/+/high\"",
            );
        }
    }
    let plugin = raw.plugin.map(|p| {
        let name = p.name.unwrap_or_default();
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            errors.add(format!("{place} plugin.name"), format!("{name:?} is not a plugin name"), "give the file name of the plugin without .wasm, e.g. \"my-mapping\"");
        } else if !(plugins.exists)(plugins.dir, &name) {
            errors.add(
                format!("{place} plugin.name"),
                format!("unknown plugin {name:?}: no {}", super::plugin_file(plugins.dir, &name).display()),
                format!("put {name}.wasm into {} or fix the name", plugins.dir.display()),
            );
        }
        PluginRef { name, config: p.config }
    });
    let on_error = match raw.on_error.as_deref() {
        None => OnError::DeadLetter,
        Some(name) => OnError::parse(name).unwrap_or_else(|| {
            errors.add(format!("{place} on_error"), format!("unknown policy {name:?}"), format!("use one of {}", OnError::NAMES.join(", ")));
            OnError::DeadLetter
        }),
    };
    let workers = raw.workers.unwrap_or_else(default_workers);
    if !(1..=MAX_WORKERS).contains(&workers) {
        errors.add(
            format!("{place} workers"),
            format!("{workers} is out of range"),
            format!("use 1..={MAX_WORKERS}, or leave it out for one per core"),
        );
    }
    let limits = check_limits(raw.limits, place, errors);
    RuleConfig {
        id,
        description: raw.description,
        enabled: raw.enabled.unwrap_or(true),
        source,
        parent_topic,
        allow_topics,
        plugin,
        on_error,
        workers,
        limits,
    }
}

/// One worker per core (at most [`MAX_WORKERS`]).
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_WORKERS)
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

fn check_rule_id(id: &str) -> Result<(), String> {
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

/// The longest RocketMQ topic the broker accepts.
const MAX_SOURCE_TOPIC_CHARS: usize = 127;

/// The problem and its fix, each naming what is wrong: the characters, or only the length.
fn check_source_topic(topic: &str) -> Result<(), (String, String)> {
    let characters = "use 1 to 127 letters, digits, '-', '_', '%' or '|'";
    if topic.is_empty() {
        return Err(("missing".into(), format!("add topic = \"...\": the RocketMQ topic to consume; {characters}")));
    }
    if !is_rocketmq_name(topic) {
        return Err((format!("{topic:?} is not a valid RocketMQ topic"), characters.into()));
    }
    // Only ASCII is left, so bytes are characters.
    if topic.len() > MAX_SOURCE_TOPIC_CHARS {
        return Err((
            format!("topic \"{}…\" is {} characters long; RocketMQ allows at most {MAX_SOURCE_TOPIC_CHARS}", &topic[..32], topic.len()),
            format!("shorten the topic to {MAX_SOURCE_TOPIC_CHARS} characters or fewer"),
        ));
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

/// Letters, digits, `-`, `_`, `%` and `|`: what RocketMQ accepts in topic, group and namespace names.
pub(super) fn is_rocketmq_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '%' | '|'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn only_known(_: &Path, name: &str) -> bool {
        name == "known"
    }

    fn lookup() -> PluginLookup<'static> {
        PluginLookup { dir: Path::new("/plugins"), exists: &only_known }
    }

    fn valid(rule: serde_json::Value) -> RuleConfig {
        validate_rule(rule, &[], &lookup()).expect("valid")
    }

    /// The running set: "alpha" on parent "plant" with group "G-alpha", allowed "alerts/#".
    fn running() -> Vec<RuleConfig> {
        vec![valid(json!({
            "id": "alpha", "source": {"topic": "T", "group": "G-alpha"},
            "target": {"parent_topic": "plant", "allow_topics": ["alerts/#"]}
        }))]
    }

    fn problems(rule: serde_json::Value) -> Vec<ConfigError> {
        validate_rule(rule, &running(), &lookup()).expect_err("must fail").0
    }

    #[test]
    fn a_rule_shown_as_json_reads_back_as_the_same_rule() {
        let rule = valid(json!({"id": "r-1", "source": {"topic": "T", "start": "earliest"}, "target": {"parent_topic": "p", "allow_topics": ["a/#"]},
                                "plugin": {"name": "known", "config": "{}"}, "on_error": "skip", "limits": {"call_deadline_ms": 7, "memory_mb": 3}}));
        assert_eq!(valid(rule_json(&rule)), rule);
        let mut body = rule_json(&rule);
        body["plugin"] = serde_json::Value::Null;
        assert_eq!(valid(body).plugin, None, "a null plugin is the built-in mapping");
    }

    #[test]
    fn a_rule_is_validated_on_its_own_with_defaults() {
        let rule = valid(json!({"id": "r-1", "source": {"topic": "T"}, "target": {"parent_topic": "p"}}));
        assert_eq!(rule.source.group, "inflow-r-1");
        assert!(rule.enabled && rule.allow_topics.is_empty());
        assert!((1..=MAX_WORKERS).contains(&rule.workers));
        let rule = valid(json!({"id": "r-1", "source": {"topic": "T"}, "target": {"parent_topic": "p"}, "workers": 3}));
        assert_eq!(rule.workers, 3);
    }

    #[test]
    fn against_the_running_set_an_id_a_parent_topic_and_a_group_are_each_owned_by_one_rule() {
        let errs = problems(json!({
            "id": "alpha", "source": {"topic": "T", "group": "G-alpha"}, "target": {"parent_topic": "plant"}
        }));
        let has = |place: &str, problem: &str| errs.iter().any(|e| e.place == place && e.problem.contains(problem) && !e.fix.is_empty());
        assert!(has("rule \"alpha\" id", "rule id \"alpha\" is also used by rule \"alpha\""), "{errs:#?}");
        assert!(has("rule \"alpha\" target.parent_topic", "parent topic \"plant\" is also the target of rule \"alpha\"; one rule per MQTT parent topic"), "{errs:#?}");
        assert!(has("rule \"alpha\" source.group", "consumer group \"G-alpha\" is also used by rule \"alpha\""), "{errs:#?}");
        assert_eq!(errs.len(), 3, "{errs:#?}");
    }

    #[test]
    fn allowed_topic_filters_may_not_reach_another_rules_parent_topic() {
        let errs = problems(json!({
            "id": "beta", "source": {"topic": "T"},
            "target": {"parent_topic": "alerts", "allow_topics": ["plant/alarms/#", "+/x", "beta-extra/#", "bad/#/x"]}
        }));
        let at = |place: &str, problem: &str| errs.iter().any(|e| e.place == place && e.problem.contains(problem));
        assert!(at("rule \"beta\" target.allow_topics[0]", "\"plant/alarms/#\" reaches parent topic \"plant\" of rule \"alpha\""), "{errs:#?}");
        assert!(at("rule \"beta\" target.allow_topics[1]", "\"+/x\" reaches parent topic \"plant\" of rule \"alpha\""), "{errs:#?}");
        assert!(at("rule \"beta\" target.allow_topics[3]", "'#' before its last level"), "{errs:#?}");
        assert!(
            at("rule \"beta\" target.parent_topic", "\"alerts\" is reached by topic filter \"alerts/#\" in target.allow_topics of rule \"alpha\""),
            "{errs:#?}"
        );
        assert_eq!(errs.len(), 4, "{errs:#?}");
        // Beside the set, a rule may widen into topics nobody owns, and its own parent is always its own.
        validate_rule(
            json!({"id": "gamma", "source": {"topic": "T"}, "target": {"parent_topic": "g", "allow_topics": ["g/#", "events/+"]}}),
            &running(),
            &lookup(),
        )
        .expect("no overlap");
    }

    #[test]
    fn every_mistake_of_a_rule_is_reported_at_once_with_its_fix() {
        let errs = problems(json!({
            "id": "x", "source": {"topic": "a".repeat(128), "start": "now"}, "target": {"parent_topic": "a/b"},
            "plugin": {"name": "nope"}, "on_error": "retry", "workers": 0, "limits": {"memory_mb": 0}
        }));
        let places: Vec<&str> = errs.iter().map(|e| e.place.as_str()).collect();
        for place in ["id", "source.topic", "source.start", "target.parent_topic", "plugin.name", "on_error", "workers", "limits.memory_mb"] {
            assert!(places.contains(&format!("rule \"x\" {place}").as_str()), "{place}: {errs:#?}");
        }
        assert!(errs.iter().all(|e| !e.fix.is_empty()));
        let unreadable = problems(json!({"id": "abc", "sourse": {}}));
        assert!(unreadable[0].place == "rule" && unreadable[0].problem.contains("sourse"), "{unreadable:#?}");
    }

    #[test]
    fn a_long_source_topic_is_told_it_is_too_long() {
        let errs = problems(json!({"id": "long", "source": {"topic": "t".repeat(128)}, "target": {"parent_topic": "l"}}));
        let topic_error = errs.iter().find(|e| e.place.ends_with("source.topic")).expect("a topic error");
        assert!(topic_error.problem.contains("128 characters long; RocketMQ allows at most 127"), "{topic_error:#?}");
        assert!(topic_error.fix.contains("shorten"), "{topic_error:#?}");
        let errs = problems(json!({"id": "bad", "source": {"topic": "a b"}, "target": {"parent_topic": "b"}}));
        assert!(errs.iter().any(|e| e.problem.contains("not a valid RocketMQ topic")), "{errs:#?}");
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

}
