//! Benchmark of many rules on one host through the real brokers: N rules (default 1 000), each
//! with its own consumer group and parent topic, on one topic, created through the admin API one
//! by one, or (`file`) all in the config file inflow starts with. Prints the time the `PUT`s take,
//! the time until every rule consumes, inflow's resident memory then and 20 s later (while the
//! rule list is polled once a second, as the console does), the WARN and ERROR lines it
//! logged, one `/metrics` scrape (time and bytes) and the time a SIGTERM takes.
//!
//! ```sh
//! eval "$(tests/rig/shared.sh up 4.9.8 /tmp/inflow-bench)"      # brokers (prints the exports)
//! cargo build --release -p inflow && cargo run --release -p inflow --example rules_api [-- N [file]]
//! tests/rig/shared.sh down /tmp/inflow-bench
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: start the brokers with tests/rig/shared.sh up (see the doc comment)"))
}

fn inflow_bin() -> PathBuf {
    std::env::var_os("INFLOW_BIN").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/inflow"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0.0);
    kib / 1024.0
}

fn main() {
    let count: usize = std::env::args().nth(1).map(|n| n.parse().expect("N: a number of rules")).unwrap_or(1000);
    let in_file = std::env::args().nth(2).is_some_and(|m| m == "file");
    let dir = std::env::temp_dir().join(format!("inflow-rules-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let topic = format!("rules-bench-{stamp}");
    let config = format!(
        "[rocketmq]\nnamesrv = [\"{}\"]\n[mqtt]\nurl = \"mqtt://{}\"\nclient_id = \"rules-bench-{stamp}\"\n[admin]\nlisten = \"127.0.0.1:{port}\"\n",
        env("INFLOW_TEST_NAMESRV"),
        env("INFLOW_TEST_MQTT")
    );
    std::fs::write(dir.join("inflow.toml"), &config).unwrap();
    // The topic must exist before its first consumer: one message creates it.
    let sent = Command::new(inflow_bin()).args(["send", "-c"]).arg(dir.join("inflow.toml")).args(["--topic", &topic, "--body", "x"]).stdout(Stdio::null()).status();
    assert!(sent.is_ok_and(|s| s.success()), "inflow send could not create the topic");
    if in_file {
        let rules: String = (0..count)
            .map(|i| format!("[[rule]]\nid = \"bench-{i}\"\nsource.topic = \"{topic}\"\ntarget.parent_topic = \"bench-{i}\"\n"))
            .collect();
        std::fs::write(dir.join("inflow.toml"), config + &rules).unwrap();
    }
    let spawned = Instant::now();
    let mut inflow = Command::new(inflow_bin())
        .args(["run", "-c"])
        .arg(dir.join("inflow.toml"))
        .env("INFLOW_LOG", std::env::var("INFLOW_LOG").unwrap_or_else(|_| "warn".into()))
        .stderr(Stdio::from(std::fs::File::create(dir.join("inflow.log")).unwrap()))
        .spawn()
        .expect("start inflow");
    let base = format!("http://127.0.0.1:{port}");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let deadline = Instant::now() + Duration::from_secs(60);
    while agent.get(&format!("{base}/healthz")).call().is_err() {
        assert!(Instant::now() < deadline, "inflow's admin server did not come up; see {}", dir.join("inflow.log").display());
        std::thread::sleep(Duration::from_millis(50));
    }
    let rss_before = rss_mib(inflow.id());

    let start = if in_file { spawned } else { Instant::now() };
    // With the rules in the config file there is nothing to PUT.
    let puts = if in_file { 0 } else { count };
    for i in 0..puts {
        let body = serde_json::json!({ "source": { "topic": topic }, "target": { "parent_topic": format!("bench-{i}") } });
        let answer = agent.put(&format!("{base}/api/v1/rules/bench-{i}")).send_json(&body).expect("PUT a rule");
        assert_eq!(answer.status().as_u16(), 201, "PUT bench-{i}");
    }
    let created = start.elapsed();
    // Ready: every rule running (its consumer joined and owns its queues). Asked of /readyz, whose
    // answer shrinks as rules start: polling the whole rule list instead took a fifth of the
    // 2 cores at 10 000 rules, from the brokers the start waits for.
    let running = loop {
        let mut answer = agent.get(&format!("{base}/readyz")).call().unwrap();
        if answer.status().as_u16() == 200 {
            break start.elapsed();
        }
        if start.elapsed() > Duration::from_secs(600) {
            let reasons: serde_json::Value = answer.body_mut().with_config().limit(u64::MAX).read_json().unwrap();
            let waiting = reasons["reasons"].as_array().map_or(0, Vec::len);
            panic!("{waiting} of {count} rules (or the MQTT connection) not ready after 10 minutes; see {}", dir.join("inflow.log").display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_secs(2));
    let rss = rss_mib(inflow.id());
    // Start-up's transient allocations are returned by then (the console polling meanwhile).
    let steady = Instant::now() + Duration::from_secs(20);
    while Instant::now() < steady {
        let _ = agent.get(&format!("{base}/api/v1/rules")).call().map(|mut answer| answer.body_mut().with_config().limit(u64::MAX).read_to_vec());
        std::thread::sleep(Duration::from_secs(1));
    }
    let rss_steady = rss_mib(inflow.id());
    let scrape = Instant::now();
    let metrics = agent.get(&format!("{base}/metrics")).call().unwrap().body_mut().with_config().limit(u64::MAX).read_to_string().unwrap();
    let scrape = scrape.elapsed();

    let stop = Instant::now();
    Command::new("kill").args(["-TERM", &inflow.id().to_string()]).status().unwrap();
    inflow.wait().unwrap();
    let stopped = stop.elapsed();

    let log = std::fs::read_to_string(dir.join("inflow.log")).unwrap_or_default();
    let lines = |level: &str| log.lines().filter(|l| l.contains(level)).count();
    if in_file {
        println!("{count} rules in the config file (one topic, a group and a parent topic each):");
        println!("  until every rule consumes:    {:.2} s after inflow started", running.as_secs_f64());
        println!("  resident memory:              {rss:.0} MiB; {rss_steady:.0} MiB 20 s later");
    } else {
        println!("{count} rules through the admin API (one topic, a group and a parent topic each):");
        println!("  {count} PUTs one by one:          {:.2} s ({:.1} ms per rule)", created.as_secs_f64(), created.as_secs_f64() * 1000.0 / count as f64);
        println!("  until every rule consumes:    {:.2} s after the first PUT", running.as_secs_f64());
        println!("  resident memory:              {rss:.0} MiB; {rss_steady:.0} MiB 20 s later ({rss_before:.0} MiB with no rule)");
    }
    println!("  log lines:                    {} WARN, {} ERROR", lines(" WARN "), lines(" ERROR "));
    println!("  one /metrics scrape:          {:.1} ms, {} KiB", scrape.as_secs_f64() * 1000.0, metrics.len() / 1024);
    println!("  SIGTERM until exit:           {:.2} s", stopped.as_secs_f64());
    if std::env::var_os("KEEP").is_some() {
        println!("  log: {}", dir.join("inflow.log").display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
