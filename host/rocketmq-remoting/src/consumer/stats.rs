//! What a consumer counts and where each of its queues stands, for the caller's metrics.
//! [`ConsumerStats`] outlives the consumer: hand the same one to the next consumer of the
//! group (through [`super::ConsumerConfig::stats`]) and its counters stay monotonic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::route::MessageQueue;

use super::{lock, Shared};

/// How often a queue's max offset is asked for when no pull told it lately (a queue held by
/// back-pressure, or failing to pull): the lag of a stuck queue is what an operator needs most.
pub(super) const MAX_OFFSET_REFRESH: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Offset commits the broker refused or that did not reach it (UPDATE_CONSUMER_OFFSET).
    commit_failures: AtomicU64,
    /// Re-balances that changed the queues this member owns.
    rebalances: AtomicU64,
    /// Pulls that failed (broker unreachable, refused, undecodable answer); each is retried.
    pull_errors: AtomicU64,
    /// The consumer running now, if any.
    running: Mutex<Weak<Shared>>,
}

/// Where one owned queue stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueProgress {
    /// The queue; its topic without the client's namespace.
    pub queue: MessageQueue,
    /// The consumer's acknowledged point: every message below it is done (what it commits).
    pub committed_offset: i64,
    /// The offset the queue's next message will get, as the broker last said (-1: not known yet).
    pub max_offset: i64,
    /// Messages handed to the caller and not acknowledged yet.
    pub in_flight: u64,
}

impl QueueProgress {
    /// Messages in the queue at or above the acknowledged point.
    pub fn lag(&self) -> u64 {
        u64::try_from(self.max_offset - self.committed_offset).unwrap_or(0)
    }
}

impl ConsumerStats {
    pub fn commit_failures(&self) -> u64 {
        self.commit_failures.load(Ordering::Relaxed)
    }

    pub fn rebalances(&self) -> u64 {
        self.rebalances.load(Ordering::Relaxed)
    }

    pub fn pull_errors(&self) -> u64 {
        self.pull_errors.load(Ordering::Relaxed)
    }

    /// The started queues of the running consumer, sorted; empty while none runs.
    pub fn queues(&self) -> Vec<QueueProgress> {
        let Some(shared) = lock(&self.running).upgrade() else { return Vec::new() };
        let mut queues: Vec<QueueProgress> = lock(&shared.queues)
            .iter()
            .map(|owned| &owned.0)
            .filter_map(|state| {
                let offsets = lock(&state.offsets);
                let committed_offset = offsets.committable();
                (committed_offset >= 0).then(|| {
                    let mut queue = state.queue.clone();
                    queue.topic = shared.client.unwrap(&queue.topic).into_owned();
                    QueueProgress { queue, committed_offset, max_offset: offsets.max_offset(), in_flight: offsets.unacked() as u64 }
                })
            })
            .collect();
        queues.sort_by(|a, b| a.queue.cmp(&b.queue));
        queues
    }

    pub(super) fn running(&self, shared: &Arc<Shared>) {
        *lock(&self.running) = Arc::downgrade(shared);
    }

    pub(super) fn commit_failed(&self) {
        self.commit_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn rebalanced(&self) {
        self.rebalances.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn pull_failed(&self) {
        self.pull_errors.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_acknowledged_point_and_is_never_negative() {
        let queue = MessageQueue { topic: "T".into(), broker_name: "b".into(), queue_id: 0 };
        let progress = |committed_offset, max_offset| QueueProgress { queue: queue.clone(), committed_offset, max_offset, in_flight: 0 };
        assert_eq!(progress(10, 25).lag(), 15);
        assert_eq!(progress(25, 25).lag(), 0);
        assert_eq!(progress(10, -1).lag(), 0, "max offset not known yet");
    }
}
