//! Proves the rig itself, so a broken rig shows up here rather than as puzzling failures
//! elsewhere: the shared RocketMQ carries messages from the Java producer to the Java
//! consumer intact, Mosquitto passes publishes to subscribers, and a private ACL broker
//! refuses wrong keys and survives a restart.

use std::collections::BTreeMap;
use std::time::Duration;

use inflow_e2e::{unique_name, Mosquitto, MqttVersion, Produce, RocketMq, Value};

fn by_msg_id(lines: &[Value]) -> BTreeMap<String, Value> {
    lines.iter().map(|l| (l["msgId"].as_str().expect("msgId").to_owned(), l.clone())).collect()
}

#[test]
fn java_producer_to_java_consumer_on_the_shared_broker() {
    let rmq = RocketMq::shared();
    let java = rmq.java();
    let topic = unique_name("rig");
    rmq.create_topic(&topic, 4);

    // Small bodies, and bodies over 4 KiB that the Java producer compresses.
    let mut sent = java.produce(&topic, &Produce::new(6).size(100).tag("small").keys("k{seq} shared").property("n", "{seq}"));
    sent.extend(java.produce(&topic, &Produce::new(4).size(20_000).tag("big").property("n", "big{seq}")));
    assert!(sent.iter().all(|s| s["status"] == "SEND_OK"), "{sent:?}");
    let queues: std::collections::BTreeSet<_> = sent.iter().map(|s| s["queueId"].as_i64()).collect();
    assert!(queues.len() > 1, "round-robin should use several queues: {queues:?}");

    let group = unique_name("rig-group");
    let got = java
        .consume(&group, &topic, "*", 10, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("consume: {e}"));
    let (sent, got) = (by_msg_id(&sent), by_msg_id(&got));
    assert_eq!(sent.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>());
    for (id, s) in &sent {
        let g = &got[id];
        assert_eq!(g["sha256"], s["sha256"], "body of {id}");
        assert_eq!(g["size"], s["size"], "size of {id}");
        assert_eq!(g["queueId"], s["queueId"], "queue of {id}");
        assert_eq!(g["queueOffset"], s["queueOffset"], "offset of {id}");
        assert_eq!(g["topic"], topic.as_str());
        assert_eq!(g["properties"]["UNIQ_KEY"], id.as_str());
        let n = g["properties"]["n"].as_str().expect("property n");
        if g["tags"] == "small" {
            assert_eq!(g["keys"], format!("k{n} shared"));
            assert_eq!(s["body"], g["body"], "small bodies are echoed whole");
        } else {
            assert_eq!(g["tags"], "big");
            assert!(n.starts_with("big"), "{n}");
        }
    }

    // Tag filtering on the broker + client.
    let only_big = java
        .consume(&unique_name("rig-group"), &topic, "big", 4, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("consume big: {e}"));
    assert!(only_big.iter().all(|m| m["tags"] == "big"), "{only_big:?}");

    // The consumer committed everything when it left the group.
    let offsets: Vec<Value> = java.offsets(&group).into_iter().filter(|o| o["topic"] == topic.as_str()).collect();
    assert_eq!(offsets.len(), 4, "{offsets:?}");
    assert!(offsets.iter().all(|o| o["consumerOffset"] == o["brokerOffset"]), "{offsets:?}");
}

#[test]
fn mosquitto_passes_publishes_to_subscribers() {
    let mqtt = Mosquitto::shared();
    let topic = format!("rig/{}", unique_name("t"));
    for version in [MqttVersion::V311, MqttVersion::V5] {
        let sub = mqtt.subscribe(&format!("{topic}/#"), version);
        mqtt.publish(&format!("{topic}/a"), b"hello", 1);
        mqtt.publish(&format!("{topic}/b"), &[0, 1, 2, 255], 1);
        let got = sub.wait_for(2, Duration::from_secs(20));
        assert_eq!(got.len(), 2, "{version:?}: {got:?}");
        assert_eq!(got[0].topic, format!("{topic}/a"));
        assert_eq!(got[0].payload, b"hello");
        assert_eq!(got[1].payload, [0, 1, 2, 255]);
        assert_eq!(got[1].qos, 1);
    }
}

#[test]
fn own_acl_broker_checks_keys_and_survives_a_restart() {
    let rmq = RocketMq::start(&RocketMq::version_under_test(), true);
    let creds = rmq.credentials.clone().expect("an ACL broker has credentials");
    let java = rmq.java();
    let topic = unique_name("rig-acl");
    rmq.create_topic(&topic, 2);

    let sent = java.produce(&topic, &Produce::new(3));
    let refused = java
        .with_credentials(&creds.access_key, "not-the-secret")
        .try_produce(&topic, &Produce::new(1))
        .expect_err("a wrong secret key must be refused");
    assert_eq!(refused.code, Some(1), "{refused}");

    rmq.restart_broker();
    let got = java
        .consume(&unique_name("rig-acl-group"), &topic, "*", 3, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("consume after restart: {e}"));
    assert_eq!(by_msg_id(&sent).keys().collect::<Vec<_>>(), by_msg_id(&got).keys().collect::<Vec<_>>());
}

#[test]
fn java_consumer_stays_in_its_group_until_told_to_leave() {
    let rmq = RocketMq::shared();
    let java = rmq.java();
    let topic = unique_name("rig-stay");
    rmq.create_topic(&topic, 2);
    let consumer = java.spawn_consume(&unique_name("rig-stay-group"), &topic, "*");
    assert_eq!(consumer.queues_at_start, [0, 1], "alone in its group, it holds every queue");
    // Produced after the consumer joined: it must see them while it stays.
    let sent = java.produce(&topic, &Produce::new(4).body("stay {seq}"));
    consumer.wait_for(sent.len(), Duration::from_secs(60));
    let got = consumer.finish().unwrap_or_else(|e| panic!("staying consumer: {e}"));
    assert_eq!(by_msg_id(&sent).keys().collect::<Vec<_>>(), by_msg_id(&got).keys().collect::<Vec<_>>());
}

#[test]
fn own_mosquitto_keeps_sessions_across_a_restart() {
    let mqtt = Mosquitto::start();
    let topic = format!("rig/{}", unique_name("back"));
    let sub = mqtt.subscribe_session(&topic, MqttVersion::V5, &unique_name("rig-session"));
    mqtt.publish(&topic, b"before", 1);
    // The session outlives an outage: what is published as soon as the broker is back
    // reaches the subscriber once it has reconnected by itself.
    mqtt.stop();
    mqtt.resume();
    mqtt.publish(&topic, b"after", 1);
    let got = sub.wait_for(2, Duration::from_secs(30));
    let payloads: Vec<&[u8]> = got.iter().map(|m| m.payload.as_slice()).collect();
    assert_eq!(payloads, [b"before".as_slice(), b"after".as_slice()]);
}
