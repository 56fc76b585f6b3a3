//! The host-side types a rule deals with: what a plugin sees and returns.

use std::borrow::Cow;
use std::time::Duration;

/// MQTT quality of service of one publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Qos {
    AtMostOnce,
    AtLeastOnce,
    ExactlyOnce,
}

impl Qos {
    /// The MQTT wire level: 0, 1 or 2.
    pub fn level(self) -> u8 {
        match self {
            Qos::AtMostOnce => 0,
            Qos::AtLeastOnce => 1,
            Qos::ExactlyOnce => 2,
        }
    }
}

/// Where a publish's payload comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// The consumed message's body, unchanged: the service sends its own
    /// buffer, nothing went through the plugin.
    OriginalBody,
    /// Bytes the plugin made.
    Bytes(Vec<u8>),
}

/// One MQTT publish a plugin asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub qos: Qos,
    pub retain: bool,
    pub payload: Payload,
    /// MQTT 5 user properties, in order; keys may repeat.
    pub user_properties: Vec<(String, String)>,
    /// MQTT 5 content type.
    pub content_type: Option<String>,
    /// MQTT 5 message expiry interval, in seconds.
    pub message_expiry_interval: Option<u32>,
}

/// The message under mapping, as the plugin reads it through the
/// `inflow:mapping/host.message` resource. Each accessor is called only when
/// the plugin asks for that field, so a body the plugin never reads is never
/// copied.
pub trait MessageView: Send + Sync + 'static {
    fn topic(&self) -> &str;
    fn tags(&self) -> Option<&str>;
    fn keys(&self) -> Vec<&str>;
    fn property(&self, key: &str) -> Option<&str>;
    fn properties(&self) -> Vec<(&str, &str)>;
    /// All properties in RocketMQ's wire encoding, `name\u{1}value\u{2}` for
    /// each in stored order (the last `\u{2}` may be missing): the form a
    /// decoded message already holds.
    fn encoded_properties(&self) -> Cow<'_, str>;
    fn body(&self) -> &[u8];
    fn message_id(&self) -> String;
    fn queue_id(&self) -> u32;
    fn queue_offset(&self) -> u64;
    fn born_timestamp(&self) -> u64;
    fn store_timestamp(&self) -> u64;
    fn reconsume_times(&self) -> u32;
}

/// The rule an instance serves; handed to the plugin's `init`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleContext {
    pub rule_id: String,
    pub parent_topic: String,
}

/// Per-rule bounds on what a plugin instance may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// CPU time one call (`init` or `map-message`) may take before it is
    /// interrupted; checked at every epoch tick ([`crate::RuntimeConfig::epoch_tick`])
    /// once this much wall time has passed, so a runaway call stops about one
    /// or two ticks after it, and a call merely starved of CPU is not cut short.
    pub call_deadline: Duration,
    /// Linear memory (all memories of the instance together) and table bytes cap.
    pub memory_bytes: usize,
    /// Most publishes one message may produce. Checked once the result is
    /// read from the plugin; the memory cap bounds how large it can get.
    pub max_publishes: usize,
    /// Largest `bytes` payload one publish may carry.
    pub max_payload_bytes: usize,
    /// The instance is replaced by a fresh one after this many calls, to
    /// bound what a leaking guest can accumulate (a store frees nothing
    /// until it is dropped).
    pub recycle_after_calls: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_deadline: Duration::from_millis(100),
            memory_bytes: 64 << 20,
            max_publishes: 100,
            max_payload_bytes: 1 << 20,
            recycle_after_calls: 1_000_000,
        }
    }
}
