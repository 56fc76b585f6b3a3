//! Harness for inflow's end-to-end tests against real brokers.
//!
//! The brokers come from the rig scripts in `tests/rig/`: a shared RocketMQ and Mosquitto
//! that `scripts/test.sh` starts once per RocketMQ version (found through `INFLOW_TEST_*`
//! environment variables), or private ones a test starts for itself (ACL, broker restarts,
//! outages), stopped when dropped. Messages are produced and consumed independently of
//! inflow through the official Java client (`tests/rig/java/RmqTool.java`, [`JavaTool`]) and
//! Mosquitto's own clients ([`MqttSub`], [`Mosquitto::publish`]).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use serde_json::Value;

const HOW_TO_RUN: &str = "run scripts/test.sh (it starts the brokers), or start them with \
                          tests/rig/shared.sh up <version> <statedir> and export what it prints";

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The folder of the rig scripts (`tests/rig`).
pub fn rig_dir() -> PathBuf {
    repo_root().join("tests/rig")
}

/// The RocketMQ versions the rig serves (`tests/rig/versions`), the 4.x line first.
pub fn rocketmq_versions() -> Vec<String> {
    let path = rig_dir().join("versions");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// A name no other test (or earlier run) uses: `<prefix>-<pid>-<n>-<time>`. Only letters,
/// digits, `-` and `_`, so it is valid as a RocketMQ topic or group and an MQTT topic level.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("{prefix}-{}-{n}-{}", std::process::id(), millis % 100_000_000)
}

/// The name PLAN.md's contract uses for [`unique_name`] when naming topics.
pub fn unique_topic(prefix: &str) -> String {
    unique_name(prefix)
}

fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("environment variable {name} is not set: {HOW_TO_RUN}"),
    }
}

/// Runs a rig script, panicking with its output when it fails.
fn run_script(script: &str, args: &[&str]) -> String {
    let path = rig_dir().join(script);
    let out = Command::new(&path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    if !out.status.success() {
        panic!(
            "{} {} failed ({}):\n{}{}",
            path.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Reads a rig `env` file (`KEY=value` lines).
fn read_env_file(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// A private temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// RocketMQ ACL credentials (an admin account of the rig's ACL broker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

/// A RocketMQ name server + broker from the rig.
pub struct RocketMq {
    /// Name server address, `127.0.0.1:port`.
    pub namesrv: String,
    /// Broker address, `127.0.0.1:port` (also listens on port − 2, the VIP channel).
    pub broker: String,
    pub broker_name: String,
    pub cluster: String,
    /// The rig version (a line of `tests/rig/versions`), e.g. `4.9.8`.
    pub version: String,
    /// Set when the broker enforces ACL.
    pub credentials: Option<Credentials>,
    statedir: Option<PathBuf>,
    /// Present for a broker this process started: stopped and removed on drop.
    own: Option<TempDir>,
}

impl RocketMq {
    /// The broker `scripts/test.sh` started for the version under test (env
    /// `INFLOW_TEST_NAMESRV`, `INFLOW_TEST_ROCKETMQ_VERSION`, `INFLOW_TEST_ROCKETMQ_DIR`).
    /// Share it politely: use [`unique_name`] topics and groups, never restart it.
    pub fn shared() -> &'static RocketMq {
        static SHARED: OnceLock<RocketMq> = OnceLock::new();
        SHARED.get_or_init(|| {
            let statedir = PathBuf::from(required_env("INFLOW_TEST_ROCKETMQ_DIR"));
            let mut rmq = RocketMq::from_statedir(&statedir, None);
            rmq.namesrv = required_env("INFLOW_TEST_NAMESRV");
            let version = required_env("INFLOW_TEST_ROCKETMQ_VERSION");
            assert_eq!(
                rmq.version,
                version,
                "INFLOW_TEST_ROCKETMQ_VERSION disagrees with the broker in {}",
                statedir.display()
            );
            rmq
        })
    }

    /// The version under test (env `INFLOW_TEST_ROCKETMQ_VERSION`), for tests that start
    /// their own broker of the same version.
    pub fn version_under_test() -> String {
        required_env("INFLOW_TEST_ROCKETMQ_VERSION")
    }

    /// Starts a broker of this process's own (10–20 s), with ACL if `acl`; stopped on drop.
    pub fn start(version: &str, acl: bool) -> RocketMq {
        let dir = TempDir::new("inflow-rocketmq");
        let statedir = dir.0.to_string_lossy().into_owned();
        let mut args = vec!["start", version, statedir.as_str()];
        if acl {
            args.push("--acl");
        }
        run_script("rocketmq.sh", &args);
        RocketMq::from_statedir(&dir.0.clone(), Some(dir))
    }

    fn from_statedir(statedir: &Path, own: Option<TempDir>) -> RocketMq {
        let env = read_env_file(&statedir.join("env"));
        let get = |key: &str| {
            env.get(key)
                .cloned()
                .unwrap_or_else(|| panic!("{} has no {key}", statedir.join("env").display()))
        };
        let credentials = match (env.get("ACCESS_KEY"), env.get("SECRET_KEY")) {
            (Some(ak), Some(sk)) => Some(Credentials { access_key: ak.clone(), secret_key: sk.clone() }),
            _ => None,
        };
        RocketMq {
            namesrv: get("NAMESRV"),
            broker: get("BROKER"),
            broker_name: get("BROKER_NAME"),
            cluster: get("CLUSTER"),
            version: get("VERSION"),
            credentials,
            statedir: Some(statedir.to_path_buf()),
            own,
        }
    }

    fn own_statedir(&self, what: &str) -> String {
        assert!(self.own.is_some(), "{what} needs a broker of the test's own: use RocketMq::start, not shared()");
        self.statedir.as_ref().expect("own broker has a statedir").to_string_lossy().into_owned()
    }

    /// Stops the broker and starts it again on the same ports and store (name server stays).
    pub fn restart_broker(&self) {
        let statedir = self.own_statedir("restart_broker");
        run_script("rocketmq.sh", &["restart-broker", &statedir]);
    }

    /// Stops the broker only (name server stays), e.g. to test reconnects; [`start_broker`]
    /// brings it back.
    ///
    /// [`start_broker`]: RocketMq::start_broker
    pub fn stop_broker(&self) {
        let statedir = self.own_statedir("stop_broker");
        run_script("rocketmq.sh", &["stop-broker", &statedir]);
    }

    /// Starts the broker stopped by [`RocketMq::stop_broker`], on the same ports and store.
    pub fn start_broker(&self) {
        let statedir = self.own_statedir("start_broker");
        run_script("rocketmq.sh", &["start-broker", &statedir]);
    }

    /// Creates (or updates) `topic` with `queues` read/write queues and waits for its route.
    pub fn create_topic(&self, topic: &str, queues: u32) {
        self.java().create_topic(topic, queues);
    }

    /// The Java tool against this broker, with its credentials if it enforces ACL.
    pub fn java(&self) -> JavaTool {
        JavaTool { version: self.version.clone(), namesrv: self.namesrv.clone(), credentials: self.credentials.clone() }
    }
}

impl Drop for RocketMq {
    fn drop(&mut self) {
        // The statedir itself goes with `own` (dropped after this).
        if let (Some(_), Some(statedir)) = (&self.own, &self.statedir) {
            let _ = Command::new(rig_dir().join("rocketmq.sh"))
                .arg("stop")
                .arg(statedir)
                .stdin(Stdio::null())
                .status();
        }
    }
}

/// Options of `RmqTool produce`; `{seq}` in `body`, `keys` and property values becomes the
/// message's number.
#[derive(Clone, Debug, Default)]
pub struct Produce {
    pub count: u64,
    /// Size of a generated body (`inflow-rig seq=<n> size=<B> ` + filler); default 64.
    pub size: Option<usize>,
    /// A literal body instead of a generated one.
    pub body: Option<String>,
    pub tag: Option<String>,
    pub keys: Option<String>,
    pub properties: Vec<(String, String)>,
    /// Send every message to this queue id instead of round-robin.
    pub queue: Option<u32>,
}

impl Produce {
    pub fn new(count: u64) -> Produce {
        Produce { count, ..Produce::default() }
    }
    pub fn size(mut self, bytes: usize) -> Produce {
        self.size = Some(bytes);
        self
    }
    pub fn body(mut self, body: &str) -> Produce {
        self.body = Some(body.to_owned());
        self
    }
    pub fn tag(mut self, tag: &str) -> Produce {
        self.tag = Some(tag.to_owned());
        self
    }
    pub fn keys(mut self, keys: &str) -> Produce {
        self.keys = Some(keys.to_owned());
        self
    }
    pub fn property(mut self, key: &str, value: &str) -> Produce {
        self.properties.push((key.to_owned(), value.to_owned()));
        self
    }
    pub fn queue(mut self, queue_id: u32) -> Produce {
        self.queue = Some(queue_id);
        self
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec!["--count".to_owned(), self.count.to_string()];
        let mut opt = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                args.push(format!("--{name}"));
                args.push(v);
            }
        };
        opt("size", self.size.map(|s| s.to_string()));
        opt("body", self.body.clone());
        opt("tag", self.tag.clone());
        opt("keys", self.keys.clone());
        opt("queue", self.queue.map(|q| q.to_string()));
        for (k, v) in &self.properties {
            args.push("--prop".to_owned());
            args.push(format!("{k}={v}"));
        }
        args
    }
}

/// A failed run of the Java tool.
#[derive(Debug)]
pub struct ToolError {
    /// Exit code: 1 error, 2 bad usage, 3 timed out (`None`: killed by a signal).
    pub code: Option<i32>,
    /// What it printed to stdout before failing, parsed (e.g. the messages a timed-out consume got).
    pub lines: Vec<Value>,
    pub stderr: String,
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RmqTool exited with {:?}: {}", self.code, self.stderr.trim())
    }
}

impl std::error::Error for ToolError {}

/// The official Java client, through `tests/rig/java.sh` (see `java.sh <version> help`).
/// Every call is one JVM (about 1 s of start-up).
#[derive(Clone, Debug)]
pub struct JavaTool {
    pub version: String,
    pub namesrv: String,
    pub credentials: Option<Credentials>,
}

impl JavaTool {
    pub fn new(version: &str, namesrv: &str) -> JavaTool {
        JavaTool { version: version.to_owned(), namesrv: namesrv.to_owned(), credentials: None }
    }

    /// The same tool signing with other credentials (e.g. wrong ones, to test refusal).
    pub fn with_credentials(&self, access_key: &str, secret_key: &str) -> JavaTool {
        JavaTool {
            credentials: Some(Credentials { access_key: access_key.to_owned(), secret_key: secret_key.to_owned() }),
            ..self.clone()
        }
    }

    /// The command for a subcommand, with --namesrv and credentials filled in.
    pub fn command(&self, subcommand: &str, args: &[String]) -> Command {
        let mut cmd = Command::new(rig_dir().join("java.sh"));
        cmd.arg(&self.version).arg(subcommand).arg("--namesrv").arg(&self.namesrv);
        if let Some(c) = &self.credentials {
            cmd.args(["--ak", &c.access_key, "--sk", &c.secret_key]);
        }
        cmd.args(args).stdin(Stdio::null());
        cmd
    }

    /// Runs a subcommand to its end; its stdout JSON lines, or the failure.
    pub fn run(&self, subcommand: &str, args: &[String]) -> Result<Vec<Value>, ToolError> {
        let out = self
            .command(subcommand, args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run tests/rig/java.sh: {e}"));
        finish(out)
    }

    fn run_ok(&self, subcommand: &str, args: &[String]) -> Vec<Value> {
        self.run(subcommand, args).unwrap_or_else(|e| panic!("RmqTool {subcommand} {}: {e}", args.join(" ")))
    }

    /// Produces messages; one line per message: seq, msgId, offsetMsgId, queueId, queueOffset,
    /// brokerName, status, size, sha256, body (base64, bodies ≤ 1 KiB). Panics on failure.
    pub fn produce(&self, topic: &str, p: &Produce) -> Vec<Value> {
        self.try_produce(topic, p).unwrap_or_else(|e| panic!("RmqTool produce to {topic}: {e}"))
    }

    /// Like [`JavaTool::produce`], returning the failure (e.g. refused credentials).
    pub fn try_produce(&self, topic: &str, p: &Produce) -> Result<Vec<Value>, ToolError> {
        self.run("produce", &[args(&["--topic", topic]), p.args()].concat())
    }

    /// Consumes `count` messages in `group` (clustering; new groups start at the earliest
    /// offset) within `timeout`; one line per message: msgId, offsetMsgId, topic, tags, keys,
    /// queueId, queueOffset, brokerName, properties, body (base64), size, sha256, bornTimestamp,
    /// storeTimestamp, bornHost, storeHost, reconsumeTimes.
    pub fn consume(&self, group: &str, topic: &str, expr: &str, count: u64, timeout: Duration) -> Result<Vec<Value>, ToolError> {
        self.run("consume", &consume_args(group, topic, expr, &["--count", &count.to_string(), "--timeout", &timeout.as_secs().max(1).to_string()]))
    }

    /// Starts a consumer that stays in `group` for `duration` (so another consumer can share
    /// the group), returning once it has joined; [`JavaConsumer::finish`] collects its messages.
    pub fn spawn_consume(&self, group: &str, topic: &str, expr: &str, duration: Duration) -> JavaConsumer {
        let args = consume_args(group, topic, expr, &["--duration", &duration.as_secs().max(1).to_string()]);
        JavaConsumer::spawn(self.command("consume", &args))
    }

    /// Creates (or updates) a topic on every master of the cluster and waits for its route.
    pub fn create_topic(&self, topic: &str, queues: u32) {
        self.run_ok("create-topic", &args(&["--topic", topic, "--queues", &queues.to_string()]));
    }

    /// The group's committed offsets per queue: topic, brokerName, queueId, consumerOffset, brokerOffset.
    pub fn offsets(&self, group: &str) -> Vec<Value> {
        self.run_ok("offsets", &args(&["--group", group]))
    }

    /// Pre-loads `count` generated messages of `size` bytes with batch sends; returns the
    /// summary line (messages, size, seconds, msgPerSec).
    pub fn produce_bulk(&self, topic: &str, count: u64, size: usize) -> Value {
        let lines = self.run_ok("produce-bulk", &args(&["--topic", topic, "--count", &count.to_string(), "--size", &size.to_string()]));
        lines.into_iter().next().expect("produce-bulk prints a summary")
    }

    /// Drains `count` messages of `topic` in a new `group` with the Java push consumer; returns
    /// the summary line (messages, seconds, msgPerSec, cpuMicrosPerMsg, bytes).
    pub fn drain(&self, group: &str, topic: &str, count: u64, timeout: Duration) -> Value {
        let lines = self.run_ok(
            "drain",
            &args(&["--group", group, "--topic", topic, "--count", &count.to_string(), "--timeout", &timeout.as_secs().to_string()]),
        );
        lines.into_iter().next().expect("drain prints a summary")
    }
}

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn consume_args(group: &str, topic: &str, expr: &str, rest: &[&str]) -> Vec<String> {
    [args(&["--group", group, "--topic", topic, "--expr", expr]), args(rest)].concat()
}

fn parse_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("RmqTool printed a bad JSON line ({e}): {l}")))
        .collect()
}

/// The ids in the trailing `[1, 2]` of an RmqTool status line.
fn parse_queue_list(line: &str) -> Vec<u32> {
    let list = line.rsplit_once('[').map(|(_, rest)| rest.trim_end_matches(']')).unwrap_or("");
    list.split(',').filter_map(|id| id.trim().parse().ok()).collect()
}

fn finish(out: Output) -> Result<Vec<Value>, ToolError> {
    let lines = parse_lines(&out.stdout);
    if out.status.success() {
        Ok(lines)
    } else {
        Err(ToolError { code: out.status.code(), lines, stderr: String::from_utf8_lossy(&out.stderr).into_owned() })
    }
}

/// A Java consumer running in the background (see [`JavaTool::spawn_consume`]).
pub struct JavaConsumer {
    /// The ids of the queues it held when it reported itself started (its stderr also ends
    /// with "rmqtool: queues at exit [..]", kept in [`ToolError::stderr`] on failure).
    pub queues_at_start: Vec<u32>,
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<thread::JoinHandle<()>>,
}

impl JavaConsumer {
    fn spawn(mut cmd: Command) -> JavaConsumer {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run tests/rig/java.sh: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (started_tx, started_rx) = mpsc::channel();
        let reader = {
            let pipe: ChildStderr = child.stderr.take().expect("stderr is piped");
            let stderr = stderr.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if line.starts_with("rmqtool: consumer started") {
                        let _ = started_tx.send(parse_queue_list(&line));
                    }
                    let mut all = stderr.lock().unwrap_or_else(|p| p.into_inner());
                    all.push_str(&line);
                    all.push('\n');
                }
            })
        };
        let mut consumer = JavaConsumer { queues_at_start: Vec::new(), child: Some(child), stderr, stderr_reader: Some(reader) };
        match started_rx.recv_timeout(Duration::from_secs(90)) {
            Ok(queues) => consumer.queues_at_start = queues,
            Err(_) => {
                let (code, _) = consumer.wait();
                panic!("the Java consumer did not start (exit {code:?}): {}", consumer.stderr_text());
            }
        }
        consumer
    }


    fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn wait(&mut self) -> (Option<i32>, Vec<Value>) {
        let mut child = self.child.take().expect("consumer not yet waited for");
        let mut stdout = Vec::new();
        if let Some(mut pipe) = child.stdout.take() {
            let _ = pipe.read_to_end(&mut stdout);
        }
        let status = child.wait().expect("wait for the Java consumer");
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        (status.code(), parse_lines(&stdout))
    }

    /// Waits for the consumer's set duration to end; the messages it got, or its failure.
    pub fn finish(mut self) -> Result<Vec<Value>, ToolError> {
        let (code, lines) = self.wait();
        if code == Some(0) {
            Ok(lines)
        } else {
            Err(ToolError { code, lines, stderr: self.stderr_text() })
        }
    }
}

impl Drop for JavaConsumer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How to reach a secure Mosquitto ([`Mosquitto::start_secure`]): TLS with the rig's CA, and
/// a username / password (anonymous access is refused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttSecure {
    /// The throwaway CA (PEM) that signed the broker's certificate (valid for 127.0.0.1 and localhost).
    pub ca: PathBuf,
    pub user: String,
    pub password: String,
}

impl MqttSecure {
    /// The mosquitto_pub / mosquitto_sub options for TLS and these credentials.
    fn client_args(&self) -> Vec<String> {
        args(&["--cafile", &self.ca.to_string_lossy(), "-u", &self.user, "-P", &self.password])
    }
}

/// A Mosquitto broker from the rig.
pub struct Mosquitto {
    /// `127.0.0.1:port`.
    pub addr: String,
    pub port: u16,
    /// Set for a broker from [`Mosquitto::start_secure`] (then `port` is its TLS port).
    pub secure: Option<MqttSecure>,
    statedir: Option<PathBuf>,
    own: Option<TempDir>,
}

impl Mosquitto {
    /// The Mosquitto `scripts/test.sh` started (env `INFLOW_TEST_MQTT`, `127.0.0.1:port`).
    pub fn shared() -> &'static Mosquitto {
        static SHARED: OnceLock<Mosquitto> = OnceLock::new();
        SHARED.get_or_init(|| Mosquitto::from_addr(required_env("INFLOW_TEST_MQTT"), None, None))
    }

    /// Starts a Mosquitto of this process's own (anonymous, persistence on); stopped on drop.
    pub fn start() -> Mosquitto {
        let dir = TempDir::new("inflow-mosquitto");
        let addr = run_script("mosquitto.sh", &["start", &dir.0.to_string_lossy()]);
        Mosquitto::from_addr(addr, Some(dir.0.clone()), Some(dir))
    }

    /// Starts a Mosquitto of this process's own that takes TLS only, with a username and
    /// password ([`Mosquitto::secure`]); stopped on drop. Its own clients ([`Mosquitto::publish`],
    /// [`Mosquitto::subscribe`]) use TLS and the credentials.
    pub fn start_secure() -> Mosquitto {
        let dir = TempDir::new("inflow-mosquitto-tls");
        let addr = run_script("mosquitto.sh", &["start", &dir.0.to_string_lossy(), "--secure"]);
        let env = read_env_file(&dir.0.join("env"));
        let get = |key: &str| env.get(key).cloned().unwrap_or_else(|| panic!("{} has no {key}", dir.0.join("env").display()));
        let secure = MqttSecure { ca: PathBuf::from(get("MQTT_CA")), user: get("MQTT_USER"), password: get("MQTT_PASSWORD") };
        let mut mqtt = Mosquitto::from_addr(addr, Some(dir.0.clone()), Some(dir));
        mqtt.secure = Some(secure);
        mqtt
    }

    fn from_addr(addr: String, statedir: Option<PathBuf>, own: Option<TempDir>) -> Mosquitto {
        let port = addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("'{addr}' is not a host:port MQTT address"));
        Mosquitto { addr, port, secure: None, statedir, own }
    }

    /// `mqtt://127.0.0.1:port`, or `mqtts://127.0.0.1:port` for a secure broker.
    pub fn url(&self) -> String {
        let scheme = if self.secure.is_some() { "mqtts" } else { "mqtt" };
        format!("{scheme}://{}", self.addr)
    }

    /// The mosquitto_pub / mosquitto_sub options this broker needs (TLS and credentials, or none).
    fn client_args(&self) -> Vec<String> {
        self.secure.as_ref().map(MqttSecure::client_args).unwrap_or_default()
    }

    fn own_statedir(&self, what: &str) -> String {
        assert!(self.own.is_some(), "{what} needs a Mosquitto of the test's own: use Mosquitto::start, not shared()");
        self.statedir.as_ref().expect("own Mosquitto has a statedir").to_string_lossy().into_owned()
    }

    /// Stops the broker (persistent sessions are saved); [`Mosquitto::resume`] restarts it on the same port.
    pub fn stop(&self) {
        let statedir = self.own_statedir("stop");
        run_script("mosquitto.sh", &["stop", &statedir]);
    }

    /// Starts the broker again after [`Mosquitto::stop`], on the same port, with its sessions.
    pub fn resume(&self) {
        let statedir = self.own_statedir("resume");
        run_script("mosquitto.sh", &["start", &statedir]);
    }

    /// Publishes one message with `mosquitto_pub`.
    pub fn publish(&self, topic: &str, payload: &[u8], qos: u8) {
        mosquitto_pub(self.port, &self.client_args(), topic, payload, qos);
    }

    /// Subscribes with `mosquitto_sub` (QoS 1, clean session); returns once the subscription
    /// is active. The subscriber reconnects by itself if the broker goes away.
    pub fn subscribe(&self, topic: &str, protocol: MqttVersion) -> MqttSub {
        MqttSub::start(self.port, &self.client_args(), topic, protocol, None)
    }

    /// Like [`Mosquitto::subscribe`], with a persistent session under `client_id`: messages
    /// published while it is reconnecting (e.g. after [`Mosquitto::stop`] / [`Mosquitto::resume`])
    /// are kept for it.
    pub fn subscribe_session(&self, topic: &str, protocol: MqttVersion, client_id: &str) -> MqttSub {
        MqttSub::start(self.port, &self.client_args(), topic, protocol, Some(client_id))
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let (Some(_), Some(statedir)) = (&self.own, &self.statedir) {
            let _ = Command::new(rig_dir().join("mosquitto.sh"))
                .arg("stop")
                .arg(statedir)
                .stdin(Stdio::null())
                .status();
        }
    }
}

/// `extra`: connection options (TLS, credentials: [`Mosquitto::client_args`]).
fn mosquitto_pub(port: u16, extra: &[String], topic: &str, payload: &[u8], qos: u8) {
    let mut child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", topic, "-q", &qos.to_string(), "-s"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run mosquitto_pub (scripts/install/mosquitto.sh installs it): {e}"));
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(payload).expect("write the payload to mosquitto_pub");
    }
    let out = child.wait_with_output().expect("wait for mosquitto_pub");
    assert!(out.status.success(), "mosquitto_pub to {topic} failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MqttVersion {
    V311,
    V5,
}

/// One message a [`MqttSub`] received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttMessage {
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    pub payload: Vec<u8>,
    /// MQTT 5 user properties, in order.
    pub user_properties: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub message_expiry_interval: Option<u64>,
}

/// A `mosquitto_sub` running in the background, collecting messages.
pub struct MqttSub {
    child: Child,
    messages: Receiver<MqttMessage>,
}

impl MqttSub {
    /// `extra`: connection options (TLS, credentials: [`Mosquitto::client_args`]).
    fn start(port: u16, extra: &[String], topic: &str, protocol: MqttVersion, session: Option<&str>) -> MqttSub {
        // A probe topic next to the real one tells when the subscription is live:
        // mosquitto_sub prints nothing when its SUBACK arrives.
        let probe = format!("inflow-probe/{}", unique_name("sub"));
        let version = match protocol {
            MqttVersion::V311 => "mqttv311",
            MqttVersion::V5 => "mqttv5",
        };
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version, "-q", "1", "-t", topic, "-t", &probe]);
        cmd.args(extra);
        if let Some(client_id) = session {
            cmd.args(["-c", "-i", client_id]);
            if protocol == MqttVersion::V5 {
                // MQTT 5 ends a session at disconnect unless it asks for an expiry.
                cmd.args(["-x", "3600"]);
            }
        }
        let mut child = cmd
            // Hex payload, a space, then the JSON form (topic, qos, retain, MQTT 5 properties).
            .args(["-F", "%x %j"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run mosquitto_sub (scripts/install/mosquitto.sh installs it): {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, messages) = mpsc::channel();
        let (probe_tx, probes) = mpsc::channel();
        let probe_topic = probe.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let msg = parse_mosquitto_sub_line(&line)
                    .unwrap_or_else(|| panic!("mosquitto_sub printed an unexpected line: {line}"));
                if msg.topic == probe_topic {
                    // Late probes are expected; only the first is waited for.
                    let _ = probe_tx.send(());
                } else if tx.send(msg).is_err() {
                    return;
                }
            }
        });
        let sub = MqttSub { child, messages };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            mosquitto_pub(port, extra, &probe, b"probe", 0);
            match probes.recv_timeout(Duration::from_millis(200)) {
                Ok(()) => return sub,
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => continue,
                Err(e) => panic!("mosquitto_sub on port {port} did not subscribe to {topic}: {e}"),
            }
        }
    }

    /// Waits until `count` messages arrived (or `timeout` passed); returns those received.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<MqttMessage> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(m) => got.push(m),
                Err(_) => break,
            }
        }
        got
    }

    /// Everything received so far, without waiting.
    pub fn drain(&self) -> Vec<MqttMessage> {
        self.messages.try_iter().collect()
    }
}

impl Drop for MqttSub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses a `%x %j` line of mosquitto_sub: hex payload, a space, the JSON form.
fn parse_mosquitto_sub_line(line: &str) -> Option<MqttMessage> {
    let (hex, json) = line.split_once(' ')?;
    let v: Value = serde_json::from_str(json).ok()?;
    let payload = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect::<Option<Vec<u8>>>()?;
    let props = &v["properties"];
    let user_properties = props["user-properties"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default();
    Some(MqttMessage {
        topic: v["topic"].as_str()?.to_owned(),
        qos: v["qos"].as_u64()? as u8,
        retain: v["retain"].as_u64()? != 0,
        payload,
        user_properties,
        content_type: props["content-type"].as_str().map(str::to_owned),
        message_expiry_interval: props["message-expiry-interval"].as_u64(),
    })
}

/// The `inflow` binary of the release build (`cargo build --release -p inflow`).
pub fn inflow_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    let bin = target.join("release/inflow");
    assert!(bin.exists(), "{} is missing: build it with `cargo build --release -p inflow` (scripts/test.sh does)", bin.display());
    bin
}

/// A command running the `inflow` binary with `args`.
pub fn inflow(args: &[&str]) -> Command {
    let mut cmd = Command::new(inflow_bin());
    cmd.args(args);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mosquitto_sub_lines() {
        let line = r#"68690a00 {"tst":"2026-11-25T18:30:41.952078Z+0000","topic":"x/y","qos":1,"retain":0,"payloadlen":4,"mid":1,"properties":{"user-properties":{"k1":"v1"},"content-type":"text/json","message-expiry-interval":60},"payload":"hi\n"}"#;
        let m = parse_mosquitto_sub_line(line).expect("parses");
        assert_eq!(m.topic, "x/y");
        assert_eq!(m.payload, b"hi\n\0");
        assert_eq!(m.user_properties, vec![("k1".to_owned(), "v1".to_owned())]);
        assert_eq!(m.content_type.as_deref(), Some("text/json"));
        assert_eq!(m.message_expiry_interval, Some(60));
        let empty = parse_mosquitto_sub_line(r#" {"topic":"a","qos":0,"retain":1,"payload":""}"#).expect("parses");
        assert!(empty.payload.is_empty() && empty.retain);
        assert!(parse_mosquitto_sub_line("zz {}").is_none());
    }

    #[test]
    fn parses_queue_lists() {
        assert_eq!(parse_queue_list("rmqtool: consumer started, group g, instance i, queues [0, 3]"), [0, 3]);
        assert_eq!(parse_queue_list("rmqtool: queues at exit []"), Vec::<u32>::new());
    }

    #[test]
    fn unique_names_differ_and_are_valid_topics() {
        let a = unique_name("t");
        let b = unique_name("t");
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{a}");
    }

    #[test]
    fn versions_file_lists_a_4x_and_a_5x() {
        let v = rocketmq_versions();
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].starts_with("4.") && v[1].starts_with("5."), "{v:?}");
    }
}
