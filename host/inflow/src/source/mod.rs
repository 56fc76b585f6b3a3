//! The RocketMQ side: one client per process and one cluster consumer per rule.
//!
//! A rule reads its messages through two small traits, [`Source`] (start consuming) and
//! [`Subscription`] (batches, ack, send back), so the rule runner can be tested with in-memory
//! fakes; [`RocketMq`] and [`Consumer`] are the real ones.

use crate::config::{RocketMqConfig, RuleConfig, StartFrom};
use rocketmq_remoting::{Client, ClientConfig, Consumer, ConsumerConfig, Credentials, MessageExt, StartPosition};
use std::future::Future;
use std::sync::Arc;

pub use rocketmq_remoting::{ConsumerStats, MessageQueue};

/// The client all rules (and `inflow send`) share.
pub fn client(config: &RocketMqConfig) -> Result<Client, rocketmq_remoting::Error> {
    let mut cfg = ClientConfig::new(config.namesrv.iter().cloned());
    if let (Some(ak), Some(sk)) = (&config.access_key, &config.secret_key) {
        cfg = cfg.with_credentials(Credentials::new(ak.clone(), sk.expose()));
    }
    if let Some(ns) = &config.namespace {
        cfg = cfg.with_namespace(ns.clone());
    }
    Client::new(cfg)
}

/// The consumer settings of one rule, counting into the rule's `stats`.
pub fn consumer_config(rule: &RuleConfig, rocketmq: &RocketMqConfig, stats: Arc<ConsumerStats>) -> ConsumerConfig {
    let mut cfg = ConsumerConfig::new(rule.source.group.clone(), rule.source.topic.clone());
    cfg.stats = stats;
    cfg.commit_interval = rocketmq.commit_interval;
    cfg.expression = rule.source.expression.clone();
    cfg.start = match rule.source.start {
        StartFrom::Latest => StartPosition::Latest,
        StartFrom::Earliest => StartPosition::Earliest,
    };
    cfg.max_unacked_per_queue = rule.limits.max_unacked_per_queue;
    cfg
}

/// Whether a failure to subscribe is expected to heal without anyone acting (a broker
/// restarting, a topic the brokers will create): a warning, not an error.
pub fn heals_by_itself(error: &anyhow::Error) -> bool {
    error.downcast_ref::<rocketmq_remoting::Error>().is_some_and(rocketmq_remoting::Error::heals_by_itself)
}

/// A consumed RocketMQ message, shared (behind an `Arc`) by the rule runner and the mapping.
pub struct Message(pub MessageExt);

/// Messages of one queue, in offset order.
pub struct Batch {
    pub queue: MessageQueue,
    pub messages: Vec<MessageExt>,
}

/// Where a rule's messages come from: starts one subscription per rule run.
pub trait Source: Send + Sync + 'static {
    type Subscription: Subscription;
    /// Starts consuming for `rule`; the consumer counts into `stats` (the rule's, kept across
    /// its runs).
    fn subscribe(&self, rule: &RuleConfig, stats: Arc<ConsumerStats>) -> impl Future<Output = anyhow::Result<Self::Subscription>> + Send;
}

/// A rule's running subscription: batches in queue order, and what becomes of each message.
pub trait Subscription: Send + 'static {
    type Acks: Acks;
    /// The next batch; None once the subscription ended.
    fn recv(&mut self) -> impl Future<Output = Option<Batch>> + Send;
    /// The handle the rule's workers settle messages through.
    fn acks(&self) -> Self::Acks;
    /// Stops consuming and commits what was acknowledged.
    fn shutdown(self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// What becomes of each message of a subscription, shared by the workers of a rule.
pub trait Acks: Clone + Send + Sync + 'static {
    /// The message is done (delivered, skipped or sent back): its offset may be committed.
    fn ack(&self, queue: &MessageQueue, queue_offset: i64);
    /// Hands the message to RocketMQ's retry / dead-letter topic of the group.
    fn send_back(&self, message: &MessageExt) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The real source: cluster consumers on the process's RocketMQ client.
#[derive(Clone)]
pub struct RocketMq {
    pub client: Client,
    /// Shared: every rule holds a `RocketMq` (thousands per host).
    pub config: Arc<RocketMqConfig>,
}

impl Source for RocketMq {
    type Subscription = Consumer;
    async fn subscribe(&self, rule: &RuleConfig, stats: Arc<ConsumerStats>) -> anyhow::Result<Consumer> {
        Ok(Consumer::start(self.client.clone(), consumer_config(rule, &self.config, stats)).await?)
    }
}

impl Subscription for Consumer {
    type Acks = rocketmq_remoting::Acks;
    async fn recv(&mut self) -> Option<Batch> {
        let batch = Consumer::recv(self).await?;
        Some(Batch { queue: batch.queue, messages: batch.messages })
    }
    fn acks(&self) -> rocketmq_remoting::Acks {
        Consumer::acks(self)
    }
    async fn shutdown(self) -> anyhow::Result<()> {
        Ok(Consumer::shutdown(self).await?)
    }
}

impl Acks for rocketmq_remoting::Acks {
    fn ack(&self, queue: &MessageQueue, queue_offset: i64) {
        rocketmq_remoting::Acks::ack(self, queue, queue_offset)
    }
    async fn send_back(&self, message: &MessageExt) -> anyhow::Result<()> {
        // Delay level 0: the broker picks it from the reconsume count, as for a Java consumer.
        Ok(rocketmq_remoting::Acks::send_back(self, message, 0).await?)
    }
}

/// A stored message at `queue`/`offset` with these properties, for unit tests.
#[cfg(test)]
pub(crate) fn test_message(queue: i32, offset: i64, properties: rocketmq_remoting::Properties) -> MessageExt {
    let host = "127.0.0.1:10911".parse().unwrap();
    MessageExt {
        topic: "T".into(),
        broker_name: "b".into(),
        queue_id: queue,
        queue_offset: offset,
        commit_log_offset: 0,
        store_size: 0,
        body_crc: 0,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 0,
        store_timestamp: 0,
        born_host: host,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: bytes::Bytes::from_static(b"body"),
        properties,
    }
}
