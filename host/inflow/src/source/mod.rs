//! The RocketMQ side: one client per process and one cluster consumer per rule.

use crate::config::{RocketMqConfig, RuleConfig, StartFrom};
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

/// A consumed RocketMQ message, shared (behind an `Arc`) by the rule runner and the mapping.
pub struct Message(pub MessageExt);
