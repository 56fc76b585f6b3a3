//! Mapping a RocketMQ message to MQTT publishes: the built-in property contract or a plugin.

pub mod builtin;
mod publish;

pub use builtin::MapError;
pub use publish::{Publish, QoS};

use crate::source::Message;
use inflow_plugin::{Instance, Payload, Qos};
use std::sync::Arc;

/// How one rule maps its messages.
pub enum Mapper {
    Builtin { parent_topic: String, max_topic_bytes: usize },
    Plugin { instance: Instance, max_topic_bytes: usize },
}

impl Mapper {
    pub fn map(&mut self, message: &Arc<Message>) -> Result<Vec<Publish>, MapError> {
        match self {
            Mapper::Builtin { parent_topic, max_topic_bytes } => {
                let m = &message.0;
                builtin::map(parent_topic, *max_topic_bytes, |k| m.properties.get(k), m.body.clone()).map(|m| vec![m.publish])
            }
            Mapper::Plugin { instance, max_topic_bytes } => {
                let view: Arc<dyn inflow_plugin::MessageView> = message.clone();
                // The call is bounded by the rule's CPU deadline; keep it off the async workers' queue.
                let publishes = tokio::task::block_in_place(|| instance.map(view)).map_err(|e| MapError::Plugin(e.to_string()))?;
                publishes.into_iter().map(|p| from_plugin(p, message, *max_topic_bytes)).collect()
            }
        }
    }
}

/// A plugin's publish, with "original body" resolved to the message's own buffer (no copy).
fn from_plugin(p: inflow_plugin::Publish, message: &Message, max_topic_bytes: usize) -> Result<Publish, MapError> {
    builtin::check_topic_name("topic", &p.topic).map_err(|e| MapError::Plugin(format!("plugin returned a bad topic: {e}")))?;
    if p.topic.len() > max_topic_bytes {
        return Err(MapError::TopicTooLong { len: p.topic.len(), topic: p.topic, limit: max_topic_bytes });
    }
    Ok(Publish {
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
    })
}
