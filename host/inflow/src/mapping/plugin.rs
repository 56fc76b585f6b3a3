//! The plugin mapping: lends a consumed message to a plugin instance and turns what it returns
//! into the sink's publishes, at this one boundary.
//!
//! A rule sees a plugin through two small traits, [`PluginVersion`] (a loaded file, from which
//! it starts instances) and [`PluginInstance`] (maps one message), implemented by the plugin
//! runtime's types, so the rule runner can be tested with fakes.

use super::MapError;
use crate::config::RuleConfig;
use crate::sink::{Publish, QoS};
use crate::source::Message;
use inflow_plugin::{Instance, MessageView, Payload, Plugin, Qos};
use std::borrow::Cow;
use std::sync::Arc;

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
        // The call is bounded by the rule's CPU deadline; keep it off the async workers' queue.
        tokio::task::block_in_place(|| Instance::map(self, view))
    }
}

pub(super) fn map<I: PluginInstance>(instance: &mut I, message: &Arc<Message>) -> Result<Vec<Publish>, MapError> {
    let publishes = instance.map(message)?;
    Ok(publishes.into_iter().map(|p| from_plugin(p, message)).collect())
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
}
