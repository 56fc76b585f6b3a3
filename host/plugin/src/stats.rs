//! What happens to each plugin (by name, across its versions), for the host's metrics: loads,
//! refusals, failed calls, recycles and call time. Kept by the [`crate::PluginDir`], so a
//! plugin's counters run on over every new version of its file.

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

#[derive(Debug)]
pub struct PluginStats {
    /// Versions loaded and made live.
    pub loads: AtomicU64,
    /// Withdrawals because the file went away.
    pub removals: AtomicU64,
    /// Files refused, by [`crate::LoadError::reason`].
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    /// Calls that trapped (the instance is replaced).
    pub traps: AtomicU64,
    /// Calls interrupted at the rule's CPU deadline.
    pub deadline_hits: AtomicU64,
    /// Calls stopped at the rule's memory cap.
    pub memory_cap_hits: AtomicU64,
    /// Instances replaced between messages by the recycle policy (calls or memory).
    pub recycles: AtomicU64,
    /// Time of one `map-message` call, in seconds.
    pub call_seconds: Histogram,
}

impl Default for PluginStats {
    fn default() -> Self {
        PluginStats {
            loads: AtomicU64::new(0),
            removals: AtomicU64::new(0),
            refusals: Mutex::default(),
            traps: AtomicU64::new(0),
            deadline_hits: AtomicU64::new(0),
            memory_cap_hits: AtomicU64::new(0),
            recycles: AtomicU64::new(0),
            // 1 µs to ~4 s: a small plugin's call takes microseconds, a deadline is up to seconds.
            call_seconds: Histogram::new(exponential_buckets(1e-6, 4.0, 12)),
        }
    }
}

impl PluginStats {
    /// Refusals so far, by reason.
    pub fn refusals(&self) -> BTreeMap<&'static str, u64> {
        crate::dir::lock(&self.refusals).clone()
    }

    pub(crate) fn refused(&self, reason: &'static str) {
        *crate::dir::lock(&self.refusals).entry(reason).or_default() += 1;
    }
}
