//! A message held in memory, for lending to plugins outside the service:
//! `inflow plugin test`, tests and benchmarks. The service lends its
//! consumed RocketMQ messages directly instead.

use crate::types::MessageView;
use std::borrow::Cow;

/// A RocketMQ message built in memory. Tags, keys and the message id are read
/// from the `TAGS`, `KEYS` and `UNIQ_KEY` properties, as in a stored message.
#[derive(Clone, Debug, Default)]
pub struct OwnedMessage {
    pub topic: String,
    /// In stored order: system properties first, as the broker keeps them.
    pub properties: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub queue_id: u32,
    pub queue_offset: u64,
    pub born_timestamp: u64,
    pub store_timestamp: u64,
    pub reconsume_times: u32,
}

impl MessageView for OwnedMessage {
    fn topic(&self) -> &str {
        &self.topic
    }
    fn tags(&self) -> Option<&str> {
        self.property("TAGS")
    }
    fn keys(&self) -> Vec<&str> {
        self.property("KEYS").map(|keys| keys.split(' ').filter(|k| !k.is_empty()).collect()).unwrap_or_default()
    }
    fn property(&self, key: &str) -> Option<&str> {
        self.properties.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    fn properties(&self) -> Vec<(&str, &str)> {
        self.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
    fn encoded_properties(&self) -> Cow<'_, str> {
        let mut encoded = String::with_capacity(self.properties.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
        for (name, value) in &self.properties {
            encoded.extend([name.as_str(), "\u{1}", value.as_str(), "\u{2}"]);
        }
        Cow::Owned(encoded)
    }
    fn body(&self) -> &[u8] {
        &self.body
    }
    fn message_id(&self) -> String {
        self.property("UNIQ_KEY").unwrap_or_default().to_string()
    }
    fn queue_id(&self) -> u32 {
        self.queue_id
    }
    fn queue_offset(&self) -> u64 {
        self.queue_offset
    }
    fn born_timestamp(&self) -> u64 {
        self.born_timestamp
    }
    fn store_timestamp(&self) -> u64 {
        self.store_timestamp
    }
    fn reconsume_times(&self) -> u32 {
        self.reconsume_times
    }
}
