//! End-to-end benchmark through real brokers, all measured in one run, printed as one table.
//!
//! Each case (rules × queues per topic, body size) pre-loads its topics, then measures:
//! * the ceiling: our consumer drains the case's topics while our sink publishes as many messages,
//!   at once, in one process; no bridge on this machine carries more than the slower of the two;
//! * inflow with the built-in mapping, inflow with the Rust plugin (json-router), and a
//!   hand-written Java bridge (tests/rig/java/Bridge.java: the official push consumer with a batch
//!   listener, Eclipse Paho publishing QoS 1), each forwarding the pre-loaded topics into Mosquitto
//!   and a subscriber; the bridge reads the very messages the built-in mapping read.
//!
//! Case 8q also measures each leg alone (the official Java consumer draining; our sink
//! publishing). The latency case sends 20 000 messages at 2 000 msg/s, each stamped with its send
//! time, and reports send → subscriber arrival for inflow (built-in mapping) and the Java bridge.
//!
//! Throughput is counted at the MQTT subscriber (first arrival to last). CPU per message and peak
//! RSS are those of the forwarding process: CPU of all its threads from /proc/PID/stat between
//! the first and the last arrival (the steady state: no start-up, no JVM warm-up before the first
//! message), peak RSS from VmHWM just before it is stopped.
//!
//! ```sh
//! eval "$(tests/rig/shared.sh up 4.9.8 /tmp/inflow-bench)"      # brokers (prints the exports)
//! plugins/build.sh rust
//! cargo build --release -p inflow && cargo run --release -p inflow --example bench [-- COUNT [CASE...]]
//! INFLOW_BIN=target/dist/inflow cargo run --release -p inflow --example bench   # another build (or a release's)
//! tests/rig/shared.sh down /tmp/inflow-bench
//! ```
//!
//! COUNT: messages per case over all its rules (default 50 000; a tenth of it at 64 KiB). CASEs
//! (default: all, in this order): 8q (1 rule × 8 queues), 1q (1 rule × 1 queue), 8r (8 rules × 8
//! queues), 64k (1 rule × 8 queues, 64 KiB bodies), latency, fair (a fast rule alone, then beside a
//! rule whose plugin loops to its CPU deadline on every message: tests/plugins' hostile plugin,
//! built by `cargo test -p inflow-plugin` or the command the case prints when it is missing).

use base64::Engine;
use bytes::Bytes;
use inflow::config::{parse, Context};
use inflow::sink::Sink;
use inflow::sink::{Publish, QoS};
use std::io::{BufRead, BufReader, Lines, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SMALL: usize = 256;
const LARGE: usize = 64 << 10;
const LATENCY_RATE: u64 = 2_000;
const LATENCY_COUNT: u64 = 20_000;
const LATENCY_QUEUES: u32 = 8;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: start the brokers with tests/rig/shared.sh up (see the doc comment)"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A name no other run and no other call of this run uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    format!("{prefix}-{}-{millis}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// tests/rig/java.sh with the rig's version and name server around `args`.
fn java_command(args: &[&str]) -> Command {
    let mut command = Command::new(repo().join("tests/rig/java.sh"));
    command.arg(env("INFLOW_TEST_ROCKETMQ_VERSION")).args(args).args(["--namesrv", &env("INFLOW_TEST_NAMESRV")]).stderr(Stdio::inherit());
    command
}

/// Runs a java.sh subcommand to its end; its JSON summary line.
fn java(args: &[&str]) -> serde_json::Value {
    let out = java_command(args).output().expect("run tests/rig/java.sh");
    assert!(out.status.success(), "java.sh {args:?} failed");
    summary(&out.stdout)
}

fn summary(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().rfind(|l| l.starts_with('{')).expect("a JSON summary line");
    serde_json::from_str(line).unwrap()
}

fn create_topic(topic: &str, queues: u32) {
    java(&["create-topic", "--topic", topic, "--queues", &queues.to_string()]);
}

/// A mosquitto_sub on `filters` printing `format` (its -F) per message, exiting after `count`.
struct Subscriber {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    expected: u64,
    received: u64,
}

impl Subscriber {
    fn start(filters: &[String], count: u64, format: &str) -> Subscriber {
        let port = env("INFLOW_TEST_MQTT").rsplit_once(':').unwrap().1.to_string();
        let mut command = Command::new("mosquitto_sub");
        command.args(["-h", "127.0.0.1", "-p", &port, "-q", "1", "-C", &count.to_string(), "-F", format]);
        // -W: a lost message (or a forwarder that died) ends the run with a count instead of
        // hanging it.
        command.args(["-W", "300"]);
        for filter in filters {
            command.args(["-t", filter]);
        }
        let mut child = command.stdout(Stdio::piped()).spawn().expect("mosquitto_sub");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        std::thread::sleep(Duration::from_millis(500));
        Subscriber { child, lines, expected: count, received: 0 }
    }

    fn next_line(&mut self) -> String {
        let line = self.lines.next().and_then(Result::ok);
        let line = line.unwrap_or_else(|| panic!("the subscriber got {} of {}", self.received, self.expected));
        self.received += 1;
        line
    }

    /// Reads every message; `at_first` runs when the first arrives. Its format must start with
    /// %U (the arrival time); returns the time from the first arrival to the last.
    fn wait(mut self, at_first: impl FnOnce()) -> Duration {
        let first = arrival(&self.next_line());
        at_first();
        let mut last = first;
        while self.received < self.expected {
            last = arrival(&self.next_line());
        }
        self.finish();
        Duration::from_secs_f64(last - first)
    }

    /// Reaps mosquitto_sub, which exits by itself after the last message.
    fn finish(mut self) {
        assert_eq!(self.received, self.expected, "finish only after every message");
        let _ = self.child.wait();
    }
}

/// The arrival time (Unix seconds) at the start of a subscriber line printed with -F '%U ...'.
fn arrival(line: &str) -> f64 {
    line.split(' ').next().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("no arrival time in {line:?}"))
}

/// The inflow under test: INFLOW_BIN (e.g. a release build) or the test build.
fn inflow_bin() -> PathBuf {
    std::env::var_os("INFLOW_BIN").map(PathBuf::from).unwrap_or_else(|| repo().join("target/release/inflow"))
}

fn rate(count: u64, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

/// A child process measured through /proc while it runs.
struct Measured(Child);

impl Measured {
    fn spawn(command: &mut Command) -> Measured {
        Measured(command.spawn().unwrap_or_else(|e| panic!("{command:?}: {e}")))
    }

    fn proc_file(&self, name: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{name}", self.0.id())).unwrap_or_else(|e| panic!("/proc/{}/{name}: {e}", self.0.id()))
    }

    /// User + system CPU time of all its threads so far.
    fn cpu_micros(&self) -> f64 {
        let stat = self.proc_file("stat");
        // The fields after "(comm)": utime and stime are the 12th and 13th, in clock ticks.
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ticks as f64 * 1e6 / per_second
    }

    /// Peak resident memory so far (VmHWM), MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = self.proc_file("status");
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/PID/status");
        line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
    }

    fn stop(mut self) {
        // SAFETY: a plain signal to our own child, which is still unreaped.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Bridge {
    Builtin,
    Plugin,
    Java,
}

impl Bridge {
    fn label(self) -> &'static str {
        match self {
            Bridge::Builtin => "inflow, built-in mapping",
            Bridge::Plugin => "inflow, Rust plugin (json-router)",
            Bridge::Java => "Java bridge (push consumer, batches of 32 + Paho)",
        }
    }
}

/// What a forwarding process needs besides its topics.
struct Setup {
    plugins: PathBuf,
    scratch: PathBuf,
}

/// One forwarding process under test: `bridge` carrying `topics` (from their earliest offsets) to
/// MQTT topics under `parents`.
struct Forwarder {
    bridge: Bridge,
    topics: Vec<String>,
    parents: Vec<String>,
    /// More `[[rule]]`s for the same inflow process (whose publishes no subscriber counts).
    extra_rules: String,
}

impl Forwarder {
    fn new(bridge: Bridge, topics: &[String]) -> Forwarder {
        // An inflow rule owns its parent topic; the Java bridge puts every topic under one.
        let parents = match bridge {
            Bridge::Java => vec![unique("bj")],
            _ => topics.iter().map(|_| unique("bi")).collect(),
        };
        Forwarder { bridge, topics: topics.to_vec(), parents, extra_rules: String::new() }
    }

    fn filters(&self) -> Vec<String> {
        self.parents.iter().map(|p| format!("{p}/#")).collect()
    }

    fn spawn(&self, setup: &Setup) -> Measured {
        if self.bridge == Bridge::Java {
            let topics = self.topics.join(",");
            let group = unique("bench-bridge");
            return Measured::spawn(&mut java_command(&["bridge", "--group", &group, "--topic", &topics, "--mqtt", &env("INFLOW_TEST_MQTT"), "--parent", &self.parents[0]]));
        }
        let plugin = match self.bridge {
            Bridge::Plugin => "plugin = { name = \"json-router\", config = '{\"field\": \"device\", \"qos\": 1}' }\n",
            _ => "",
        };
        let mut config = format!(
            "[rocketmq]\nnamesrv = [\"{}\"]\n[mqtt]\nurl = \"mqtt://{}\"\nclient_id = \"{}\"\nprotocol = \"5\"\nmax_inflight = 1024\n\
             [plugins]\ndir = \"{}\"\ncache_dir = \"{}\"\n",
            env("INFLOW_TEST_NAMESRV"),
            env("INFLOW_TEST_MQTT"),
            unique("bench"),
            setup.plugins.display(),
            std::env::temp_dir().join("inflow-bench-compiled").display()
        );
        for (i, (topic, parent)) in self.topics.iter().zip(&self.parents).enumerate() {
            config += &format!(
                "[[rule]]\nid = \"bench-{i}\"\nsource = {{ topic = \"{topic}\", start = \"earliest\" }}\ntarget = {{ parent_topic = \"{parent}\" }}\n{plugin}"
            );
        }
        config += &self.extra_rules;
        let file = setup.scratch.join(format!("{}.toml", unique("inflow")));
        std::fs::write(&file, config).unwrap();
        let mut command = Command::new(inflow_bin());
        command.args(["run", "-c"]).arg(file).env("INFLOW_LOG", "warn");
        Measured::spawn(&mut command)
    }
}

/// One row's measurements of a forwarding process.
struct Run {
    rate: f64,
    cpu_per_msg: f64,
    rss_mib: f64,
    latency: Option<Latency>,
}

/// Send → arrival, milliseconds.
struct Latency {
    p50: f64,
    p99: f64,
    max: f64,
}

impl Latency {
    fn of(mut millis: Vec<f64>) -> Latency {
        millis.sort_by(f64::total_cmp);
        let at = |q: f64| millis[((millis.len() - 1) as f64 * q).round() as usize];
        Latency { p50: at(0.5), p99: at(0.99), max: at(1.0) }
    }
}

/// `forwarder` carrying the `count` messages pre-loaded in its topics.
fn throughput(forwarder: &Forwarder, count: u64, setup: &Setup) -> Run {
    let sub = Subscriber::start(&forwarder.filters(), count, "%U");
    let process = forwarder.spawn(setup);
    let mut cpu_at_first = 0.0;
    let took = sub.wait(|| cpu_at_first = process.cpu_micros());
    let cpu = process.cpu_micros() - cpu_at_first;
    let rss_mib = process.peak_rss_mib();
    process.stop();
    Run { rate: rate(count, took), cpu_per_msg: cpu / count as f64, rss_mib, latency: None }
}

/// `bridge` carrying LATENCY_COUNT messages sent at LATENCY_RATE into the new `topic`, once it
/// has carried a first one.
fn latency(bridge: Bridge, topic: &str, setup: &Setup) -> Run {
    let forwarder = Forwarder::new(bridge, &[topic.to_string()]);
    let mut sub = Subscriber::start(&forwarder.filters(), LATENCY_COUNT + 1, "%U %p");
    let process = forwarder.spawn(setup);
    let (count, rate_arg) = (LATENCY_COUNT.to_string(), LATENCY_RATE.to_string());
    let mut producer = java_command(&["produce-paced", "--topic", topic, "--count", &count, "--rate", &rate_arg, "--prime", "wait-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("java.sh produce-paced");
    // The prime has crossed: the forwarder holds its queues and the producer is connected.
    let prime = sub.next_line();
    assert!(prime.ends_with(" prime"), "expected the prime first, got {prime:?}");
    let cpu_before = process.cpu_micros();
    let started = Instant::now();
    producer.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut millis = Vec::with_capacity(LATENCY_COUNT as usize);
    for _ in 0..LATENCY_COUNT {
        let line = sub.next_line();
        let sent = line.split(' ').nth(1).and_then(|f| f.strip_prefix("sent=")).and_then(|t| t.parse::<f64>().ok());
        let sent = sent.unwrap_or_else(|| panic!("no send time in {line:?}"));
        millis.push((arrival(&line) - sent / 1e6) * 1e3);
    }
    sub.finish();
    let took = started.elapsed();
    let cpu = process.cpu_micros() - cpu_before;
    let rss_mib = process.peak_rss_mib();
    process.stop();
    let out = producer.wait_with_output().unwrap();
    assert!(out.status.success(), "java.sh produce-paced failed");
    let behind = summary(&out.stdout)["maxBehindMillis"].as_f64().unwrap_or(f64::NAN);
    if behind > 10.0 {
        eprintln!("  note: the producer fell up to {behind:.0} ms behind its schedule (a busy machine)");
    }
    Run { rate: rate(LATENCY_COUNT, took), cpu_per_msg: cpu / LATENCY_COUNT as f64, rss_mib, latency: Some(Latency::of(millis)) }
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

/// Our sink publishing `count` QoS 1 messages of `size` bytes under `parent`, and waiting for every ack.
async fn publish(count: u64, size: usize, parent: &str) {
    let text = format!(
        "[rocketmq]\nnamesrv = [\"127.0.0.1:9876\"]\n[mqtt]\nurl = \"mqtt://{}\"\nclient_id = \"{}\"\nmax_inflight = 1024\n",
        env("INFLOW_TEST_MQTT"),
        unique("bench-pub")
    );
    let no_env = |_: &str| None;
    let no_plugins = |_: &Path, _: &str| false;
    let config = parse(&text, &Context { base_dir: Path::new("."), env: &no_env, plugin_exists: &no_plugins }).unwrap();
    let sink = Sink::start(config.mqtt).unwrap();
    let body = Bytes::from(vec![b'x'; size]);
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

/// Our consumer draining `count` messages of `topic` (acknowledging each); when its first batch
/// and its last arrived.
async fn drain(topic: String, count: u64) -> (Instant, Instant) {
    let client = rocketmq_remoting::Client::new(rocketmq_remoting::ClientConfig::new([env("INFLOW_TEST_NAMESRV")])).unwrap();
    let mut cfg = rocketmq_remoting::ConsumerConfig::new(unique("bench-ceiling"), topic);
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
    let last = Instant::now();
    let _ = consumer.shutdown().await;
    (first.unwrap_or(last), last)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

fn mqtt_alone(count: u64) -> Run {
    let parent = unique("bench-mqtt");
    let sub = Subscriber::start(&[format!("{parent}/#")], count, "%U");
    let cpu_before = self_cpu_micros();
    runtime().block_on(publish(count, SMALL, &parent));
    let cpu = self_cpu_micros() - cpu_before;
    let took = sub.wait(|| ());
    Run { rate: rate(count, took), cpu_per_msg: cpu / count as f64, rss_mib: f64::NAN, latency: None }
}

/// The ceiling of this machine: our consumer draining `topics` (`count` messages over all) while
/// our sink publishes as many messages of `size`, at the same time in one process, as a bridge
/// must. No bridge can carry more than the slower of the two; (that rate, CPU µs per message for
/// both together).
fn ceiling(topics: &[String], count: u64, size: usize) -> Run {
    let parent = unique("bench-ceiling");
    let sub = Subscriber::start(&[format!("{parent}/#")], count, "%U");
    let cpu_before = self_cpu_micros();
    let per_topic = count / topics.len() as u64;
    let drains = futures_util::future::join_all(topics.iter().map(|t| drain(t.clone(), per_topic)));
    let spans = runtime().block_on(async { tokio::join!(drains, publish(count, size, &parent)).0 });
    let cpu = self_cpu_micros() - cpu_before;
    let published = sub.wait(|| ());
    let drained = spans.iter().map(|s| s.1).max().unwrap() - spans.iter().map(|s| s.0).min().unwrap();
    Run { rate: rate(count, drained.max(published)), cpu_per_msg: cpu / count as f64, rss_mib: f64::NAN, latency: None }
}

struct Case {
    name: &'static str,
    rules: usize,
    queues: u32,
    size: usize,
}

const CASES: [Case; 4] = [
    Case { name: "8q", rules: 1, queues: 8, size: SMALL },
    Case { name: "1q", rules: 1, queues: 1, size: SMALL },
    Case { name: "8r", rules: 8, queues: 8, size: SMALL },
    Case { name: "64k", rules: 1, queues: 8, size: LARGE },
];

impl Case {
    fn label(&self) -> String {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let size = if self.size >= 1024 { format!("{} KiB", self.size >> 10) } else { format!("{} B", self.size) };
        format!("{} rule{} × {} queue{}, {size}", self.rules, plural(self.rules), self.queues, plural(self.queues as usize))
    }

    /// Messages over all its rules: a whole number per rule, and a tenth at 64 KiB so that the
    /// broker's store and the run stay small.
    fn count(&self, count: u64) -> u64 {
        let count = if self.size > SMALL { count / 10 } else { count };
        count / self.rules as u64 * self.rules as u64
    }
}

/// Pre-loads `count` messages of `size` bytes into each topic, with the Java producer's batch sends.
fn preload(topics: &[String], queues: u32, count: u64, size: usize, body: Body) {
    let (count, size_arg) = (count.to_string(), size.to_string());
    // A batch stays under the broker's 4 MiB limit.
    let batch = ((1 << 20) / size).clamp(1, 128).to_string();
    let json = json_body(size);
    for topic in topics {
        create_topic(topic, queues);
        let mut args = vec!["produce-bulk", "--topic", topic, "--count", &count, "--batch", &batch];
        match body {
            Body::Generated => args.extend(["--size", &size_arg]),
            // The plugin routes by a body field and a property.
            Body::Json => args.extend(["--body", &json, "--prop", "site=s1"]),
        }
        java(&args);
    }
}

#[derive(Clone, Copy)]
enum Body {
    /// The rig's generated text bodies, each its own.
    Generated,
    /// One JSON body, the plugin's input.
    Json,
}

fn json_body(size: usize) -> String {
    let body = format!("{{\"device\":\"d1\",\"pad\":\"{}\"}}", "x".repeat(size - 24));
    assert_eq!(body.len(), size);
    body
}

/// A table row: the path measured and how it compares.
struct Row {
    case: String,
    path: String,
    run: Run,
    of_ceiling: Option<f64>,
    java: Option<(f64, f64, f64)>,
}

fn print_row(row: &Row) {
    let optional = |v: f64, digits: usize| if v.is_nan() { String::new() } else { format!("{v:.digits$}") };
    let of_ceiling = row.of_ceiling.map(|c| format!("{:.0} %", 100.0 * row.run.rate / c)).unwrap_or_default();
    let java = row.java.map(|(rate, cpu, rss)| format!("{:.2}× · {:.2}× · {:.2}×", row.run.rate / rate, row.run.cpu_per_msg / cpu, row.run.rss_mib / rss));
    let latency = row.run.latency.as_ref().map(|l| format!("{:.1} / {:.1} / {:.1}", l.p50, l.p99, l.max));
    println!(
        "| {} | {} | {} | {of_ceiling} | {} | {} | {} | {} |",
        row.case,
        row.path,
        optional(row.run.rate, 0),
        optional(row.run.cpu_per_msg, 1),
        optional(row.run.rss_mib, 0),
        java.unwrap_or_default(),
        latency.unwrap_or_default()
    );
}

/// The rows of one throughput case: its ceiling, the three bridges, and for 8q each leg alone.
fn throughput_case(case: &Case, count: u64, setup: &Setup) -> Vec<Row> {
    let count = case.count(count);
    let per_topic = count / case.rules as u64;
    let topics = |prefix: &str| (0..case.rules).map(|_| unique(prefix)).collect::<Vec<_>>();
    let (text_topics, json_topics) = (topics("bench-text"), topics("bench-json"));
    eprintln!("{}: pre-loading {count} messages into {} topics of {} queues, twice ...", case.label(), case.rules, case.queues);
    preload(&text_topics, case.queues, per_topic, case.size, Body::Generated);
    preload(&json_topics, case.queues, per_topic, case.size, Body::Json);
    let row = |path: &str, run: Run| Row { case: case.label(), path: path.to_string(), run, of_ceiling: None, java: None };
    let mut rows = Vec::new();
    if case.name == "8q" {
        eprintln!("  RocketMQ consume alone (Java consumer) ...");
        let drain = java(&["drain", "--group", &unique("bench-drain"), "--topic", &text_topics[0], "--count", &count.to_string(), "--timeout", "300"]);
        let field = |name: &str| drain[name].as_f64().unwrap_or(f64::NAN);
        let run = Run { rate: field("msgPerSec"), cpu_per_msg: field("cpuMicrosPerMsg"), rss_mib: f64::NAN, latency: None };
        rows.push(row("RocketMQ consume alone (Java push consumer)", run));
        eprintln!("  MQTT publish alone (inflow's sink, QoS 1) ...");
        rows.push(row("MQTT publish alone (inflow sink → Mosquitto → subscriber)", mqtt_alone(count)));
    }
    eprintln!("  the ceiling: our consumer and our sink at the same time ...");
    let ceiling = ceiling(&text_topics, count, case.size);
    let ceiling_rate = ceiling.rate;
    rows.push(Row { of_ceiling: Some(ceiling_rate), ..row("ceiling: our consumer draining and our sink publishing at once", ceiling) });
    let mut measured = Vec::new();
    for (bridge, topics) in [(Bridge::Builtin, &text_topics), (Bridge::Plugin, &json_topics), (Bridge::Java, &text_topics)] {
        eprintln!("  {} ...", bridge.label());
        measured.push((bridge, throughput(&Forwarder::new(bridge, topics), count, setup)));
    }
    rows.extend(compared(&case.label(), measured, Some(ceiling_rate)));
    rows
}

/// Rows of inflow's runs and the Java bridge's, inflow's with their ratios to the bridge.
fn compared(case: &str, runs: Vec<(Bridge, Run)>, ceiling: Option<f64>) -> Vec<Row> {
    let java = runs.iter().find(|(b, _)| *b == Bridge::Java).map(|(_, r)| (r.rate, r.cpu_per_msg, r.rss_mib));
    runs.into_iter()
        .map(|(bridge, run)| Row {
            case: case.to_string(),
            path: bridge.label().to_string(),
            run,
            of_ceiling: ceiling,
            java: if bridge == Bridge::Java { None } else { java },
        })
        .collect()
}

/// The part of the latency before any bridge: send → stored, from the broker's store timestamps
/// (milliseconds) of the paced messages in `topic`.
fn broker_leg(topic: &str) -> Latency {
    let count = (LATENCY_COUNT + 1).to_string();
    let out = java_command(&["consume", "--group", &unique("bench-stored"), "--topic", topic, "--count", &count, "--timeout", "120", "--from", "earliest"])
        .stderr(Stdio::null())
        .output()
        .expect("java.sh consume");
    assert!(out.status.success(), "java.sh consume failed");
    let mut millis = Vec::with_capacity(LATENCY_COUNT as usize);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let message: serde_json::Value = serde_json::from_str(line).unwrap();
        let body = base64::engine::general_purpose::STANDARD.decode(message["body"].as_str().unwrap()).unwrap();
        let sent = std::str::from_utf8(&body).ok().and_then(|b| b.strip_prefix("sent=")).and_then(|b| b.split(' ').next()).and_then(|t| t.parse::<f64>().ok());
        // The prime has no send time.
        if let Some(sent) = sent {
            millis.push(message["storeTimestamp"].as_f64().unwrap() - sent / 1e3);
        }
    }
    assert_eq!(millis.len() as u64, LATENCY_COUNT);
    Latency::of(millis)
}

fn latency_case(setup: &Setup) -> Vec<Row> {
    let case = format!("latency: {LATENCY_COUNT} × {SMALL} B at {LATENCY_RATE} msg/s, 1 rule × {LATENCY_QUEUES} queues");
    let mut stored = None;
    let runs = [Bridge::Builtin, Bridge::Java]
        .into_iter()
        .map(|bridge| {
            eprintln!("{case}: {} ...", bridge.label());
            let topic = unique("bench-latency");
            create_topic(&topic, LATENCY_QUEUES);
            let run = latency(bridge, &topic, setup);
            stored.get_or_insert_with(|| broker_leg(&topic));
            (bridge, run)
        })
        .collect();
    let mut rows = compared(&case, runs, None);
    let leg = Run { rate: f64::NAN, cpu_per_msg: f64::NAN, rss_mib: f64::NAN, latency: stored };
    rows.insert(0, Row { case: case.clone(), path: "RocketMQ leg alone: send → stored (broker's timestamp, inflow's run)".to_string(), run: leg, of_ceiling: None, java: None });
    rows
}

/// Messages of the slow rule in the fairness case: far more than it maps while the fast rule runs.
const SLOW_BACKLOG: u64 = 2_000;

/// The fairness case: a fast rule (built-in mapping, 1 × 8 queues) alone, then the same beside a
/// rule whose plugin spends its whole CPU deadline (100 ms) on every message, with two workers:
/// the fast rule's throughput beside it as a share of its throughput alone.
fn fairness_case(count: u64, setup: &Setup) -> Vec<Row> {
    let hostile = repo().join("target/test-plugins/wasm32-wasip2/release/hostile.wasm");
    assert!(
        hostile.exists(),
        "{} is missing: cargo build --release --target wasm32-wasip2 -p hostile --manifest-path tests/plugins/Cargo.toml --target-dir target/test-plugins",
        hostile.display()
    );
    std::fs::copy(&hostile, setup.plugins.join("hostile.wasm")).unwrap();
    let case = format!("fairness: 1 rule × 8 queues, {SMALL} B, built-in");
    let (alone_topic, beside_topic, slow_topic) = (unique("bench-fair-a"), unique("bench-fair-b"), unique("bench-fair-slow"));
    eprintln!("{case}: pre-loading {count} messages twice and {SLOW_BACKLOG} for the slow rule ...");
    preload(&[alone_topic.clone(), beside_topic.clone()], 8, count, SMALL, Body::Generated);
    preload(std::slice::from_ref(&slow_topic), 8, SLOW_BACKLOG, 64, Body::Generated);
    eprintln!("  the fast rule alone ...");
    let alone = throughput(&Forwarder::new(Bridge::Builtin, &[alone_topic]), count, setup);
    eprintln!("  the fast rule beside the slow one ...");
    let mut beside = Forwarder::new(Bridge::Builtin, &[beside_topic]);
    beside.extra_rules = format!(
        "[[rule]]\nid = \"slow\"\nworkers = 2\non_error = \"skip\"\nsource = {{ topic = \"{slow_topic}\", start = \"earliest\" }}\n\
         target = {{ parent_topic = \"{}\" }}\nplugin = {{ name = \"hostile\", config = \"loop\" }}\nlimits = {{ call_deadline_ms = 100 }}\n",
        unique("bench-slow")
    );
    let beside = throughput(&beside, count, setup);
    let share = format!("{:.0} %", 100.0 * beside.rate / alone.rate);
    let row = |path: String, run: Run| Row { case: case.clone(), path, run, of_ceiling: None, java: None };
    vec![
        row("inflow, the fast rule alone".to_string(), alone),
        row(format!("inflow, the fast rule beside a plugin looping to its deadline on every message: {share} of alone"), beside),
    ]
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let count: u64 = match args.peek().map(|a| a.parse()) {
        Some(Ok(n)) => {
            args.next();
            n
        }
        _ => 50_000,
    };
    let known: Vec<&str> = CASES.iter().map(|c| c.name).chain(["latency", "fair"]).collect();
    let mut chosen: Vec<String> = args.collect();
    if let Some(bad) = chosen.iter().find(|c| !known.contains(&c.as_str())) {
        panic!("unknown case {bad:?}; the cases: {}", known.join(" "));
    }
    if chosen.is_empty() {
        chosen = known.iter().map(|c| c.to_string()).collect();
    }

    let wasm = repo().join("target/plugins/json-router-rust.wasm");
    assert!(wasm.exists(), "{} is missing: plugins/build.sh rust", wasm.display());
    let scratch = std::env::temp_dir().join(unique("inflow-bench"));
    let setup = Setup { plugins: scratch.join("plugins"), scratch: scratch.clone() };
    std::fs::create_dir_all(&setup.plugins).unwrap();
    std::fs::copy(&wasm, setup.plugins.join("json-router.wasm")).unwrap();

    let mut rows = Vec::new();
    for case in CASES.iter().filter(|c| chosen.iter().any(|n| n == c.name)) {
        rows.extend(throughput_case(case, count, &setup));
    }
    if chosen.iter().any(|n| n == "latency") {
        rows.extend(latency_case(&setup));
    }
    if chosen.iter().any(|n| n == "fair") {
        rows.extend(fairness_case(count, &setup));
    }
    let _ = std::fs::remove_dir_all(&scratch);

    println!("inflow end-to-end benchmark: QoS 1, RocketMQ {}, Mosquitto; COUNT {count}", env("INFLOW_TEST_ROCKETMQ_VERSION"));
    println!("| case | path | msg/s | of the ceiling | CPU µs/msg (that process) | peak RSS MiB | inflow ÷ Java bridge: msg/s · CPU · RSS | latency ms p50 / p99 / max |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        print_row(row);
    }
}
