//! Mapping a RocketMQ message to MQTT publishes: the built-in property contract or a plugin.

pub mod builtin;
mod publish;

pub use builtin::MapError;
pub use publish::{Publish, QoS};
