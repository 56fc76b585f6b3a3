//! Topic routes as name servers return them (GET_ROUTEINFO_BY_TOPIC) and message queues.

use std::collections::HashMap;

use serde::Deserialize;

/// `PermName`: a queue set is readable / writable.
pub const PERM_READ: i32 = 0x4;
pub const PERM_WRITE: i32 = 0x2;
/// `MixAll.MASTER_ID`.
pub const MASTER_ID: &str = "0";

/// One queue of a topic on one broker. Ordered by topic, broker, queue id, as Java sorts them
/// for rebalancing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageQueue {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
}

impl std::fmt::Display for MessageQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}#{}", self.topic, self.broker_name, self.queue_id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicRoute {
    #[serde(default)]
    pub queue_datas: Vec<QueueData>,
    #[serde(default)]
    pub broker_datas: Vec<BrokerData>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueData {
    pub broker_name: String,
    #[serde(default)]
    pub read_queue_nums: i32,
    #[serde(default)]
    pub write_queue_nums: i32,
    #[serde(default)]
    pub perm: i32,
    #[serde(default)]
    pub topic_sys_flag: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerData {
    #[serde(default)]
    pub cluster: String,
    pub broker_name: String,
    /// Broker id (`"0"` = master) → `host:port`.
    #[serde(default)]
    pub broker_addrs: HashMap<String, String>,
}

impl BrokerData {
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(MASTER_ID).map(String::as_str)
    }
}

impl TopicRoute {
    /// Queues consumers may read, sorted.
    pub fn read_queues(&self, topic: &str) -> Vec<MessageQueue> {
        self.queues(topic, PERM_READ, |q| q.read_queue_nums)
    }

    /// Queues producers may write, on brokers that have a master, sorted.
    pub fn write_queues(&self, topic: &str) -> Vec<MessageQueue> {
        self.queues(topic, PERM_WRITE, |q| q.write_queue_nums)
            .into_iter()
            .filter(|mq| self.master_addr(&mq.broker_name).is_some())
            .collect()
    }

    fn queues(&self, topic: &str, perm: i32, count: impl Fn(&QueueData) -> i32) -> Vec<MessageQueue> {
        let mut queues: Vec<MessageQueue> = self
            .queue_datas
            .iter()
            .filter(|q| q.perm & perm != 0)
            .flat_map(|q| {
                (0..count(q).max(0)).map(|queue_id| MessageQueue {
                    topic: topic.to_string(),
                    broker_name: q.broker_name.clone(),
                    queue_id,
                })
            })
            .collect();
        queues.sort();
        queues
    }

    pub fn master_addr(&self, broker_name: &str) -> Option<&str> {
        self.broker_datas.iter().find(|b| b.broker_name == broker_name).and_then(BrokerData::master_addr)
    }
}

/// GET_BROKER_CLUSTER_INFO body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    #[serde(default)]
    pub broker_addr_table: HashMap<String, BrokerData>,
    #[serde(default)]
    pub cluster_addr_table: HashMap<String, Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse_json;

    #[test]
    fn parses_old_fastjson_route_and_lists_queues() {
        let body = br#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"b","cluster":"C"},
            {"brokerAddrs":{1:"127.0.0.1:10931"},"brokerName":"slave-only","cluster":"C"}],
            "filterServerTable":{},"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":2,"topicSysFlag":0,"writeQueueNums":3},
            {"brokerName":"slave-only","perm":6,"readQueueNums":1,"writeQueueNums":1}]}"#;
        let route: TopicRoute = parse_json(body).unwrap();
        assert_eq!(route.master_addr("b"), Some("127.0.0.1:10911"));
        assert_eq!(route.read_queues("T").len(), 3);
        let writable = route.write_queues("T");
        assert_eq!(writable.len(), 3);
        assert!(writable.iter().all(|q| q.broker_name == "b"));
    }

    #[test]
    fn read_only_queues_are_not_writable() {
        let route = TopicRoute {
            queue_datas: vec![QueueData { broker_name: "b".into(), read_queue_nums: 4, write_queue_nums: 4, perm: PERM_READ, topic_sys_flag: 0 }],
            broker_datas: vec![BrokerData { cluster: "C".into(), broker_name: "b".into(), broker_addrs: [("0".to_string(), "x:1".to_string())].into() }],
        };
        assert_eq!(route.read_queues("T").len(), 4);
        assert!(route.write_queues("T").is_empty());
    }
}
