//! End-to-end benchmark through real brokers, all measured in one run:
//!
//! 1. RocketMQ consume alone: the official Java consumer drains the pre-loaded topic.
//! 2. MQTT publish alone: inflow's sink publishes the same number of QoS 1 messages.
//! 3. The ceiling: our consumer drains the topic while our sink publishes as many, at once, in
//!    one process; no bridge on this machine carries more than the slower of the two.
//! 4. inflow, built-in mapping: RocketMQ → inflow → Mosquitto → subscriber.
//! 5. inflow, Rust plugin (json-router): the same with the example plugin.
//!
//! Throughput is counted at an MQTT subscriber (first to last message); inflow's CPU is the
//! getrusage of its process (wait4), divided by the messages forwarded.
//!
//! ```sh
//! eval "$(tests/rig/shared.sh up 4.9.8 /tmp/inflow-bench)"      # brokers (prints the exports)
//! plugins/build.sh rust
//! cargo build --release -p inflow && cargo run --release -p inflow --example bench [-- COUNT]
//! INFLOW_BIN=target/dist/inflow cargo run --release -p inflow --example bench   # another build (or a release's)
//! tests/rig/shared.sh down /tmp/inflow-bench
//! ```

use bytes::Bytes;
use inflow::config::{parse, Context};
use inflow::sink::{Publish, QoS};
use inflow::sink::Sink;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SIZE: usize = 256;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: start the brokers with tests/rig/shared.sh up (see the doc comment)"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), Instant::now().elapsed().as_nanos() ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis())
}

fn java(args: &[&str]) -> serde_json::Value {
    let out = Command::new(repo().join("tests/rig/java.sh"))
        .arg(env("INFLOW_TEST_ROCKETMQ_VERSION"))
        .args(args)
        .args(["--namesrv", &env("INFLOW_TEST_NAMESRV")])
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/rig/java.sh");
    assert!(out.status.success(), "java.sh {args:?} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rfind(|l| l.starts_with('{')).expect("a JSON summary line");
    serde_json::from_str(line).unwrap()
}

/// A mosquitto_sub that exits after `count` messages; returns (first, last) arrival times.
struct Subscriber(std::process::Child);

impl Subscriber {
    fn start(topic: &str, count: u64) -> Subscriber {
        let port = env("INFLOW_TEST_MQTT").rsplit_once(':').unwrap().1.to_string();
        let child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port, "-q", "1", "-t", topic, "-C", &count.to_string(), "-F", "%m"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("mosquitto_sub");
        std::thread::sleep(Duration::from_millis(500));
        Subscriber(child)
    }

    fn wait(mut self, count: u64) -> Duration {
        let stdout = self.0.stdout.take().unwrap();
        let mut first = None;
        let mut n = 0;
        for _ in BufReader::new(stdout).lines().map_while(Result::ok) {
            first.get_or_insert_with(Instant::now);
            n += 1;
        }
        let _ = self.0.wait();
        assert_eq!(n, count, "the subscriber got {n} of {count}");
        first.map(|f| f.elapsed()).unwrap_or_default()
    }
}

/// The inflow under test: INFLOW_BIN (e.g. a release build) or the test build.
fn inflow_bin() -> PathBuf {
    std::env::var_os("INFLOW_BIN").map(PathBuf::from).unwrap_or_else(|| repo().join("target/release/inflow"))
}

fn rate(count: u64, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

/// Runs inflow on `rules` until the subscriber has `count` messages; (msg/s, CPU µs/msg).
fn inflow_run(rules: &str, parent: &str, count: u64, plugins: &Path) -> (f64, f64) {
    let dir = std::env::temp_dir().join(unique("inflow-bench"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "[rocketmq]\nnamesrv = [\"{}\"]\n[mqtt]\nurl = \"mqtt://{}\"\nclient_id = \"{}\"\nprotocol = \"5\"\nmax_inflight = 1024\n\
         [plugins]\ndir = \"{}\"\ncache_dir = \"{}\"\n{rules}",
        env("INFLOW_TEST_NAMESRV"),
        env("INFLOW_TEST_MQTT"),
        unique("bench"),
        plugins.display(),
        std::env::temp_dir().join("inflow-bench-compiled").display()
    );
    std::fs::write(dir.join("inflow.toml"), config).unwrap();
    let sub = Subscriber::start(&format!("{parent}/#"), count);
    #[expect(clippy::zombie_processes, reason = "reaped below by wait4, which also gives its CPU time")]
    let child = Command::new(inflow_bin())
        .args(["run", "-c"])
        .arg(dir.join("inflow.toml"))
        .env("INFLOW_LOG", "warn")
        .spawn()
        .expect("the inflow binary: INFLOW_BIN, or cargo build --release -p inflow");
    let took = sub.wait(count);
    let pid = child.id() as libc::pid_t;
    // SAFETY: plain syscalls on our own child; rusage is a plain C struct.
    let cpu = unsafe {
        libc::kill(pid, libc::SIGTERM);
        let mut status = 0;
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::wait4(pid, &mut status, 0, &mut usage);
        let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
        tv(usage.ru_utime) + tv(usage.ru_stime)
    };
    let _ = std::fs::remove_dir_all(&dir);
    (rate(count, took), cpu / count as f64)
}

fn self_cpu_micros() -> f64 {
    // SAFETY: getrusage fills a plain C struct.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Our sink publishing `count` QoS 1 messages of SIZE bytes under `parent`, and waiting for every ack.
async fn publish(count: u64, parent: &str) {
    let text = format!(
        "[rocketmq]\nnamesrv = [\"127.0.0.1:9876\"]\n[mqtt]\nurl = \"mqtt://{}\"\nclient_id = \"{}\"\nmax_inflight = 1024\n",
        env("INFLOW_TEST_MQTT"),
        unique("bench-pub")
    );
    let no_env = |_: &str| None;
    let no_plugins = |_: &Path, _: &str| false;
    let config = parse(&text, &Context { base_dir: Path::new("."), env: &no_env, plugin_exists: &no_plugins }).unwrap();
    let sink = Sink::start(config.mqtt).unwrap();
    let body = Bytes::from(vec![b'x'; SIZE]);
    let mut pending = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let d = sink.publish(Publish::new(format!("{parent}/t"), QoS::AtLeastOnce, body.clone())).await.unwrap();
        pending.push(d);
    }
    for d in pending {
        d.wait().await.unwrap();
    }
    sink.close(Duration::from_secs(1)).await;
}

/// Our consumer draining `count` messages of `topic` (acknowledging each); the time from its
/// first batch to the last.
async fn drain(topic: &str, count: u64) -> Duration {
    let client = rocketmq_remoting::Client::new(rocketmq_remoting::ClientConfig::new([env("INFLOW_TEST_NAMESRV")])).unwrap();
    let mut cfg = rocketmq_remoting::ConsumerConfig::new(unique("bench-ceiling"), topic.to_string());
    cfg.start = rocketmq_remoting::StartPosition::Earliest;
    let mut consumer = rocketmq_remoting::Consumer::start(client, cfg).await.unwrap();
    let mut first = None;
    let mut seen = 0;
    while seen < count {
        let batch = consumer.recv().await.expect("the consumer runs");
        first.get_or_insert_with(Instant::now);
        for m in &batch.messages {
            consumer.ack(&batch.queue, m.queue_offset);
        }
        seen += batch.messages.len() as u64;
    }
    let took = first.map(|f| f.elapsed()).unwrap_or_default();
    let _ = consumer.shutdown().await;
    took
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

fn mqtt_alone(count: u64) -> (f64, f64) {
    let parent = unique("bench-mqtt");
    let sub = Subscriber::start(&format!("{parent}/#"), count);
    let cpu_before = self_cpu_micros();
    runtime().block_on(publish(count, &parent));
    let cpu = self_cpu_micros() - cpu_before;
    let took = sub.wait(count);
    (rate(count, took), cpu / count as f64)
}

/// The ceiling of this machine: our consumer draining `topic` while our sink publishes as many
/// messages, at the same time in one process, as a bridge must. No bridge can carry more than
/// the slower of the two; (that rate, CPU µs per message for both together).
fn ceiling(topic: &str, count: u64) -> (f64, f64) {
    let parent = unique("bench-ceiling");
    let sub = Subscriber::start(&format!("{parent}/#"), count);
    let cpu_before = self_cpu_micros();
    let drained = runtime().block_on(async { tokio::join!(drain(topic, count), publish(count, &parent)).0 });
    let cpu = self_cpu_micros() - cpu_before;
    let published = sub.wait(count);
    (rate(count, drained.max(published)), cpu / count as f64)
}

fn main() {
    let count: u64 = std::env::args().nth(1).map(|a| a.parse().expect("COUNT is a number")).unwrap_or(50_000);
    let wasm = repo().join("target/plugins/json-router-rust.wasm");
    assert!(wasm.exists(), "{} is missing: plugins/build.sh rust", wasm.display());
    let plugins = std::env::temp_dir().join(unique("inflow-bench-plugins"));
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(&wasm, plugins.join("json-router.wasm")).unwrap();

    let builtin_topic = unique("bench-builtin");
    let plugin_topic = unique("bench-plugin");
    eprintln!("pre-loading {count} messages of {SIZE} B into two topics ...");
    java(&["produce-bulk", "--topic", &builtin_topic, "--count", &count.to_string(), "--size", &SIZE.to_string()]);
    // The plugin routes JSON bodies by a field; the rig's generated bodies are text, so it gets a
    // JSON body of the same size.
    let json_body = format!("{{\"device\":\"d1\",\"pad\":\"{}\"}}", "x".repeat(SIZE - 24));
    assert_eq!(json_body.len(), SIZE);
    produce_json(&plugin_topic, count, &json_body);

    eprintln!("1/5 RocketMQ consume alone (Java consumer) ...");
    let drain = java(&["drain", "--group", &unique("bench-drain"), "--topic", &builtin_topic, "--count", &count.to_string(), "--timeout", "300"]);
    eprintln!("2/5 MQTT publish alone (inflow's sink, QoS 1) ...");
    let (mqtt_rate, mqtt_cpu) = mqtt_alone(count);
    eprintln!("3/5 the ceiling: our consumer and our sink at the same time ...");
    let (ceiling_rate, ceiling_cpu) = ceiling(&builtin_topic, count);
    eprintln!("4/5 inflow, built-in mapping ...");
    let parent = unique("bb");
    let rule = format!(
        "[[rule]]\nid = \"bench-builtin\"\nsource = {{ topic = \"{builtin_topic}\", start = \"earliest\" }}\ntarget = {{ parent_topic = \"{parent}\" }}\n"
    );
    let (builtin_rate, builtin_cpu) = inflow_run(&rule, &parent, count, &plugins);
    eprintln!("5/5 inflow, Rust plugin ...");
    let parent = unique("bp");
    let rule = format!(
        "[[rule]]\nid = \"bench-plugin\"\nsource = {{ topic = \"{plugin_topic}\", start = \"earliest\" }}\ntarget = {{ parent_topic = \"{parent}\" }}\n\
         plugin = {{ name = \"json-router\", config = '{{\"field\": \"device\", \"qos\": 1}}' }}\n"
    );
    let (plugin_rate, plugin_cpu) = inflow_run(&rule, &parent, count, &plugins);
    let _ = std::fs::remove_dir_all(&plugins);

    println!("inflow end-to-end benchmark: {count} messages of {SIZE} B, QoS 1, RocketMQ {}", env("INFLOW_TEST_ROCKETMQ_VERSION"));
    println!("| path | msg/s | of the ceiling | CPU µs/msg (of that process) |");
    println!("|---|---:|---:|---:|");
    let of_ceiling = |r: f64| format!("{:.0} %", 100.0 * r / ceiling_rate);
    println!(
        "| RocketMQ consume alone (Java push consumer) | {:.0} | | {:.1} |",
        drain["msgPerSec"].as_f64().unwrap_or(f64::NAN),
        drain["cpuMicrosPerMsg"].as_f64().unwrap_or(f64::NAN)
    );
    println!("| MQTT publish alone (inflow sink → Mosquitto → subscriber) | {mqtt_rate:.0} | | {mqtt_cpu:.1} |");
    println!("| ceiling: our consumer draining and our sink publishing at once | {ceiling_rate:.0} | 100 % | {ceiling_cpu:.1} |");
    println!("| inflow, built-in mapping | {builtin_rate:.0} | {} | {builtin_cpu:.1} |", of_ceiling(builtin_rate));
    println!("| inflow, Rust plugin (json-router) | {plugin_rate:.0} | {} | {plugin_cpu:.1} |", of_ceiling(plugin_rate));
}

/// Pre-loads `count` copies of one JSON body with `inflow send` (our producer): the Java tool's
/// bulk mode only makes generated text bodies.
fn produce_json(topic: &str, count: u64, body: &str) {
    let status = Command::new(inflow_bin())
        .args(["send", "--namesrv", &env("INFLOW_TEST_NAMESRV"), "--topic", topic, "--property", "site=s1", "--body", body, "--count", &count.to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("inflow send");
    assert!(status.success());
}
