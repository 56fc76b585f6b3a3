//! Drain benchmark: consume `--count` messages of a pre-loaded topic in a new group with our
//! consumer (acking each), then optionally with the official Java push consumer on the same
//! broker, and print messages per second, process CPU microseconds per message, and ratios.
//!
//! ```text
//! tests/rig/rocketmq.sh start 4.9.8 /tmp/rmq && . /tmp/rmq/env
//! cargo run --release -p rocketmq-remoting --example drain -- --namesrv $NAMESRV \
//!     --topic BenchTopic --preload 1000000 --size 256 --java 4.9.8
//! ```
//! `--preload N` first loads N messages of `--size` bytes with the Java tool's `produce-bulk`;
//! `--java <version>` also runs the Java tool's `drain` (tests/rig/java.sh) for comparison.
//! Both drains start their clock when the consumer starts (JVM start-up excluded).

use std::process::Command;
use std::time::{Duration, Instant};

use rocketmq_remoting::{Client, ClientConfig, Consumer, ConsumerConfig, Credentials, StartPosition};

struct Args {
    namesrv: String,
    topic: String,
    count: u64,
    preload: u64,
    size: usize,
    batch: u32,
    threads: usize,
    timeout: Duration,
    java: Option<String>,
    credentials: Option<Credentials>,
}

const USAGE: &str = "usage: drain --namesrv HOST:PORT --topic T [--count N] [--preload N --size B] \
                     [--batch 32] [--threads 1] [--timeout 600] [--java VERSION] [--ak AK --sk SK]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        namesrv: String::new(),
        topic: String::new(),
        count: 0,
        preload: 0,
        size: 256,
        batch: 32,
        threads: 1,
        timeout: Duration::from_secs(600),
        java: None,
        credentials: None,
    };
    let (mut ak, mut sk) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value; {USAGE}"));
        let number = |v: String| v.parse::<u64>().map_err(|_| format!("{flag} wants a number, got {v:?}"));
        match flag.as_str() {
            "--namesrv" => args.namesrv = value()?,
            "--topic" => args.topic = value()?,
            "--count" => args.count = number(value()?)?,
            "--preload" => args.preload = number(value()?)?,
            "--size" => args.size = number(value()?)? as usize,
            "--batch" => args.batch = number(value()?)? as u32,
            "--threads" => args.threads = number(value()?)?.max(1) as usize,
            "--timeout" => args.timeout = Duration::from_secs(number(value()?)?),
            "--java" => args.java = Some(value()?),
            "--ak" => ak = Some(value()?),
            "--sk" => sk = Some(value()?),
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other}; {USAGE}")),
        }
    }
    if args.namesrv.is_empty() || args.topic.is_empty() {
        return Err(format!("--namesrv and --topic are required; {USAGE}"));
    }
    if args.count == 0 {
        args.count = args.preload;
    }
    if args.count == 0 {
        return Err(format!("give --count (messages to drain) or --preload; {USAGE}"));
    }
    if let (Some(ak), Some(sk)) = (ak, sk) {
        args.credentials = Some(Credentials::new(ak, sk));
    }
    Ok(args)
}

fn unix_millis() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// User + system CPU time of this process.
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct we pass.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

struct Figures {
    messages: u64,
    seconds: f64,
    cpu_micros_per_msg: f64,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.seconds
    }
}

async fn drain_ours(args: &Args) -> Result<Figures, String> {
    let mut cfg = ClientConfig::new([args.namesrv.as_str()]);
    cfg.credentials = args.credentials.clone();
    let client = Client::new(cfg).map_err(|e| e.to_string())?;
    let group = format!("drain-rust-{}-{}", std::process::id(), unix_millis());
    let mut consumer_cfg = ConsumerConfig::new(group, args.topic.clone());
    consumer_cfg.start = StartPosition::Earliest;
    consumer_cfg.pull_batch_size = args.batch;
    consumer_cfg.consume_retry_topic = false;
    let cpu0 = process_cpu();
    let t0 = Instant::now();
    let mut consumer = Consumer::start(client, consumer_cfg).await.map_err(|e| e.to_string())?;
    let mut received = 0u64;
    let mut bytes = 0u64;
    let deadline = tokio::time::sleep(args.timeout);
    tokio::pin!(deadline);
    while received < args.count {
        tokio::select! {
            _ = &mut deadline => return Err(format!("timed out after {received} of {} messages", args.count)),
            batch = consumer.recv() => {
                let Some(batch) = batch else { return Err("consumer stopped".into()) };
                for message in &batch.messages {
                    bytes += message.body.len() as u64;
                    consumer.ack(&batch.queue, message.queue_offset);
                }
                received += batch.messages.len() as u64;
            }
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = process_cpu() - cpu0;
    consumer.shutdown().await.map_err(|e| e.to_string())?;
    eprintln!("rust: {received} messages, {bytes} body bytes");
    Ok(Figures { messages: received, seconds, cpu_micros_per_msg: cpu.as_micros() as f64 / received as f64 })
}

fn java_tool(version: &str, args: &Args, subcommand: &str, extra: &[String]) -> Result<serde_json::Value, String> {
    let java_sh = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/rig/java.sh");
    let mut cmd = Command::new(java_sh);
    cmd.arg(version).arg(subcommand).arg("--namesrv").arg(&args.namesrv).args(extra);
    if let Some(c) = &args.credentials {
        cmd.args(["--ak", &c.access_key, "--sk", &c.secret_key]);
    }
    let out = cmd.output().map_err(|e| format!("cannot run {java_sh}: {e}"))?;
    if !out.status.success() {
        return Err(format!("java.sh {subcommand} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with('{')).ok_or_else(|| format!("java.sh {subcommand} printed no summary"))?;
    serde_json::from_str(line).map_err(|e| format!("bad summary from java.sh {subcommand}: {e}"))
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if args.preload > 0 {
        let version = args.java.as_deref().unwrap_or("4.9.8");
        let extra = ["--topic", &args.topic, "--count", &args.preload.to_string(), "--size", &args.size.to_string()].map(String::from);
        match java_tool(version, &args, "produce-bulk", &extra) {
            Ok(summary) => eprintln!("preloaded: {summary}"),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    }
    .expect("a tokio runtime");
    let ours = match runtime.block_on(drain_ours(&args)) {
        Ok(figures) => figures,
        Err(e) => {
            eprintln!("rust drain failed: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "rust: {} msgs in {:.2} s = {:.0} msgs/s, {:.2} CPU µs/msg (batch {}, {} thread(s))",
        ours.messages,
        ours.seconds,
        ours.rate(),
        ours.cpu_micros_per_msg,
        args.batch,
        args.threads
    );
    let Some(version) = args.java.clone() else { return };
    let group = format!("drain-java-{}-{}", std::process::id(), unix_millis());
    let timeout = args.timeout.as_secs().to_string();
    let extra = ["--group", &group, "--topic", &args.topic, "--count", &args.count.to_string(), "--timeout", &timeout].map(String::from);
    let java = match java_tool(&version, &args, "drain", &extra) {
        Ok(summary) => Figures {
            messages: summary["messages"].as_u64().unwrap_or(0),
            seconds: summary["seconds"].as_f64().unwrap_or(f64::NAN),
            cpu_micros_per_msg: summary["cpuMicrosPerMsg"].as_f64().unwrap_or(f64::NAN),
        },
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!(
        "java: {} msgs in {:.2} s = {:.0} msgs/s, {:.2} CPU µs/msg (push consumer, RocketMQ client {version})",
        java.messages,
        java.seconds,
        java.rate(),
        java.cpu_micros_per_msg
    );
    println!(
        "ratio rust/java: throughput {:.2}x, CPU per message {:.2}x",
        ours.rate() / java.rate(),
        ours.cpu_micros_per_msg / java.cpu_micros_per_msg
    );
}
