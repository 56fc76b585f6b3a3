//! Mapping a RocketMQ message to MQTT publishes, named after the WIT package `inflow:mapping`:
//! the built-in property contract ([`builtin`]) or a WebAssembly plugin ([`plugin`]).
//!
//! Every way a message can fail to become publishes is one [`MapError`], whose [`ErrorKind`]
//! is what the rule's counters and metrics label it by.

pub mod builtin;
mod plugin;

pub use plugin::{PluginInstance, PluginVersion};

use crate::sink::{Publish, PublishError};
use crate::source::Message;
use std::sync::Arc;

/// How one rule maps its messages: the built-in contract, or an instance of its plugin.
pub enum Mapper<I = inflow_plugin::Instance> {
    Builtin { parent_topic: String, max_topic_bytes: usize },
    Plugin { instance: I, max_topic_bytes: usize },
}

impl<I: PluginInstance> Mapper<I> {
    pub fn map(&mut self, message: &Arc<Message>) -> Result<Vec<Publish>, MapError> {
        match self {
            Mapper::Builtin { parent_topic, max_topic_bytes } => {
                let m = &message.0;
                builtin::map(parent_topic, *max_topic_bytes, |k| m.properties.get(k), m.body.clone()).map(|m| vec![m.publish])
            }
            Mapper::Plugin { instance, max_topic_bytes } => plugin::map(instance, message, *max_topic_bytes),
        }
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
