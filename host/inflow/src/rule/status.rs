//! What a rule reports while it runs: its state and its counters.

use crate::mapping::ErrorKind;
use crate::sink::QoS;
use crate::source::ConsumerStats;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a rule is; what the admin API and the readiness endpoint report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleStatus {
    Disabled,
    Starting,
    Running,
    /// Its plugin has no valid file in the folder: nothing consumed, offsets held.
    WaitingForPlugin,
    /// Stopped by the on-error policy `pause`: offsets held.
    Paused(String),
    /// Cannot start (consumer or plugin); retrying.
    Failed(String),
    Stopped,
}

impl RuleStatus {
    /// The state's name in the API, the metrics and the console.
    pub fn name(&self) -> &'static str {
        match self {
            RuleStatus::Disabled => "disabled",
            RuleStatus::Starting => "starting",
            RuleStatus::Running => "running",
            RuleStatus::WaitingForPlugin => "waiting_for_plugin",
            RuleStatus::Paused(_) => "paused",
            RuleStatus::Failed(_) => "failing",
            RuleStatus::Stopped => "stopped",
        }
    }

    /// Why the rule is paused or failing.
    pub fn reason(&self) -> Option<&str> {
        match self {
            RuleStatus::Paused(why) | RuleStatus::Failed(why) => Some(why),
            _ => None,
        }
    }
}

/// Per-rule counters, monotonic for the life of the rule id: the supervisor keeps them across
/// the rule's restarts and updates (the metrics read them).
#[derive(Debug)]
pub struct RuleCounters {
    /// Messages taken from RocketMQ.
    pub messages: AtomicU64,
    /// Publishes handed to the MQTT sink, by QoS.
    publishes: [AtomicU64; 3],
    /// Messages whose every publish MQTT acknowledged (their offsets may be committed).
    pub forwarded: AtomicU64,
    /// Messages whose publishes are outstanding now.
    pub in_flight: AtomicU64,
    /// When a message was last forwarded, in milliseconds since the Unix epoch (0: never).
    last_forward_ms: AtomicU64,
    /// How long mapping one message takes (built-in or plugin call), in seconds.
    pub map_seconds: Histogram,
    /// Mapping errors and publishes the broker refused, by [`ErrorKind`] (in `ErrorKind::ALL` order).
    errors: [AtomicU64; ErrorKind::ALL.len()],
    pub skipped: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// The RocketMQ consumer's counters and the progress of the queues it owns now.
    pub consumer: Arc<ConsumerStats>,
}

/// Where one queue of a rule stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueueReport {
    /// The rule's topic, or its group's retry topic `%RETRY%<group>`.
    pub topic: String,
    pub broker: String,
    pub queue_id: u32,
    /// The rule's acknowledged point: every message below it is forwarded, skipped or sent back.
    pub committed_offset: i64,
    /// The offset the queue's next message will get (-1: the broker has not said yet).
    pub max_offset: i64,
    /// Messages waiting: `max_offset - committed_offset`.
    pub lag: u64,
    /// Messages taken from the queue and not done yet.
    pub in_flight: u64,
}

impl Default for RuleCounters {
    fn default() -> Self {
        RuleCounters {
            messages: AtomicU64::new(0),
            publishes: Default::default(),
            forwarded: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            last_forward_ms: AtomicU64::new(0),
            // 1 µs to ~4 s: a built-in mapping takes about a microsecond, a plugin's deadline seconds.
            map_seconds: Histogram::new(exponential_buckets(1e-6, 4.0, 12)),
            errors: Default::default(),
            skipped: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            consumer: Arc::default(),
        }
    }
}

impl RuleCounters {
    pub fn count_publish(&self, qos: QoS) {
        self.publishes[qos as usize].fetch_add(1, Relaxed);
    }

    /// Publishes of one QoS so far.
    pub fn publishes(&self, qos: QoS) -> u64 {
        self.publishes[qos as usize].load(Relaxed)
    }

    pub fn count_forwarded(&self) {
        self.forwarded.fetch_add(1, Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        self.last_forward_ms.store(now.as_millis() as u64, Relaxed);
    }

    /// When a message was last forwarded, if ever.
    pub fn last_forward(&self) -> Option<SystemTime> {
        let ms = self.last_forward_ms.load(Relaxed);
        (ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(ms))
    }

    pub fn count_error(&self, kind: ErrorKind) {
        self.errors[kind as usize].fetch_add(1, Relaxed);
    }

    /// Errors of one kind so far.
    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors[kind as usize].load(Relaxed)
    }

    /// The queues the rule's consumer owns now (none while it is not running), sorted.
    pub fn queues(&self) -> Vec<QueueReport> {
        self.consumer
            .queues()
            .into_iter()
            .map(|q| QueueReport {
                lag: q.lag(),
                topic: q.queue.topic,
                broker: q.queue.broker_name,
                // Queue ids count from 0 in every route.
                queue_id: q.queue.queue_id as u32,
                committed_offset: q.committed_offset,
                max_offset: q.max_offset,
                in_flight: q.in_flight,
            })
            .collect()
    }

    /// Errors of every kind so far.
    pub fn mapping_errors(&self) -> u64 {
        self.errors.iter().map(|e| e.load(Relaxed)).sum()
    }
}
