//! The plugin mapping: lends a consumed message to a plugin instance and turns what it returns
//! into the sink's publishes, at this one boundary.
//!
//! A rule sees a plugin through two small traits, [`PluginVersion`] (a loaded file, from which
//! it starts instances) and [`PluginInstance`] (maps one message), implemented by the plugin
//! runtime's types, so the rule runner can be tested with fakes.

use super::{MapError, MapResult};
use crate::config::RuleConfig;
use crate::sink::{Publish, QoS};
use crate::source::Message;
use inflow_plugin::{Instance, MessageView, Payload, Plugin, Qos};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One loaded version of a plugin file.
pub trait PluginVersion: Send + Sync + 'static {
    type Instance: PluginInstance;
    /// Starts an instance for the rule, with its config string, context and limits.
    fn instantiate(this: &Arc<Self>, rule: &RuleConfig) -> Result<Self::Instance, String>;
    fn name(&self) -> &str;
    /// The hash of the file's content.
    fn version(&self) -> &str;
}

/// One plugin instance serving one rule: maps messages one at a time.
pub trait PluginInstance: Send + 'static {
    fn map(&mut self, message: &Arc<Message>) -> Result<Vec<inflow_plugin::Publish>, inflow_plugin::MapError>;

    /// Runs a slice of this instance's calls where plugin calls belong: on the plugin threads
    /// ([`plugin_threads`]). A test's fake may run them in place.
    fn run_calls<R: Send + 'static>(calls: impl FnOnce() -> R + Send + 'static) -> impl Future<Output = R> + Send {
        let trip = plugin_threads().spawn_blocking(calls);
        // A panic in a plugin call is a host bug: it unwinds the worker as it would have on it.
        async move { trip.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())) }
    }
}

impl PluginVersion for Plugin {
    type Instance = Instance;
    fn instantiate(this: &Arc<Self>, rule: &RuleConfig) -> Result<Instance, String> {
        let config = rule.plugin.as_ref().map_or("", |p| p.config.as_str());
        this.instantiate(rule.plugin_context(), config, rule.plugin_limits()).map_err(|e| e.to_string())
    }
    fn name(&self) -> &str {
        Plugin::name(self)
    }
    fn version(&self) -> &str {
        self.content_hash()
    }
}

impl PluginInstance for Instance {
    fn map(&mut self, message: &Arc<Message>) -> Result<Vec<inflow_plugin::Publish>, inflow_plugin::MapError> {
        let view: Arc<dyn MessageView> = message.clone();
        Instance::map(self, view)
    }
}

/// How long one trip to a plugin thread maps messages before it returns what it has: short
/// enough that a worker hands over its publishes and sees a stop or a new plugin version
/// promptly, long enough that the trip's two thread hand-offs are shared by many fast calls.
const SLICE: Duration = Duration::from_millis(2);

/// How much nicer than the rest of the process the plugin threads are: under contention the
/// scheduler gives them about a tenth of what it gives the process's other threads.
const PLUGIN_THREAD_NICENESS: libc::c_int = 10;

/// Maps messages from the front of `messages` on a plugin thread, for one [`SLICE`] at most
/// (at least one message): the calls are bounded by the rule's CPU deadline, not by await
/// points, so they stay off the async workers.
pub(super) async fn map_slice<I: PluginInstance>(instance: &Arc<Mutex<I>>, messages: &mut VecDeque<Arc<Message>>) -> Vec<MapResult> {
    let instance = instance.clone();
    let mut todo = std::mem::take(messages);
    let trip = I::run_calls(move || {
        let mut instance = instance.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let slice = Instant::now();
        let mut results = Vec::new();
        while let Some(message) = todo.pop_front() {
            let started = Instant::now();
            let result = instance.map(&message).map(|publishes| publishes.into_iter().map(|p| from_plugin(p, &message)).collect());
            results.push(MapResult { message, result: result.map_err(MapError::from), took: started.elapsed() });
            if slice.elapsed() >= SLICE {
                break;
            }
        }
        (results, todo)
    });
    let (results, rest) = trip.await;
    *messages = rest;
    results
}

/// The threads plugin calls run on: their own, at a lower CPU priority than the rest of the
/// process, so a plugin that spends its whole deadline on every message slows only its own
/// rule. Forwarding, the other rules and the brokers on the same machine come first for the CPU;
/// the deadline counts CPU time, so a slowed call is not cut short for it. A current-thread
/// runtime used only for its blocking pool: threads start on demand and end when idle.
fn plugin_threads() -> &'static tokio::runtime::Runtime {
    static THREADS: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    THREADS.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .thread_name("inflow-plugin")
            .on_thread_start(|| {
                // SAFETY: plain system calls on the calling thread (on Linux, `who = 0` of
                // PRIO_PROCESS is the calling thread alone, which started with the nice value
                // of the thread that spawned it). A failure leaves it where it was.
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, (own_nice() + PLUGIN_THREAD_NICENESS).min(19)) };
            })
            .max_blocking_threads(512)
            .thread_keep_alive(Duration::from_secs(30))
            .build()
            .expect("the plugin threads' runtime starts")
    })
}

/// The nice value of the calling thread.
fn own_nice() -> libc::c_int {
    // SAFETY: a plain system call on the calling thread.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

/// A plugin's publish, with "original body" resolved to the message's own buffer (no copy).
/// Its topic is checked by the caller ([`super::TopicScope`]).
fn from_plugin(p: inflow_plugin::Publish, message: &Message) -> Publish {
    Publish {
        topic: p.topic,
        qos: match p.qos {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
            Qos::ExactlyOnce => QoS::ExactlyOnce,
        },
        retain: p.retain,
        payload: match p.payload {
            Payload::OriginalBody => message.0.body.clone(),
            Payload::Bytes(bytes) => bytes.into(),
        },
        user_properties: p.user_properties,
        content_type: p.content_type,
        message_expiry_interval: p.message_expiry_interval,
    }
}

/// A consumed message as the plugin reads it: every accessor borrows the decoded message.
impl MessageView for Message {
    fn topic(&self) -> &str {
        &self.0.topic
    }
    fn tags(&self) -> Option<&str> {
        self.0.tags()
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().collect()
    }
    fn property(&self, key: &str) -> Option<&str> {
        self.0.properties.get(key)
    }
    fn properties(&self) -> Vec<(&str, &str)> {
        self.0.properties.iter().collect()
    }
    fn encoded_properties(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.0.properties.wire())
    }
    fn body(&self) -> &[u8] {
        &self.0.body
    }
    fn message_id(&self) -> String {
        self.0.message_id()
    }
    fn queue_id(&self) -> u32 {
        self.0.queue_id.max(0) as u32
    }
    fn queue_offset(&self) -> u64 {
        self.0.queue_offset.max(0) as u64
    }
    fn born_timestamp(&self) -> u64 {
        self.0.born_timestamp.max(0) as u64
    }
    fn store_timestamp(&self) -> u64 {
        self.0.store_timestamp.max(0) as u64
    }
    fn reconsume_times(&self) -> u32 {
        self.0.reconsume_times.max(0) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocketmq_remoting::Properties;

    #[test]
    fn plugins_get_the_decoded_wire_form_of_the_properties_without_a_copy() {
        let wire = "UNIQ_KEY\u{1}AC1F\u{2}device\u{1}press-7\u{2}site\u{1}plant-a\u{2}";
        let message = Message(crate::source::test_message(0, 0, Properties::parse(wire)));
        assert!(matches!(message.encoded_properties(), Cow::Borrowed(encoded) if encoded == wire));
        assert_eq!(message.property("site"), Some("plant-a"));
    }

    /// Maps on the plugin threads, a millisecond a call, noting each call's thread priority.
    struct Slow {
        nice: Arc<Mutex<Vec<libc::c_int>>>,
    }

    impl PluginInstance for Slow {
        fn map(&mut self, message: &Arc<Message>) -> Result<Vec<inflow_plugin::Publish>, inflow_plugin::MapError> {
            std::thread::sleep(Duration::from_millis(1));
            self.nice.lock().unwrap().push(own_nice());
            Ok(vec![inflow_plugin::Publish {
                topic: format!("p/{}", message.0.queue_offset),
                qos: Qos::AtLeastOnce,
                retain: false,
                payload: Payload::OriginalBody,
                user_properties: Vec::new(),
                content_type: None,
                message_expiry_interval: None,
            }])
        }
    }

    #[tokio::test]
    async fn plugin_calls_run_on_low_priority_threads_a_slice_at_a_time_in_order() {
        let nice = Arc::new(Mutex::new(Vec::new()));
        let instance = Arc::new(Mutex::new(Slow { nice: nice.clone() }));
        let mut messages: VecDeque<Arc<Message>> =
            (0..10).map(|offset| Arc::new(Message(crate::source::test_message(0, offset, Properties::default())))).collect();
        let mut topics = Vec::new();
        let mut trips = 0;
        while !messages.is_empty() {
            let results = map_slice(&instance, &mut messages).await;
            // A slice ends once 2 ms are spent: after the second call of a millisecond or more.
            assert!(!results.is_empty() && results.len() <= 2, "{} calls in one slice", results.len());
            for r in results {
                assert!(r.took >= Duration::from_millis(1));
                topics.push(r.result.unwrap().remove(0).topic);
            }
            trips += 1;
        }
        assert!(trips >= 5);
        assert_eq!(topics, (0..10).map(|o| format!("p/{o}")).collect::<Vec<_>>());
        let caller = own_nice();
        assert_eq!(*nice.lock().unwrap(), vec![(caller + PLUGIN_THREAD_NICENESS).min(19); 10]);
        assert!(caller < 19, "the test runs at the lowest priority already: nothing to compare");
    }
}
