//! Counters of the MQTT connection for readiness and metrics: plain atomics the connection task
//! bumps, read by whoever exports them (cheap enough to update on every ack).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (inclusive, milliseconds) of the publish-to-ack latency buckets; one more bucket
/// counts everything slower.
pub const ACK_LATENCY_BOUNDS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

#[derive(Default)]
pub struct SinkStats {
    /// Connection attempts (TCP connect onwards), the first one included.
    pub connect_attempts: AtomicU64,
    /// Attempts that got an accepting CONNACK.
    pub connections: AtomicU64,
    /// Publishes failed back because the broker closed the connection on them twice in a row.
    pub hostage_publishes: AtomicU64,
    ack_latency: [AtomicU64; ACK_LATENCY_BOUNDS_MS.len() + 1],
    ack_latency_sum_us: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl SinkStats {
    /// Attempts after the first: every reconnect, successful or not.
    pub fn reconnects(&self) -> u64 {
        self.connect_attempts.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// Why the last connection attempt failed or the last connection ended; `None` while none has
    /// failed since the last successful CONNACK.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_last_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    /// Counts per bucket of [`ACK_LATENCY_BOUNDS_MS`] (not cumulative; the last is "slower"), and
    /// the sum of all latencies in microseconds.
    pub fn ack_latency(&self) -> ([u64; ACK_LATENCY_BOUNDS_MS.len() + 1], u64) {
        let counts = std::array::from_fn(|i| self.ack_latency[i].load(Ordering::Relaxed));
        (counts, self.ack_latency_sum_us.load(Ordering::Relaxed))
    }

    pub(crate) fn record_ack_latency(&self, latency: Duration) {
        // In microseconds: whole milliseconds would put 1.5 ms into the 1 ms bucket.
        let us = latency.as_micros() as u64;
        let bucket = ACK_LATENCY_BOUNDS_MS.iter().position(|&bound| us <= bound * 1000).unwrap_or(ACK_LATENCY_BOUNDS_MS.len());
        self.ack_latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.ack_latency_sum_us.fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_falls_in_its_bucket() {
        let stats = SinkStats::default();
        stats.record_ack_latency(Duration::from_micros(1500));
        stats.record_ack_latency(Duration::from_secs(60));
        let (counts, sum) = stats.ack_latency();
        assert_eq!(counts[1], 1, "1.5 ms is in the 2 ms bucket");
        assert_eq!(counts[ACK_LATENCY_BOUNDS_MS.len()], 1);
        assert_eq!(sum, 60_001_500);
    }
}
