//! The connection task: connect (TCP, TLS), CONNECT/CONNACK, then move publishes out and acks in
//! until the connection fails; reconnect with backoff; the session keeps what is outstanding.
//!
//! The backoff resets only after a connection proved healthy (an ack, or up for a while), so a
//! broker that closes right after CONNACK is retried ever more slowly, not in a tight loop. A
//! failure is logged once at WARN when it starts or changes, its repeats at DEBUG.

use super::codec::{self, ConnectOptions, Packet};
use super::session::Session;
use super::stats::SinkStats;
use super::tls::Tls;
use super::Command;
use crate::config::{MqttConfig, Protocol};
use anyhow::{bail, Context as _};
use bytes::BytesMut;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep, timeout, Instant};
use tokio_rustls::rustls::pki_types::ServerName;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connection up this long without an ack still counts as healthy (an idle sink gets no acks).
const HEALTHY_AFTER: Duration = Duration::from_secs(10);
/// Largest packet we accept from the broker (it only sends acks to us).
const MAX_INCOMING: usize = 1 << 20;

enum Ended {
    /// Close was asked for and is done.
    Closed(oneshot::Sender<()>),
    /// All `Sink` handles are gone.
    Dropped,
}

pub(crate) async fn run(
    config: MqttConfig,
    tls: Option<Tls>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    connected: watch::Sender<bool>,
    stats: Arc<SinkStats>,
) {
    let mut session = Session::new(config.protocol, config.max_packet_bytes, stats.clone());
    let mut backoff = MIN_BACKOFF;
    let mut close: Option<(Instant, oneshot::Sender<()>)> = None;
    let mut failing = Failing::default();
    let ended = loop {
        stats.connect_attempts.fetch_add(1, Ordering::Relaxed);
        let attempt = async {
            let stream = connect(&config, tls.as_ref()).await?;
            handshake(stream, &config).await
        };
        let result = tokio::select! {
            r = timeout(config.connect_timeout, attempt) => r.unwrap_or_else(|_| Err(anyhow::anyhow!("timed out"))),
            // While down, keep taking commands so publishes queue up for the next connection.
            ended = take_commands_while_down(&mut commands, &mut session, &mut close) => break ended,
        };
        let (stream, inbuf, ack) = match result {
            Ok(connected) => connected,
            Err(e) => {
                failing.failed(&config, &stats, "MQTT connect failed", format!("{e:#}"), backoff, session.len());
                failing.after_quick_loss = false;
                if let Some(ended) = wait_or_take(backoff, &mut commands, &mut session, &mut close).await {
                    break ended;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        stats.connections.fetch_add(1, Ordering::Relaxed);
        stats.set_last_error(None);
        session.on_connect(ack.receive_maximum, ack.maximum_packet_size);
        let _ = connected.send(true);
        // After a quick loss, connecting again is part of the failure already logged.
        if failing.after_quick_loss {
            tracing::debug!(broker = %endpoint(&config), outstanding = session.len(), "MQTT connected");
        } else {
            tracing::info!(broker = %endpoint(&config), outstanding = session.len(), failed_attempts = failing.attempts, "MQTT connected");
        }
        let up_since = Instant::now();
        let outcome = serve((stream, inbuf), &config, &mut session, &mut commands, &mut close).await;
        let _ = connected.send(false);
        let e = match outcome {
            Ok(ended) => break ended,
            Err(e) => e,
        };
        session.on_connection_lost(e.downcast_ref::<ClosedByBroker>().is_some());
        let error = format!("{e:#}");
        if session.progressed() || up_since.elapsed() >= HEALTHY_AFTER {
            failing = Failing::default();
            backoff = MIN_BACKOFF;
            stats.set_last_error(Some(error.clone()));
            tracing::warn!(broker = %endpoint(&config), error = %error, outstanding = session.len(), "MQTT connection lost; reconnecting");
            continue;
        }
        // Lost before it did any good: a failed attempt, so the backoff grows.
        failing.failed(&config, &stats, "MQTT connection lost right after connecting", error, backoff, session.len());
        failing.after_quick_loss = true;
        if let Some(ended) = wait_or_take(backoff, &mut commands, &mut session, &mut close).await {
            break ended;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    };
    session.fail_all();
    if let Ended::Closed(reply) = ended {
        let _ = reply.send(());
    }
}

/// A run of failed attempts: logged at WARN when it starts or its error changes, else at DEBUG.
#[derive(Default)]
struct Failing {
    attempts: u64,
    error: Option<String>,
    /// The last attempt connected, then lost the connection before it proved healthy.
    after_quick_loss: bool,
}

impl Failing {
    fn failed(&mut self, config: &MqttConfig, stats: &SinkStats, what: &str, error: String, retry_in: Duration, outstanding: usize) {
        self.attempts += 1;
        stats.set_last_error(Some(error.clone()));
        let retry_in_ms = retry_in.as_millis() as u64;
        if self.error.as_ref() == Some(&error) {
            tracing::debug!(broker = %endpoint(config), error = %error, retry_in_ms, attempts = self.attempts, outstanding, "{what}");
        } else {
            tracing::warn!(broker = %endpoint(config), error = %error, retry_in_ms, attempts = self.attempts, outstanding, "{what} (repeats of this error are logged at DEBUG)");
            self.error = Some(error);
        }
    }
}

/// The broker ended the connection (EOF, reset, DISCONNECT): what the session may blame on the
/// last publish, unlike a keep-alive timeout or a malformed packet.
#[derive(Debug, thiserror::Error)]
#[error("the broker closed the connection{0}")]
struct ClosedByBroker(String);

fn closed_by_broker(e: std::io::Error) -> ClosedByBroker {
    ClosedByBroker(format!(": {e}"))
}

fn endpoint(c: &MqttConfig) -> String {
    format!("{}://{}:{}", if c.tls.is_some() { "mqtts" } else { "mqtt" }, c.host, c.port)
}

fn accept(cmd: Command, session: &mut Session, close: &mut Option<(Instant, oneshot::Sender<()>)>) {
    match cmd {
        Command::Publish(entries) => entries.into_iter().for_each(|entry| session.push(entry)),
        Command::Close(grace, reply) => *close = Some((Instant::now() + grace, reply)),
    }
}

/// Whether a pending close may finish now: nothing outstanding, or its grace is over.
fn close_due(session: &Session, close: &Option<(Instant, oneshot::Sender<()>)>) -> bool {
    close.as_ref().is_some_and(|(deadline, _)| session.len() == 0 || Instant::now() >= *deadline)
}

async fn take_commands_while_down(
    commands: &mut mpsc::UnboundedReceiver<Command>,
    session: &mut Session,
    close: &mut Option<(Instant, oneshot::Sender<()>)>,
) -> Ended {
    loop {
        if close_due(session, close) {
            return Ended::Closed(close.take().expect("close is set").1);
        }
        let deadline = close.as_ref().map(|(d, _)| *d);
        tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(cmd) => accept(cmd, session, close),
                None => return Ended::Dropped,
            },
            _ = sleep_until_opt(deadline) => {}
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn wait_or_take(
    wait: Duration,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    session: &mut Session,
    close: &mut Option<(Instant, oneshot::Sender<()>)>,
) -> Option<Ended> {
    tokio::select! {
        _ = sleep(wait) => None,
        ended = take_commands_while_down(commands, session, close) => Some(ended),
    }
}

async fn connect(config: &MqttConfig, tls: Option<&Tls>) -> anyhow::Result<Box<dyn Stream>> {
    let tcp = TcpStream::connect((config.host.as_str(), config.port)).await.context("TCP connect")?;
    tcp.set_nodelay(true)?;
    let Some(tls) = tls else { return Ok(Box::new(tcp)) };
    let name = match &tls.server_name {
        Some(n) => n.clone(),
        None => ServerName::try_from(config.host.clone()).context("the broker host is not a valid TLS server name")?,
    };
    Ok(Box::new(tls.connector.connect(name, tcp).await.context("TLS handshake")?))
}

async fn handshake(mut stream: Box<dyn Stream>, config: &MqttConfig) -> anyhow::Result<(Box<dyn Stream>, BytesMut, codec::ConnAck)> {
    let mut out = BytesMut::new();
    codec::encode_connect(
        &mut out,
        &ConnectOptions {
            protocol: config.protocol,
            client_id: &config.client_id,
            keep_alive_secs: config.keep_alive.as_secs().min(65535) as u16,
            username: config.username.as_deref(),
            password: config.password.as_ref().map(|p| p.expose()),
            receive_maximum: 65535,
        },
    )?;
    stream.write_all(&out).await?;
    stream.flush().await?;
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        if let Some(packet) = codec::decode(&mut buf, config.protocol, MAX_INCOMING)? {
            let Packet::ConnAck(ack) = packet else { bail!("the broker answered CONNECT with {packet:?}") };
            if ack.code != 0 {
                bail!("the broker refused the connection: {}", refusal(config.protocol, ack.code, ack.reason.as_deref(), config.username.as_deref()));
            }
            return Ok((stream, buf, ack));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            bail!("the broker closed the connection during CONNECT");
        }
    }
}

/// Why the broker refused CONNECT, for the log. `username`: the one sent (never the password).
fn refusal(protocol: Protocol, code: u8, reason: Option<&str>, username: Option<&str>) -> String {
    let user = match username {
        Some(u) => format!("user {u:?}"),
        None => "no username sent".to_owned(),
    };
    let text = match (protocol, code) {
        (Protocol::V311, 1) => "unacceptable protocol version (try protocol = \"3.1.1\" or \"5\")".to_owned(),
        (Protocol::V311, 2) | (Protocol::V5, 0x85) => "client id rejected".to_owned(),
        (Protocol::V311, 3) | (Protocol::V5, 0x88) => "server unavailable".to_owned(),
        (Protocol::V311, 4) | (Protocol::V5, 0x86) => {
            format!("bad username or password ({user}; check username and INFLOW_MQTT_PASSWORD)")
        }
        // Mosquitto (and others) answer a wrong password under MQTT 3.1.1 with this code.
        (Protocol::V311, 5) | (Protocol::V5, 0x87) => {
            format!("not authorized: the broker refused the username or password, or this client ({user}; check username and INFLOW_MQTT_PASSWORD)")
        }
        (Protocol::V5, 0x84) => "unsupported protocol version (try protocol = \"3.1.1\")".to_owned(),
        _ => "refused".to_owned(),
    };
    match reason {
        Some(r) => format!("{text} (code 0x{code:02x}: {r})"),
        None => format!("{text} (code 0x{code:02x})"),
    }
}

/// Runs one connection. `Ok` = the sink ended (closed or dropped); `Err` = the connection failed.
async fn serve(
    (stream, mut inbuf): (Box<dyn Stream>, BytesMut),
    config: &MqttConfig,
    session: &mut Session,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    close: &mut Option<(Instant, oneshot::Sender<()>)>,
) -> anyhow::Result<Ended> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut out = BytesMut::with_capacity(64 * 1024);
    let keep_alive = (!config.keep_alive.is_zero()).then_some(config.keep_alive);
    let mut last_write = Instant::now();
    let mut ping_sent: Option<Instant> = None;
    loop {
        // Decode what has arrived, then write what is ready.
        while let Some(packet) = codec::decode(&mut inbuf, config.protocol, MAX_INCOMING)? {
            match packet {
                Packet::PingResp => ping_sent = None,
                Packet::Disconnect { code, reason } => {
                    let reason = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                    return Err(ClosedByBroker(format!(" with DISCONNECT code 0x{code:02x}{reason}")).into());
                }
                Packet::ConnAck(_) => bail!("unexpected CONNACK"),
                ack => session.on_packet(&ack),
            }
        }
        let qos0 = session.write_ready(&mut out);
        if let Some(ka) = keep_alive {
            if ping_sent.is_none() && last_write.elapsed() >= ka {
                codec::encode_pingreq(&mut out);
                ping_sent = Some(Instant::now());
            }
        }
        if !out.is_empty() {
            writer.write_all(&out).await.map_err(closed_by_broker)?;
            writer.flush().await.map_err(closed_by_broker)?;
            out.clear();
            last_write = Instant::now();
            for done in qos0 {
                let _ = done.send(Ok(()));
            }
        }
        if close_due(session, close) {
            codec::encode_disconnect(&mut out);
            // Best effort: the broker may be gone already.
            let _ = writer.write_all(&out).await;
            let _ = writer.shutdown().await;
            return Ok(Ended::Closed(close.take().expect("close is set").1));
        }
        let ping_deadline = match (keep_alive, ping_sent) {
            (Some(ka), Some(sent)) => Some(sent + ka),
            (Some(ka), None) => Some(last_write + ka),
            (None, _) => None,
        };
        let close_deadline = close.as_ref().map(|(d, _)| *d);
        tokio::select! {
            n = reader.read_buf(&mut inbuf) => {
                if n.map_err(closed_by_broker)? == 0 {
                    return Err(ClosedByBroker(String::new()).into());
                }
            }
            cmd = commands.recv() => match cmd {
                Some(cmd) => {
                    accept(cmd, session, close);
                    // Take everything queued so far into one write.
                    while let Ok(cmd) = commands.try_recv() {
                        accept(cmd, session, close);
                    }
                }
                None => return Ok(Ended::Dropped),
            },
            _ = sleep_until_opt(ping_deadline) => {
                if ping_sent.is_some() {
                    bail!("no PINGRESP within the keep-alive");
                }
            }
            _ = sleep_until_opt(close_deadline) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_refusals_name_the_user_and_the_fix() {
        for (protocol, code) in [(Protocol::V311, 4), (Protocol::V311, 5), (Protocol::V5, 0x86), (Protocol::V5, 0x87)] {
            let text = refusal(protocol, code, None, Some("inflow"));
            assert!(text.contains("username or password") && text.contains("user \"inflow\""), "{text}");
            assert!(text.contains("INFLOW_MQTT_PASSWORD") && text.contains(&format!("code 0x{code:02x}")), "{text}");
        }
        assert!(refusal(Protocol::V5, 0x86, Some("bad creds"), None).contains("no username sent"));
        assert_eq!(refusal(Protocol::V311, 3, None, Some("u")), "server unavailable (code 0x03)");
    }
}
