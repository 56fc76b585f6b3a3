//! The one publish type of the host: what a mapping produces and the sink sends.

use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QoS {
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

/// One MQTT publish a mapping produced, ready for the sink. The payload is a `Bytes` handle:
/// for "keep the original body" it shares the RocketMQ message's buffer, no copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub qos: QoS,
    pub retain: bool,
    pub payload: Bytes,
    /// MQTT 5 only (dropped on 3.1.1 connections).
    pub user_properties: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub message_expiry_interval: Option<u32>,
}

impl Publish {
    pub fn new(topic: impl Into<String>, qos: QoS, payload: Bytes) -> Publish {
        Publish {
            topic: topic.into(),
            qos,
            retain: false,
            payload,
            user_properties: Vec::new(),
            content_type: None,
            message_expiry_interval: None,
        }
    }
}
