//! What a rule reports while it runs: its state and its counters.

use crate::mapping::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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

/// Per-rule counters, monotonic for the life of the rule (the metrics read them).
#[derive(Debug, Default)]
pub struct RuleCounters {
    /// Messages taken from RocketMQ.
    pub messages: AtomicU64,
    /// Publishes handed to the MQTT sink.
    pub publishes: AtomicU64,
    /// Messages whose every publish MQTT acknowledged (their offsets may be committed).
    pub forwarded: AtomicU64,
    /// Mapping errors and publishes the broker refused, by [`ErrorKind`] (in `ErrorKind::ALL` order).
    errors: [AtomicU64; ErrorKind::ALL.len()],
    pub skipped: AtomicU64,
    pub dead_lettered: AtomicU64,
}

impl RuleCounters {
    pub fn count_error(&self, kind: ErrorKind) {
        self.errors[kind as usize].fetch_add(1, Relaxed);
    }

    /// Errors of one kind so far.
    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors[kind as usize].load(Relaxed)
    }

    /// Errors of every kind so far.
    pub fn mapping_errors(&self) -> u64 {
        self.errors.iter().map(|e| e.load(Relaxed)).sum()
    }
}
