//! The whole file: its sections checked one by one and its `[[rule]]`s each checked on its own
//! and against the rules before it, with every mistake of the file reported in one answer.

use super::error::{ConfigErrors, Errors};
use super::model::*;
use super::raw::*;
use super::rule::{check_rule, unreadable_rule, PluginLookup};
use super::rule_set::RuleSet;
use super::sections::*;
use super::Context;
use serde::de::DeserializeOwned;

const TOP_LEVEL: [&str; 6] = ["rocketmq", "mqtt", "plugins", "admin", "rules", "rule"];

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
    // Without an [admin] section there is no admin server: several inflow processes on one
    // host (tests, side-by-side instances) must not compete for one default port.
    let admin: Option<RawAdmin> = section(&table, "admin", &mut errors);
    let rules_folder: RawRulesFolder = rules_folder_section(&table, &mut errors).unwrap_or_default();

    let rocketmq = check_rocketmq(rocketmq, ctx, &mut errors);
    let mqtt = check_mqtt(mqtt, ctx, &mut errors);
    let plugins = check_plugins(plugins, ctx.base_dir);
    let admin = match admin {
        Some(admin) => check_admin(admin, ctx, &mut errors),
        None => AdminConfig { listen: None, max_body_bytes: AdminConfig::DEFAULT_MAX_BODY_BYTES, token: None },
    };
    let rules_dir = check_rules_folder(rules_folder, ctx.base_dir);
    let lookup = PluginLookup { dir: &plugins.dir, exists: ctx.plugin_exists };
    let rules = check_rules(&table, &lookup, &mut errors);

    match (rocketmq, mqtt) {
        (Some(rocketmq), Some(mqtt)) => errors.into_result(Config { rocketmq, mqtt, plugins, admin, rules_dir, rules }),
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

/// `[rules]`, with a fix of its own for `[[rules]]` written for `[[rule]]`.
fn rules_folder_section(table: &toml::Table, errors: &mut Errors) -> Option<RawRulesFolder> {
    if let Some(toml::Value::Array(_)) = table.get("rules") {
        errors.add("[[rules]]", "rules are written [[rule]], not [[rules]]", "rename each [[rules]] to [[rule]]; [rules] holds only dir, the rules folder");
        return None;
    }
    section(table, "rules", errors)
}

/// serde's message without the trailing location noise toml adds for values (it has no span here).
fn clean(e: &toml::de::Error) -> String {
    e.message().trim().to_string()
}

/// The `[[rule]]`s that passed every check; the mistakes of the others are in `errors`.
fn check_rules(table: &toml::Table, plugins: &PluginLookup<'_>, errors: &mut Errors) -> Vec<RuleConfig> {
    let items = match table.get("rule") {
        None => return Vec::new(),
        Some(toml::Value::Array(items)) => items.clone(),
        Some(_) => {
            errors.add("rule", "rules must be an array of tables", "write each rule as a [[rule]] table");
            return Vec::new();
        }
    };
    let mut rules = Vec::new();
    let mut earlier = RuleSet::default();
    for (index, item) in items.into_iter().enumerate() {
        let place = match item.get("id").and_then(|v| v.as_str()) {
            Some(id) => format!("rule[{index}] (id {id:?})"),
            None => format!("rule[{index}]"),
        };
        let raw: RawRule = match item.try_into() {
            Ok(r) => r,
            Err(e) => {
                errors.0.push(unreadable_rule(&place, clean(&e)));
                continue;
            }
        };
        let before = errors.count();
        let rule = check_rule(raw, &place, plugins, errors);
        let valid = errors.count() == before;
        // Every rule joins the set, so a rule with other mistakes still shows what it shares.
        earlier.check(&rule, &place, errors);
        earlier.add(&rule, place);
        if valid {
            rules.push(rule);
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::super::address::parse_mqtt_url;
    use super::super::{ConfigError, Context, OnError, Protocol};
    use super::*;
    use std::collections::HashMap;
    use std::path::Path;
    use std::time::Duration;

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
        assert!(has("rule[2] (id \"ok-1\") id", "also used by rule[1]"), "{errs:#?}");
        assert!(has("rule[2] (id \"ok-1\") target.parent_topic", "parent topic \"same\" is also the target of rule[1]"), "{errs:#?}");
        assert!(has("rule[3]", "no letter or digit"), "{errs:#?}");
        assert!(has("rule[4] (id \"typo\")", "sourse"), "{errs:#?}");
        assert!(errs.iter().all(|e| !e.fix.is_empty()));
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

    #[test]
    fn the_example_config_parses() {
        let exists = |_: &Path, _: &str| true;
        let lookup = |_: &str| None::<String>;
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"));
        let text = include_str!("../../../../examples/inflow.toml");
        let c = parse(text, &Context { base_dir: dir, env: &lookup, plugin_exists: &exists }).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.rules.len(), 2);
        assert_eq!(c.rocketmq.commit_interval, Duration::from_secs(1));
        assert_eq!(c.admin.listen, Some(AdminConfig::DEFAULT_LISTEN));
        assert_eq!(c.rules_dir, dir.join("rules.d"));
    }

    #[test]
    fn new_settings_default_and_are_checked() {
        let c = parse_with(BASE, &[]).unwrap();
        assert_eq!(c.rocketmq.commit_interval, Duration::from_millis(1000));
        assert_eq!(c.mqtt.max_packet_bytes, None);
        assert_eq!(c.admin.listen, None, "no [admin] section, no admin server");
        let c = parse_with(&format!("{BASE}[admin]\n"), &[]).unwrap();
        assert_eq!((c.admin.listen, c.admin.max_body_bytes), (Some("127.0.0.1:9464".parse().unwrap()), 1 << 20));
        assert_eq!(c.rules_dir, Path::new("/etc/inflow/rules.d"));
        let c = parse_with(
            &format!("{BASE}max_packet_bytes = 2048\n[admin]\nlisten = \"0.0.0.0:9000\"\n[rules]\ndir = \"/var/lib/inflow/rules\"\n"),
            &[("INFLOW_ADMIN_TOKEN", "t0ken")],
        )
        .unwrap();
        assert_eq!(c.mqtt.max_packet_bytes, Some(2048));
        assert_eq!(c.admin.listen, Some("0.0.0.0:9000".parse().unwrap()));
        assert_eq!(c.admin.token.as_ref().map(Secret::expose), Some("t0ken"));
        assert_eq!(c.rules_dir, Path::new("/var/lib/inflow/rules"));
        assert!(!format!("{c:?}").contains("t0ken"));
        for off in ["enabled = false", "listen = \"\""] {
            assert_eq!(parse_with(&format!("{BASE}[admin]\n{off}\n"), &[]).unwrap().admin.listen, None, "{off}");
        }
        let errs = errors(
            "[rocketmq]\nnamesrv = [\"h:1\"]\ncommit_interval_ms = 50\n[mqtt]\nurl = \"mqtt://h\"\nmax_packet_bytes = 3\n\
             [admin]\nlisten = \"example.com:80\"\nmax_body_bytes = 1\n[[rules]]\n",
        );
        for place in ["[rocketmq] commit_interval_ms", "[mqtt] max_packet_bytes", "[admin] listen", "[admin] max_body_bytes", "[[rules]]"] {
            assert!(errs.iter().any(|e| e.place == place), "{place}: {errs:#?}");
        }
    }

    #[test]
    fn an_admin_server_beyond_loopback_needs_a_token() {
        let open = parse_with(&format!("{BASE}[admin]\nlisten = \"0.0.0.0:9464\"\n"), &[]).unwrap().admin;
        let err = open.check_token().unwrap_err();
        assert!(err.place == "[admin] listen" && err.fix.contains("INFLOW_ADMIN_TOKEN"), "{err:#?}");
        assert!(parse_with(BASE, &[]).unwrap().admin.check_token().is_ok());
    }

    #[test]
    fn name_servers_from_the_environment_split_like_the_files() {
        let c = parse_with(BASE, &[("INFLOW_ROCKETMQ_NAMESRV", "a:1,b:2; c:3")]).unwrap();
        assert_eq!(c.rocketmq.namesrv, ["a:1", "b:2", "c:3"]);
    }
}
