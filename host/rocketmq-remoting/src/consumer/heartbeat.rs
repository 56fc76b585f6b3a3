//! Group membership: HEART_BEAT to every broker of the subscribed topics (so they list us in
//! the group and tell us when members change), GET_CONSUMER_LIST_BY_GROUP, UNREGISTER_CLIENT.

use serde::{Deserialize, Serialize};

use super::subscription::{Subscription, SubscriptionData};

/// `ConsumeFromWhere` as Java announces it (informational for the broker).
#[derive(Debug, Clone, Copy)]
pub(crate) enum ConsumeFromWhere {
    LastOffset,
    FirstOffset,
    Timestamp,
}

impl ConsumeFromWhere {
    fn as_str(self) -> &'static str {
        match self {
            ConsumeFromWhere::LastOffset => "CONSUME_FROM_LAST_OFFSET",
            ConsumeFromWhere::FirstOffset => "CONSUME_FROM_FIRST_OFFSET",
            ConsumeFromWhere::Timestamp => "CONSUME_FROM_TIMESTAMP",
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HeartbeatData<'a> {
    #[serde(rename = "clientID")]
    client_id: &'a str,
    consumer_data_set: [ConsumerData<'a>; 1],
    producer_data_set: [(); 0],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConsumerData<'a> {
    group_name: &'a str,
    consume_type: &'static str,
    message_model: &'static str,
    consume_from_where: &'static str,
    subscription_data_set: Vec<SubscriptionData<'a>>,
    unit_mode: bool,
}

/// The HEART_BEAT body of one clustering consumer (a push consumer, as the Java client announces it).
pub(crate) fn heartbeat_body(
    client_id: &str,
    group: &str,
    from: ConsumeFromWhere,
    subscriptions: &[Subscription],
) -> Vec<u8> {
    let data = HeartbeatData {
        client_id,
        consumer_data_set: [ConsumerData {
            group_name: group,
            consume_type: "CONSUME_PASSIVELY",
            message_model: "CLUSTERING",
            consume_from_where: from.as_str(),
            subscription_data_set: subscriptions.iter().map(Subscription::data).collect(),
            unit_mode: false,
        }],
        producer_data_set: [],
    };
    serde_json::to_vec(&data).expect("heartbeat data is plain strings and numbers")
}

/// GET_CONSUMER_LIST_BY_GROUP response body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConsumerList {
    #[serde(default)]
    pub consumer_id_list: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_matches_the_java_shape() {
        let subs = [
            Subscription::new("T", "a || b", 7).unwrap(),
            Subscription::new("%RETRY%G", "*", 7).unwrap(),
        ];
        let body = heartbeat_body("127.0.0.1@1#2", "G", ConsumeFromWhere::FirstOffset, &subs);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["clientID"], "127.0.0.1@1#2");
        assert_eq!(json["producerDataSet"], serde_json::json!([]));
        let consumer = &json["consumerDataSet"][0];
        assert_eq!(consumer["groupName"], "G");
        assert_eq!(consumer["consumeType"], "CONSUME_PASSIVELY");
        assert_eq!(consumer["messageModel"], "CLUSTERING");
        assert_eq!(consumer["consumeFromWhere"], "CONSUME_FROM_FIRST_OFFSET");
        assert_eq!(consumer["unitMode"], false);
        let subs = consumer["subscriptionDataSet"].as_array().unwrap();
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[0]["codeSet"], serde_json::json!([97, 98]));
        assert_eq!(subs[1]["topic"], "%RETRY%G");
        assert_eq!(subs[1]["subString"], "*");
    }

    #[test]
    fn consumer_list_parses() {
        let list: ConsumerList = serde_json::from_slice(br#"{"consumerIdList":["b@1","a@2"]}"#).unwrap();
        assert_eq!(list.consumer_id_list, vec!["b@1", "a@2"]);
    }
}
