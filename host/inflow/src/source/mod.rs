//! The RocketMQ side: one client per process, one cluster consumer per rule, and the message
//! view plugins read.

use crate::config::{RocketMqConfig, RuleConfig, StartFrom};
use inflow_plugin::MessageView;
use std::borrow::Cow;
use rocketmq_remoting::{Client, ClientConfig, ConsumerConfig, Credentials, MessageExt, StartPosition};

/// The client all rules (and `inflow send`) share.
pub fn client(config: &RocketMqConfig) -> Result<Client, rocketmq_remoting::Error> {
    let mut cfg = ClientConfig::new(config.namesrv.iter().cloned());
    if let (Some(ak), Some(sk)) = (&config.access_key, &config.secret_key) {
        cfg = cfg.with_credentials(Credentials::new(ak.clone(), sk.expose()));
    }
    if let Some(ns) = &config.namespace {
        cfg = cfg.with_namespace(ns.clone());
    }
    Client::new(cfg)
}

/// The consumer settings of one rule.
pub fn consumer_config(rule: &RuleConfig) -> ConsumerConfig {
    let mut cfg = ConsumerConfig::new(rule.source.group.clone(), rule.source.topic.clone());
    cfg.expression = rule.source.expression.clone();
    cfg.start = match rule.source.start {
        StartFrom::Latest => StartPosition::Latest,
        StartFrom::Earliest => StartPosition::Earliest,
    };
    cfg.max_unacked_per_queue = rule.limits.max_unacked_per_queue;
    cfg
}

/// A consumed message as the plugin sees it.
pub struct Message(pub MessageExt);

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
        let host = "127.0.0.1:10911".parse().unwrap();
        let message = Message(MessageExt {
            topic: "t".into(),
            broker_name: String::new(),
            queue_id: 0,
            queue_offset: 0,
            commit_log_offset: 0,
            store_size: 0,
            body_crc: 0,
            flag: 0,
            sys_flag: 0,
            born_timestamp: 0,
            store_timestamp: 0,
            born_host: host,
            store_host: host,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: Default::default(),
            properties: Properties::parse(wire),
        });
        assert!(matches!(message.encoded_properties(), Cow::Borrowed(encoded) if encoded == wire));
        assert_eq!(message.property("site"), Some("plant-a"));
    }
}
