use std::sync::atomic::AtomicU64;

/// Where a rule is; what the coming admin API and readiness endpoint report.
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

/// Per-rule counters (the future Prometheus metrics read them).
#[derive(Debug, Default)]
pub struct RuleCounters {
    /// Messages taken from RocketMQ.
    pub messages: AtomicU64,
    /// Publishes handed to the MQTT sink.
    pub publishes: AtomicU64,
    /// Messages whose every publish MQTT acknowledged (their offsets may be committed).
    pub forwarded: AtomicU64,
    /// Mapping errors and publishes the broker refused.
    pub mapping_errors: AtomicU64,
    pub skipped: AtomicU64,
    pub dead_lettered: AtomicU64,
}
