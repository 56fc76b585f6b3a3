//! Our RocketMQ client (crate `rocketmq-remoting`) against real brokers, checked with the
//! official Java client: messages both ways, a mixed Java/Rust group, offsets across a
//! restart of our consumer, a broker restart mid-stream, and ACL.
//!
//! Run by scripts/test.sh (`cargo test --release -p inflow-e2e --test rocketmq_client`) with
//! the shared broker of the version under test in the environment.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use inflow_e2e::{unique_name, JavaTool, Produce, RocketMq, Value};
use rocketmq_remoting::{
    Client, ClientConfig, Consumer, ConsumerConfig, Credentials, Error, MessageExt, MessageQueue, OutgoingMessage,
    Producer, StartPosition,
};
use sha2::{Digest, Sha256};

/// Bodies above 4 KiB are compressed by the Java producer (and by ours).
const LARGE_BODY: usize = 6000;

/// Tests that start a broker of their own take turns: two extra JVM brokers at once are too
/// much for a 2-core machine that also runs the shared one.
static OWN_BROKER: Mutex<()> = Mutex::new(());

fn client_for(rmq: &RocketMq) -> Client {
    let mut cfg = ClientConfig::new([rmq.namesrv.as_str()]);
    cfg.credentials = rmq.credentials.as_ref().map(|c| Credentials::new(&c.access_key, &c.secret_key));
    Client::new(cfg).expect("client config")
}

fn consumer_config(group: &str, topic: &str) -> ConsumerConfig {
    let mut cfg = ConsumerConfig::new(group, topic);
    cfg.start = StartPosition::Earliest;
    cfg.commit_interval = Duration::from_millis(500);
    // Tests change membership on purpose; re-balance quickly even without a notification.
    cfg.rebalance_interval = Duration::from_secs(2);
    cfg.heartbeat_interval = Duration::from_secs(5);
    cfg
}

/// Receives until `want` messages arrived (or `timeout`), acking each unless `ack` says no.
async fn receive(
    consumer: &mut Consumer,
    want: usize,
    timeout: Duration,
    mut ack: impl FnMut(&MessageExt) -> bool,
) -> Vec<(MessageQueue, MessageExt)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + timeout;
    while got.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(batch)) = tokio::time::timeout(left, consumer.recv()).await else { break };
        for message in batch.messages {
            if ack(&message) {
                consumer.ack(&batch.queue, message.queue_offset);
            }
            got.push((batch.queue.clone(), message));
        }
    }
    got
}

/// Waits a little for messages that should not come (duplicates, strays).
async fn receive_more(consumer: &mut Consumer, wait: Duration) -> Vec<MessageExt> {
    receive(consumer, usize::MAX, wait, |_| true).await.into_iter().map(|(_, m)| m).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn str_field<'a>(line: &'a Value, name: &str) -> &'a str {
    line[name].as_str().unwrap_or_else(|| panic!("no string {name:?} in {line}"))
}

fn by_msg_id(lines: &[Value]) -> HashMap<String, &Value> {
    lines.iter().map(|l| (str_field(l, "msgId").to_string(), l)).collect()
}

/// Runs blocking harness work (the Java tool) off the runtime's workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Creates `topic` with `queues` queues, then produces `produce` into it with the Java client.
async fn topic_with_messages(java: JavaTool, topic: &str, queues: u32, produce: Produce) -> Vec<Value> {
    let topic = topic.to_string();
    blocking(move || {
        java.create_topic(&topic, queues);
        java.produce(&topic, &produce)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_producer_to_our_consumer() {
    let rmq = RocketMq::shared();
    let topic = unique_name("j2r");
    let java = rmq.java();
    let sent = blocking({
        let (java, topic) = (java.clone(), topic.clone());
        move || {
            java.create_topic(&topic, 4);
            let small = Produce::new(20).size(300).tag("TagA").keys("key-{seq} other-{seq}").property("color", "red-{seq}");
            let large = Produce::new(5).size(LARGE_BODY).tag("TagB").property("big", "yes-{seq}");
            [java.produce(&topic, &small), java.produce(&topic, &large)].concat()
        }
    })
    .await;
    assert_eq!(sent.len(), 25);

    let group = unique_name("j2r-group");
    let mut consumer = Consumer::start(client_for(rmq), consumer_config(&group, &topic)).await.expect("consumer starts");
    let got = receive(&mut consumer, sent.len(), Duration::from_secs(60), |_| true).await;
    let extra = receive_more(&mut consumer, Duration::from_secs(1)).await;
    consumer.shutdown().await.expect("shutdown commits");

    assert_eq!(got.len(), sent.len(), "every message arrives exactly once");
    assert!(extra.is_empty(), "no duplicates: {}", extra.len());
    let expected = by_msg_id(&sent);
    for (queue, message) in &got {
        let id = message.message_id();
        let line = expected.get(&id).unwrap_or_else(|| panic!("unexpected message {id}"));
        assert_eq!(message.topic, topic);
        assert_eq!(queue.queue_id as i64, line["queueId"].as_i64().unwrap());
        assert_eq!(message.queue_offset, line["queueOffset"].as_i64().unwrap());
        assert_eq!(message.body.len() as i64, line["size"].as_i64().unwrap(), "body size of {id}");
        assert_eq!(sha256_hex(&message.body), str_field(line, "sha256"), "body of {id}");
        let seq = line["seq"].as_i64().unwrap();
        if message.body.len() == LARGE_BODY {
            assert_ne!(message.sys_flag & 0x1, 0, "the Java producer compressed {id}");
            assert_eq!(message.tags(), Some("TagB"));
            assert_eq!(message.properties.get("big"), Some(format!("yes-{seq}").as_str()));
        } else {
            assert_eq!(message.tags(), Some("TagA"));
            assert_eq!(message.keys().collect::<Vec<_>>(), vec![format!("key-{seq}"), format!("other-{seq}")]);
            assert_eq!(message.properties.get("color"), Some(format!("red-{seq}").as_str()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_subscription_gets_only_matching_messages() {
    let rmq = RocketMq::shared();
    let topic = unique_name("tags");
    let java = rmq.java();
    let wanted: BTreeSet<String> = blocking({
        let (java, topic) = (java.clone(), topic.clone());
        move || {
            java.create_topic(&topic, 2);
            let mut wanted = BTreeSet::new();
            for tag in ["TagA", "TagB", "TagC"] {
                let sent = java.produce(&topic, &Produce::new(6).tag(tag));
                if tag != "TagC" {
                    wanted.extend(sent.iter().map(|l| str_field(l, "msgId").to_string()));
                }
            }
            wanted
        }
    })
    .await;
    let mut cfg = consumer_config(&unique_name("tags-group"), &topic);
    cfg.expression = "TagA || TagB".into();
    let mut consumer = Consumer::start(client_for(rmq), cfg).await.expect("consumer starts");
    let got = receive(&mut consumer, wanted.len(), Duration::from_secs(60), |_| true).await;
    let extra = receive_more(&mut consumer, Duration::from_secs(1)).await;
    consumer.shutdown().await.expect("shutdown commits");
    let got_ids: BTreeSet<String> = got.iter().map(|(_, m)| m.message_id()).collect();
    assert_eq!(got_ids, wanted, "TagA and TagB messages, no TagC");
    assert!(extra.is_empty(), "nothing else arrives: {:?}", extra.iter().map(|m| m.tags()).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_producer_to_java_consumer() {
    let rmq = RocketMq::shared();
    let topic = unique_name("r2j");
    blocking({
        let (java, topic) = (rmq.java(), topic.clone());
        move || java.create_topic(&topic, 4)
    })
    .await;
    let producer = Producer::start(client_for(rmq), &unique_name("r2j-producer")).await.expect("producer starts");
    let mut sent = HashMap::new();
    for seq in 0..20usize {
        let size = if seq % 5 == 4 { LARGE_BODY } else { 200 + seq };
        let body: Vec<u8> = (0..size).map(|i| b'a' + ((i * 7 + seq) % 26) as u8).collect();
        let message = OutgoingMessage::new(&topic, body.clone())
            .with_tags(format!("T{}", seq % 2))
            .with_key(format!("k{seq}"))
            .with_key("shared")
            .with_property("seq", seq.to_string())
            .with_property("unicode", "grüße ✓");
        let result = producer.send(message).await.expect("send");
        sent.insert(result.msg_id.clone(), (seq, body));
    }
    let group = unique_name("r2j-group");
    let got = blocking({
        let (java, topic) = (rmq.java(), topic.clone());
        move || java.consume(&group, &topic, "*", 20, Duration::from_secs(60))
    })
    .await
    .expect("the Java consumer gets all 20");
    assert_eq!(got.len(), 20);
    for line in &got {
        let id = str_field(line, "msgId");
        let (seq, body) = sent.get(id).unwrap_or_else(|| panic!("Java got a message we did not send: {line}"));
        let java_body = base64::engine::general_purpose::STANDARD.decode(str_field(line, "body")).unwrap();
        assert_eq!(&java_body, body, "body of message {seq}");
        assert_eq!(str_field(line, "tags"), format!("T{}", seq % 2));
        assert_eq!(str_field(line, "keys"), format!("k{seq} shared"));
        assert_eq!(line["properties"]["seq"], seq.to_string());
        assert_eq!(line["properties"]["unicode"], "grüße ✓");
    }
    let distinct: BTreeSet<&str> = got.iter().map(|l| str_field(l, "msgId")).collect();
    assert_eq!(distinct.len(), 20, "no duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_and_rust_consumers_split_one_group() {
    let rmq = RocketMq::shared();
    let topic = unique_name("mixed");
    let group = unique_name("mixed-group");
    blocking({
        let (java, topic) = (rmq.java(), topic.clone());
        move || java.create_topic(&topic, 8)
    })
    .await;
    // The Java consumer joins first and stays until it has its share; ours joins; both re-balance.
    let java_consumer = blocking({
        let (java, topic, group) = (rmq.java(), topic.clone(), group.clone());
        move || java.spawn_consume(&group, &topic, "*")
    })
    .await;
    let mut consumer = Consumer::start(client_for(rmq), consumer_config(&group, &topic)).await.expect("consumer starts");
    // Wait until the split is stable: we own half of the 8 queues for a few seconds.
    let settled = Instant::now();
    let mut stable_since = Instant::now();
    let owned = |consumer: &Consumer| -> Vec<MessageQueue> {
        consumer.assigned_queues().into_iter().filter(|q| q.topic == topic).collect()
    };
    let mut last = owned(&consumer);
    while stable_since.elapsed() < Duration::from_secs(4) {
        assert!(settled.elapsed() < Duration::from_secs(25), "the group did not settle: we own {last:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = owned(&consumer);
        if now != last || now.len() != 4 {
            stable_since = Instant::now();
        }
        last = now;
    }
    let ours: BTreeSet<i32> = last.iter().map(|q| q.queue_id).collect();

    let sent = blocking({
        let (java, topic) = (rmq.java(), topic.clone());
        move || java.produce(&topic, &Produce::new(80))
    })
    .await;
    let for_us = sent.iter().filter(|l| ours.contains(&(l["queueId"].as_i64().unwrap() as i32))).count();
    let got = receive(&mut consumer, for_us, Duration::from_secs(30), |_| true).await;
    let for_java = sent.len() - for_us;
    let java_got = blocking(move || {
        java_consumer.wait_for(for_java, Duration::from_secs(30));
        java_consumer.finish()
    })
    .await
    .expect("the Java consumer ran");
    consumer.shutdown().await.expect("shutdown commits");

    let rust_queues: BTreeSet<i32> = got.iter().map(|(q, _)| q.queue_id).collect();
    let java_queues: BTreeSet<i32> = java_got.iter().map(|l| l["queueId"].as_i64().unwrap() as i32).collect();
    assert!(rust_queues.is_subset(&ours), "we consumed only our queues: {rust_queues:?} vs {ours:?}");
    assert!(rust_queues.is_disjoint(&java_queues), "no queue consumed by both: rust {rust_queues:?}, java {java_queues:?}");
    let mut consumed: Vec<String> = got.iter().map(|(_, m)| m.message_id()).collect();
    consumed.extend(java_got.iter().map(|l| str_field(l, "msgId").to_string()));
    consumed.sort();
    let mut expected: Vec<String> = sent.iter().map(|l| str_field(l, "msgId").to_string()).collect();
    expected.sort();
    assert_eq!(consumed, expected, "every message consumed exactly once across the group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_survive_a_consumer_restart() {
    let rmq = RocketMq::shared();
    let topic = unique_name("restart");
    let group = unique_name("restart-group");
    let sent = topic_with_messages(rmq.java(), &topic, 4, Produce::new(40)).await;
    let all: BTreeSet<String> = sent.iter().map(|l| str_field(l, "msgId").to_string()).collect();

    // First run: take about half, ack all of it except one message, then stop.
    let mut first = Consumer::start(client_for(rmq), consumer_config(&group, &topic)).await.expect("consumer starts");
    let mut skipped: Option<(i32, i64, String)> = None;
    let got = receive(&mut first, 20, Duration::from_secs(60), |m| {
        if skipped.is_none() {
            skipped = Some((m.queue_id, m.queue_offset, m.message_id()));
            false
        } else {
            true
        }
    })
    .await;
    first.commit().await.expect("commit");
    first.shutdown().await.expect("shutdown commits");
    let (skipped_queue, skipped_offset, skipped_id) = skipped.expect("got messages");
    let acked: BTreeSet<String> = got.iter().map(|(_, m)| m.message_id()).filter(|id| *id != skipped_id).collect();

    // Second run: everything not acked arrives; what was acked only if it sits behind the
    // unacked message in its queue (the committed offset cannot pass it).
    let mut second = Consumer::start(client_for(rmq), consumer_config(&group, &topic)).await.expect("consumer restarts");
    let missing = all.len() - acked.len();
    let again = receive(&mut second, missing, Duration::from_secs(60), |_| true).await;
    let again_extra = receive_more(&mut second, Duration::from_secs(1)).await;
    second.shutdown().await.expect("shutdown commits");

    let mut seen: BTreeSet<String> = acked.clone();
    for (queue, message) in &again {
        if acked.contains(&message.message_id()) {
            assert!(
                queue.queue_id == skipped_queue && message.queue_offset > skipped_offset,
                "{} was acked and committed, yet redelivered",
                message.message_id()
            );
        }
        seen.insert(message.message_id());
    }
    assert_eq!(seen, all, "nothing missing after the restart");
    assert!(again.iter().any(|(_, m)| m.message_id() == skipped_id), "the unacked message came back");
    assert!(again_extra.is_empty(), "no further messages");

    // The broker has every queue committed to its end.
    let offsets = blocking({
        let java = rmq.java();
        move || java.offsets(&group)
    })
    .await;
    let queues: Vec<&Value> = offsets.iter().filter(|o| o["topic"] == topic.as_str()).collect();
    assert_eq!(queues.len(), 4, "{offsets:?}");
    for o in queues {
        assert_eq!(o["consumerOffset"], o["brokerOffset"], "queue fully committed: {o}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream() {
    let _turn = OWN_BROKER.lock().unwrap_or_else(|e| e.into_inner());
    let rmq = blocking(|| RocketMq::start(&RocketMq::version_under_test(), false)).await;
    let topic = unique_name("brestart");
    let group = unique_name("brestart-group");
    let java = rmq.java();
    let first = topic_with_messages(java.clone(), &topic, 4, Produce::new(30)).await;
    let mut consumer = Consumer::start(client_for(&rmq), consumer_config(&group, &topic)).await.expect("consumer starts");
    let got = receive(&mut consumer, 30, Duration::from_secs(60), |_| true).await;
    assert_eq!(got.len(), 30);
    consumer.commit().await.expect("commit before the restart");

    let rmq = blocking(move || {
        rmq.restart_broker();
        rmq
    })
    .await;
    // Offsets committed before the restart are still there.
    let offsets = blocking({
        let (java, group) = (java.clone(), group.clone());
        move || java.offsets(&group)
    })
    .await;
    let stored: i64 = offsets.iter().filter(|o| o["topic"] == topic.as_str()).map(|o| o["consumerOffset"].as_i64().unwrap_or(0)).sum();
    assert_eq!(stored, 30, "committed offsets survived the broker restart: {offsets:?}");

    let second = blocking({
        let (java, topic) = (java.clone(), topic.clone());
        move || java.produce(&topic, &Produce::new(30))
    })
    .await;
    let got_after = receive(&mut consumer, 30, Duration::from_secs(90), |_| true).await;
    let ids_after: BTreeSet<String> = got_after.iter().map(|(_, m)| m.message_id()).collect();
    let expected: BTreeSet<String> = second.iter().map(|l| str_field(l, "msgId").to_string()).collect();
    assert_eq!(ids_after, expected, "consumption resumed after the restart with nothing lost");
    let first_ids: BTreeSet<String> = first.iter().map(|l| str_field(l, "msgId").to_string()).collect();
    assert!(ids_after.is_disjoint(&first_ids), "nothing committed came back");
    // Commits work again once the broker is back.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match consumer.commit().await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("commit after restart not yet possible: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("commit after the broker restart failed: {e}"),
        }
    }
    // The pulls parked in the broker when it stopped failed, and were counted.
    assert!(consumer.stats().pull_errors() > 0, "pull errors counted across the restart");
    consumer.shutdown().await.expect("shutdown commits");
    drop(rmq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_right_credentials_work_wrong_ones_fail_clearly() {
    let _turn = OWN_BROKER.lock().unwrap_or_else(|e| e.into_inner());
    let rmq = blocking(|| RocketMq::start(&RocketMq::version_under_test(), true)).await;
    assert!(rmq.credentials.is_some(), "the ACL broker comes with credentials");
    let topic = unique_name("acl");
    blocking({
        let (java, topic) = (rmq.java(), topic.clone());
        move || java.create_topic(&topic, 2)
    })
    .await;

    // Right credentials: produce with ours, consume with ours.
    let producer = Producer::start(client_for(&rmq), &unique_name("acl-producer")).await.expect("producer starts");
    let mut ids = BTreeSet::new();
    for seq in 0..5 {
        let result = producer.send(OutgoingMessage::new(&topic, format!("acl {seq}"))).await.expect("signed send works");
        ids.insert(result.msg_id);
    }
    let group = unique_name("acl-group");
    let mut consumer = Consumer::start(client_for(&rmq), consumer_config(&group, &topic)).await.expect("signed consumer starts");
    let got = receive(&mut consumer, 5, Duration::from_secs(60), |_| true).await;
    consumer.commit().await.expect("signed commit works");
    consumer.shutdown().await.expect("shutdown");
    assert_eq!(got.iter().map(|(_, m)| m.message_id()).collect::<BTreeSet<_>>(), ids);

    // Wrong secret: refused with an error that names the credentials.
    let access_key = rmq.credentials.as_ref().unwrap().access_key.clone();
    let mut wrong = ClientConfig::new([rmq.namesrv.as_str()]);
    wrong.credentials = Some(Credentials::new(&access_key, "not-the-secret"));
    let wrong = Client::new(wrong).unwrap();
    let err = match Consumer::start(wrong.clone(), consumer_config(&unique_name("acl-wrong"), &topic)).await {
        Ok(_) => panic!("a consumer with a wrong secret must not start"),
        Err(e) => e,
    };
    assert!(matches!(err, Error::AccessDenied { .. }), "wrong secret → AccessDenied, got: {err}");
    let text = err.to_string();
    assert!(text.contains(&access_key) && text.contains("SecretKey"), "the error names the key and the fix: {text}");
    let producer = Producer::start(wrong, "acl-wrong-producer").await.expect("producer object");
    let err = producer.send(OutgoingMessage::new(&topic, "nope")).await.expect_err("a wrong secret cannot send");
    assert!(matches!(err, Error::AccessDenied { .. }), "wrong secret → AccessDenied, got: {err}");

    // Unknown access key: refused too.
    let mut unknown = ClientConfig::new([rmq.namesrv.as_str()]);
    unknown.credentials = Some(Credentials::new("nobody", "nothing-at-all"));
    let err = match Consumer::start(Client::new(unknown).unwrap(), consumer_config(&unique_name("acl-nobody"), &topic)).await {
        Ok(_) => panic!("a consumer with an unknown access key must not start"),
        Err(e) => e,
    };
    assert!(matches!(err, Error::AccessDenied { .. }), "unknown key → AccessDenied, got: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_back_redelivers_then_dead_letters() {
    let rmq = RocketMq::shared();
    let topic = unique_name("retry");
    let group = unique_name("retry-group");
    let sent = topic_with_messages(rmq.java(), &topic, 2, Produce::new(1).tag("TagR").property("p", "v")).await;
    let id = str_field(&sent[0], "msgId").to_string();
    let mut cfg = consumer_config(&group, &topic);
    cfg.max_reconsume_times = 1;
    let mut consumer = Consumer::start(client_for(rmq), cfg).await.expect("consumer starts");

    // First delivery: refuse it (delay level 1 = 1 s); it comes back from %RETRY%<group>.
    let first = receive(&mut consumer, 1, Duration::from_secs(30), |_| false).await;
    assert_eq!(first.len(), 1);
    let (queue, message) = &first[0];
    assert_eq!(message.message_id(), id);
    consumer.send_back(message, 1).await.expect("send back");
    consumer.ack(queue, message.queue_offset);

    let again = receive(&mut consumer, 1, Duration::from_secs(40), |_| false).await;
    assert_eq!(again.len(), 1, "the sent-back message is redelivered");
    let (retry_queue, retried) = &again[0];
    assert_eq!(retry_queue.topic, format!("%RETRY%{group}"));
    assert_eq!(retried.topic, topic, "the original topic is restored");
    assert_eq!(retried.message_id(), id, "same message id");
    assert_eq!(retried.reconsume_times, 1);
    assert_eq!(retried.body.len() as i64, sent[0]["size"].as_i64().unwrap());
    assert_eq!(retried.tags(), Some("TagR"));
    assert_eq!(retried.properties.get("p"), Some("v"));

    // Second refusal: reconsumed max_reconsume_times already, so it goes to %DLQ%<group>.
    consumer.send_back(retried, 1).await.expect("send back to the dead-letter queue");
    consumer.ack(retry_queue, retried.queue_offset);
    let none = receive_more(&mut consumer, Duration::from_secs(4)).await;
    assert!(none.is_empty(), "a dead-lettered message is not redelivered");
    consumer.shutdown().await.expect("shutdown commits");

    let dlq = blocking({
        let (java, group) = (rmq.java(), group.clone());
        move || java.consume(&unique_name("dlq-reader"), &format!("%DLQ%{group}"), "*", 1, Duration::from_secs(30))
    })
    .await
    .expect("the dead-letter queue holds the message");
    assert_eq!(str_field(&dlq[0], "msgId"), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_start_for_a_new_group() {
    let rmq = RocketMq::shared();
    let topic = unique_name("latest");
    let old = topic_with_messages(rmq.java(), &topic, 2, Produce::new(5)).await;
    let mut cfg = consumer_config(&unique_name("latest-group"), &topic);
    cfg.start = StartPosition::Latest;
    let mut consumer = Consumer::start(client_for(rmq), cfg).await.expect("consumer starts");
    // Let the pull tasks find their start offsets before new messages arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let new = blocking({
        let (java, topic) = (rmq.java(), topic.clone());
        move || java.produce(&topic, &Produce::new(3))
    })
    .await;
    let ids = |lines: &[Value]| lines.iter().map(|l| str_field(l, "msgId").to_string()).collect::<BTreeSet<_>>();
    // 4.9 brokers answer a new group's offset query on a young queue with 0 (as Java sees it);
    // 5.x brokers honour setZeroIfNotFound=false, so Latest skips what was there.
    let expected: BTreeSet<String> =
        if rmq.version.starts_with("4.") { ids(&old).union(&ids(&new)).cloned().collect() } else { ids(&new) };
    let got = receive(&mut consumer, expected.len(), Duration::from_secs(30), |_| true).await;
    let extra = receive_more(&mut consumer, Duration::from_secs(1)).await;
    consumer.shutdown().await.expect("shutdown commits");
    assert_eq!(got.iter().map(|(_, m)| m.message_id()).collect::<BTreeSet<_>>(), expected);
    assert!(extra.is_empty(), "nothing else: {}", extra.len());
}
