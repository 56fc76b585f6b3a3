//! The admin server of `inflow run` against real brokers: `/readyz` follows the MQTT connection
//! and the rules, `/healthz` stays 200 through it all, and `/metrics` counts what was forwarded.

use inflow_e2e::{unique_name, Config, Inflow, Mosquitto, MqttVersion, Produce, RocketMq, Rule};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// `GET` with curl: the status code and the body.
fn get(port: u16, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "5", "-w", "\n%{http_code}", &format!("http://127.0.0.1:{port}{path}")])
        .output()
        .expect("curl (Debian's curl package)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Polls `path` until its status is `want`; returns the body.
fn wait_status(port: u16, path: &str, want: u16, inflow: &Inflow) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = get(port, path);
        if code == want {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} stayed {code} ({body}), not {want}; log:\n{}", inflow.log());
        thread::sleep(Duration::from_millis(200));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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
    let inflow = Inflow::start(
        &Config::new(rmq, &mqtt).line("admin", &format!("listen = \"127.0.0.1:{port}\"")).rule(Rule::new("admin-rule", &topic, &parent)),
    );
    wait_status(port, "/readyz", 200, &inflow);
    assert_eq!(sub.wait_for(count as usize, Duration::from_secs(60)).len(), count as usize, "{}", inflow.log());
    let forwarded = format!("inflow_rule_messages_forwarded_total{{rule=\"admin-rule\"}} {count}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !get(port, "/metrics").1.lines().any(|l| l == forwarded) {
        assert!(Instant::now() < deadline, "no `{forwarded}` in:\n{}", get(port, "/metrics").1);
        thread::sleep(Duration::from_millis(200));
    }

    mqtt.stop();
    let reasons = wait_status(port, "/readyz", 503, &inflow);
    assert!(reasons.contains("\"component\":\"mqtt\""), "{reasons}");
    assert_eq!(get(port, "/healthz").0, 200);
    mqtt.resume();
    wait_status(port, "/readyz", 200, &inflow);
    assert_eq!(get(port, "/healthz").0, 200);
}
