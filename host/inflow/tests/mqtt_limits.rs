//! The sink against a real Mosquitto whose packet limit (`max_packet_size 2048`) is below one
//! message: the oversize publish fails back, every other publish arrives, and the connection is
//! not held hostage (few reconnects), under MQTT 3.1.1 (the broker only closes) and 5 (it announces
//! the limit). Needs `mosquitto` and `mosquitto_sub` (scripts/install/mosquitto.sh).

use bytes::Bytes;
use inflow::config::{MqttConfig, Protocol};
use inflow::sink::{Publish, PublishError, QoS, Sink};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("inflow-mqtt-limits-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts Mosquitto on a free port. It is up once its own log says "running": a TCP probe
/// could be answered by another listener, or by itself (a loopback connect whose source port is
/// the target port connects to itself). A port taken between `free_port` and Mosquitto's bind
/// (tests and brokers run side by side) makes it exit; then it is tried on another port.
fn mosquitto(dir: &Path) -> (Killed, u16) {
    for _ in 0..5 {
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        let log = dir.join("mosquitto.log");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_packet_size 2048\n")).unwrap();
        let mut child = Killed(
            Command::new("mosquitto")
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("mosquitto is not installed: run scripts/install/mosquitto.sh"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::fs::read_to_string(&log).unwrap_or_default().contains(" running") {
                return (child, port);
            }
            if child.0.try_wait().unwrap().is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "mosquitto did not start on {port}; see {}", log.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(out.contains("Address already in use"), "mosquitto exited: {out}");
    }
    panic!("mosquitto found no free port in 5 tries; see {}", dir.display())
}

fn config(port: u16, protocol: Protocol, max_packet_bytes: Option<u32>) -> MqttConfig {
    MqttConfig {
        host: "127.0.0.1".into(),
        port,
        tls: None,
        client_id: format!("inflow-limits-{port}"),
        protocol,
        username: None,
        password: None,
        keep_alive: Duration::from_secs(30),
        max_inflight: 64,
        max_topic_bytes: 65535,
        max_packet_bytes,
        connect_timeout: Duration::from_secs(5),
    }
}

async fn completed(sink: &Sink, topic: &str, payload: Vec<u8>) -> Result<(), PublishError> {
    let delivery = sink.publish(Publish::new(topic, QoS::AtLeastOnce, Bytes::from(payload))).await?;
    tokio::time::timeout(Duration::from_secs(20), delivery.wait()).await.expect("no completion within 20 s")
}

/// Publishes ten small messages with a 3000-byte one among them; returns how the big one failed.
async fn oversize_fails_back_and_the_rest_arrive(protocol: Protocol, max_packet_bytes: Option<u32>) -> PublishError {
    let dir = tempdir(&format!("{protocol:?}-{max_packet_bytes:?}"));
    let (_broker, port) = mosquitto(&dir);
    let received = dir.join("received");
    let _subscriber = Killed(
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "limits/#", "-q", "1", "-V", "mqttv311"])
            .stdout(std::fs::File::create(&received).unwrap())
            .spawn()
            .expect("mosquitto_sub is not installed: run scripts/install/mosquitto.sh"),
    );
    let sink = Sink::start(config(port, protocol, max_packet_bytes)).unwrap();
    assert!(sink.wait_connected(Duration::from_secs(10)).await, "{:?}", sink.last_error());
    // The subscriber is in once it gets a probe.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&received).unwrap().contains("probe") {
        assert!(Instant::now() < deadline, "mosquitto_sub never got a probe");
        completed(&sink, "limits/probe", b"probe".to_vec()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reconnects_before = sink.reconnects();
    // All queued at once, so the oversize one goes on the wire between the others.
    let mut deliveries = Vec::new();
    for i in 0..11 {
        let payload = if i == 5 { vec![b'x'; 3000] } else { format!("small-{i}").into_bytes() };
        deliveries.push(sink.publish(Publish::new("limits/t", QoS::AtLeastOnce, Bytes::from(payload))).await.unwrap());
    }
    let mut oversize = None;
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let result = tokio::time::timeout(Duration::from_secs(20), delivery.wait()).await.expect("no completion within 20 s");
        if i == 5 {
            oversize = Some(result.expect_err("the oversize publish must fail back"));
        } else {
            assert_eq!(result, Ok(()), "publish {i}");
        }
    }
    let expected: Vec<String> = (0..11).filter(|&i| i != 5).map(|i| format!("small-{i}")).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = std::fs::read_to_string(&received).unwrap();
        let missing: Vec<&String> = expected.iter().filter(|m| !got.lines().any(|l| l == m.as_str())).collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "mosquitto_sub did not get {missing:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reconnects = sink.reconnects() - reconnects_before;
    assert!(reconnects < 10, "{reconnects} reconnects");
    sink.close(Duration::from_secs(1)).await;
    oversize.unwrap()
}

#[tokio::test]
async fn v311_broker_closing_on_an_oversize_publish_fails_it_back() {
    let error = oversize_fails_back_and_the_rest_arrive(Protocol::V311, None).await;
    // Fixed header 1 + 2 length bytes, topic 2 + 8, packet id 2, payload 3000.
    assert_eq!(error, PublishError::ConnectionClosedOnPublish { bytes: 3 + 10 + 2 + 3000 });
    assert!(error.to_string().contains("[mqtt] max_packet_bytes"), "{error}");
}

#[tokio::test]
async fn v311_max_packet_bytes_refuses_an_oversize_publish_before_sending() {
    let error = oversize_fails_back_and_the_rest_arrive(Protocol::V311, Some(2048)).await;
    assert!(matches!(&error, PublishError::Unsendable(why) if why.contains("[mqtt] max_packet_bytes = 2048")), "{error}");
}

#[tokio::test]
async fn v5_broker_announcing_its_limit_refuses_an_oversize_publish_before_sending() {
    let error = oversize_fails_back_and_the_rest_arrive(Protocol::V5, None).await;
    assert!(matches!(&error, PublishError::Unsendable(why) if why.contains("announced maximum packet size of 2048")), "{error}");
}
