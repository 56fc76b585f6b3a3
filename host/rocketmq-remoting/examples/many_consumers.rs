//! Starts many consumers (distinct groups, one topic) in one process against a real broker and
//! reports how long until every one owns its queues, the resident memory, and how many WARN /
//! ERROR lines the client logged.
//!
//! `cargo run --release -p rocketmq-remoting --example many_consumers -- <namesrv> <cluster> <count>`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocketmq_remoting::{Client, ClientConfig, Consumer, ConsumerConfig};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Counts WARN and ERROR events (and prints the first few of each).
#[derive(Default)]
struct LevelCounter {
    warns: AtomicUsize,
    errors: AtomicUsize,
}

struct Counting(Arc<LevelCounter>);

impl<S: Subscriber> Layer<S> for Counting {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        match *event.metadata().level() {
            Level::WARN => self.0.warns.fetch_add(1, Ordering::Relaxed),
            Level::ERROR => self.0.errors.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }
}

fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, namesrv, cluster, count] = &args[..] else {
        eprintln!("usage: many_consumers <namesrv> <cluster> <count>");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("count is a number");
    let counter = Arc::new(LevelCounter::default());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let printing = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter);
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Counting(counter.clone())).with(printing))
        .expect("one subscriber");

    let client = Client::new(ClientConfig::new([namesrv.as_str()])).expect("client");
    let run = std::process::id();
    let topic = format!("many-{run}");
    client.create_topic(cluster, &topic, 4).await.expect("create topic");

    let started = Instant::now();
    let starting: Vec<_> = (0..count)
        .map(|i| {
            let client = client.clone();
            let mut cfg = ConsumerConfig::new(format!("many-{run}-{i}"), &topic);
            cfg.channel_capacity = 4;
            tokio::spawn(Consumer::start(client, cfg))
        })
        .collect();
    let mut consumers = Vec::with_capacity(count);
    let mut failed = 0;
    for task in starting {
        match task.await.expect("start task") {
            Ok(consumer) => consumers.push(consumer),
            Err(e) => {
                failed += 1;
                if failed <= 5 {
                    eprintln!("start failed: {e}");
                }
            }
        }
    }
    let all_started = started.elapsed();
    // Every group has the topic to itself: each consumer owns all 4 queues (+ retry queue) once settled.
    let deadline = Instant::now() + Duration::from_secs(300);
    while consumers.iter().any(|c| c.assigned_queues().len() < 4) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_assigned = started.elapsed();
    let without_queues = consumers.iter().filter(|c| c.assigned_queues().len() < 4).count();
    println!(
        "consumers={count} start_failures={failed} started_in={:.1}s all_own_queues_in={:.1}s without_queues={without_queues} rss={:.0}MiB warn={} error={}",
        all_started.as_secs_f64(),
        all_assigned.as_secs_f64(),
        resident_mib(),
        counter.warns.load(Ordering::Relaxed),
        counter.errors.load(Ordering::Relaxed),
    );
    // Let a few shared heartbeats and re-balances run, then count again.
    tokio::time::sleep(Duration::from_secs(40)).await;
    println!(
        "after 40 s more: rss={:.0}MiB warn={} error={}",
        resident_mib(),
        counter.warns.load(Ordering::Relaxed),
        counter.errors.load(Ordering::Relaxed)
    );
    for consumer in consumers {
        drop(consumer);
    }
}
