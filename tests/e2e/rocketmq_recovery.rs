//! Our RocketMQ client (crate `rocketmq-remoting`) recovering from failures against real
//! brokers: a consumer that dies without committing, a name server killed mid-stream, and a
//! producer sending to a topic the broker creates on first use.
//!
//! `cargo test --release -p inflow-e2e --test rocketmq_recovery`, with the shared broker of the
//! version under test in the environment (scripts/test.sh, or `tests/rig/shared.sh up`).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use inflow_e2e::{rig_dir, unique_name, RocketMq};
use rocketmq_remoting::{Client, ClientConfig, Consumer, ConsumerConfig, OutgoingMessage, Producer, StartPosition};

fn client(namesrv_addrs: &[&str], instance: &str) -> Client {
    let mut cfg = ClientConfig::new(namesrv_addrs.iter().copied());
    cfg.instance_name = unique_name(instance);
    Client::new(cfg).expect("client config")
}

fn consumer_config(group: &str, topic: &str) -> ConsumerConfig {
    let mut cfg = ConsumerConfig::new(group, topic);
    cfg.start = StartPosition::Earliest;
    cfg.rebalance_interval = Duration::from_secs(2);
    cfg.heartbeat_interval = Duration::from_secs(5);
    cfg
}

/// Receives until `stop` says so or `timeout`, acking everything; returns the bodies seen.
async fn consume_until(consumer: &mut Consumer, timeout: Duration, mut stop: impl FnMut(&[String]) -> bool) -> Vec<String> {
    let mut bodies = Vec::new();
    let deadline = Instant::now() + timeout;
    while !stop(&bodies) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(batch)) = tokio::time::timeout(left, consumer.recv()).await else { break };
        for message in batch.messages {
            consumer.ack(&batch.queue, message.queue_offset);
            bodies.push(String::from_utf8_lossy(&message.body).into_owned());
        }
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_dropped_without_commit_redelivers_at_most_the_in_flight_window() {
    const QUEUES: u32 = 8;
    const MESSAGES: usize = 4000;
    let rmq = RocketMq::shared();
    let topic = unique_name("crash");
    let group = unique_name("crash-g");
    let producer_client = client(&[&rmq.namesrv], "crash-p");
    producer_client.create_topic(&rmq.cluster, &topic, QUEUES).await.expect("create topic");
    let producer = Producer::start(producer_client.clone(), "crash-producer").await.expect("producer");
    for i in 0..MESSAGES {
        producer.send(OutgoingMessage::new(&topic, format!("m{i}"))).await.expect("preload");
    }

    let mut cfg = consumer_config(&group, &topic);
    cfg.pull_batch_size = 32;
    cfg.max_unacked_per_queue = 64;
    // Longer than the test: only the commits piggy-backed on pulls count.
    cfg.commit_interval = Duration::from_secs(60);
    let bound = QUEUES as usize * (cfg.max_unacked_per_queue + cfg.pull_batch_size as usize);

    let mut first = Consumer::start(client(&[&rmq.namesrv], "crash-a"), cfg.clone()).await.expect("first consumer");
    let before = consume_until(&mut first, Duration::from_secs(60), |got| got.len() >= MESSAGES / 2).await;
    assert!(before.len() >= MESSAGES / 2, "the first consumer got only {} messages", before.len());
    drop(first); // as a crash: no shutdown, no final commit

    let mut second = Consumer::start(client(&[&rmq.namesrv], "crash-b"), cfg).await.expect("second consumer");
    let seen_before: BTreeSet<&String> = before.iter().collect();
    let mut all: BTreeSet<String> = before.iter().cloned().collect();
    let after = consume_until(&mut second, Duration::from_secs(90), |got| {
        all.extend(got.iter().cloned());
        all.len() >= MESSAGES
    })
    .await;
    second.shutdown().await.expect("shutdown");

    let everything: BTreeSet<&String> = before.iter().chain(&after).collect();
    assert_eq!(everything.len(), MESSAGES, "missing messages");
    let duplicates = after.iter().filter(|body| seen_before.contains(body)).count();
    println!("delivered before the drop: {}, duplicates after it: {duplicates} (bound {bound})", before.len());
    assert!(duplicates <= bound, "{duplicates} duplicates; the bound is {bound}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_sends_to_an_auto_created_topic_without_illegal_queues() {
    let rmq = RocketMq::shared();
    let sender = client(&[&rmq.namesrv], "auto");
    let producer = Producer::start(sender.clone(), "auto-producer").await.expect("producer");
    // Several fresh topics: each first send goes through TBW102's route (8 queues there).
    for round in 0..3 {
        let topic = unique_name(&format!("auto{round}"));
        for i in 0..12 {
            let sent = producer.send(OutgoingMessage::new(&topic, format!("m{i}"))).await;
            let sent = sent.unwrap_or_else(|e| panic!("send {i} to the new topic {topic}: {e}"));
            assert!(sent.queue.queue_id < 4, "queue {} of a topic created with 4", sent.queue.queue_id);
        }
        // The broker registers the new topic with the name server shortly after creating it.
        let deadline = Instant::now() + Duration::from_secs(30);
        let route = loop {
            match sender.refresh_route(&topic).await {
                Ok(route) => break route,
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => panic!("the topic {topic} has no route 30 s after its first send: {e}"),
            }
        };
        assert_eq!(route.write_queues(&topic).len(), 4);
    }
}

/// A broker of the test's own with two name servers (`rocketmq.sh start … --two-namesrv`).
struct TwoNameServers {
    statedir: PathBuf,
    env: HashMap<String, String>,
}

impl TwoNameServers {
    fn start(version: &str) -> TwoNameServers {
        let statedir = std::env::temp_dir().join(unique_name("inflow-two-namesrv"));
        rig(&["start", version, &statedir.to_string_lossy(), "--two-namesrv"]);
        let env = std::fs::read_to_string(statedir.join("env"))
            .expect("the rig wrote env")
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TwoNameServers { statedir, env }
    }

    fn get(&self, key: &str) -> &str {
        self.env.get(key).unwrap_or_else(|| panic!("no {key} in the rig's env"))
    }

    fn kill_namesrv(&self, which: u8) {
        rig(&["kill-namesrv", &self.statedir.to_string_lossy(), &which.to_string()]);
    }
}

impl Drop for TwoNameServers {
    fn drop(&mut self) {
        let _ = Command::new(rig_dir().join("rocketmq.sh")).arg("stop").arg(&self.statedir).status();
        let _ = std::fs::remove_dir_all(&self.statedir);
    }
}

fn rig(args: &[&str]) {
    let status = Command::new(rig_dir().join("rocketmq.sh")).args(args).status().expect("run rocketmq.sh");
    assert!(status.success(), "rocketmq.sh {args:?} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_goes_on_when_a_name_server_dies() {
    const MESSAGES: usize = 300;
    let version = RocketMq::version_under_test();
    let rig = tokio::task::spawn_blocking(move || TwoNameServers::start(&version)).await.unwrap();
    let namesrvs = [rig.get("NAMESRV"), rig.get("NAMESRV2")];
    let topic = unique_name("nsfail");
    let mut cfg = ClientConfig::new(namesrvs);
    // Ask the name servers often, so the stream really depends on them.
    cfg.route_refresh_interval = Duration::from_millis(500);
    let shared_client = Client::new(cfg).expect("client");
    shared_client.create_topic(rig.get("CLUSTER"), &topic, 4).await.expect("create topic");
    let producer = Producer::start(shared_client.clone(), "nsfail-producer").await.expect("producer");
    let mut consumer = Consumer::start(shared_client.clone(), consumer_config(&unique_name("nsfail-g"), &topic)).await.expect("consumer");

    let sending = tokio::spawn(async move {
        for i in 0..MESSAGES {
            producer.send(OutgoingMessage::new(&topic, format!("m{i}"))).await.unwrap_or_else(|e| panic!("send {i}: {e}"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut got = consume_until(&mut consumer, Duration::from_secs(30), |got| got.len() >= MESSAGES / 3).await;
    tokio::task::block_in_place(|| rig.kill_namesrv(1));
    got.extend(consume_until(&mut consumer, Duration::from_secs(60), |more| got.len() + more.len() >= MESSAGES).await);
    sending.await.expect("every send succeeded after the kill");
    consumer.shutdown().await.expect("shutdown");
    let distinct: BTreeSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), MESSAGES, "messages missing after the name server died");
}
