//! Mosquitto from the rig (shared, private, or TLS with a password) and its own clients:
//! `mosquitto_pub` ([`Mosquitto::publish`]) and a background `mosquitto_sub` ([`MqttSub`]).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crate::rig::{args, read_env_file, required_env, rig_dir, run_script, unique_name, TempDir};
use crate::Value;

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

    /// Stops the broker (persistent sessions are saved); [`Mosquitto::resume`] restarts it on the
    /// same port, which stays reserved meanwhile so that no other test's rig takes it.
    pub fn stop(&self) {
        let statedir = self.own_statedir("stop");
        run_script("mosquitto.sh", &["stop", &statedir, "--keep-port"]);
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
}
