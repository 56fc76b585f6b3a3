//! Mapping a RocketMQ message to MQTT publishes, named after the WIT package `inflow:mapping`:
//! the built-in property contract ([`builtin`]) or a WebAssembly plugin ([`plugin`]).
//!
//! Every way a message can fail to become publishes is one [`MapError`], whose [`ErrorKind`]
//! is what the rule's counters and metrics label it by.

pub mod builtin;
mod plugin;

pub use plugin::{PluginInstance, PluginVersion};

use crate::config::topic::topic_matches_filter;
use crate::sink::{Publish, PublishError};
use crate::source::Message;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How one rule maps its messages: the built-in contract or an instance of its plugin, and the
/// topics it may publish to.
pub struct Mapper<I = inflow_plugin::Instance> {
    pub mapping: Mapping<I>,
    pub topics: TopicScope,
}

pub enum Mapping<I> {
    Builtin,
    /// Shared with the plugin thread that runs its calls ([`plugin::map_slice`]).
    Plugin(Arc<Mutex<I>>),
}

impl<I> Mapping<I> {
    pub fn plugin(instance: I) -> Mapping<I> {
        Mapping::Plugin(Arc::new(Mutex::new(instance)))
    }
}

/// One message mapped: its publishes or why it has none, and how long the mapping took.
pub struct MapResult {
    pub message: Arc<Message>,
    pub result: Result<Vec<Publish>, MapError>,
    pub took: Duration,
}

impl<I: PluginInstance> Mapper<I> {
    /// Maps messages from the front of `messages`, in order: all of them with the built-in
    /// mapping; with a plugin, as many as its thread maps in one time slice (at least one), so
    /// the caller gets to hand over what is mapped and to notice a new plugin version or a stop.
    pub async fn map_front(&mut self, messages: &mut VecDeque<Arc<Message>>) -> Vec<MapResult> {
        let mut results = match &self.mapping {
            Mapping::Builtin => messages
                .drain(..)
                .map(|message| {
                    let started = Instant::now();
                    let m = &message.0;
                    let result = builtin::map(&self.topics.parent, self.topics.max_bytes, |k| m.properties.get(k), m.body.clone()).map(|m| vec![m.publish]);
                    MapResult { took: started.elapsed(), message, result }
                })
                .collect(),
            Mapping::Plugin(instance) => plugin::map_slice(instance, messages).await,
        };
        for mapped in &mut results {
            if let Ok(publishes) = &mapped.result {
                if let Err(e) = self.topics.check_all(publishes.iter().map(|p| p.topic.as_str())) {
                    mapped.result = Err(e);
                }
            }
        }
        results
    }
}

/// The topics a rule owns: its parent topic and everything under it, plus what the filters of
/// its `target.allow_topics` match. Nothing it publishes may leave them, whatever mapped it.
#[derive(Debug, Clone)]
pub struct TopicScope {
    pub parent: String,
    pub allow: Vec<String>,
    /// The longest topic the MQTT broker takes.
    pub max_bytes: usize,
}

impl TopicScope {
    /// Whether the rule may publish to `topic` (a valid MQTT topic name within the broker's
    /// length limit, and the rule's own); the error names the topic, the parent and the fix.
    pub fn check(&self, topic: &str) -> Result<(), MapError> {
        if let Err(MapError::BadProperty { reason, .. }) = builtin::check_topic_name("topic", topic) {
            return Err(MapError::TopicRefused { topic: topic.to_string(), reason });
        }
        if topic.len() > self.max_bytes {
            return Err(MapError::TopicTooLong { topic: topic.to_string(), len: topic.len(), limit: self.max_bytes });
        }
        let under_parent = topic.strip_prefix(self.parent.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if under_parent || self.allow.iter().any(|filter| topic_matches_filter(filter, topic)) {
            return Ok(());
        }
        let allowed = if self.allow.is_empty() { String::new() } else { format!(" nor matched by target.allow_topics {:?}", self.allow) };
        Err(MapError::TopicRefused {
            topic: topic.to_string(),
            reason: format!(
                "it is not the rule's parent topic {parent:?} or under it ({parent}/...){allowed}; publish under {parent}/, or add a topic filter for it to the rule's target.allow_topics",
                parent = self.parent
            ),
        })
    }

    /// [`Self::check`] for every topic of one message's publishes: the first refused one fails
    /// the message. `inflow plugin test` checks with this too.
    pub fn check_all<'a>(&self, topics: impl IntoIterator<Item = &'a str>) -> Result<(), MapError> {
        topics.into_iter().try_for_each(|topic| self.check(topic))
    }
}

/// Why a message produced no delivered publishes; handed to the rule's on-error policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The built-in contract: a property value out of range.
    #[error("property {key}={value:?} is invalid: {reason}")]
    BadProperty { key: &'static str, value: String, reason: String },
    #[error("topic {topic:?} is {len} bytes, over the limit of {limit}")]
    TopicTooLong { topic: String, len: usize, limit: usize },
    /// A topic the rule may not publish to.
    #[error("topic {topic:?} refused: {reason}")]
    TopicRefused { topic: String, reason: String },
    /// The plugin returned an error, trapped or ran out of time.
    #[error(transparent)]
    Plugin(#[from] inflow_plugin::MapError),
    /// The MQTT broker refused a publish of the message.
    #[error(transparent)]
    BrokerRefused(PublishError),
}

/// What kind of failure a [`MapError`] is: the label of the mapping-error counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The built-in property contract.
    Contract,
    /// The plugin's own error for the message, or its output broke the rule's limits.
    Plugin,
    /// The plugin trapped (or could not be restarted after one, or hit its memory cap).
    Trap,
    /// The plugin ran past its CPU deadline.
    Deadline,
    /// The publish topic is malformed, too long or not the rule's.
    TopicRefused,
    /// The MQTT broker refused the publish.
    BrokerRefused,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] =
        [ErrorKind::Contract, ErrorKind::Plugin, ErrorKind::Trap, ErrorKind::Deadline, ErrorKind::TopicRefused, ErrorKind::BrokerRefused];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Contract => "contract",
            ErrorKind::Plugin => "plugin",
            ErrorKind::Trap => "trap",
            ErrorKind::Deadline => "deadline",
            ErrorKind::TopicRefused => "topic_refused",
            ErrorKind::BrokerRefused => "broker_refused",
        }
    }
}

impl MapError {
    pub fn kind(&self) -> ErrorKind {
        use inflow_plugin::MapError as P;
        match self {
            MapError::BadProperty { .. } => ErrorKind::Contract,
            MapError::TopicTooLong { .. } | MapError::TopicRefused { .. } => ErrorKind::TopicRefused,
            MapError::Plugin(P::Plugin { .. } | P::Limit { .. }) => ErrorKind::Plugin,
            MapError::Plugin(P::Deadline { .. }) => ErrorKind::Deadline,
            MapError::Plugin(P::Trap { .. } | P::OutOfMemory { .. } | P::Restart(_)) => ErrorKind::Trap,
            MapError::BrokerRefused(_) => ErrorKind::BrokerRefused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_publishes_only_under_its_parent_topic_and_what_it_allows() {
        let scope = TopicScope { parent: "plant".into(), allow: vec!["alerts/+/high".into()], max_bytes: 65535 };
        for ok in ["plant", "plant/x", "plant/a/b", "alerts/boiler/high"] {
            assert_eq!(scope.check(ok), Ok(()), "{ok}");
        }
        for bad in ["", "plant/+", "plant/#", "plant/a\0"] {
            assert_eq!(scope.check(bad).expect_err(bad).kind(), ErrorKind::TopicRefused, "{bad:?}");
        }
        let short = TopicScope { max_bytes: 8, ..scope.clone() };
        assert!(matches!(short.check("plant/abc"), Err(MapError::TopicTooLong { len: 9, limit: 8, .. })));
        for refused in ["plantation/x", "other/x", "/plant/x", "alerts/boiler/low", "elsewhere/y", "plan"] {
            let e = scope.check(refused).expect_err(refused);
            assert_eq!(e.kind(), ErrorKind::TopicRefused);
            let text = e.to_string();
            assert!(text.contains(refused) && text.contains("\"plant\"") && text.contains("allow_topics"), "{text}");
        }
    }
}
