//! The console page in a real browser: Debian's headless Chromium driven by Selenium
//! (installed by scripts/install/browser.sh) through `console.py` beside this file, against
//! inflow with a token and real brokers. The script walks the page; this test sends the
//! messages when the script asks and checks on the MQTT side that the rule made in the wizard
//! forwarded them.

use inflow_e2e::{free_port, repo_root, unique_name, Admin, Config, Inflow, Mosquitto, MqttVersion, Produce, RocketMq, Rule};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const TOKEN: &str = "console-test-token";
const MESSAGES: u64 = 50;

/// The venv of scripts/install/browser.sh.
fn selenium_python() -> PathBuf {
    let cache = std::env::var_os("INFLOW_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/inflow"));
    let python = cache.join("console/venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/install/browser.sh", python.display());
    python
}

#[test]
fn a_rule_is_created_watched_disabled_enabled_edited_and_deleted_in_the_console() {
    let rmq = RocketMq::shared();
    let mqtt = Mosquitto::start();
    let (topic, config_topic) = (unique_name("console"), unique_name("console-main"));
    rmq.create_topic(&topic, 2);
    rmq.create_topic(&config_topic, 2);
    let (owned, parent) = (unique_name("console-owned"), unique_name("console-new"));
    let config_rule = "config-rule";
    let admin = Admin { port: free_port() };
    let config = Config::new(rmq, &mqtt)
        .line("admin", &format!("listen = \"127.0.0.1:{}\"", admin.port))
        .rule(Rule::new(config_rule, &config_topic, &owned));
    let inflow = Inflow::start_with_env(&config, &[("INFLOW_ADMIN_TOKEN", TOKEN)]);
    admin.wait_status("/healthz", 200, || inflow.log());

    // The page is served without the token; the API behind it is not.
    let (code, page) = admin.get("/");
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("console.js"), "{page}");
    assert_eq!(admin.get("/console.js").0, 200);
    assert_eq!(admin.get("/api/v1/rules").0, 401);

    let sub = mqtt.subscribe(&format!("{parent}/#"), MqttVersion::V5);
    let shots = repo_root().join("target/e2e-console");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).expect("the screenshot folder");
    eprintln!("screenshots of each step: {}", shots.display());

    let rule = unique_name("console-rule");
    let mut browser = Command::new(selenium_python())
        .arg(repo_root().join("tests/e2e/console.py"))
        .args(["--url", &admin.url(), "--token", TOKEN, "--rule", &rule, "--topic", &topic, "--parent", &parent])
        .args(["--owned", &owned, "--config-rule", config_rule, "--messages", &MESSAGES.to_string()])
        .arg("--shots")
        .arg(&shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python of the console venv");
    let mut to_browser = browser.stdin.take().expect("its stdin");
    for line in BufReader::new(browser.stdout.take().expect("its stdout")).lines() {
        let line = line.expect("a line from the browser script");
        let Some(count) = line.strip_prefix("send ") else { panic!("unexpected line from the browser script: {line}") };
        rmq.java().produce(&topic, &Produce::new(count.parse().expect("a count")).body("console-{seq}"));
        // A script that already failed has closed its stdin: its exit status says why.
        writeln!(to_browser, "sent").ok();
    }
    let status = browser.wait().expect("the browser script");
    assert!(status.success(), "the browser script failed ({status}); screenshots in {}; inflow's log:\n{}", shots.display(), inflow.log());

    // What the page showed as forwarded did arrive.
    let got = sub.wait_for(MESSAGES as usize, Duration::from_secs(30));
    assert_eq!(got.len(), MESSAGES as usize, "{}", inflow.log());
    assert!(got.iter().all(|m| m.topic == parent), "{:?}", got.iter().map(|m| &m.topic).collect::<Vec<_>>());
}
