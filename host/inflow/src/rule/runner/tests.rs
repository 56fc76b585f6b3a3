//! The runner on in-memory fakes: a source whose batches and acks the test sees, a publisher
//! whose completions the test decides (in any order), and plugin versions that tag what they map.
//! Time is paused, so waits for "nothing more happens" cost no wall time.

use super::*;
use crate::config::{parse, Context};
use crate::mapping::PluginInstance;
use crate::sink::{Completion, Publish};
use crate::source::Batch;
use rocketmq_remoting::{MessageExt, Properties};
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the runner did to its source, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Subscribed,
    Ack { queue: i32, offset: i64 },
    SentBack { offset: i64 },
    Shutdown,
}

#[derive(Default)]
struct SourceLog {
    events: Vec<Event>,
    /// Whether `send_back` fails.
    refuse_send_back: bool,
}

#[derive(Clone)]
struct FakeSource {
    batches: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Batch>>>,
    log: Arc<Mutex<SourceLog>>,
}

struct FakeSubscription(FakeSource);

impl Source for FakeSource {
    type Subscription = FakeSubscription;
    async fn subscribe(&self, _rule: &RuleConfig, _stats: Arc<crate::source::ConsumerStats>) -> anyhow::Result<FakeSubscription> {
        self.log.lock().unwrap().events.push(Event::Subscribed);
        Ok(FakeSubscription(self.clone()))
    }
}

impl Subscription for FakeSubscription {
    type Acks = FakeAcks;
    async fn recv(&mut self) -> Option<Batch> {
        self.0.batches.lock().await.recv().await
    }
    fn acks(&self) -> FakeAcks {
        FakeAcks(self.0.log.clone())
    }
    async fn shutdown(self) -> anyhow::Result<()> {
        self.0.log.lock().unwrap().events.push(Event::Shutdown);
        Ok(())
    }
}

#[derive(Clone)]
struct FakeAcks(Arc<Mutex<SourceLog>>);

impl Acks for FakeAcks {
    fn ack(&self, queue: &MessageQueue, offset: i64) {
        self.0.lock().unwrap().events.push(Event::Ack { queue: queue.queue_id, offset });
    }
    async fn send_back(&self, message: &MessageExt) -> anyhow::Result<()> {
        let mut log = self.0.lock().unwrap();
        anyhow::ensure!(!log.refuse_send_back, "the broker refused CONSUMER_SEND_MSG_BACK");
        log.events.push(Event::SentBack { offset: message.queue_offset });
        Ok(())
    }
}

/// Hands every publish to the test with the sender that completes it, at most three per call (so
/// batches are handed over in parts); a call with a topic that has "/slow" waits 10 ms first.
#[derive(Clone)]
struct FakePublisher(mpsc::UnboundedSender<(Publish, Completion)>);

impl Publisher for FakePublisher {
    async fn publish(&self, publishes: Vec<Publish>) -> Result<Vec<Delivery>, PublishError> {
        assert!(publishes.len() <= self.max_batch(), "{} publishes in one call", publishes.len());
        if publishes.iter().any(|p| p.topic.contains("/slow")) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut deliveries = Vec::new();
        for publish in publishes {
            let (done, delivery) = Delivery::channel();
            self.0.send((publish, done)).map_err(|_| PublishError::Closed)?;
            deliveries.push(delivery);
        }
        Ok(deliveries)
    }
    fn max_batch(&self) -> usize {
        3
    }
}

/// A plugin version whose instances publish `count` messages to `<parent>/<tag>/<offset>/<i>`,
/// where `count` is the message's `count` property (default 1); `fail` makes them refuse.
struct FakePlugin {
    tag: &'static str,
    /// Instances started of this version.
    instances: AtomicUsize,
}

impl FakePlugin {
    fn version(tag: &'static str) -> Arc<FakePlugin> {
        Arc::new(FakePlugin { tag, instances: AtomicUsize::new(0) })
    }
}

struct FakeInstance {
    tag: &'static str,
    parent: String,
}

impl PluginVersion for FakePlugin {
    type Instance = FakeInstance;
    fn instantiate(this: &Arc<Self>, rule: &RuleConfig) -> Result<FakeInstance, String> {
        this.instances.fetch_add(1, Relaxed);
        Ok(FakeInstance { tag: this.tag, parent: rule.parent_topic.clone() })
    }
    fn name(&self) -> &str {
        "fake"
    }
    fn version(&self) -> &str {
        self.tag
    }
}

impl PluginInstance for FakeInstance {
    fn map(&mut self, message: &Arc<Message>) -> Result<Vec<inflow_plugin::Publish>, inflow_plugin::MapError> {
        let m = &message.0;
        if m.properties.get("fail").is_some() {
            return Err(inflow_plugin::MapError::Plugin { plugin: "fake".into(), reason: "refused".into() });
        }
        let count: usize = m.properties.get("count").map_or(1, |c| c.parse().unwrap());
        Ok((0..count)
            .map(|i| inflow_plugin::Publish {
                topic: format!("{}/{}/{}/{i}", self.parent, self.tag, m.queue_offset),
                qos: inflow_plugin::Qos::AtLeastOnce,
                retain: false,
                payload: inflow_plugin::Payload::OriginalBody,
                user_properties: Vec::new(),
                content_type: None,
                message_expiry_interval: None,
            })
            .collect())
    }
    /// In place: the test's paused clock would run ahead of a call on another thread.
    async fn run_calls<R: Send + 'static>(calls: impl FnOnce() -> R + Send + 'static) -> R {
        calls()
    }
}

/// A rule with one worker (so the order across queues is exact) unless `extra` sets `workers`.
fn rule(extra: &str) -> RuleConfig {
    let workers = if extra.contains("workers") { "" } else { "workers = 1" };
    let text = format!(
        "[rocketmq]\nnamesrv = [\"127.0.0.1:9876\"]\n[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n\
         [[rule]]\nid = \"rule-1\"\nsource.topic = \"T\"\ntarget.parent_topic = \"p\"\n{workers}\n{extra}"
    );
    let no_env = |_: &str| None;
    let plugin_exists = |_: &Path, _: &str| true;
    let config = parse(&text, &Context { base_dir: Path::new("."), env: &no_env, plugin_exists: &plugin_exists }).expect("test rule parses");
    config.rules.into_iter().next().unwrap()
}

fn message(queue: i32, offset: i64, properties: &[(&str, &str)]) -> MessageExt {
    crate::source::test_message(queue, offset, properties.iter().copied().collect::<Properties>())
}

fn batch(queue: i32, messages: Vec<MessageExt>) -> Batch {
    Batch { queue: MessageQueue { topic: "T".into(), broker_name: "b".into(), queue_id: queue }, messages }
}

/// One rule running on the fakes.
struct Rig {
    batches: mpsc::UnboundedSender<Batch>,
    log: Arc<Mutex<SourceLog>>,
    publishes: mpsc::UnboundedReceiver<(Publish, Completion)>,
    plugin: watch::Sender<Option<Arc<FakePlugin>>>,
    stop: watch::Sender<bool>,
    status: watch::Receiver<RuleStatus>,
    counters: Arc<RuleCounters>,
    task: JoinHandle<()>,
}

impl Rig {
    fn start(rule: RuleConfig) -> Rig {
        let (batches, batches_rx) = mpsc::unbounded_channel();
        let (publish_tx, publishes) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(SourceLog::default()));
        let (plugin, plugin_rx) = watch::channel(Some(FakePlugin::version("v1")));
        let env = RuleEnv {
            source: FakeSource { batches: Arc::new(tokio::sync::Mutex::new(batches_rx)), log: log.clone() },
            publisher: FakePublisher(publish_tx),
            max_topic_bytes: 65535,
            plugin: rule.plugin.is_some().then_some(plugin_rx),
            drain_grace: Duration::from_secs(2),
        };
        let (stop, stop_rx) = watch::channel(false);
        let (status_tx, status) = watch::channel(RuleStatus::Starting);
        let counters = Arc::new(RuleCounters::default());
        let task = tokio::spawn(run(Arc::new(rule), env, stop_rx, status_tx, counters.clone()));
        Rig { batches, log, publishes, plugin, stop, status, counters, task }
    }

    fn send(&self, queue: i32, messages: Vec<MessageExt>) {
        self.batches.send(batch(queue, messages)).unwrap();
    }

    /// The next publish the rule made; panics if none comes.
    async fn publish(&mut self) -> (Publish, Completion) {
        tokio::time::timeout(Duration::from_secs(5), self.publishes.recv()).await.expect("a publish").expect("publisher open")
    }

    /// The publishes the rule makes until it has nothing more to do.
    async fn publishes_now(&mut self) -> Vec<(Publish, Completion)> {
        let mut out = Vec::new();
        while let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(100), self.publishes.recv()).await {
            out.push(p);
        }
        out
    }

    /// The topics of the publishes the rule makes until it has nothing more to do, each completed.
    async fn topics_now(&mut self) -> Vec<String> {
        let mut topics = Vec::new();
        for (publish, done) in self.publishes_now().await {
            done.send(Ok(())).unwrap();
            topics.push(publish.topic);
        }
        topics
    }

    /// Lets the rule act on what it was given, then returns its events so far.
    async fn events(&self) -> Vec<Event> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.log.lock().unwrap().events.clone()
    }

    fn acks(events: &[Event]) -> Vec<(i32, i64)> {
        events.iter().filter_map(|e| if let Event::Ack { queue, offset } = e { Some((*queue, *offset)) } else { None }).collect()
    }

    async fn wait_status(&mut self, want: impl Fn(&RuleStatus) -> bool) -> RuleStatus {
        tokio::time::timeout(Duration::from_secs(5), self.status.wait_for(|s| want(s))).await.expect("status reached").unwrap().clone()
    }

    async fn stop(self) -> Vec<Event> {
        // A disabled rule has ended already, and dropped its receiver.
        let _ = self.stop.send(true);
        self.task.await.unwrap();
        let events = self.log.lock().unwrap().events.clone();
        events
    }
}

const PLUGIN: &str = "plugin.name = \"fake\"";

#[tokio::test(start_paused = true)]
async fn a_message_is_acked_only_once_every_publish_of_it_completed_in_any_order() {
    let mut rig = Rig::start(rule(PLUGIN));
    rig.send(0, vec![message(0, 10, &[("count", "3")]), message(0, 11, &[])]);
    let mut first: Vec<_> = (0..3).map(|_| None).collect();
    for slot in first.iter_mut() {
        *slot = Some(rig.publish().await);
    }
    let (_, second) = rig.publish().await;
    // The second message completes first: it is acked on its own.
    second.send(Ok(())).unwrap();
    let (p2, c2) = first[2].take().unwrap();
    assert_eq!(p2.topic, "p/v1/10/2");
    c2.send(Ok(())).unwrap();
    let (_, c0) = first[0].take().unwrap();
    c0.send(Ok(())).unwrap();
    assert_eq!(Rig::acks(&rig.events().await), vec![(0, 11)], "offset 10 waits for its last publish");
    let (_, c1) = first[1].take().unwrap();
    c1.send(Ok(())).unwrap();
    assert_eq!(Rig::acks(&rig.events().await), vec![(0, 11), (0, 10)]);
    assert_eq!(rig.counters.forwarded.load(Relaxed), 2);
    assert_eq!(rig.counters.publishes(crate::sink::QoS::AtLeastOnce), 4);
    assert_eq!(rig.counters.in_flight.load(Relaxed), 0);
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn publishes_keep_the_order_of_each_queue() {
    let mut rig = Rig::start(rule(""));
    let second = |n: i64| format!("/q/{n}");
    let subtopics: Vec<String> = (0..6).map(second).collect();
    rig.send(0, (0..3).map(|n| message(0, n, &[("mqttSecondTopic", &subtopics[n as usize])])).collect());
    rig.send(1, (3..6).map(|n| message(1, n, &[("mqttSecondTopic", &subtopics[n as usize])])).collect());
    let topics = rig.topics_now().await;
    assert_eq!(topics, (0..6).map(|n| format!("p/q/{n}")).collect::<Vec<_>>());
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn skip_acks_a_message_the_mapping_refuses_and_goes_on() {
    let mut rig = Rig::start(rule("on_error = \"skip\""));
    rig.send(0, vec![message(0, 0, &[("qoslevel", "7")]), message(0, 1, &[])]);
    let (p, done) = rig.publish().await;
    assert_eq!(p.topic, "p");
    done.send(Ok(())).unwrap();
    assert_eq!(Rig::acks(&rig.events().await), vec![(0, 0), (0, 1)]);
    assert_eq!(rig.counters.skipped.load(Relaxed), 1);
    assert_eq!(rig.counters.errors(crate::mapping::ErrorKind::Contract), 1);
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn dead_letter_sends_the_message_back_then_acks_it() {
    let mut rig = Rig::start(rule(PLUGIN));
    rig.send(0, vec![message(0, 5, &[("fail", "1")])]);
    let events = rig.events().await;
    assert_eq!(&events[1..], [Event::SentBack { offset: 5 }, Event::Ack { queue: 0, offset: 5 }]);
    assert_eq!(rig.counters.dead_lettered.load(Relaxed), 1);
    assert_eq!(rig.counters.errors(crate::mapping::ErrorKind::Plugin), 1);
    assert!(rig.publishes_now().await.is_empty());
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_message_that_cannot_be_sent_back_pauses_the_rule_unacked() {
    let mut rig = Rig::start(rule(PLUGIN));
    rig.log.lock().unwrap().refuse_send_back = true;
    rig.send(0, vec![message(0, 5, &[("fail", "1")]), message(0, 6, &[])]);
    let status = rig.wait_status(|s| matches!(s, RuleStatus::Paused(_))).await;
    assert!(matches!(&status, RuleStatus::Paused(why) if why.contains("could not be sent back")), "{status:?}");
    assert!(rig.publishes_now().await.is_empty(), "nothing after the paused message");
    let events = rig.stop().await;
    assert_eq!(events, [Event::Subscribed, Event::Shutdown], "offsets held");
}

#[tokio::test(start_paused = true)]
async fn pause_stops_at_the_failing_message_and_holds_its_offset() {
    let mut rig = Rig::start(rule("on_error = \"pause\""));
    rig.send(0, vec![message(0, 0, &[]), message(0, 1, &[("qoslevel", "x")]), message(0, 2, &[])]);
    let (_, done) = rig.publish().await;
    done.send(Ok(())).unwrap();
    let status = rig.wait_status(|s| matches!(s, RuleStatus::Paused(_))).await;
    assert!(matches!(&status, RuleStatus::Paused(why) if why.contains("offset 1")), "{status:?}");
    assert!(rig.publishes_now().await.is_empty());
    let events = rig.stop().await;
    assert_eq!(Rig::acks(&events), vec![(0, 0)], "the message before the failure completed during the drain");
}

#[tokio::test(start_paused = true)]
async fn a_publish_the_broker_refuses_goes_to_the_on_error_policy() {
    let mut rig = Rig::start(rule(""));
    rig.send(0, vec![message(0, 3, &[])]);
    let (_, done) = rig.publish().await;
    done.send(Err(PublishError::Rejected { code: 0x97 })).unwrap();
    let events = rig.events().await;
    assert_eq!(&events[1..], [Event::SentBack { offset: 3 }, Event::Ack { queue: 0, offset: 3 }]);
    assert_eq!(rig.counters.errors(crate::mapping::ErrorKind::BrokerRefused), 1);
    assert_eq!(rig.counters.forwarded.load(Relaxed), 0);
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stop_drains_what_is_in_flight_within_the_grace_then_commits() {
    let mut rig = Rig::start(rule(""));
    rig.send(0, vec![message(0, 0, &[]), message(0, 1, &[])]);
    let (_, first) = rig.publish().await;
    let (_, second) = rig.publish().await;
    rig.stop.send(true).unwrap();
    first.send(Ok(())).unwrap();
    // The second never completes: the grace runs out and it stays unacknowledged.
    let keep_open = second;
    rig.task.await.unwrap();
    drop(keep_open);
    let events = rig.log.lock().unwrap().events.clone();
    assert_eq!(events, [Event::Subscribed, Event::Ack { queue: 0, offset: 0 }, Event::Shutdown]);
    assert_eq!(*rig.status.borrow(), RuleStatus::Stopped);
}

#[tokio::test(start_paused = true)]
async fn a_new_plugin_version_is_taken_at_a_message_boundary() {
    let mut rig = Rig::start(rule(PLUGIN));
    rig.send(0, vec![message(0, 0, &[("count", "2")])]);
    let before = rig.topics_now().await;
    assert_eq!(before, ["p/v1/0/0", "p/v1/0/1"]);
    rig.plugin.send(Some(FakePlugin::version("v2"))).unwrap();
    rig.send(0, vec![message(0, 1, &[("count", "2")]), message(0, 2, &[])]);
    let after = rig.topics_now().await;
    assert_eq!(after, ["p/v2/1/0", "p/v2/1/1", "p/v2/2/0"]);
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_removed_plugin_holds_the_offsets_until_it_returns() {
    let mut rig = Rig::start(rule(PLUGIN));
    rig.send(0, vec![message(0, 0, &[])]);
    let (_, done) = rig.publish().await;
    done.send(Ok(())).unwrap();
    rig.plugin.send(None).unwrap();
    rig.send(0, vec![message(0, 1, &[])]);
    rig.wait_status(|s| *s == RuleStatus::WaitingForPlugin).await;
    assert!(rig.publishes_now().await.is_empty());
    assert_eq!(rig.events().await, [Event::Subscribed, Event::Ack { queue: 0, offset: 0 }, Event::Shutdown]);
    rig.plugin.send(Some(FakePlugin::version("v3"))).unwrap();
    rig.wait_status(|s| *s == RuleStatus::Running).await;
    // A real consumer redelivers from the committed offset; the fake delivers what it is given.
    rig.send(0, vec![message(0, 1, &[])]);
    assert_eq!(rig.publish().await.0.topic, "p/v3/1/0");
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_disabled_rule_consumes_nothing() {
    let rig = Rig::start(rule("enabled = false"));
    rig.send(0, vec![message(0, 0, &[])]);
    assert_eq!(rig.events().await, []);
    assert_eq!(*rig.status.borrow(), RuleStatus::Disabled);
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn each_queue_keeps_its_order_over_several_workers() {
    let mut rig = Rig::start(rule("workers = 3"));
    // Four queues of ten messages, each sent in two batches, interleaved; every publish of a first
    // batch is slow, so a second batch on another worker would overtake it.
    for (half, slow) in [(0..5, "/slow"), (5..10, "")] {
        for q in 0..4 {
            let messages = half.clone().map(|i| message(q, i, &[("mqttSecondTopic", &format!("/{q}{slow}/{i}"))])).collect();
            rig.send(q, messages);
        }
    }
    let topics = rig.topics_now().await;
    assert_eq!(topics.len(), 40);
    for q in 0..4 {
        let of_queue: Vec<String> = topics.iter().filter(|t| t.starts_with(&format!("p/{q}/"))).map(|t| t.replace("/slow", "")).collect();
        let want: Vec<String> = (0..10).map(|i| format!("p/{q}/{i}")).collect();
        assert_eq!(of_queue, want, "queue {q} in order");
    }
    let mut acks = Rig::acks(&rig.events().await);
    acks.sort();
    acks.dedup();
    assert_eq!(acks.len(), 40, "every message acked once");
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn every_worker_takes_a_new_plugin_version_at_a_message_boundary() {
    let mut rig = Rig::start(rule(&format!("{PLUGIN}\nworkers = 2")));
    rig.send(0, vec![message(0, 0, &[])]);
    rig.send(1, vec![message(1, 100, &[])]);
    assert_eq!(rig.topics_now().await.len(), 2);
    assert_eq!(rig.plugin.borrow().as_ref().unwrap().instances.load(Relaxed), 2, "one instance per worker");
    let v2 = FakePlugin::version("v2");
    rig.plugin.send(Some(v2.clone())).unwrap();
    rig.send(0, vec![message(0, 1, &[])]);
    rig.send(1, vec![message(1, 101, &[])]);
    let mut after = rig.topics_now().await;
    after.sort();
    assert_eq!(after, ["p/v2/1/0", "p/v2/101/0"]);
    assert_eq!(v2.instances.load(Relaxed), 2, "each worker started its own instance of v2");
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_pause_in_one_worker_stops_them_all_with_the_offsets_held() {
    let mut rig = Rig::start(rule("on_error = \"pause\"\nworkers = 2"));
    rig.send(0, vec![message(0, 0, &[("qoslevel", "x")])]);
    let status = rig.wait_status(|s| matches!(s, RuleStatus::Paused(_))).await;
    assert!(matches!(&status, RuleStatus::Paused(why) if why.contains("offset 0")), "{status:?}");
    rig.send(1, vec![message(1, 0, &[])]);
    assert!(rig.publishes_now().await.is_empty(), "the other worker stopped too");
    let events = rig.stop().await;
    assert_eq!(events, [Event::Subscribed, Event::Shutdown]);
}
