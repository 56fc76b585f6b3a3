//! The `inflow` service end to end: real RocketMQ (Java producer) → inflow (subprocess) → real
//! Mosquitto → MQTT 3.1.1 / 5 subscribers. Run by scripts/test.sh for each RocketMQ version.

use inflow_e2e::{free_port, repo_root, sample, unique_name, Admin, Config, Inflow, Mosquitto, MqttMessage, MqttVersion, Produce, RocketMq, Rule};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

// ---- helpers ---------------------------------------------------------------------------------

fn by_body(messages: &[MqttMessage]) -> HashMap<String, Vec<MqttMessage>> {
    let mut map: HashMap<String, Vec<MqttMessage>> = HashMap::new();
    for m in messages {
        map.entry(String::from_utf8_lossy(&m.payload).into_owned()).or_default().push(m.clone());
    }
    map
}

/// A persistent-session (`-c`) mosquitto_sub collecting payload lines: survives broker restarts
/// without losing what was published meanwhile.
struct Collector {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    fn start(mqtt: &Mosquitto, topic: &str) -> Collector {
        let probe = format!("probe/{}", unique_name("c"));
        let mut child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &mqtt.port.to_string(), "-q", "1", "-c", "-i", &unique_name("col")])
            .args(["-t", topic, "-t", &probe, "-F", "%p"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub (scripts/install/mosquitto.sh installs it)");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let collector = Collector { child, lines };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !collector.lines.lock().unwrap().iter().any(|l| l == "probe") {
            assert!(Instant::now() < deadline, "mosquitto_sub did not subscribe");
            mqtt.publish(&probe, b"probe", 0);
            thread::sleep(Duration::from_millis(200));
        }
        collector.lines.lock().unwrap().clear();
        collector
    }

    /// Sequence numbers (`seq=N` of the rig's generated bodies) received so far, with counts.
    fn seqs(&self) -> BTreeMap<u64, u32> {
        let mut seqs = BTreeMap::new();
        for line in self.lines.lock().unwrap().iter() {
            if let Some(n) = line.split_whitespace().find_map(|w| w.strip_prefix("seq=")).and_then(|n| n.parse().ok()) {
                *seqs.entry(n).or_insert(0) += 1;
            }
        }
        seqs
    }

    /// Payloads starting with `prefix` received so far, with counts.
    fn bodies(&self, prefix: &str) -> BTreeMap<String, u32> {
        let mut bodies = BTreeMap::new();
        for line in self.lines.lock().unwrap().iter().filter(|l| l.starts_with(prefix)) {
            *bodies.entry(line.clone()).or_insert(0) += 1;
        }
        bodies
    }

    /// Waits until `count` distinct payloads starting with `prefix` arrived (or `timeout`).
    fn wait_bodies(&self, prefix: &str, count: usize, timeout: Duration) -> BTreeMap<String, u32> {
        let deadline = Instant::now() + timeout;
        loop {
            let bodies = self.bodies(prefix);
            if bodies.len() >= count || Instant::now() > deadline {
                return bodies;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_distinct(&self, count: usize, timeout: Duration) -> BTreeMap<u64, u32> {
        let deadline = Instant::now() + timeout;
        loop {
            let seqs = self.seqs();
            if seqs.len() >= count || Instant::now() > deadline {
                return seqs;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts that every message arrived; returns how many came more than once.
fn assert_all_arrived(seqs: &BTreeMap<u64, u32>, count: u64, what: &str, inflow: &Inflow) -> u64 {
    let missing: Vec<u64> = (0..count).filter(|n| !seqs.contains_key(n)).collect();
    let duplicates: u64 = seqs.values().map(|c| u64::from(c - 1)).sum();
    eprintln!("{what}: {} of {count} distinct messages arrived, {duplicates} duplicates", seqs.len());
    assert!(missing.is_empty(), "{what}: {} missing, first {:?}; log:\n{}", missing.len(), &missing[..missing.len().min(10)], inflow.log());
    duplicates
}

// ---- the property table and mapping errors ----------------------------------------------------

struct Row {
    name: &'static str,
    props: Vec<(&'static str, String)>,
}

fn row(name: &'static str, props: &[(&'static str, &str)]) -> Row {
    Row { name, props: props.iter().map(|(k, v)| (*k, v.to_string())).collect() }
}

#[test]
fn property_table_and_mapping_errors_reach_mqtt_311_and_5_subscribers() {
    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::shared();
    let topic = unique_name("svc-props");
    // mqttRealTopic leaves the parent topic only where the rule allows it.
    let real_root = unique_name("real");
    let real = format!("{real_root}/p2p/dev1");
    let outside = format!("{}/x", unique_name("elsewhere"));
    let long_sub = format!("/{}", "a".repeat(200));
    let ok_rows = vec![
        row("default", &[]),
        row("second", &[("mqttSecondTopic", "/room1/temp")]),
        row("p2p", &[("mqttSecondTopic", "/p2p/GID_x@@@dev1")]),
        row("real", &[("mqttSecondTopic", "/ignored"), ("mqttRealTopic", &real)]),
        row("qos0", &[("qoslevel", "0")]),
        row("qos1", &[("qoslevel", "1")]),
        row("qos2", &[("qoslevel", "2")]),
        row("clean", &[("cleansessionflag", "false")]),
        row("userprops", &[("mqtt5UserProperty", r#"[{"key":"a","value":"1"},{"key":"b","value":"x y"}]"#)]),
        row("expiry", &[("mqtt5MsgExpireInterval", "3600")]),
        row("ctype", &[("mqtt5ContentType", "application/json")]),
    ];
    let error_rows = vec![
        row("err-qos7", &[("qoslevel", "7")]),
        row("err-plus", &[("mqttSecondTopic", "/a/+/b")]),
        row("err-hash", &[("mqttSecondTopic", "/a/#")]),
        row("err-json", &[("mqtt5UserProperty", r#"[{"key":"a""#)]),
        row("err-expiry", &[("mqtt5MsgExpireInterval", "70000")]),
        row("err-long", &[("mqttSecondTopic", &long_sub)]),
        row("err-outside", &[("mqttRealTopic", &outside)]),
    ];
    // All on queue 0, the sentinel last: once it arrives, every row before it was handled.
    rmq.create_topic(&topic, 4);
    let java = rmq.java();
    for r in ok_rows.iter().chain(&error_rows).chain([&row("end", &[])]) {
        let mut p = Produce::new(1).body(r.name).queue(0);
        for (k, v) in &r.props {
            p = p.property(k, v);
        }
        java.produce(&topic, &p);
    }
    // One inflow per MQTT protocol, each with its own group and parent topic.
    let parent311 = unique_name("p311");
    let parent5 = unique_name("p5");
    let sub311 = mqtt.subscribe(&format!("{parent311}/#"), MqttVersion::V311);
    let sub5 = mqtt.subscribe(&format!("{parent5}/#"), MqttVersion::V5);
    let sub_real311 = mqtt.subscribe(&real, MqttVersion::V311);
    let sub_real5 = mqtt.subscribe(&real, MqttVersion::V5);
    let config = Config::new(rmq, mqtt).max_topic_bytes(128);
    let allow = format!("allow_topics = [\"{real_root}/#\"]");
    let inflow311 = Inflow::start(
        &config.clone().protocol(MqttVersion::V311).rule(Rule::new("props-311", &topic, &parent311).on_error("skip").table_line("target", &allow)),
    );
    let inflow5 = Inflow::start(&config.rule(Rule::new("props-5", &topic, &parent5).on_error("dead-letter").table_line("target", &allow)));

    let expected_on_parent = ok_rows.len(); // "real" goes elsewhere; "end" arrives too
    for (sub, parent, v5, inflow) in [(&sub311, &parent311, false, &inflow311), (&sub5, &parent5, true, &inflow5)] {
        let got = sub.wait_for(expected_on_parent, Duration::from_secs(60));
        let got = by_body(&got);
        assert!(got.contains_key("end"), "sentinel missing on {parent}; got {:?}; log:\n{}", got.keys(), inflow.log());
        thread::sleep(Duration::from_millis(500));
        let mut got = got;
        for m in sub.drain() {
            got.entry(String::from_utf8_lossy(&m.payload).into_owned()).or_default().push(m);
        }
        let one = |name: &str| -> MqttMessage {
            let list = got.get(name).unwrap_or_else(|| panic!("{name} missing on {parent}: got {:?}", got.keys()));
            assert_eq!(list.len(), 1, "{name} arrived {} times", list.len());
            list[0].clone()
        };
        assert_eq!(one("default").topic, *parent);
        assert_eq!(one("default").qos, 1);
        assert_eq!(one("second").topic, format!("{parent}/room1/temp"));
        assert_eq!(one("p2p").topic, format!("{parent}/p2p/GID_x@@@dev1"));
        assert_eq!(one("qos0").qos, 0);
        assert_eq!(one("qos1").qos, 1);
        assert_eq!(one("qos2").qos, 1, "QoS 2 publish, downgraded to the subscription's QoS 1");
        assert_eq!(one("clean").topic, *parent);
        let (props, expiry, ctype) = (one("userprops").user_properties, one("expiry").message_expiry_interval, one("ctype").content_type);
        if v5 {
            assert_eq!(props, vec![("a".to_string(), "1".to_string()), ("b".to_string(), "x y".to_string())]);
            assert!(matches!(expiry, Some(e) if e > 3500 && e <= 3600), "{expiry:?}");
            assert_eq!(ctype.as_deref(), Some("application/json"));
        } else {
            assert!(props.is_empty() && expiry.is_none() && ctype.is_none());
        }
        for r in &error_rows {
            assert!(!got.contains_key(r.name), "{} must not be published", r.name);
        }
        assert!(!got.contains_key("real"));
    }
    for sub in [&sub_real311, &sub_real5] {
        let got = sub.wait_for(2, Duration::from_secs(20));
        assert_eq!(got.len(), 2, "mqttRealTopic row: one publish from each inflow");
        assert!(got.iter().all(|m| m.payload == b"real" && m.topic == real));
    }
    // The errors went through the policies: skipped by one, sent back by the other.
    let skipped = inflow311.wait_for_log("message skipped", error_rows.len(), Duration::from_secs(20));
    let sent_back = inflow5.wait_for_log("message sent back", error_rows.len(), Duration::from_secs(20));
    assert_eq!(skipped, error_rows.len(), "{}", inflow311.log());
    assert!(sent_back >= error_rows.len(), "{}", inflow5.log());
}

// ---- a plugin rule ---------------------------------------------------------------------------

#[test]
fn plugin_rule_end_to_end() {
    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::shared();
    let wasm = repo_root().join("target/plugins/json-router-rust.wasm");
    assert!(wasm.exists(), "{} is missing: run plugins/build.sh rust (scripts/test.sh does)", wasm.display());
    let topic = unique_name("svc-plugin");
    let parent = unique_name("factory");
    let java = rmq.java();
    java.produce(&topic, &Produce::new(1).tag("reading").property("site", "plant-a").body(r#"{"device":"press-7","temp":21.5}"#));
    java.produce(&topic, &Produce::new(1).tag("reading").property("site", "plant-b").body(r#"{"device":"oven-2","temp":120}"#));
    java.produce(&topic, &Produce::new(1).tag("reading").property("site", "plant-c").body("not json"));
    let sub = mqtt.subscribe(&format!("{parent}/#"), MqttVersion::V5);
    let plugin_rule = Rule::new("plugin-rule", &topic, &parent).on_error("skip").plugin("json-router").plugin_config(
        r#"{"field": "device", "property": "site", "qos": 1, "filter": {"field": "temp", "min": -40, "max": 85}, "fanout": "all-devices"}"#,
    );
    let dir = std::env::temp_dir().join(unique_name("inflow-plugins"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&wasm, dir.join("json-router.wasm")).unwrap();
    let inflow = Inflow::start(&Config::new(rmq, mqtt).plugin_dir(&dir).rule(plugin_rule));
    let got = sub.wait_for(2, Duration::from_secs(60));
    let topics: Vec<&str> = got.iter().map(|m| m.topic.as_str()).collect();
    assert!(topics.contains(&format!("{parent}/press-7/plant-a").as_str()), "{topics:?}; log:\n{}", inflow.log());
    assert!(topics.contains(&format!("{parent}/all-devices/press-7").as_str()), "{topics:?}");
    let m = got.iter().find(|m| m.topic.ends_with("/plant-a")).unwrap();
    assert_eq!(m.payload, br#"{"device":"press-7","temp":21.5}"#, "the original body, unchanged");
    assert!(m.user_properties.iter().any(|(k, v)| k == "site" && v == "plant-a"), "{:?}", m.user_properties);
    // oven-2 is filtered out, "not json" is an error for the skip policy: nothing more arrives.
    inflow.wait_for_log("message skipped", 1, Duration::from_secs(20));
    assert!(inflow.log().contains("message skipped"), "{}", inflow.log());
    assert!(sub.drain().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- order, crashes, outages, shutdown ----------------------------------------------------------

#[test]
fn order_is_kept_on_one_queue() {
    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::shared();
    let topic = unique_name("svc-order");
    let parent = unique_name("order");
    let count = 2000;
    rmq.create_topic(&topic, 4);
    rmq.java().produce(&topic, &Produce::new(count).body("seq={seq}").queue(0));
    let sub = mqtt.subscribe(&format!("{parent}/#"), MqttVersion::V311);
    let inflow = Inflow::start(&Config::new(rmq, mqtt).protocol(MqttVersion::V311).rule(Rule::new("order", &topic, &parent)));
    let got = sub.wait_for(count as usize, Duration::from_secs(120));
    let seqs: Vec<u64> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).trim_start_matches("seq=").parse().unwrap())
        .collect();
    assert_eq!(seqs.len(), count as usize, "log:\n{}", inflow.log());
    assert_eq!(seqs, (0..count).collect::<Vec<_>>(), "messages of one queue arrive in stored order");
}

/// Messages in each mid-stream fault test, over [`STREAM_QUEUES`] queues.
const STREAM: u64 = 20_000;
const STREAM_QUEUES: u64 = 8;
/// The rule's `limits.max_unacked_per_queue` in those tests, and the consumer's pull batch:
/// after a crash, at most their sum per queue comes again.
const WINDOW: u64 = 100;
const PULL_BATCH: u64 = 32;

/// Produces [`STREAM`] messages to a fresh topic, starts inflow on them (rule `name`, the
/// `[mqtt]` settings of `sink`) with a collector on the rule's parent topic, and returns once a
/// quarter of them has arrived: the stream is under way.
fn stream_under_way(mqtt: &Mosquitto, name: &str, sink: impl FnOnce(Config) -> Config) -> (Collector, Inflow) {
    let rmq = RocketMq::shared();
    let topic = unique_name(&format!("svc-{name}"));
    let parent = unique_name(name);
    rmq.create_topic(&topic, STREAM_QUEUES as u32);
    rmq.java().produce_bulk(&topic, STREAM, 256);
    let collector = Collector::start(mqtt, &format!("{parent}/#"));
    let rule = Rule::new(name, &topic, &parent).limit("max_unacked_per_queue", WINDOW);
    let inflow = Inflow::start(&sink(Config::new(rmq, mqtt)).rule(rule));
    collector.wait_distinct(STREAM as usize / 4, Duration::from_secs(120));
    (collector, inflow)
}

#[test]
fn kill_9_mid_stream_then_restart_loses_nothing() {
    let (collector, mut inflow) = stream_under_way(Mosquitto::shared(), "kill", |c| c);
    inflow.kill9();
    eprintln!("killed inflow with SIGKILL after {} distinct messages", collector.seqs().len());
    inflow.restart();
    let seqs = collector.wait_distinct(STREAM as usize, Duration::from_secs(180));
    // Offsets ride on every pull and a 1 s commit: what comes again is what was in flight.
    let duplicates = assert_all_arrived(&seqs, STREAM, "kill -9 and restart", &inflow);
    let bound = STREAM_QUEUES * (WINDOW + PULL_BATCH);
    assert!(duplicates <= bound, "{duplicates} duplicates after kill -9, over the bound of {bound} (window + pull batch per queue)");
}

#[test]
fn sigterm_mid_stream_exits_0_and_restart_loses_nothing() {
    let (collector, mut inflow) = stream_under_way(Mosquitto::shared(), "term", |c| c.protocol(MqttVersion::V311));
    let status = inflow.sigterm(Duration::from_secs(20));
    assert!(status.success(), "inflow exited with {status} after SIGTERM; log:\n{}", inflow.log());
    let at_stop = collector.seqs();
    eprintln!("SIGTERM after {} distinct messages", at_stop.len());
    inflow.restart();
    let seqs = collector.wait_distinct(STREAM as usize, Duration::from_secs(180));
    assert_all_arrived(&seqs, STREAM, "SIGTERM and restart", &inflow);
}

#[test]
fn mosquitto_outage_mid_stream_loses_nothing() {
    let mqtt = Mosquitto::start();
    let (collector, inflow) = stream_under_way(&mqtt, "outage", |c| c.max_inflight(64));
    mqtt.stop();
    thread::sleep(Duration::from_secs(4));
    mqtt.resume();
    let seqs = collector.wait_distinct(STREAM as usize, Duration::from_secs(180));
    assert_all_arrived(&seqs, STREAM, "Mosquitto outage", &inflow);
    assert!(inflow.log().contains("MQTT connection lost"), "the outage was not seen:\n{}", inflow.log());
}

#[test]
fn disabled_rule_consumes_nothing() {
    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::shared();
    let topic = unique_name("svc-disabled");
    let (on, off) = (unique_name("on"), unique_name("off"));
    let count = 20;
    rmq.java().produce(&topic, &Produce::new(count).body("seq={seq}"));
    let sub_on = mqtt.subscribe(&format!("{on}/#"), MqttVersion::V5);
    let sub_off = mqtt.subscribe(&format!("{off}/#"), MqttVersion::V5);
    let off_group = unique_name("off-group");
    let inflow = Inflow::start(
        &Config::new(rmq, mqtt)
            .rule(Rule::new("enabled-rule", &topic, &on))
            .rule(Rule::new("disabled-rule", &topic, &off).enabled(false).group(&off_group)),
    );
    assert_eq!(sub_on.wait_for(count as usize, Duration::from_secs(60)).len(), count as usize, "{}", inflow.log());
    thread::sleep(Duration::from_secs(1));
    assert!(sub_off.drain().is_empty(), "the disabled rule published");
    assert!(inflow.log().contains("rule disabled"), "{}", inflow.log());
    // Nothing was committed for its group: a Java consumer of that group gets every message.
    let java = rmq.java().consume(&off_group, &topic, "*", count, Duration::from_secs(60)).expect("the Java consumer gets all");
    assert_eq!(java.len(), count as usize);
}

#[test]
fn plugin_removed_holds_offsets_until_it_returns() {
    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::shared();
    let wasm = repo_root().join("target/plugins/json-router-rust.wasm");
    assert!(wasm.exists(), "{} is missing: run plugins/build.sh rust (scripts/test.sh does)", wasm.display());
    let topic = unique_name("svc-swap");
    let parent = unique_name("swap");
    let dir = std::env::temp_dir().join(unique_name("inflow-plugins"));
    std::fs::create_dir_all(&dir).unwrap();
    let install = || {
        std::fs::copy(&wasm, dir.join(".json-router.wasm.tmp")).unwrap();
        std::fs::rename(dir.join(".json-router.wasm.tmp"), dir.join("json-router.wasm")).unwrap();
    };
    install();
    let java = rmq.java();
    let send = |device: &str| java.produce(&topic, &Produce::new(1).property("site", "s1").body(&format!(r#"{{"device":"{device}"}}"#)));
    send("first");
    let sub = mqtt.subscribe(&format!("{parent}/#"), MqttVersion::V5);
    let inflow = Inflow::start(&Config::new(rmq, mqtt).plugin_dir(&dir).rule(Rule::new("swap-rule", &topic, &parent).plugin("json-router")));
    let got = sub.wait_for(1, Duration::from_secs(60));
    assert_eq!(got.len(), 1, "log:\n{}", inflow.log());
    std::fs::remove_file(dir.join("json-router.wasm")).unwrap();
    thread::sleep(Duration::from_secs(2));
    send("while-absent");
    let during = sub.wait_for(1, Duration::from_secs(6));
    assert!(during.is_empty(), "published without its plugin: {during:?}");
    assert!(inflow.log().contains("plugin was removed"), "{}", inflow.log());
    install();
    let after = sub.wait_for(1, Duration::from_secs(60));
    assert_eq!(after.len(), 1, "the held message arrives once the plugin returns; log:\n{}", inflow.log());
    assert_eq!(after[0].topic, format!("{parent}/while-absent/s1"));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- TLS and credentials ---------------------------------------------------------------------

#[test]
fn tls_with_password_delivers_and_a_wrong_password_is_refused_clearly() {
    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::start_secure();
    let secure = mqtt.secure.clone().unwrap();
    assert!(mqtt.url().starts_with("mqtts://127.0.0.1:"), "{}", mqtt.url());
    let topic = unique_name("svc-tls");
    let parent = unique_name("tls");
    let count = 5;
    rmq.java().produce(&topic, &Produce::new(count).body("tls-{seq}"));
    let sub = mqtt.subscribe(&format!("{parent}/#"), MqttVersion::V5);

    // The right password, from the environment only (the file has none).
    let good = Inflow::start_with_env(
        &Config::new(rmq, &mqtt).rule(Rule::new("tls-good", &topic, &parent)),
        &[("INFLOW_MQTT_PASSWORD", &secure.password)],
    );
    let got = sub.wait_for(count as usize, Duration::from_secs(60));
    let mut bodies: Vec<String> = got.iter().map(|m| String::from_utf8_lossy(&m.payload).into_owned()).collect();
    bodies.sort();
    assert_eq!(bodies, (0..count).map(|n| format!("tls-{n}")).collect::<Vec<_>>(), "log:\n{}", good.log());
    assert!(got.iter().all(|m| m.topic == parent));
    assert!(good.log().contains("MQTT connected"), "{}", good.log());
    assert!(!good.log().contains(&secure.password), "the password is in the log:\n{}", good.log());
    drop(good);

    // A wrong password, for each protocol (Mosquitto answers 3.1.1 and 5 differently), in
    // its own group so that it would get every message again if it could publish.
    let wrong = "wrong-pw-7f3a91";
    for (protocol, version) in [("3.1.1", MqttVersion::V311), ("5", MqttVersion::V5)] {
        let parent_bad = unique_name("tls-bad");
        let sub_bad = mqtt.subscribe(&format!("{parent_bad}/#"), MqttVersion::V5);
        let id = format!("tls-bad-{}", protocol.replace('.', ""));
        let mut cfg = Config::new(rmq, &mqtt).protocol(version).rule(Rule::new(&id, &topic, &parent_bad));
        if version == MqttVersion::V5 {
            // The certificate's DNS name too: a refused CONNECT means the TLS handshake passed.
            cfg = cfg.mqtt_url(&format!("mqtts://localhost:{}", mqtt.port));
        }
        let admin = Admin { port: free_port() };
        cfg = cfg.line("admin", &format!("listen = \"127.0.0.1:{}\"", admin.port));
        let bad = Inflow::start_with_env(&cfg, &[("INFLOW_MQTT_PASSWORD", wrong)]);
        bad.wait_for_log("MQTT connect failed", 1, Duration::from_secs(30));
        // Readiness names the refusal; the metrics show the attempts, which back off.
        let ready = admin.wait_until("/readyz", |code, body| code == 503 && body.contains("username or password"), || bad.log());
        assert!(ready.contains("\"mqtt\""), "MQTT {protocol}: /readyz does not blame MQTT: {ready}");
        std::thread::sleep(Duration::from_secs(8));
        let metrics = admin.get("/metrics").1;
        let attempts = sample(&metrics, "inflow_mqtt_connect_attempts_total").unwrap_or_else(|| panic!("no attempts counter:\n{metrics}"));
        assert_eq!(sample(&metrics, "inflow_mqtt_connected"), Some(0.0), "MQTT {protocol}: connected?\n{metrics}");
        // 100 ms doubling to the 5 s cap: 7 attempts in the first ~8 s, never a tight loop.
        assert!((2.0..=10.0).contains(&attempts), "MQTT {protocol}: {attempts} connect attempts in ~8 s:\n{}", bad.log());
        let log = bad.log();
        assert_eq!(bad.log_count("MQTT connect failed"), 1, "MQTT {protocol}: repeats of one refusal are logged at DEBUG only:\n{log}");
        let failure = log.lines().find(|l| l.contains("MQTT connect failed")).unwrap_or_else(|| panic!("MQTT {protocol}: no connect failure logged:\n{log}"));
        assert!(
            failure.contains("the broker refused the connection") && failure.contains("username or password"),
            "MQTT {protocol}: the log does not say that the broker refused the credentials:\n{log}"
        );
        assert!(!log.contains("MQTT connected"), "MQTT {protocol}: connected with a wrong password:\n{log}");
        assert!(!log.contains(wrong), "MQTT {protocol}: the password is in the log:\n{log}");
        let delivered = sub_bad.wait_for(1, Duration::from_secs(2));
        assert!(delivered.is_empty(), "MQTT {protocol}: delivered with a wrong password: {delivered:?}");
        eprintln!("MQTT {protocol}, wrong password: {failure}");
    }
}

// ---- several hosts in one consumer group ------------------------------------------------------

/// The queues of `topic` a host owns now, by its log: assigned minus revoked in its current run.
fn owned_queues(inflow: &Inflow, topic: &str) -> usize {
    let log = inflow.current_run_log();
    let count = |what: &str| log.iter().filter(|l| l.contains(what) && l.contains(&format!("queue={topic}@"))).count();
    count("queue assigned").saturating_sub(count("queue revoked"))
}

/// Waits until `owns(hosts)` holds.
fn wait_queues(hosts: &[&Inflow], topic: &str, owns: impl Fn(&[usize]) -> bool) {
    let start = Instant::now();
    loop {
        let owned: Vec<usize> = hosts.iter().map(|h| owned_queues(h, topic)).collect();
        if owns(&owned) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "queues stayed {owned:?}; logs:\n{}", hosts.iter().map(|h| h.log()).collect::<Vec<_>>().join("\n-----\n"));
        thread::sleep(Duration::from_millis(50));
    }
}

/// Produces `calls` × `per_call` messages with payloads `<phase>-<call>-<seq>` in the background.
fn produce_phase(topic: &str, phase: &str, calls: u64, per_call: u64) -> thread::JoinHandle<()> {
    let (java, topic, phase) = (RocketMq::shared().java(), topic.to_string(), phase.to_string());
    thread::spawn(move || {
        for call in 0..calls {
            java.produce(&topic, &Produce::new(per_call).body(&format!("{phase}-{call}-{{seq}}")));
        }
    })
}

#[test]
fn three_hosts_share_a_rule_and_take_over_each_others_queues() {
    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::shared();
    let topic = unique_name("svc-hosts");
    rmq.create_topic(&topic, 8);
    let parent = unique_name("hosts");
    let collector = Collector::start(mqtt, &format!("{parent}/#"));
    let config = Config::new(rmq, mqtt).rule(Rule::new("hosts", &topic, &parent));
    let mut a = Inflow::start(&config);
    let mut b = Inflow::start(&config);
    let c = Inflow::start(&config);
    wait_queues(&[&a, &b, &c], &topic, |o| o.iter().sum::<usize>() == 8 && o.iter().all(|&n| n >= 2));
    let (calls, per_call) = (4, 2500);
    let phase_total = (calls * per_call) as usize;

    // kill -9 of one host: the others take its queues, nothing is lost.
    let producer = produce_phase(&topic, "kill", calls, per_call);
    collector.wait_bodies("kill-", 1000, Duration::from_secs(60));
    let killed = Instant::now();
    a.kill9();
    wait_queues(&[&b, &c], &topic, |o| o.iter().sum::<usize>() == 8);
    let takeover = killed.elapsed();
    producer.join().unwrap();
    let got = collector.wait_bodies("kill-", phase_total, Duration::from_secs(120));
    let duplicates: u32 = got.values().map(|n| n - 1).sum();
    eprintln!("kill -9 of one of three hosts: the other two owned its queues {takeover:?} later; {} of {phase_total} arrived, {duplicates} duplicates", got.len());
    assert_eq!(got.len(), phase_total, "messages lost after kill -9 of a host\n{}\n-----\n{}", b.log(), c.log());

    // SIGTERM of another: it drains and commits before it leaves, so nothing comes twice.
    let producer = produce_phase(&topic, "term", calls, per_call);
    collector.wait_bodies("term-", 1000, Duration::from_secs(60));
    assert!(b.sigterm(Duration::from_secs(30)).success(), "{}", b.log());
    wait_queues(&[&c], &topic, |o| o[0] == 8);
    producer.join().unwrap();
    let got = collector.wait_bodies("term-", phase_total, Duration::from_secs(120));
    assert_eq!(got.len(), phase_total, "messages lost after SIGTERM of a host\n{}", c.log());
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "delivered twice across a SIGTERM: {twice:?}");

    // A host back: the queues spread again, nothing is lost.
    let started = Instant::now();
    a.restart();
    wait_queues(&[&a, &c], &topic, |o| o.iter().sum::<usize>() == 8 && o.iter().all(|&n| n == 4));
    let spread = started.elapsed();
    let producer = produce_phase(&topic, "back", 1, 2000);
    producer.join().unwrap();
    let got = collector.wait_bodies("back-", 2000, Duration::from_secs(120));
    let duplicates: u32 = got.values().map(|n| n - 1).sum();
    eprintln!("a host back: queues spread {spread:?} after its start; {} of 2000 arrived, {duplicates} duplicates", got.len());
    assert_eq!(got.len(), 2000, "messages lost after a host came back\n{}\n-----\n{}", a.log(), c.log());
}

// ---- many rules on one host -------------------------------------------------------------------

#[test]
fn a_thousand_rules_start_without_an_error_and_each_delivers() {
    const TOPICS: usize = 10;
    const RULES_PER_TOPIC: usize = 100;
    let rmq = RocketMq::shared();
    // Its own broker, so one subscription to everything sees this test's messages only.
    let mqtt = &Mosquitto::start();
    let base = unique_name("many");
    let topics: Vec<String> = (0..TOPICS).map(|t| format!("{base}-t{t}")).collect();
    for topic in &topics {
        rmq.create_topic(topic, 4);
        rmq.java().produce(topic, &Produce::new(1).body("seq={seq}"));
    }
    let sub = mqtt.subscribe("#", MqttVersion::V5);
    let mut config = Config::new(rmq, mqtt);
    for (t, topic) in topics.iter().enumerate() {
        for r in 0..RULES_PER_TOPIC {
            config = config.rule(Rule::new(&format!("many-{t}-{r}"), topic, &format!("{base}-{t}-{r}")));
        }
    }
    let started = Instant::now();
    let inflow = Inflow::start(&config);
    let rules = TOPICS * RULES_PER_TOPIC;
    let got = sub.wait_for(rules, Duration::from_secs(180));
    eprintln!("{rules} rules: {} messages delivered {:.1} s after start", got.len(), started.elapsed().as_secs_f64());
    let parents: std::collections::BTreeSet<&str> = got.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(parents.len(), rules, "not every rule delivered its message; log:\n{}", inflow.log());
    // Shared heartbeats and spread rebalances: starting many rules is not an error condition.
    let errors: Vec<String> = inflow.log_lines().into_iter().filter(|l| l.contains(" ERROR ")).collect();
    assert!(errors.is_empty(), "{} ERROR lines while {rules} rules started, e.g.:\n{}", errors.len(), errors.iter().take(5).cloned().collect::<Vec<_>>().join("\n"));
}

// ---- fairness ---------------------------------------------------------------------------------

/// The misbehaving test plugin of tests/plugins, built for wasm32-wasip2 (cargo: a no-op when
/// the plugin crate's own tests built it already).
fn hostile_plugin() -> std::path::PathBuf {
    let root = repo_root();
    let target = root.join("target/test-plugins");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "--target", "wasm32-wasip2", "-p", "hostile", "--manifest-path"])
        .arg(root.join("tests/plugins/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("cargo, to build tests/plugins");
    assert!(status.success(), "building tests/plugins failed (is the target installed? scripts/install/guest-toolchains.sh)");
    target.join("wasm32-wasip2/release/hostile.wasm")
}

#[test]
fn a_plugin_spending_its_whole_deadline_on_each_message_does_not_hold_up_another_rule() {
    const SLOW: u64 = 400;
    const FAST: u64 = 5000;
    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::shared();
    let dir = std::env::temp_dir().join(unique_name("inflow-plugins"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(hostile_plugin(), dir.join("hostile.wasm")).unwrap();
    let (slow_topic, fast_topic) = (unique_name("svc-slow"), unique_name("svc-fast"));
    let fast_parent = unique_name("fast");
    rmq.create_topic(&slow_topic, 4);
    rmq.create_topic(&fast_topic, 8);
    // 400 calls of 100 ms CPU each: 40 s of work for the slow rule at the very least.
    rmq.java().produce_bulk(&slow_topic, SLOW, 64);
    let slow = Rule::new("slow", &slow_topic, &unique_name("slow")).plugin("hostile").plugin_config("loop").on_error("skip").limit("call_deadline_ms", 100);
    let fast = Rule::new("fast", &fast_topic, &fast_parent);
    let collector = Collector::start(mqtt, &format!("{fast_parent}/#"));
    let inflow = Inflow::start(&Config::new(rmq, mqtt).plugin_dir(&dir).rule(slow).rule(fast));
    inflow.wait_for_log("message skipped", 1, Duration::from_secs(60));
    // The fast rule's messages come while the slow rule spins through its backlog.
    rmq.java().produce_bulk(&fast_topic, FAST, 256);
    let seqs = collector.wait_distinct(FAST as usize, Duration::from_secs(120));
    let slow_done = inflow.log_count("message skipped");
    assert_all_arrived(&seqs, FAST, "the fast rule beside a slow plugin", &inflow);
    eprintln!("the slow rule had mapped {slow_done} of its {SLOW} messages by then");
    assert!((slow_done as u64) < SLOW, "the fast rule finished only after the slow one: it waited for it");
    let _ = std::fs::remove_dir_all(&dir);
}
