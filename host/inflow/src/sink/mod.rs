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
    /// In order; one command for many publishes wakes the connection once for all of them.
    Publish(Vec<Entry>),
    /// Wait up to the duration for outstanding publishes, then DISCONNECT and end.
    Close(Duration, oneshot::Sender<()>),
}

/// Where a rule's publishes go: the seam between the rule runner and the MQTT connection.
pub trait Publisher: Clone + Send + Sync + 'static {
    /// Queues publishes, in order, once the window has room for all of them (at most
    /// [`Publisher::max_batch`] at once); each delivery completes when its publish is acknowledged.
    fn publish(&self, publishes: Vec<Publish>) -> impl Future<Output = Result<Vec<Delivery>, PublishError>> + Send;
    /// The most publishes one call may hand over.
    fn max_batch(&self) -> usize;
}

/// The most publishes a rule hands over at once: few enough that a batch never waits for the
/// window to be nearly empty, enough that the connection wakes once for many.
const MAX_BATCH: usize = 64;

impl Publisher for Sink {
    fn publish(&self, publishes: Vec<Publish>) -> impl Future<Output = Result<Vec<Delivery>, PublishError>> + Send {
        Sink::publish_all(self, publishes)
    }
    fn max_batch(&self) -> usize {
        MAX_BATCH.min(self.max_inflight / 4).max(1)
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
        let mut deliveries = self.publish_all(vec![publish]).await?;
        Ok(deliveries.pop().expect("one delivery per publish"))
    }

    /// Queues publishes, in order, once the window has room for all of them; a delivery per
    /// publish. More than the window (`max_inflight`) can never fit: keep batches small.
    pub async fn publish_all(&self, publishes: Vec<Publish>) -> Result<Vec<Delivery>, PublishError> {
        let count = u32::try_from(publishes.len()).ok().filter(|&n| n as usize <= self.max_inflight);
        let Some(count) = count else {
            return Err(PublishError::Unsendable(format!("{} publishes at once exceed the window of {}", publishes.len(), self.max_inflight)));
        };
        let mut permits = self.window.clone().acquire_many_owned(count).await.map_err(|_| PublishError::Closed)?;
        let queued_at = Instant::now();
        let mut deliveries = Vec::with_capacity(publishes.len());
        let entries = publishes
            .into_iter()
            .map(|publish| {
                let permit = permits.split(1).expect("one permit per publish");
                let (done, delivery) = Delivery::channel();
                deliveries.push(delivery);
                Entry { publish, done, permit, queued_at }
            })
            .collect();
        self.commands.send(Command::Publish(entries)).map_err(|_| PublishError::Closed)?;
        Ok(deliveries)
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
