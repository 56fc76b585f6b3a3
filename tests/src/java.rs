//! The official Java client (`tests/rig/java/RmqTool.java` through `tests/rig/java.sh`):
//! produce, consume, inspect offsets, independently of inflow.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::rig::{args, rig_dir};
use crate::rocketmq::Credentials;
use crate::Value;

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

    /// Starts a consumer that stays in `group` until [`JavaConsumer::finish`] tells it to leave
    /// (so another consumer can share the group), returning once it has joined with its queues;
    /// [`JavaConsumer::wait_for`] waits for its messages.
    pub fn spawn_consume(&self, group: &str, topic: &str, expr: &str) -> JavaConsumer {
        let args = consume_args(group, topic, expr, &["--stay-until", "stdin-closed"]);
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


fn consume_args(group: &str, topic: &str, expr: &str, rest: &[&str]) -> Vec<String> {
    [args(&["--group", group, "--topic", topic, "--expr", expr]), args(rest)].concat()
}

fn parse_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout).lines().filter_map(parse_line).collect()
}

/// A JSON line of RmqTool's stdout; other lines (none expected) are passed over.
fn parse_line(line: &str) -> Option<Value> {
    line.starts_with('{')
        .then(|| serde_json::from_str(line).unwrap_or_else(|e| panic!("RmqTool printed a bad JSON line ({e}): {line}")))
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

/// A Java consumer running in the background (see [`JavaTool::spawn_consume`]); it leaves its
/// group when [`JavaConsumer::finish`] closes its stdin, or when dropped.
pub struct JavaConsumer {
    /// The ids of the queues it held when it reported itself started (its stderr also ends
    /// with "rmqtool: queues at exit [..]", kept in [`ToolError::stderr`] on failure).
    pub queues_at_start: Vec<u32>,
    child: Child,
    /// Held open while the consumer should stay; dropping it tells the consumer to leave.
    stay: Option<ChildStdin>,
    messages: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
}

impl JavaConsumer {
    fn spawn(mut cmd: Command) -> JavaConsumer {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run tests/rig/java.sh: {e}"));
        let stay = child.stdin.take();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (started_tx, started_rx) = mpsc::channel();
        let stdout_reader = {
            let pipe: ChildStdout = child.stdout.take().expect("stdout is piped");
            let messages = messages.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    lock(&messages).extend(parse_line(&line));
                }
            })
        };
        let stderr_reader = {
            let pipe: ChildStderr = child.stderr.take().expect("stderr is piped");
            let stderr = stderr.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if line.starts_with("rmqtool: consumer started") {
                        let _ = started_tx.send(parse_queue_list(&line));
                    }
                    let mut all = lock(&stderr);
                    all.push_str(&line);
                    all.push('\n');
                }
            })
        };
        let mut consumer = JavaConsumer {
            queues_at_start: Vec::new(),
            child,
            stay,
            messages,
            stderr,
            readers: vec![stdout_reader, stderr_reader],
        };
        match started_rx.recv_timeout(Duration::from_secs(90)) {
            Ok(queues) => consumer.queues_at_start = queues,
            Err(_) => {
                let code = consumer.leave();
                panic!("the Java consumer did not start (exit {code:?}): {}", lock(&consumer.stderr));
            }
        }
        consumer
    }

    /// Waits until it has received `count` messages (or `timeout` passed); how many it has.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let received = lock(&self.messages).len();
            if received >= count || Instant::now() > deadline {
                return received;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Tells it to leave (it commits its offsets first) and waits for its exit code.
    fn leave(&mut self) -> Option<i32> {
        drop(self.stay.take());
        let status = self.child.wait().expect("wait for the Java consumer");
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status.code()
    }

    /// Makes it leave its group; the messages it got, or its failure.
    pub fn finish(mut self) -> Result<Vec<Value>, ToolError> {
        let code = self.leave();
        let lines = std::mem::take(&mut *lock(&self.messages));
        if code == Some(0) {
            Ok(lines)
        } else {
            Err(ToolError { code, lines, stderr: lock(&self.stderr).clone() })
        }
    }
}

impl Drop for JavaConsumer {
    fn drop(&mut self) {
        if self.stay.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Locks a mutex a panicked reader thread may have poisoned (the data is still whole).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;


    #[test]
    fn parses_queue_lists() {
        assert_eq!(parse_queue_list("rmqtool: consumer started, group g, instance i, queues [0, 3]"), [0, 3]);
        assert_eq!(parse_queue_list("rmqtool: queues at exit []"), Vec::<u32>::new());
    }
}
