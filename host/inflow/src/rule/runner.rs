//! The at-least-once core: consume, map, publish in order, and acknowledge each RocketMQ message
//! only once every publish it produced is complete. Generic over its [`Source`], [`Publisher`]
//! and [`PluginVersion`], so its unit tests (`tests.rs`) run it on in-memory fakes.
//!
//! A rule's queues are spread over `workers` tasks, each with its own mapper (its own plugin
//! instance). Every batch of a queue goes to the same worker, so each queue keeps its order;
//! workers settle messages through the subscription's [`Acks`] handle.

use super::status::{RuleCounters, RuleStatus};
use crate::config::{OnError, RuleConfig};
use crate::mapping::{MapError, MapResult, Mapper, Mapping, PluginVersion, TopicScope};
use crate::sink::{Delivery, Publish, PublishError, Publisher, QoS};
use crate::source::{Acks, Batch, Message, MessageQueue, Source, Subscription};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

/// What a rule needs from the process.
pub(crate) struct RuleEnv<S, P, V> {
    pub source: S,
    pub publisher: P,
    pub max_topic_bytes: usize,
    /// The rule's plugin as the folder watcher sees it (None: no valid file now).
    pub plugin: Option<watch::Receiver<Option<Arc<V>>>>,
    /// How long in-flight publishes may take to complete once the rule is told to stop.
    pub drain_grace: Duration,
}

/// Why the consume loop ended.
enum Outcome {
    Stop,
    PluginGone,
    Pause(String),
}

type Pending = Pin<Box<dyn Future<Output = (MessageQueue, Arc<Message>, Result<(), PublishError>)> + Send>>;

pub(crate) async fn run<S: Source, P: Publisher, V: PluginVersion>(
    rule: Arc<RuleConfig>,
    mut env: RuleEnv<S, P, V>,
    mut stop: watch::Receiver<bool>,
    status: watch::Sender<RuleStatus>,
    counters: Arc<RuleCounters>,
) {
    let id = rule.id.as_str();
    if !rule.enabled {
        let _ = status.send(RuleStatus::Disabled);
        info!(rule = %id, "rule disabled: consuming nothing");
        return;
    }
    let mut backoff = Duration::from_millis(500);
    // The failure to start last logged: a retry failing the same way logs at debug level only.
    let mut failing: Option<String> = None;
    let mut attempts = 0u32;
    loop {
        if *stop.borrow() {
            break;
        }
        // Start-up and shutdown futures are large and short-lived: boxed, so a running rule's
        // task holds only what running needs (thousands of rules per host).
        let Some(mappers) = Box::pin(mappers(&rule, &mut env, &mut stop, &status)).await else { break };
        let _ = status.send(RuleStatus::Starting);
        attempts += 1;
        let subscription = match Box::pin(env.source.subscribe(&rule, counters.consumer.clone())).await {
            Ok(s) => s,
            Err(e) => {
                let error = format!("{e:#}");
                let retry_in_ms = backoff.as_millis() as u64;
                if failing.as_deref() == Some(error.as_str()) {
                    debug!(rule = %id, error = %error, retry_in_ms, "rule still cannot start its consumer");
                } else if crate::source::heals_by_itself(&e) {
                    warn!(rule = %id, error = %error, retry_in_ms, "rule cannot start its consumer yet; retrying");
                } else {
                    error!(rule = %id, error = %error, retry_in_ms, "rule cannot start its consumer");
                }
                let _ = status.send(RuleStatus::Failed(error.clone()));
                failing = Some(error);
                tokio::select! { _ = tokio::time::sleep(backoff) => {}, _ = stop.changed() => {} }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if failing.take().is_some() {
            info!(rule = %id, attempts, "rule's consumer started after failed attempts");
        }
        attempts = 0;
        backoff = Duration::from_millis(500);
        let _ = status.send(RuleStatus::Running);
        info!(rule = %id, topic = %rule.source.topic, group = %rule.source.group, parent_topic = %rule.parent_topic,
              mapping = rule.plugin.as_ref().map_or("builtin", |p| p.name.as_str()), workers = mappers.len(), "rule started");
        // Boxed too: the rule's task then holds only the running step, not it beside the others.
        let outcome = Box::pin(consume(&rule, &env, subscription, mappers, &mut stop, &counters)).await;
        match outcome {
            Outcome::Stop => break,
            Outcome::PluginGone => {
                warn!(rule = %id, "rule's plugin was removed: stopped consuming, offsets held until it returns");
            }
            Outcome::Pause(reason) => {
                error!(rule = %id, reason = %reason, "rule paused: offsets held");
                let _ = status.send(RuleStatus::Paused(reason));
                stopped(&mut stop).await;
                info!(rule = %id, "rule stopped");
                return;
            }
        }
    }
    let _ = status.send(RuleStatus::Stopped);
    info!(rule = %id, "rule stopped");
}

/// One mapper per worker: built-in, or instances of the plugin's current version (waiting for a
/// valid file while there is none). None when told to stop meanwhile.
async fn mappers<S, P, V: PluginVersion>(
    rule: &RuleConfig,
    env: &mut RuleEnv<S, P, V>,
    stop: &mut watch::Receiver<bool>,
    status: &watch::Sender<RuleStatus>,
) -> Option<Vec<Mapper<V::Instance>>> {
    let mapper = |mapping| Mapper { mapping, topics: topic_scope(rule, env.max_topic_bytes) };
    let Some(plugin_ref) = &rule.plugin else {
        return Some((0..rule.workers).map(|_| mapper(Mapping::Builtin)).collect());
    };
    let rx = env.plugin.as_mut().expect("a plugin rule has a plugin receiver");
    loop {
        let current = rx.borrow_and_update().clone();
        match current {
            None => {
                let _ = status.send(RuleStatus::WaitingForPlugin);
                warn!(rule = %rule.id, plugin = %plugin_ref.name, "rule waits for its plugin (no valid file in the plugin folder)");
            }
            Some(plugin) => match (0..rule.workers).map(|_| V::instantiate(&plugin, rule)).collect::<Result<Vec<_>, _>>() {
                Ok(instances) => return Some(instances.into_iter().map(|i| mapper(Mapping::plugin(i))).collect()),
                Err(e) => {
                    error!(rule = %rule.id, error = %e, "rule cannot start its plugin; waiting for a new version");
                    let _ = status.send(RuleStatus::Failed(e));
                }
            },
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return None },
            _ = stopped(stop) => return None,
        }
    }
}

fn topic_scope(rule: &RuleConfig, max_topic_bytes: usize) -> TopicScope {
    TopicScope { parent: rule.parent_topic.clone(), allow: rule.allow_topics.clone(), max_bytes: max_topic_bytes }
}

/// Batches a worker may have waiting: enough to keep it busy while the next one is pulled.
const LANE_DEPTH: usize = 2;

/// One run of a consumer: hands each queue's batches to one worker (so each queue stays in order)
/// until the rule stops or a worker ends the run, lets every worker drain, then commits.
async fn consume<S: Source, P: Publisher, V: PluginVersion>(
    rule: &Arc<RuleConfig>,
    env: &RuleEnv<S, P, V>,
    mut subscription: S::Subscription,
    mappers: Vec<Mapper<V::Instance>>,
    stop: &mut watch::Receiver<bool>,
    counters: &Arc<RuleCounters>,
) -> Outcome {
    // Tells the workers to end, once the rule stops or one of them ended the run.
    let (halt, halted) = watch::channel(false);
    // A worker and its lane start with the first batch it is given: a rule whose queues are
    // idle holds no worker tasks (thousands of rules per host, most of them quiet).
    let mut idle: Vec<Option<Mapper<V::Instance>>> = mappers.into_iter().map(Some).collect();
    let mut lanes: Vec<Option<flume::Sender<Box<Batch>>>> = idle.iter().map(|_| None).collect();
    let mut workers = JoinSet::new();
    let mut assignment = Assignment::new(lanes.len());
    let mut outcome = loop {
        tokio::select! {
            biased;
            _ = stopped(stop) => break Outcome::Stop,
            Some(ended) = workers.join_next() => break ended.unwrap_or(Outcome::Stop),
            batch = subscription.recv() => {
                let Some(batch) = batch else { break Outcome::Stop };
                let l = assignment.lane(&batch.queue);
                let lane = lanes[l].get_or_insert_with(|| {
                    // flume: ~0.2 KB a lane where tokio's mpsc takes ~0.8 KB.
                    let (tx, batches) = flume::bounded(LANE_DEPTH);
                    let mapper = idle[l].take().expect("a lane without a sender has its mapper");
                    let worker = Worker {
                        rule: rule.clone(),
                        publisher: env.publisher.clone(),
                        acks: subscription.acks(),
                        // Cloned from the receiver the mappers were made from: a version that
                        // arrived since is still seen as new by this worker.
                        plugin: env.plugin.clone(),
                        drain_grace: env.drain_grace,
                        pending: FuturesUnordered::new(),
                        counters: counters.clone(),
                    };
                    workers.spawn(worker.run(mapper, batches, halted.clone()));
                    tx
                });
                // Waits while that worker is busy: back-pressure on the consumer.
                tokio::select! {
                    biased;
                    _ = stopped(stop) => break Outcome::Stop,
                    Some(ended) = workers.join_next() => break ended.unwrap_or(Outcome::Stop),
                    sent = lane.send_async(Box::new(batch)) => if sent.is_err() { break Outcome::Stop },
                }
            }
        }
    };
    let _ = halt.send(true);
    drop(lanes);
    while let Some(ended) = workers.join_next().await {
        // A pause outranks a removed plugin, which outranks a plain stop.
        match (ended.unwrap_or(Outcome::Stop), &outcome) {
            (o @ Outcome::Pause(_), Outcome::Stop | Outcome::PluginGone) | (o @ Outcome::PluginGone, Outcome::Stop) => outcome = o,
            _ => {}
        }
    }
    if let Err(e) = Box::pin(subscription.shutdown()).await {
        warn!(rule = %rule.id, error = %format!("{e:#}"), "rule could not commit its offsets on stop; uncommitted messages will be delivered again");
    }
    outcome
}

/// Messages of one batch mapped and not yet handed to the sink, with how many publishes each made.
#[derive(Default)]
struct Mapped {
    messages: Vec<(Arc<Message>, usize)>,
    publishes: Vec<Publish>,
}

/// Which worker serves each queue: a new queue goes to the worker with the fewest queues.
/// Queues are known by a hash of their name, not a copy of it (two strings a queue, thousands of
/// rules per host); two queues sharing a hash share a worker, which keeps each one's order.
struct Assignment {
    lanes: HashMap<u64, usize>,
    queues_per_lane: Vec<usize>,
}

impl Assignment {
    fn new(workers: usize) -> Assignment {
        Assignment { lanes: HashMap::new(), queues_per_lane: vec![0; workers] }
    }

    fn lane(&mut self, queue: &MessageQueue) -> usize {
        let key = BuildHasherDefault::<DefaultHasher>::default().hash_one(queue);
        if let Some(&lane) = self.lanes.get(&key) {
            return lane;
        }
        let lane = (0..self.queues_per_lane.len()).min_by_key(|&l| self.queues_per_lane[l]).expect("at least one worker");
        self.queues_per_lane[lane] += 1;
        self.lanes.insert(key, lane);
        lane
    }
}

/// Maps the batches of its queues in order, publishes, and settles each message once its
/// publishes completed. Each worker has its own mapper (its own plugin instance).
struct Worker<P, A, V> {
    rule: Arc<RuleConfig>,
    publisher: P,
    acks: A,
    /// The rule's plugin as the folder watcher sees it; each worker takes a new version itself.
    plugin: Option<watch::Receiver<Option<Arc<V>>>>,
    drain_grace: Duration,
    /// One future per message whose publishes are in flight.
    pending: FuturesUnordered<Pending>,
    counters: Arc<RuleCounters>,
}

impl<P: Publisher, A: Acks, V: PluginVersion> Worker<P, A, V> {
    /// Works until halted or its lane closes (then drains), or until it must end the run.
    async fn run(mut self, mut mapper: Mapper<V::Instance>, batches: flume::Receiver<Box<Batch>>, mut halt: watch::Receiver<bool>) -> Outcome {
        let outcome = self.consume(&mut mapper, &batches, &mut halt).await;
        Box::pin(self.drain()).await;
        outcome
    }

    async fn consume(&mut self, mapper: &mut Mapper<V::Instance>, batches: &flume::Receiver<Box<Batch>>, halt: &mut watch::Receiver<bool>) -> Outcome {
        // Also watched while one message waits for room in the MQTT window.
        let mut halt_mid_message = halt.clone();
        loop {
            tokio::select! {
                biased;
                _ = stopped(halt) => return Outcome::Stop,
                Some((queue, message, result)) = self.pending.next(), if !self.pending.is_empty() => {
                    if let Some(outcome) = Box::pin(self.delivered(queue, message, result)).await {
                        return outcome;
                    }
                }
                batch = batches.recv_async() => {
                    let Ok(batch) = batch else { return Outcome::Stop };
                    let outcome = tokio::select! {
                        biased;
                        _ = stopped(&mut halt_mid_message) => Some(Outcome::Stop),
                        // Boxed, as the other rare or large steps: an idle worker then holds a
                        // small future, which counts with thousands of rules per host.
                        o = Box::pin(self.handle(mapper, *batch)) => o,
                    };
                    if let Some(outcome) = outcome {
                        return outcome;
                    }
                }
            }
        }
    }

    /// At a message boundary: take a new plugin version if one arrived.
    fn swap_plugin(&mut self, mapper: &mut Mapper<V::Instance>) -> Option<Outcome> {
        let rx = self.plugin.as_mut()?;
        if !rx.has_changed().unwrap_or(false) {
            return None;
        }
        let Some(plugin) = rx.borrow_and_update().clone() else { return Some(Outcome::PluginGone) };
        match V::instantiate(&plugin, &self.rule) {
            Ok(instance) => {
                info!(rule = %self.rule.id, plugin = %plugin.name(), version = %plugin.version(), "rule switched to a new plugin version");
                mapper.mapping = Mapping::plugin(instance);
            }
            Err(e) => error!(rule = %self.rule.id, error = %e, "new plugin version cannot start for this rule; the previous one goes on serving"),
        }
        None
    }

    /// Maps a batch in order and hands the publishes to the sink a few dozen at a time; `Some`
    /// ends the loop (pause, plugin removed, sink closed).
    async fn handle(&mut self, mapper: &mut Mapper<V::Instance>, batch: Batch) -> Option<Outcome> {
        let queue = batch.queue;
        let mut messages: VecDeque<Arc<Message>> = batch.messages.into_iter().map(|m| Arc::new(Message(m))).collect();
        let mut mapped = Mapped::default();
        while !messages.is_empty() {
            // A new plugin version is taken here, at a message boundary.
            if let Some(outcome) = self.swap_plugin(mapper) {
                return self.hand_over(&queue, &mut mapped).await.or(Some(outcome));
            }
            for MapResult { message, result, took } in mapper.map_front(&mut messages).await {
                self.counters.messages.fetch_add(1, Relaxed);
                self.counters.map_seconds.observe(took.as_secs_f64());
                match result {
                    Ok(publishes) => {
                        mapped.messages.push((message, publishes.len()));
                        mapped.publishes.extend(publishes);
                        if mapped.publishes.len() >= self.publisher.max_batch() {
                            if let Some(outcome) = self.hand_over(&queue, &mut mapped).await {
                                return Some(outcome);
                            }
                        }
                    }
                    Err(e) => {
                        // What came before goes out first, so a pause stops exactly at this message.
                        if let Some(outcome) = self.hand_over(&queue, &mut mapped).await {
                            return Some(outcome);
                        }
                        if let Some(outcome) = self.on_error(&queue, &message, e).await {
                            return Some(outcome);
                        }
                    }
                }
            }
        }
        self.hand_over(&queue, &mut mapped).await
    }

    /// Hands what is mapped to the sink and tracks each message until its publishes complete.
    async fn hand_over(&mut self, queue: &MessageQueue, mapped: &mut Mapped) -> Option<Outcome> {
        let mut deliveries = Vec::with_capacity(mapped.publishes.len());
        while !mapped.publishes.is_empty() {
            let chunk: Vec<Publish> = mapped.publishes.drain(..mapped.publishes.len().min(self.publisher.max_batch())).collect();
            let qos: Vec<QoS> = chunk.iter().map(|p| p.qos).collect();
            match self.publisher.publish(chunk).await {
                Ok(d) => {
                    qos.into_iter().for_each(|q| self.counters.count_publish(q));
                    deliveries.extend(d);
                }
                // The sink closes only at shutdown: leave the messages unacknowledged.
                Err(_) => return Some(Outcome::Stop),
            }
        }
        let mut deliveries = deliveries.into_iter();
        for (message, count) in mapped.messages.drain(..) {
            let mine: Vec<Delivery> = deliveries.by_ref().take(count).collect();
            self.counters.in_flight.fetch_add(1, Relaxed);
            let queue = queue.clone();
            self.pending.push(Box::pin(async move {
                for d in mine {
                    if let Err(e) = d.wait().await {
                        return (queue, message, Err(e));
                    }
                }
                (queue, message, Ok(()))
            }));
        }
        None
    }

    async fn delivered(&mut self, queue: MessageQueue, message: Arc<Message>, result: Result<(), PublishError>) -> Option<Outcome> {
        self.counters.in_flight.fetch_sub(1, Relaxed);
        match result {
            Ok(()) => {
                self.counters.count_forwarded();
                self.acks.ack(&queue, message.0.queue_offset);
                None
            }
            Err(PublishError::Closed) => Some(Outcome::Stop),
            Err(e) => self.on_error(&queue, &message, MapError::BrokerRefused(e)).await,
        }
    }

    /// The rule's on-error policy for one message.
    async fn on_error(&mut self, queue: &MessageQueue, message: &Message, error: MapError) -> Option<Outcome> {
        self.counters.count_error(error.kind());
        let m = &message.0;
        let msg_id = m.message_id();
        match self.rule.on_error {
            OnError::Skip => {
                warn!(rule = %self.rule.id, msg_id = %msg_id, queue = %queue, offset = m.queue_offset, error = %error, "message skipped");
                self.counters.skipped.fetch_add(1, Relaxed);
                self.acks.ack(queue, m.queue_offset);
                None
            }
            OnError::DeadLetter => match self.acks.send_back(m).await {
                Ok(()) => {
                    warn!(rule = %self.rule.id, msg_id = %msg_id, reconsume_times = m.reconsume_times, error = %error, "message sent back for retry / dead letter");
                    self.counters.dead_lettered.fetch_add(1, Relaxed);
                    self.acks.ack(queue, m.queue_offset);
                    None
                }
                Err(e) => Some(Outcome::Pause(format!("message {msg_id} failed ({error}) and could not be sent back: {e:#}"))),
            },
            OnError::Pause => Some(Outcome::Pause(format!("message {msg_id} at {queue} offset {}: {error}", m.queue_offset))),
        }
    }

    /// Lets in-flight publishes complete (up to the grace) and acknowledges those that did.
    async fn drain(&mut self) {
        let deadline = tokio::time::Instant::now() + self.drain_grace;
        while !self.pending.is_empty() {
            match tokio::time::timeout_at(deadline, self.pending.next()).await {
                Ok(Some((queue, message, Ok(())))) => {
                    self.counters.in_flight.fetch_sub(1, Relaxed);
                    self.counters.count_forwarded();
                    self.acks.ack(&queue, message.0.queue_offset);
                }
                // Failed or cut short: not acknowledged, so delivered again later.
                Ok(Some((_, _, Err(_)))) => {
                    self.counters.in_flight.fetch_sub(1, Relaxed);
                }
                Ok(None) => break,
                Err(_) => {
                    self.counters.in_flight.fetch_sub(self.pending.len() as u64, Relaxed);
                    warn!(rule = %self.rule.id, unfinished = self.pending.len(), "stop grace over; unacknowledged messages will be delivered again");
                    break;
                }
            }
        }
    }
}

/// Resolves once the rule is told to stop (or its supervisor is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests;
