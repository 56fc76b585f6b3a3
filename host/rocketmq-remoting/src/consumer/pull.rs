//! The per-queue task: find the start offset, then long-poll PULL_MESSAGE, re-check tags,
//! hand batches to the channel, and stop pulling while too much is unacknowledged.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::command::RemotingCommand;
use crate::error::Error;
use crate::message::{decode_messages, property, MessageExt};
use crate::producer::{OutgoingMessage, Producer};
use crate::route::MessageQueue;

use super::rpc::{self, PullRequest, PullResult};
use super::stats::MAX_OFFSET_REFRESH;
use super::{lock, Batch, QueueState, Shared, StartPosition};

/// Java's inner producer group, used for the send-back fallback.
const INNER_PRODUCER_GROUP: &str = "CLIENT_INNER_PRODUCER";
/// Java re-sends a refused send-back with delay level 3 + reconsume count.
const FALLBACK_BASE_DELAY_LEVEL: i32 = 3;

/// Exponential back-off between failed attempts, interruptible by a stop token.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// Sleeps; false if stopped meanwhile.
    async fn wait(&mut self, stop: &CancellationToken) -> bool {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        tokio::select! {
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}

/// Retried failures of one consumer's queues, per broker: one WARN when the first queue of a
/// broker fails, one INFO when the last of them works again, DEBUG in between. A broker
/// restart is then two lines per consumer, not one per queue per retry.
#[derive(Default)]
pub(super) struct Outages {
    /// Broker name → (queues failing now, since when).
    failing: Mutex<HashMap<String, (usize, Instant)>>,
}

/// One queue's part in [`Outages`]; ends on drop (queue revoked or stopped while failing).
struct QueueHealth<'a> {
    outages: &'a Outages,
    group: &'a str,
    queue: &'a MessageQueue,
    failing: bool,
}

impl QueueHealth<'_> {
    fn failed(&mut self, what: &str, error: &Error) {
        if self.failing {
            debug!(queue = %self.queue, error = %error, "{what} failed again; retrying");
            return;
        }
        self.failing = true;
        let mut failing = lock(&self.outages.failing);
        let (count, _) = failing.entry(self.queue.broker_name.clone()).or_insert((0, Instant::now()));
        *count += 1;
        if *count == 1 {
            warn!(group = self.group, broker = %self.queue.broker_name, error = %error, "{what} failed; retrying until the broker answers");
        } else {
            debug!(queue = %self.queue, error = %error, "{what} failed; retrying");
        }
    }

    fn recovered(&mut self) {
        if !std::mem::take(&mut self.failing) {
            return;
        }
        let mut failing = lock(&self.outages.failing);
        if let Some((count, since)) = failing.get_mut(&self.queue.broker_name) {
            *count -= 1;
            if *count == 0 {
                info!(group = self.group, broker = %self.queue.broker_name, after = ?since.elapsed(), "pulls work again");
                failing.remove(&self.queue.broker_name);
            }
        }
    }
}

impl Drop for QueueHealth<'_> {
    fn drop(&mut self) {
        self.recovered();
    }
}

impl Shared {
    pub(super) async fn consume_queue(self: Arc<Self>, state: Arc<QueueState>, subscription: usize) {
        // A task per queue of every consumer, thousands per process: its size is that of its
        // largest step, so large steps are boxed, a failure waits at the top of the loop (where
        // nothing else is held), and results are consumed in blocks that end before the next
        // wait.
        let stop = &state.stop;
        let queue = &state.queue;
        let mut backoff = Backoff::new();
        let mut health = QueueHealth { outages: &self.outages, group: &self.group, queue, failing: false };
        let mut failed = false;
        loop {
            if std::mem::take(&mut failed) && !backoff.wait(stop).await {
                return;
            }
            // Thousands of queues wait for a permit at start: each waits holding only the
            // permit's small future; the large start-up step is boxed once it may run.
            let _permit = tokio::select! {
                _ = stop.cancelled() => return,
                permit = self.client.group_heartbeats().startup_permit() => permit,
            };
            let found = tokio::select! {
                _ = stop.cancelled() => return,
                found = Box::pin(self.start_offset(queue)) => found,
            };
            match found {
                Ok((offset, stored)) => {
                    health.recovered();
                    debug!(queue = %queue, offset, stored, "starting");
                    lock(&state.offsets).start(offset, stored);
                    break;
                }
                Err(e) => {
                    health.failed("finding the start offset", &e);
                    failed = true;
                }
            }
        }
        backoff.reset();
        let subscription = &self.subscriptions[subscription];
        loop {
            if std::mem::take(&mut failed) && !backoff.wait(stop).await {
                return;
            }
            // Back-pressure: wait for acks while the queue has too much outstanding.
            while lock(&state.offsets).unacked() >= self.cfg.max_unacked_per_queue {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = state.room.notified() => {}
                }
            }
            let messages = {
                let (offset, commit_offset) = {
                    let mut offsets = lock(&state.offsets);
                    offsets.set_pulling(true);
                    (offsets.next_pull(), offsets.pending_commit())
                };
                let answer = tokio::select! {
                    // First: a queue stopped while its connection closes (process stop) is
                    // not a failed pull.
                    biased;
                    _ = stop.cancelled() => return,
                    answer = self.pull(queue, offset, commit_offset, subscription) => answer,
                };
                let pulled = {
                    let mut offsets = lock(&state.offsets);
                    offsets.set_pulling(false);
                    answer.and_then(|(addr, response)| rpc::pull_result(&self.client, &addr, response)).map(|(result, max_offset)| {
                        if let Some(max_offset) = max_offset {
                            offsets.saw_max_offset(max_offset);
                        }
                        if let Some(committed) = commit_offset {
                            // The broker stored it when the pull arrived.
                            offsets.persisted_at_least(committed);
                        }
                        result
                    })
                };
                match pulled {
                    Ok(PullResult::Found { body, next_begin }) => match decode_messages(&body) {
                        Ok(messages) => {
                            let kept: Vec<MessageExt> = messages
                                .into_iter()
                                .filter(|m| subscription.matches(m.tags()))
                                .map(|m| self.restore(m, queue))
                                .collect();
                            lock(&state.offsets).delivered(kept.iter().map(|m| m.queue_offset), next_begin);
                            kept
                        }
                        // Never skip what we cannot read: the queue waits (and logs) instead.
                        Err(e) => {
                            self.cfg.stats.pull_failed();
                            warn!(queue = %queue, offset, error = %e, "undecodable pull response; retrying");
                            failed = true;
                            continue;
                        }
                    },
                    Ok(PullResult::NoNewMessage { next_begin } | PullResult::NoMatchedMessage { next_begin }) => {
                        lock(&state.offsets).delivered([], next_begin);
                        Vec::new()
                    }
                    Ok(PullResult::OffsetIllegal { next_begin }) => {
                        warn!(queue = %queue, offset, next_begin, "offset outside the queue; moving on as the broker says");
                        lock(&state.offsets).reset(next_begin);
                        let committed = Box::pin(async {
                            let _serial = self.commit_lock.lock().await;
                            self.commit_queue(&state).await
                        });
                        if let Err(e) = committed.await {
                            warn!(queue = %queue, error = %e, "committing the corrected offset failed");
                        }
                        Vec::new()
                    }
                    Err(e) => {
                        self.cfg.stats.pull_failed();
                        health.failed("pulling", &e);
                        failed = true;
                        continue;
                    }
                }
            };
            backoff.reset();
            health.recovered();
            if messages.is_empty() {
                continue;
            }
            let batch = Box::new(Batch { queue: queue.clone(), messages, owner: Arc::downgrade(&state) });
            tokio::select! {
                _ = stop.cancelled() => return,
                sent = self.batches.send_async(batch) => if sent.is_err() { return },
            }
        }
    }

    /// Sends the next pull of `queue` and waits for the broker's answer (a long poll); returns
    /// the broker's address with the answer. Not an `async fn`, whose future would keep the
    /// arguments through the long poll, where a queue's task spends its life.
    fn pull<'a>(
        &'a self,
        queue: &'a MessageQueue,
        offset: i64,
        commit_offset: Option<i64>,
        subscription: &'a super::Subscription,
    ) -> impl Future<Output = Result<(String, RemotingCommand), Error>> + 'a {
        // Sending is boxed (short, and large when it connects): the long poll holds only the
        // address and the pending answer.
        let sent = Box::pin(async move {
            let addr = self.client.find_master(&queue.topic, &queue.broker_name).await?;
            let request = PullRequest {
                group: &self.group,
                queue,
                offset,
                max_messages: self.cfg.pull_batch_size,
                subscription,
                suspend: self.cfg.long_poll,
                commit_offset,
            };
            let pending = rpc::send_pull(&self.client, &addr, request).await?;
            Ok::<_, Error>((addr, pending))
        });
        async move {
            let (addr, pending) = sent.await?;
            Ok((addr, pending.answer().await?))
        }
    }

    /// Asks for the max offset of every owned queue no pull told it lately, so the lag of a
    /// queue that is not pulling (back-pressure, failures) stays current.
    pub(super) async fn refresh_max_offsets(&self) {
        let states: Vec<Arc<QueueState>> = lock(&self.queues).iter().map(|owned| owned.0.clone()).collect();
        for state in states.iter().filter(|s| lock(&s.offsets).max_offset_stale(MAX_OFFSET_REFRESH)) {
            let queue = &state.queue;
            let asked = async {
                let addr = self.client.find_master(&queue.topic, &queue.broker_name).await?;
                rpc::max_offset(&self.client, &addr, queue, self.request_timeout()).await
            };
            match asked.await {
                Ok(max_offset) => lock(&state.offsets).saw_max_offset(max_offset),
                // The pull task reports the broker's outage; the lag shown stays the last known.
                Err(e) => debug!(queue = %queue, error = %e, "asking the max offset failed"),
            }
        }
    }

    /// (offset to start at, offset the broker has stored or -1).
    async fn start_offset(&self, queue: &MessageQueue) -> Result<(i64, i64), Error> {
        let addr = self.client.find_master(&queue.topic, &queue.broker_name).await?;
        let timeout = self.request_timeout();
        if let Some(stored) = rpc::query_offset(&self.client, &addr, &self.group, queue, timeout).await? {
            if stored >= 0 {
                return Ok((stored, stored));
            }
        }
        let start = if queue.topic == self.retry_topic {
            0
        } else {
            match self.cfg.start {
                StartPosition::Latest => rpc::max_offset(&self.client, &addr, queue, timeout).await?,
                StartPosition::Earliest => 0,
                StartPosition::Timestamp(ms) => rpc::search_offset(&self.client, &addr, queue, ms, timeout).await?,
            }
        };
        Ok((start, -1))
    }

    /// Fills in the broker name, and for redelivered messages the original topic, as the Java
    /// consumer does (`resetRetryAndNamespace`); topics are given without the namespace.
    fn restore(&self, mut message: MessageExt, queue: &MessageQueue) -> MessageExt {
        message.broker_name.clone_from(&queue.broker_name);
        if queue.topic == self.retry_topic {
            if let Some(original) = message.properties.get(property::RETRY_TOPIC) {
                message.topic = original.to_string();
            }
        }
        if let std::borrow::Cow::Owned(plain) = self.client.unwrap(&message.topic) {
            message.topic = plain;
        }
        message
    }

    /// Java's fallback when CONSUMER_SEND_MSG_BACK fails: a new message to `%RETRY%<group>`
    /// carrying the original's properties, origin id, topic and reconsume count.
    pub(super) async fn resend_to_retry_topic(&self, message: &MessageExt, origin_topic: &str) -> Result<(), Error> {
        let producer = self
            .fallback_producer
            .get_or_try_init(|| Producer::start(self.client.clone(), INNER_PRODUCER_GROUP))
            .await?;
        let mut retry = OutgoingMessage::new(format!("%RETRY%{}", self.cfg.group), message.body.clone());
        retry.properties = message.properties.clone();
        let origin_id = message.properties.get(property::ORIGIN_MESSAGE_ID).map(str::to_string).unwrap_or_else(|| message.message_id());
        retry.properties.insert(property::ORIGIN_MESSAGE_ID, origin_id);
        retry.properties.insert(property::RETRY_TOPIC, self.client.unwrap(origin_topic).into_owned());
        retry.properties.insert(RECONSUME_TIME, (message.reconsume_times + 1).to_string());
        retry.properties.insert(property::MAX_RECONSUME_TIMES, self.cfg.max_reconsume_times.to_string());
        retry.properties.insert(property::DELAY_TIME_LEVEL, (FALLBACK_BASE_DELAY_LEVEL + message.reconsume_times).to_string());
        retry.properties.remove(TRANSACTION_PREPARED);
        producer.send(retry).await.map(drop)
    }
}

/// `MessageConst.PROPERTY_RECONSUME_TIME`.
const RECONSUME_TIME: &str = "RECONSUME_TIME";
/// `MessageConst.PROPERTY_TRANSACTION_PREPARED`.
const TRANSACTION_PREPARED: &str = "TRAN_MSG";
