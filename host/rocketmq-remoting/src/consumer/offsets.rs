//! Per-queue offset bookkeeping. Messages are handed out in offset order; the caller acks them in
//! any order. The offset we commit is the lowest offset still unacked (everything below it is
//! done), or, with nothing outstanding, the next offset to pull.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct QueueOffsets {
    /// Next offset to ask the broker for.
    next_pull: i64,
    /// Offsets handed to the caller, ascending, with their acked flag. Acked entries at the
    /// front are dropped right away, so the front is always the lowest unacked offset.
    outstanding: VecDeque<(i64, bool)>,
    unacked: usize,
    /// What the broker has stored for this queue (as far as we know).
    persisted: i64,
    /// The queue's max offset as the broker last said (-1: not yet), and when.
    max_offset: i64,
    max_offset_at: Option<Instant>,
    /// A pull is out: it returns as soon as a message arrives, with the max offset then.
    pulling: bool,
}

impl QueueOffsets {
    /// Starts at `offset`; `persisted` is what the broker has stored (-1: nothing).
    pub fn new(offset: i64, persisted: i64) -> Self {
        QueueOffsets { next_pull: offset, outstanding: VecDeque::new(), unacked: 0, persisted, max_offset: -1, max_offset_at: None, pulling: false }
    }

    /// A queue whose start offset is not known yet: nothing to commit.
    pub fn unstarted() -> Self {
        Self::new(-1, -1)
    }

    /// Sets the start offset once it is known.
    pub fn start(&mut self, offset: i64, persisted: i64) {
        *self = QueueOffsets { max_offset: self.max_offset, max_offset_at: self.max_offset_at, ..Self::new(offset, persisted) };
    }

    pub fn max_offset(&self) -> i64 {
        self.max_offset
    }

    /// The broker said the queue's max offset is `max_offset` (it only grows).
    pub fn saw_max_offset(&mut self, max_offset: i64) {
        self.max_offset = self.max_offset.max(max_offset);
        self.max_offset_at = Some(Instant::now());
    }

    pub fn set_pulling(&mut self, pulling: bool) {
        self.pulling = pulling;
    }

    /// Whether the max offset should be asked for: no pull is out and none told it within `fresh`.
    pub fn max_offset_stale(&self, fresh: Duration) -> bool {
        !self.pulling && self.max_offset_at.is_none_or(|at| at.elapsed() >= fresh)
    }

    pub fn next_pull(&self) -> i64 {
        self.next_pull
    }

    /// Records a pulled batch: the offsets handed out (ascending) and where the next pull starts.
    /// Offsets filtered out client-side are simply skipped: they are done.
    pub fn delivered(&mut self, offsets: impl IntoIterator<Item = i64>, next_pull: i64) {
        for offset in offsets {
            debug_assert!(self.outstanding.back().is_none_or(|(last, _)| *last < offset));
            self.outstanding.push_back((offset, false));
            self.unacked += 1;
        }
        self.next_pull = self.next_pull.max(next_pull);
    }

    /// The broker moved us (OFFSET_MOVED): forget what is outstanding and go on from `offset`.
    pub fn reset(&mut self, offset: i64) {
        self.outstanding.clear();
        self.unacked = 0;
        self.next_pull = offset;
    }

    /// Marks one handed-out offset done. Unknown offsets (already acked, or from before a
    /// reset / re-assignment) are ignored; returns whether the offset was outstanding.
    pub fn ack(&mut self, offset: i64) -> bool {
        let Ok(index) = self.outstanding.binary_search_by_key(&offset, |(o, _)| *o) else {
            return false;
        };
        let entry = &mut self.outstanding[index].1;
        if *entry {
            return false;
        }
        *entry = true;
        self.unacked -= 1;
        while self.outstanding.front().is_some_and(|(_, acked)| *acked) {
            self.outstanding.pop_front();
        }
        true
    }

    pub fn unacked(&self) -> usize {
        self.unacked
    }

    /// The offset to commit: everything below it is done.
    pub fn committable(&self) -> i64 {
        self.outstanding.front().map_or(self.next_pull, |(offset, _)| *offset)
    }

    /// The committable offset if it is known and differs from what the broker has.
    pub fn pending_commit(&self) -> Option<i64> {
        let offset = self.committable();
        (offset >= 0 && offset != self.persisted).then_some(offset)
    }

    pub fn persisted(&mut self, offset: i64) {
        self.persisted = offset;
    }

    /// A commit that raced with others (piggy-backed on a pull) never moves `persisted` back.
    pub fn persisted_at_least(&mut self, offset: i64) {
        self.persisted = self.persisted.max(offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_outstanding_commits_the_next_pull() {
        let mut q = QueueOffsets::new(100, 100);
        assert_eq!(q.committable(), 100);
        assert_eq!(q.pending_commit(), None);
        q.delivered([], 120); // all 20 filtered out client-side
        assert_eq!(q.committable(), 120);
        assert_eq!(q.pending_commit(), Some(120));
    }

    #[test]
    fn out_of_order_acks_commit_the_lowest_unacked() {
        let mut q = QueueOffsets::new(0, -1);
        q.delivered([0, 1, 2, 3], 4);
        assert_eq!(q.unacked(), 4);
        assert_eq!(q.committable(), 0);
        assert!(q.ack(2));
        assert!(q.ack(1));
        assert_eq!(q.committable(), 0, "0 is still unacked");
        assert!(q.ack(0));
        assert_eq!(q.committable(), 3, "0..=2 done, 3 outstanding");
        assert!(q.ack(3));
        assert_eq!(q.committable(), 4);
        assert_eq!(q.unacked(), 0);
    }

    #[test]
    fn gaps_from_filtered_messages_are_skipped() {
        let mut q = QueueOffsets::new(10, 10);
        q.delivered([11, 15], 20); // 10, 12..14, 16..19 did not match the tags
        assert_eq!(q.committable(), 11);
        q.ack(11);
        assert_eq!(q.committable(), 15);
        q.ack(15);
        assert_eq!(q.committable(), 20);
    }

    #[test]
    fn duplicate_and_unknown_acks_are_ignored() {
        let mut q = QueueOffsets::new(0, 0);
        q.delivered([5, 6], 7);
        assert!(!q.ack(4));
        assert!(q.ack(6));
        assert!(!q.ack(6));
        assert!(!q.ack(100));
        assert_eq!(q.unacked(), 1);
        assert_eq!(q.committable(), 5);
    }

    #[test]
    fn reset_drops_outstanding() {
        let mut q = QueueOffsets::new(0, 0);
        q.delivered([0, 1], 2);
        q.reset(50);
        assert_eq!(q.unacked(), 0);
        assert_eq!(q.committable(), 50);
        assert!(!q.ack(0));
    }

    #[test]
    fn unstarted_queue_commits_nothing() {
        let mut q = QueueOffsets::unstarted();
        assert_eq!(q.pending_commit(), None);
        q.start(42, -1);
        assert_eq!(q.pending_commit(), Some(42), "a computed start offset is committed");
        q.start(42, 42);
        assert_eq!(q.pending_commit(), None, "a stored start offset is not committed again");
    }

    #[test]
    fn a_piggy_backed_commit_never_moves_persisted_back() {
        let mut q = QueueOffsets::new(0, -1);
        q.delivered([0, 1, 2], 3);
        q.ack(0);
        q.ack(1);
        q.persisted(2);
        q.persisted_at_least(1);
        assert_eq!(q.pending_commit(), None, "2 is stored; the older piggy-backed 1 does not count");
        q.ack(2);
        assert_eq!(q.pending_commit(), Some(3));
    }

    #[test]
    fn max_offset_is_stale_only_while_no_pull_is_out() {
        let mut q = QueueOffsets::new(0, 0);
        assert!(q.max_offset_stale(Duration::from_secs(3)), "never told");
        q.saw_max_offset(40);
        q.saw_max_offset(30);
        assert_eq!(q.max_offset(), 40, "an older answer never moves it back");
        assert!(!q.max_offset_stale(Duration::from_secs(3)));
        assert!(q.max_offset_stale(Duration::ZERO));
        q.set_pulling(true);
        assert!(!q.max_offset_stale(Duration::ZERO), "the pull out will tell");
        q.start(5, 5);
        assert_eq!(q.max_offset(), 40, "finding the start offset keeps what the broker said");
    }

    #[test]
    fn persisted_offset_is_not_committed_again() {
        let mut q = QueueOffsets::new(0, 0);
        q.delivered([0], 1);
        q.ack(0);
        assert_eq!(q.pending_commit(), Some(1));
        q.persisted(1);
        assert_eq!(q.pending_commit(), None);
    }
}
