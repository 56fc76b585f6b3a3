//! Cluster consumer: joins a consumer group like the Java push consumer (heartbeats, the
//! averagely allocation, re-balance on member changes), long-polls its queues, and commits only
//! what the caller acknowledged.
//!
//! ```text
//! Consumer::start ──▶ the client's shared heartbeat (every 30 s, one per broker for all groups)
//!                 ──▶ housekeeping task, one per consumer:
//!                       re-balance (every 20 s ± jitter and on NOTIFY_CONSUMER_IDS_CHANGED)
//!                        └─▶ one pull task per owned queue ──▶ bounded channel ──▶ recv()
//!                       commit (every commit_interval)                   ack() ──┘
//!                       max offsets of queues not pulled lately (for the lag)
//! ```
//!
//! Offsets are committed two ways: every PULL_MESSAGE carries the queue's acknowledged offset
//! (the commit-offset flag, as the Java push consumer does: free, and as frequent as the
//! pulls), and the housekeeping task sends UPDATE_CONSUMER_OFFSET every [`ConsumerConfig::commit_interval`]
//! for queues whose pulls are parked (long poll, back-pressure).
//!
//! **Duplicates after a crash.** A consumer that dies without [`Consumer::shutdown`] (kill -9,
//! drop) leaves the offset of its last pull or commit, whichever came later. What is
//! redelivered to the next owner of a queue is at most what was in flight at that point:
//! `max_unacked_per_queue + pull_batch_size` messages per queue (the unacknowledged window
//! plus one pull batch), and never more than was delivered since the last
//! `commit_interval` tick. Nothing acknowledged is lost: a commit never goes past an unacked
//! offset.
//!
//! Like Java, the group also consumes its retry topic `%RETRY%<group>`, so messages handed to
//! [`Consumer::send_back`] come back after their delay, with their original topic restored.
//!
//! Start position (only when the broker has no offset stored for the group and queue):
//! * [`StartPosition::Earliest`]: offset 0 (the broker moves us to the queue's minimum if 0 is gone).
//! * [`StartPosition::Latest`]: the queue's max offset, as Java's `CONSUME_FROM_LAST_OFFSET`.
//! * [`StartPosition::Timestamp`]: the first offset stored at or after the time.
//! * A brand-new group on a young queue: brokers answer the offset query of a group they have
//!   no offset for with 0 instead of "none" while the queue still starts at offset 0 and its
//!   first message is in memory, so a Java consumer with `CONSUME_FROM_LAST_OFFSET` reads such
//!   a topic from the beginning. We ask with `setZeroIfNotFound=false`: 5.x brokers then say
//!   "none" and Latest / Timestamp mean what they say; 4.9 brokers do not know the flag and
//!   answer 0, which we take (a stored 0 looks the same), so on 4.9 a new group behaves as a
//!   Java consumer's does.
//! * The retry topic always starts at 0: whatever is in it is for this group.

mod allocate;
#[cfg(test)]
mod fake;
mod heartbeat;
mod offsets;
mod pull;
mod rebalance;
mod rpc;
mod stats;
mod subscription;

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::client::Client;
use crate::error::Error;
use crate::message::MessageExt;
use crate::route::MessageQueue;

pub use allocate::{allocate_averagely, java_compare, sort_client_ids};
pub use stats::{ConsumerStats, QueueProgress};
pub use subscription::{java_string_hash, Subscription};

pub(crate) use heartbeat::GroupHeartbeats;
use heartbeat::ConsumeFromWhere;
use offsets::QueueOffsets;
use stats::MAX_OFFSET_REFRESH;

/// Where a group starts on a queue for which the broker has no stored offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartPosition {
    #[default]
    Latest,
    Earliest,
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
}

/// Settings of one cluster consumer. `ConsumerConfig::new(group, topic)` then adjust fields.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Consumer group (user name; the client's namespace is applied).
    pub group: String,
    /// Topic (user name; the client's namespace is applied).
    pub topic: String,
    /// `*` or `tagA || tagB`.
    pub expression: String,
    pub start: StartPosition,
    /// Messages asked for per pull (Java's `pullBatchSize`).
    pub pull_batch_size: u32,
    /// A queue is not pulled while this many of its messages are unacknowledged.
    pub max_unacked_per_queue: usize,
    /// Acknowledged offsets are committed at least this often (and on every pull, on revoke
    /// and on shutdown). Shorter: fewer duplicates after a crash, one small request per
    /// changed queue per tick.
    pub commit_interval: Duration,
    /// Batches buffered between the pull tasks and [`Consumer::recv`].
    pub channel_capacity: usize,
    /// After this many redeliveries the broker moves a sent-back message to `%DLQ%<group>`.
    pub max_reconsume_times: i32,
    /// Also consume `%RETRY%<group>` (where sent-back messages return), like Java.
    pub consume_retry_topic: bool,
    /// How long the broker holds a pull with nothing to return.
    pub long_poll: Duration,
    /// The client's shared heartbeat runs at the shortest interval of its consumers.
    pub heartbeat_interval: Duration,
    pub rebalance_interval: Duration,
    /// Counters and queue progress, shared with whoever reports them; pass the previous
    /// consumer's to keep counting where it stopped.
    pub stats: Arc<ConsumerStats>,
}

impl ConsumerConfig {
    pub fn new(group: impl Into<String>, topic: impl Into<String>) -> Self {
        ConsumerConfig {
            group: group.into(),
            topic: topic.into(),
            expression: "*".into(),
            start: StartPosition::Latest,
            pull_batch_size: 32,
            max_unacked_per_queue: 1000,
            commit_interval: Duration::from_secs(1),
            channel_capacity: 64,
            max_reconsume_times: 16,
            consume_retry_topic: true,
            long_poll: Duration::from_secs(15),
            heartbeat_interval: Duration::from_secs(30),
            rebalance_interval: Duration::from_secs(20),
            stats: Arc::default(),
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let problems: Vec<String> = [
            (self.group.trim().is_empty(), "consumer group is empty; name one (e.g. the rule id)".to_string()),
            (self.topic.trim().is_empty(), "topic is empty; name the RocketMQ topic to consume".to_string()),
            (!(1..=1024).contains(&self.pull_batch_size), format!("pull_batch_size {} is outside 1..=1024", self.pull_batch_size)),
            (self.max_unacked_per_queue == 0, "max_unacked_per_queue is 0; it must be at least 1".to_string()),
            (self.channel_capacity == 0, "channel_capacity is 0; it must be at least 1".to_string()),
            (self.commit_interval.is_zero(), "commit_interval is 0; use e.g. 1 s".to_string()),
            (self.long_poll.is_zero(), "long_poll is 0; use e.g. 15 s".to_string()),
        ]
        .into_iter()
        .filter_map(|(bad, text)| bad.then_some(text))
        .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(problems.join("; ")))
        }
    }
}

/// Messages of one queue, in offset order.
#[derive(Debug)]
pub struct Batch {
    /// The queue they were pulled from: pass it to [`Consumer::ack`]. For redelivered messages
    /// this is the `%RETRY%<group>` queue, while each message's `topic` is the original one.
    pub queue: MessageQueue,
    pub messages: Vec<MessageExt>,
    owner: Weak<QueueState>,
}

impl Batch {
    /// The queue was taken away from us (re-balance) after this batch was pulled.
    fn revoked(&self) -> bool {
        self.owner.upgrade().is_none_or(|state| state.stop.is_cancelled())
    }
}

/// A running cluster consumer. Drop without [`Consumer::shutdown`] stops it without committing.
pub struct Consumer {
    shared: Arc<Shared>,
    /// A flume channel of boxed batches: ~0.2 KB per consumer where tokio's mpsc takes ~0.8 KB
    /// (cache-padded ends, a block of 32 slots), for each of thousands of consumers.
    batches: flume::Receiver<Box<Batch>>,
    tasks: Vec<JoinHandle<()>>,
}

struct Shared {
    client: Client,
    cfg: ConsumerConfig,
    /// Wire names (namespace applied).
    group: String,
    retry_topic: String,
    client_id: String,
    subscriptions: Vec<Subscription>,
    queues: Mutex<HashSet<Owned>>,
    batches: flume::Sender<Box<Batch>>,
    /// Notified by the client's [`GroupHeartbeats`] when a broker says the members changed.
    rebalance_now: Arc<Notify>,
    stop: CancellationToken,
    /// Serialises commits so an older offset never overtakes a newer one on the wire.
    commit_lock: tokio::sync::Mutex<()>,
    /// The last re-balance failed (logged once per outage).
    rebalance_failing: AtomicBool,
    /// Brokers whose queues fail to pull now, for logging once per outage.
    outages: pull::Outages,
    /// Created on first use by the send-back fallback.
    fallback_producer: tokio::sync::OnceCell<crate::producer::Producer>,
}

/// An owned queue's state in the consumer's set, found by its queue: the queue's name is not
/// stored a second time as the key (thousands of consumers per process, a few queues each).
#[derive(Clone)]
struct Owned(Arc<QueueState>);

impl std::borrow::Borrow<MessageQueue> for Owned {
    fn borrow(&self) -> &MessageQueue {
        &self.0.queue
    }
}

impl std::hash::Hash for Owned {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.queue.hash(state);
    }
}

impl PartialEq for Owned {
    fn eq(&self, other: &Owned) -> bool {
        self.0.queue == other.0.queue
    }
}

impl Eq for Owned {}

struct QueueState {
    queue: MessageQueue,
    offsets: Mutex<QueueOffsets>,
    /// Signalled when acks make room below `max_unacked_per_queue`.
    room: Notify,
    /// Cancelled when the queue is revoked or the consumer stops.
    stop: CancellationToken,
}

/// (client id, group) pairs consuming in this process: a broker knows a group member by its
/// connection, so one client cannot be two members of one group.
fn active_members() -> &'static Mutex<HashSet<(String, String)>> {
    static ACTIVE: OnceLock<Mutex<HashSet<(String, String)>>> = OnceLock::new();
    ACTIVE.get_or_init(Mutex::default)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Consumer {
    /// Joins the group and starts consuming. Fails on bad settings, an unknown topic, or
    /// refused credentials; later broker or name-server failures are retried in the background.
    pub async fn start(client: Client, cfg: ConsumerConfig) -> Result<Consumer, Error> {
        cfg.validate()?;
        let group = client.wrap(&cfg.group);
        let topic = client.wrap(&cfg.topic);
        let retry_topic = format!("%RETRY%{group}");
        let version = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let mut subscriptions = vec![Subscription::new(&topic, &cfg.expression, version).map_err(Error::Config)?];
        if cfg.consume_retry_topic {
            subscriptions.push(Subscription::new(&retry_topic, "*", version).map_err(Error::Config)?);
        }
        let client_id = client.client_id().to_string();
        let member = (client_id.clone(), group.clone());
        if !lock(active_members()).insert(member.clone()) {
            return Err(Error::Config(format!(
                "client {client_id} already runs a consumer of group {group:?}; use one consumer per group per client (or another Client)"
            )));
        }
        let (tx, batches) = flume::bounded(cfg.channel_capacity);
        let shared = Arc::new(Shared {
            client: client.clone(),
            cfg,
            group,
            retry_topic,
            client_id,
            subscriptions,
            queues: Mutex::default(),
            batches: tx,
            rebalance_now: Arc::default(),
            stop: CancellationToken::new(),
            commit_lock: tokio::sync::Mutex::new(()),
            rebalance_failing: AtomicBool::new(false),
            outages: pull::Outages::default(),
            fallback_producer: tokio::sync::OnceCell::new(),
        });
        let joined = async {
            // The main topic must exist; the retry topic appears after our first heartbeat.
            client.topic_route(&shared.subscriptions[0].topic).await?;
            shared.join_heartbeats().await?;
            // A broker announces a new member to the group (us) before it answers the
            // heartbeat: the re-balance below sees that member already, so a wake-up stored
            // until now would only repeat it (10 000 groups: 20 000 member lists more at start).
            let _ = futures_util::FutureExt::now_or_never(shared.rebalance_now.notified());
            shared.rebalance().await;
            Ok::<(), Error>(())
        };
        if let Err(e) = joined.await {
            client.group_heartbeats().unregister(&shared.group);
            lock(active_members()).remove(&member);
            return Err(e);
        }
        info!(group = %shared.group, topic = %shared.subscriptions[0].topic, client_id = %shared.client_id, "consumer started");
        shared.cfg.stats.running(&shared);
        let tasks = vec![tokio::spawn(shared.clone().housekeeping())];
        Ok(Consumer { shared, batches, tasks })
    }

    /// The next batch. Batches of queues revoked meanwhile are skipped (their new owner gets
    /// them again from the committed offset).
    pub async fn recv(&mut self) -> Option<Batch> {
        loop {
            let batch = self.batches.recv_async().await.ok()?;
            if !batch.revoked() {
                return Some(*batch);
            }
        }
    }

    /// Marks one message done. The committed offset of the queue becomes the lowest offset not
    /// yet acknowledged, so acks may come in any order. Acks for queues no longer owned are ignored.
    pub fn ack(&self, queue: &MessageQueue, queue_offset: i64) {
        self.shared.ack(queue, queue_offset)
    }

    /// A handle that acknowledges and sends back for this consumer from other tasks, e.g. the
    /// workers that process its batches in parallel.
    pub fn acks(&self) -> Acks {
        Acks(self.shared.clone())
    }

    /// Commits acknowledged offsets now. Reports the first failure (every queue is still tried).
    pub async fn commit(&self) -> Result<(), Error> {
        self.shared.commit_all().await
    }

    /// Sends a message back for redelivery after `delay_level` (1 = 1 s … 18 = 2 h; 0 lets the
    /// broker pick by reconsume count), or to `%DLQ%<group>` after `max_reconsume_times`, as
    /// the Java consumer does. Ack the message afterwards. If the broker refuses, the message is
    /// re-sent to `%RETRY%<group>` as a new message, like Java's fallback.
    pub async fn send_back(&self, message: &MessageExt, delay_level: i32) -> Result<(), Error> {
        self.shared.send_back(message, delay_level).await
    }

    /// The client id brokers list for this consumer.
    pub fn client_id(&self) -> &str {
        &self.shared.client_id
    }

    /// This consumer's counters and queue progress.
    pub fn stats(&self) -> &Arc<ConsumerStats> {
        &self.shared.cfg.stats
    }

    /// The queues currently owned.
    pub fn assigned_queues(&self) -> Vec<MessageQueue> {
        let mut queues: Vec<MessageQueue> = lock(&self.shared.queues).iter().map(|owned| owned.0.queue.clone()).collect();
        queues.sort();
        queues
    }

    /// Stops pulling, commits what was acknowledged, and leaves the group.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.shared.stop.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        let states: Vec<Arc<QueueState>> = lock(&self.shared.queues).iter().map(|owned| owned.0.clone()).collect();
        for state in &states {
            state.stop.cancel();
        }
        let committed = self.shared.commit_all().await;
        self.shared.client.group_heartbeats().unregister(&self.shared.group);
        self.shared.unregister().await;
        lock(&self.shared.queues).clear();
        info!(group = %self.shared.group, "consumer stopped");
        committed
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shared.stop.cancel();
        for task in &self.tasks {
            task.abort();
        }
        self.shared.client.group_heartbeats().unregister(&self.shared.group);
        lock(active_members()).remove(&(self.shared.client_id.clone(), self.shared.group.clone()));
    }
}

/// What [`Consumer::ack`] and [`Consumer::send_back`] do, from any task; cheap to clone. It
/// keeps working until the consumer shuts down (acks after that are ignored).
#[derive(Clone)]
pub struct Acks(Arc<Shared>);

impl Acks {
    /// As [`Consumer::ack`].
    pub fn ack(&self, queue: &MessageQueue, queue_offset: i64) {
        self.0.ack(queue, queue_offset)
    }

    /// As [`Consumer::send_back`].
    pub async fn send_back(&self, message: &MessageExt, delay_level: i32) -> Result<(), Error> {
        self.0.send_back(message, delay_level).await
    }
}

impl Shared {
    fn ack(&self, queue: &MessageQueue, queue_offset: i64) {
        let state = lock(&self.queues).get(queue).map(|owned| owned.0.clone());
        if let Some(state) = state {
            let mut offsets = lock(&state.offsets);
            if offsets.ack(queue_offset) && offsets.unacked() < self.cfg.max_unacked_per_queue {
                state.room.notify_one();
            }
        }
    }

    fn request_timeout(&self) -> Duration {
        self.client.config().request_timeout
    }

    fn consume_from(&self) -> ConsumeFromWhere {
        match self.cfg.start {
            StartPosition::Latest => ConsumeFromWhere::LastOffset,
            StartPosition::Earliest => ConsumeFromWhere::FirstOffset,
            StartPosition::Timestamp(_) => ConsumeFromWhere::Timestamp,
        }
    }

    /// Adds the group to the client's shared heartbeat and waits until a broker took a
    /// heartbeat carrying it.
    async fn join_heartbeats(&self) -> Result<(), Error> {
        let data = heartbeat::consumer_data(&self.group, self.consume_from(), &self.subscriptions);
        let heartbeats = self.client.group_heartbeats();
        heartbeats.register(&self.client, &self.group, data, self.cfg.heartbeat_interval, self.rebalance_now.clone());
        heartbeats.join(&self.client, &self.group).await
    }

    /// A heartbeat now (shared with other groups asking at the same time), e.g. after a
    /// broker restart forgot us.
    async fn heartbeat_now(&self) -> Result<(), Error> {
        self.client.group_heartbeats().beat_after(&self.client, Instant::now()).await
    }

    /// The consumer's timers, on one task (thousands of consumers per process): commits every
    /// `commit_interval`, re-balances every `rebalance_interval` ± jitter and when a broker says
    /// the members changed, refreshes stale max offsets. A step delays the others while it runs
    /// (a re-balance during an outage: seconds); pulls commit meanwhile. Each step is boxed, so
    /// the waiting task stays small.
    async fn housekeeping(self: Arc<Self>) {
        let start = Instant::now();
        let mut commit_at = start + self.cfg.commit_interval;
        // Jitter: thousands of consumers started together do not re-balance together.
        let mut rebalance_at = start + rebalance::jittered(self.cfg.rebalance_interval);
        let mut max_offset_at = start + MAX_OFFSET_REFRESH;
        let mut commits_failing = false;
        loop {
            let next = commit_at.min(rebalance_at).min(max_offset_at);
            let members_changed = tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep_until(next.into()) => false,
                _ = self.rebalance_now.notified() => true,
            };
            let now = Instant::now();
            if members_changed || now >= rebalance_at {
                Box::pin(self.rebalance()).await;
                rebalance_at = Instant::now() + rebalance::jittered(self.cfg.rebalance_interval);
            }
            if now >= commit_at {
                Box::pin(self.commit_tick(&mut commits_failing)).await;
                commit_at = Instant::now() + self.cfg.commit_interval;
            }
            if now >= max_offset_at {
                Box::pin(self.refresh_max_offsets()).await;
                max_offset_at = Instant::now() + MAX_OFFSET_REFRESH;
            }
        }
    }

    /// The periodic commit; a failure is logged once per outage (commits are retried every
    /// interval anyway).
    async fn commit_tick(&self, failing: &mut bool) {
        match self.commit_all().await {
            Ok(()) if std::mem::take(failing) => info!(group = %self.group, "offset commits work again"),
            Ok(()) => {}
            Err(e) if !*failing => {
                *failing = true;
                warn!(group = %self.group, error = %e, "offset commit failed; retrying every commit interval");
            }
            Err(e) => debug!(group = %self.group, error = %e, "offset commit failed again"),
        }
    }

    async fn commit_all(&self) -> Result<(), Error> {
        let states: Vec<Arc<QueueState>> = lock(&self.queues).iter().map(|owned| owned.0.clone()).collect();
        let _serial = self.commit_lock.lock().await;
        let mut first_error = None;
        for state in states {
            if let Err(e) = self.commit_queue(&state).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Persists one queue's committable offset if it moved.
    async fn commit_queue(&self, state: &QueueState) -> Result<(), Error> {
        let Some(offset) = lock(&state.offsets).pending_commit() else {
            return Ok(());
        };
        let queue = &state.queue;
        let committed = async {
            let addr = self.client.find_master(&queue.topic, &queue.broker_name).await?;
            rpc::update_offset(&self.client, &addr, &self.group, queue, offset, self.request_timeout()).await
        };
        if let Err(e) = committed.await {
            self.cfg.stats.commit_failed();
            return Err(e);
        }
        lock(&state.offsets).persisted(offset);
        debug!(queue = %queue, offset, "offset committed");
        Ok(())
    }

    async fn unregister(&self) {
        if self.client.is_leaving() {
            debug!(group = %self.group, "leaving with the client's connections, not one by one");
            return;
        }
        for addr in self.client.all_broker_addrs() {
            if let Err(e) = rpc::unregister(&self.client, &addr, &self.client_id, &self.group, self.request_timeout()).await {
                debug!(broker = %addr, error = %e, "unregister failed; the broker drops us when our heartbeat expires");
            }
        }
    }

    async fn send_back(&self, message: &MessageExt, delay_level: i32) -> Result<(), Error> {
        // A redelivered message carries its original topic; the broker wants that as origin.
        let origin_topic = self.client.wrap(&message.topic);
        let addr = self.client.find_master(&origin_topic, &message.broker_name).await;
        let sent = match addr {
            Ok(addr) => {
                let back = rpc::SendBack {
                    group: &self.group,
                    message,
                    origin_topic: &origin_topic,
                    delay_level,
                    max_reconsume_times: self.cfg.max_reconsume_times,
                };
                rpc::send_back(&self.client, &addr, back, self.request_timeout()).await
            }
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => Ok(()),
            Err(e) => {
                warn!(group = %self.group, msg_id = %message.message_id(), error = %e, "send back refused; re-sending to the retry topic");
                self.resend_to_retry_topic(message, &origin_topic).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientConfig;
    use crate::codes::{request, response};
    use crate::command::RemotingCommand;
    use crate::connection::RequestHandler;

    /// A broker that, as a real one does, tells a heartbeat's groups their members changed
    /// before it answers the heartbeat. Pulls are held, never answered. Sends the code of every
    /// request but route lookups on `codes`.
    async fn fake_broker(codes: tokio::sync::mpsc::UnboundedSender<i32>) -> String {
        let members = Mutex::new(Vec::new());
        fake::fake_cluster(move |request| {
            codes.send(request.code).unwrap();
            let answer = RemotingCommand::response_to(request, response::SUCCESS, None);
            match request.code {
                request::HEART_BEAT => {
                    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                    *lock(&members) = vec![body["clientID"].clone()];
                    let groups = body["consumerDataSet"].as_array().unwrap().iter().map(|c| c["groupName"].as_str().unwrap());
                    let mut frames: Vec<RemotingCommand> = groups
                        .map(|group| {
                            let mut notify = RemotingCommand::request(request::NOTIFY_CONSUMER_IDS_CHANGED).with_field("consumerGroup", group);
                            notify.mark_oneway();
                            notify
                        })
                        .collect();
                    frames.push(answer);
                    frames
                }
                request::GET_CONSUMER_LIST_BY_GROUP => {
                    vec![answer.with_body(serde_json::json!({ "consumerIdList": *lock(&members) }).to_string().into_bytes())]
                }
                request::QUERY_CONSUMER_OFFSET => vec![answer.with_field("offset", 0)],
                request::PULL_MESSAGE => Vec::new(),
                _ => vec![answer],
            }
        })
        .await
    }

    fn member_lists(codes: &mut tokio::sync::mpsc::UnboundedReceiver<i32>) -> usize {
        std::iter::from_fn(|| codes.try_recv().ok()).filter(|code| *code == request::GET_CONSUMER_LIST_BY_GROUP).count()
    }

    #[tokio::test]
    async fn a_start_lists_the_members_once_per_topic_and_a_later_change_re_balances() {
        let (tx, mut codes) = tokio::sync::mpsc::unbounded_channel();
        let addr = fake_broker(tx).await;
        let client = Client::new(ClientConfig::new([addr])).unwrap();
        let consumer = Consumer::start(client.clone(), ConsumerConfig::new("G", "T")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(member_lists(&mut codes), 2, "the topic and the retry topic, each once: the broker's news of our own join is not news");

        let notify = RemotingCommand::request(request::NOTIFY_CONSUMER_IDS_CHANGED).with_field("consumerGroup", client.wrap("G"));
        assert!(client.group_heartbeats().handle("broker", &notify).is_some());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(member_lists(&mut codes), 2, "a change after the start re-balances both topics");
        drop(consumer);
    }
}
