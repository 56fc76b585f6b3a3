//! The MQTT sink: one publish-only connection (3.1.1 or 5, plain or TLS) with exact
//! acknowledgement tracking. Each publish returns a [`Delivery`] that completes on PUBACK (QoS 1),
//! PUBCOMP (QoS 2) or once written to the socket (QoS 0). Unacknowledged publishes survive
//! reconnects and are re-sent in order. At most `max_inflight` publishes are outstanding:
//! [`Sink::publish`] waits for a slot, which is the back-pressure on the rules.
//!
//! No publish can hold the connection hostage (see [`session`]), reconnects back off even when the
//! broker closes right after CONNACK, and [`SinkStats`] shows what the connection is doing.

pub mod codec;
mod connection;
mod publish;
mod session;
mod stats;
mod tls;

use crate::config::MqttConfig;
pub use publish::{Publish, QoS};
use session::Entry;
pub use stats::{SinkStats, ACK_LATENCY_BOUNDS_MS};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("the MQTT broker refused the publish with reason code 0x{code:02x}")]
    Rejected { code: u8 },
    #[error("the publish cannot be sent: {0}")]
    Unsendable(String),
    #[error(
        "the MQTT broker closed the connection twice in a row right after this {bytes}-byte publish, \
         likely over its packet size limit; set [mqtt] max_packet_bytes to the broker's limit, or raise it"
    )]
    ConnectionClosedOnPublish { bytes: usize },
    #[error("the MQTT sink is closed")]
    Closed,
}

/// The completion of one publish.
pub struct Delivery(oneshot::Receiver<Result<(), PublishError>>);

/// Completes a [`Delivery`]; dropped unsent, the delivery completes with [`PublishError::Closed`].
pub type Completion = oneshot::Sender<Result<(), PublishError>>;

impl Delivery {
    /// A delivery and the sender that completes it.
    pub fn channel() -> (Completion, Delivery) {
        let (done, rx) = oneshot::channel();
        (done, Delivery(rx))
    }

    pub async fn wait(self) -> Result<(), PublishError> {
        self.0.await.unwrap_or(Err(PublishError::Closed))
    }
}

pub(crate) enum Command {
    Publish(Entry),
    /// Wait up to the duration for outstanding publishes, then DISCONNECT and end.
    Close(Duration, oneshot::Sender<()>),
}

/// Where a rule's publishes go: the seam between the rule runner and the MQTT connection.
pub trait Publisher: Clone + Send + Sync + 'static {
    /// Queues a publish once there is room; the delivery completes when it is acknowledged.
    fn publish(&self, publish: Publish) -> impl Future<Output = Result<Delivery, PublishError>> + Send;
}

impl Publisher for Sink {
    fn publish(&self, publish: Publish) -> impl Future<Output = Result<Delivery, PublishError>> + Send {
        Sink::publish(self, publish)
    }
}

/// A handle to the MQTT connection; cheap to clone, shared by all rules.
#[derive(Clone)]
pub struct Sink {
    commands: mpsc::UnboundedSender<Command>,
    window: Arc<Semaphore>,
    connected: watch::Receiver<bool>,
    max_inflight: usize,
    stats: Arc<SinkStats>,
}

impl Sink {
    /// Starts the connection task (it connects, and reconnects with backoff, in the background).
    pub fn start(config: MqttConfig) -> anyhow::Result<Sink> {
        let tls = match &config.tls {
            Some(t) => Some(tls::connector(t)?),
            None => None,
        };
        let (commands, rx) = mpsc::unbounded_channel();
        let (connected_tx, connected) = watch::channel(false);
        let max_inflight = config.max_inflight as usize;
        let window = Arc::new(Semaphore::new(max_inflight));
        let stats = Arc::new(SinkStats::default());
        tokio::spawn(connection::run(config, tls, rx, connected_tx, stats.clone()));
        Ok(Sink { commands, window, connected, max_inflight, stats })
    }

    /// Queues a publish once the window has room; the returned delivery completes on its ack.
    pub async fn publish(&self, publish: Publish) -> Result<Delivery, PublishError> {
        let permit = self.window.clone().acquire_owned().await.map_err(|_| PublishError::Closed)?;
        let (done, delivery) = Delivery::channel();
        self.commands.send(Command::Publish(Entry { publish, done, permit, queued_at: Instant::now() })).map_err(|_| PublishError::Closed)?;
        Ok(delivery)
    }

    /// Whether the broker connection is up now.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Why the connection is failing (the last connect error or connection loss), `None` once
    /// connected again.
    pub fn last_error(&self) -> Option<String> {
        self.stats.last_error()
    }

    /// Connection attempts after the first one, successful or not.
    pub fn reconnects(&self) -> u64 {
        self.stats.reconnects()
    }

    /// Publishes handed to the sink and not yet complete (the used part of `max_inflight`).
    pub fn window_in_use(&self) -> usize {
        self.max_inflight - self.window.available_permits()
    }

    /// The window: at most this many publishes outstanding at once.
    pub fn max_inflight(&self) -> usize {
        self.max_inflight
    }

    /// The connection's counters and publish-to-ack latency histogram, for metrics.
    pub fn stats(&self) -> Arc<SinkStats> {
        self.stats.clone()
    }

    /// Waits until the connection is up or the timeout passes.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.connected.clone();
        tokio::time::timeout(timeout, rx.wait_for(|up| *up)).await.is_ok_and(|r| r.is_ok())
    }

    /// Gives outstanding publishes up to `grace` to complete, then disconnects. Publishes still
    /// outstanding then complete with [`PublishError::Closed`].
    pub async fn close(&self, grace: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Close(grace, tx)).is_ok() {
            let _ = rx.await;
        }
        self.window.close();
    }
}
