//! The admin server of `inflow run` against real brokers: `/readyz` follows the MQTT connection
//! and the rules, `/healthz` stays 200 through it all, `/metrics` counts what was forwarded
//! (checked through a real Prometheus and promtool), the consumer lag agrees with the
//! broker's own figures, and off loopback the bearer token guards everything and is never logged.

use inflow_e2e::{sample, alerts_file, free_port, http_get, Admin, promtool, repo_root, unique_name, Config, Inflow, Mosquitto, MqttVersion, Produce, Prometheus, RocketMq, Rule};
use std::thread;
use std::time::{Duration, Instant};

/// `GET http://127.0.0.1:<port><path>` without a token.
fn get(port: u16, path: &str) -> (u16, String) {
    Admin { port }.get(path)
}

/// Polls until `done` holds; panics after `timeout` with `what`, its last state and inflow's log.
fn wait_until(what: &str, timeout: Duration, inflow: &Inflow, mut done: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + timeout;
    loop {
        let state = match done() {
            Ok(()) => return,
            Err(state) => state,
        };
        assert!(Instant::now() < deadline, "{what} within {timeout:?}; last: {state}\ninflow log:\n{}", inflow.log());
        thread::sleep(Duration::from_millis(200));
    }
}

/// Polls `path` until its status is `want`; returns the body.
fn wait_status(port: u16, path: &str, want: u16, inflow: &Inflow) -> String {
    Admin { port }.wait_status(path, want, || inflow.log())
}

fn admin_listen(port: u16) -> String {
    format!("listen = \"127.0.0.1:{port}\"")
}

#[test]
fn readiness_follows_mqtt_and_metrics_count_what_was_forwarded() {
    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::start();
    let topic = unique_name("adm");
    let parent = unique_name("adm");
    let port = free_port();
    let count = 50;
    rmq.java().produce(&topic, &Produce::new(count).body("seq={seq}"));
    let sub = mqtt.subscribe(&format!("{parent}/#"), MqttVersion::V5);
    let inflow = Inflow::start(&Config::new(rmq, &mqtt).line("admin", &admin_listen(port)).rule(Rule::new("admin-rule", &topic, &parent)));
    wait_status(port, "/readyz", 200, &inflow);
    assert_eq!(sub.wait_for(count as usize, Duration::from_secs(60)).len(), count as usize, "{}", inflow.log());
    let forwarded = "inflow_rule_messages_forwarded_total{rule=\"admin-rule\"}";
    wait_until(&format!("{forwarded} reaches {count}"), Duration::from_secs(10), &inflow, || {
        let seen = sample(&get(port, "/metrics").1, forwarded);
        if seen == Some(count as f64) {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    });

    mqtt.stop();
    let reasons = wait_status(port, "/readyz", 503, &inflow);
    assert!(reasons.contains("\"component\":\"mqtt\""), "{reasons}");
    assert_eq!(get(port, "/healthz").0, 200);
    let metrics = get(port, "/metrics").1;
    assert_eq!(sample(&metrics, "inflow_mqtt_connected"), Some(0.0), "{metrics}");
    mqtt.resume();
    wait_status(port, "/readyz", 200, &inflow);
    assert_eq!(get(port, "/healthz").0, 200);
    let metrics = get(port, "/metrics").1;
    assert!(sample(&metrics, "inflow_mqtt_reconnects_total").is_some_and(|n| n >= 1.0), "{metrics}");
}

#[test]
fn prometheus_scrapes_the_forwarded_count_and_promtool_accepts_metrics_and_alerts() {
    let alerts = alerts_file();
    let checked = promtool(&["check", "rules", &alerts.to_string_lossy()], "");
    assert!(checked.is_ok(), "promtool check rules {}: {checked:?}", alerts.display());
    let alert_count = std::fs::read_to_string(&alerts).expect("read docs/alerts.yml").matches("- alert:").count();

    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::shared();
    let (topic, plugin_topic) = (unique_name("prom"), unique_name("prom-plugin"));
    let port = free_port();
    let count = 30;
    rmq.java().produce(&topic, &Produce::new(count).body("seq={seq}"));
    rmq.java().produce(&plugin_topic, &Produce::new(1).property("site", "plant-a").body(r#"{"device":"press-7"}"#));
    // A plugin serving and a file refused, so the plugin families are in the exposition too.
    let wasm = repo_root().join("target/plugins/json-router-rust.wasm");
    assert!(wasm.exists(), "{} is missing: run plugins/build.sh rust (scripts/test.sh does)", wasm.display());
    let plugins = std::env::temp_dir().join(unique_name("inflow-plugins"));
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(&wasm, plugins.join("json-router.wasm")).unwrap();
    std::fs::write(plugins.join("broken.wasm"), b"not a plugin").unwrap();
    let inflow = Inflow::start(
        &Config::new(rmq, mqtt)
            .line("admin", &admin_listen(port))
            .plugin_dir(&plugins)
            .rule(Rule::new("prom-rule", &topic, &unique_name("prom")))
            .rule(Rule::new("prom-plugin-rule", &plugin_topic, &unique_name("prom")).plugin("json-router").plugin_config(r#"{"field": "device"}"#)),
    );
    let prometheus = Prometheus::start(port, &[&alerts]);

    for (series, want) in [
        ("inflow_rule_messages_forwarded_total{rule=\"prom-rule\"}".to_string(), count as f64),
        ("inflow_plugin_call_seconds_count{plugin=\"json-router\"}".to_string(), 1.0),
        ("inflow_plugin_refusals_total{plugin=\"broken\",reason=\"not_wasm\"}".to_string(), 1.0),
    ] {
        wait_until(&format!("Prometheus reports {series} = {want}"), Duration::from_secs(90), &inflow, || match prometheus.query_one(&series) {
            Some(n) if n == want => Ok(()),
            other => Err(format!("{other:?}")),
        });
    }
    // The scrape itself is healthy, and every alerting rule evaluates against real series.
    assert_eq!(prometheus.query_one("up{job=\"inflow\"}"), Some(1.0));
    wait_until("every alerting rule of docs/alerts.yml evaluated with health ok", Duration::from_secs(30), &inflow, || {
        let rules = prometheus.api("rules");
        let health: Vec<String> =
            rules["groups"].as_array().into_iter().flatten().flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default()).map(|r| format!("{}={}", r["name"], r["health"])).collect();
        if health.len() == alert_count && health.iter().all(|h| h.ends_with("=\"ok\"")) {
            Ok(())
        } else {
            Err(format!("{health:?}"))
        }
    });

    let (code, exposition) = get(port, "/metrics");
    assert_eq!(code, 200);
    let linted = promtool(&["check", "metrics"], &exposition);
    assert!(linted.is_ok(), "promtool check metrics: {linted:?}\non:\n{exposition}");
    let _ = std::fs::remove_dir_all(&plugins);
}

#[test]
fn lag_matches_the_brokers_figures_while_mqtt_is_down_and_drains_to_zero() {
    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::start();
    let topic = unique_name("lag");
    let group = unique_name("lag-group");
    let port = free_port();
    rmq.create_topic(&topic, 4);
    let inflow = Inflow::start(
        &Config::new(rmq, &mqtt)
            .line("admin", &admin_listen(port))
            .line("rocketmq", "commit_interval_ms = 200")
            .rule(Rule::new("lag-rule", &topic, &unique_name("lag")).group(&group)),
    );
    wait_status(port, "/readyz", 200, &inflow);
    let lag = "inflow_rule_lag_messages{rule=\"lag-rule\"}";
    let forwarded = "inflow_rule_messages_forwarded_total{rule=\"lag-rule\"}";
    // One message forwarded per queue first: the broker reports a group's offsets only for
    // queues it has an offset of (offset 0 is never committed).
    for queue in 0..4 {
        rmq.java().produce(&topic, &Produce::new(1).queue(queue));
    }
    wait_until("the first 4 forwarded with no lag left", Duration::from_secs(60), &inflow, || {
        let metrics = get(port, "/metrics").1;
        match (sample(&metrics, forwarded), sample(&metrics, lag)) {
            (Some(4.0), Some(0.0)) => Ok(()),
            other => Err(format!("forwarded, lag: {other:?}")),
        }
    });

    mqtt.stop();
    wait_status(port, "/readyz", 503, &inflow);
    let waiting = 40;
    rmq.java().produce(&topic, &Produce::new(waiting).body("seq={seq}"));
    wait_until(&format!("{lag} reaches {waiting}"), Duration::from_secs(30), &inflow, || match sample(&get(port, "/metrics").1, lag) {
        Some(n) if n == waiting as f64 => Ok(()),
        other => Err(format!("{other:?}")),
    });

    // Per queue, what the broker says is waiting (its max offset - the group's stored offset)
    // is what inflow says.
    let broker_lag = || -> Vec<(String, String, u64)> {
        rmq.java()
            .offsets(&group)
            .into_iter()
            .filter(|o| o["topic"] == topic.as_str())
            .map(|o| {
                let waiting = o["brokerOffset"].as_i64().expect("brokerOffset") - o["consumerOffset"].as_i64().expect("consumerOffset");
                (o["brokerName"].as_str().expect("brokerName").to_string(), o["queueId"].to_string(), waiting as u64)
            })
            .collect()
    };
    let broker = broker_lag();
    assert_eq!(broker.len(), 4, "{broker:?}");
    assert_eq!(broker.iter().map(|(_, _, n)| n).sum::<u64>(), waiting, "the broker's own figures: {broker:?}");
    let metrics = get(port, "/metrics").1;
    for (broker_name, queue, waiting) in &broker {
        let series = format!("inflow_rule_queue_lag_messages{{rule=\"lag-rule\",topic=\"{topic}\",broker=\"{broker_name}\",queue=\"{queue}\"}}");
        assert_eq!(sample(&metrics, &series), Some(*waiting as f64), "{series} in:\n{metrics}");
    }

    mqtt.resume();
    wait_until(&format!("{lag} drops to 0 with all {waiting} forwarded"), Duration::from_secs(60), &inflow, || {
        let metrics = get(port, "/metrics").1;
        match (sample(&metrics, lag), sample(&metrics, forwarded)) {
            (Some(0.0), Some(n)) if n == (4 + waiting) as f64 => Ok(()),
            other => Err(format!("lag, forwarded: {other:?}")),
        }
    });
    wait_status(port, "/readyz", 200, &inflow);
    wait_until("the broker's lag drops to 0 too (offsets committed)", Duration::from_secs(30), &inflow, || {
        let broker = broker_lag();
        if broker.iter().all(|(_, _, n)| *n == 0) {
            Ok(())
        } else {
            Err(format!("{broker:?}"))
        }
    });
}

#[test]
fn readiness_names_the_rule_whose_acl_keys_are_wrong() {
    let rmq = RocketMq::start(&RocketMq::version_under_test(), true);
    let mqtt = Mosquitto::shared();
    let topic = unique_name("acl-adm");
    rmq.create_topic(&topic, 1);
    let access_key = &rmq.credentials.as_ref().expect("an ACL broker has credentials").access_key;
    let port = free_port();
    let inflow = Inflow::start_with_env(
        &Config::new(&rmq, mqtt)
            .line("admin", &admin_listen(port))
            .line("rocketmq", &format!("access_key = \"{access_key}\""))
            .rule(Rule::new("acl-rule", &topic, &unique_name("acl-adm"))),
        &[("INFLOW_ROCKETMQ_SECRET_KEY", "not-the-secret")],
    );
    let mut reasons = String::new();
    // "starting" first, then "failing: <the broker's refusal>".
    wait_until("/readyz is 503 naming acl-rule as failing", Duration::from_secs(60), &inflow, || {
        let (code, body) = get(port, "/readyz");
        reasons = body;
        if code == 503 && reasons.contains("\"rule\":\"acl-rule\"") && reasons.contains("failing: ") {
            Ok(())
        } else {
            Err(format!("{code} {reasons}"))
        }
    });
    assert!(!reasons.contains("\"component\":\"mqtt\""), "MQTT is fine: {reasons}");
    assert_eq!(get(port, "/healthz").0, 200);
}

#[test]
fn off_loopback_the_token_is_required_checked_and_never_logged() {
    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::shared();
    let port = free_port();
    let topic = unique_name("tok");
    rmq.create_topic(&topic, 1);
    let config = Config::new(rmq, mqtt)
        .line("admin", &format!("listen = \"0.0.0.0:{port}\""))
        .rule(Rule::new("token-rule", &topic, &unique_name("tok")));

    let mut refused = Inflow::start(&config);
    assert!(!refused.wait_exit(Duration::from_secs(30)).success(), "inflow must refuse 0.0.0.0 without a token");
    assert!(refused.log_count("INFLOW_ADMIN_TOKEN") > 0, "the refusal names the fix:\n{}", refused.log());

    let token = unique_name("s3cret-token");
    let mut inflow = Inflow::start_with_env(&config, &[("INFLOW_ADMIN_TOKEN", &token), ("INFLOW_LOG", "debug")]);
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    wait_status(port, "/healthz", 200, &inflow);
    for path in ["/readyz", "/metrics"] {
        assert_eq!(http_get(&url(path), None).0, 401, "{path} without the token");
        assert_eq!(http_get(&url(path), Some("wrong")).0, 401, "{path} with a wrong token");
    }
    wait_until("/readyz is 200 with the token", Duration::from_secs(60), &inflow, || match http_get(&url("/readyz"), Some(&token)) {
        (200, _) => Ok(()),
        (code, body) => Err(format!("{code} {body}")),
    });
    assert_eq!(http_get(&url("/metrics"), Some(&token)).0, 200);

    inflow.sigterm(Duration::from_secs(30));
    let lines = inflow.log_lines();
    assert!(lines.iter().any(|l| l.contains("DEBUG")), "the log runs at debug level, so the check below sees everything:\n{}", lines.join("\n"));
    let leaks: Vec<&String> = lines.iter().filter(|l| l.contains(&token)).collect();
    assert!(leaks.is_empty(), "the token is in the log: {leaks:?}");
}
