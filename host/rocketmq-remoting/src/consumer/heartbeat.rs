//! Group membership: HEART_BEAT to every broker (so they list us in the group and tell us when
//! members change), GET_CONSUMER_LIST_BY_GROUP, UNREGISTER_CLIENT.
//!
//! Like the Java client's `MQClientInstance`, one [`GroupHeartbeats`] per [`Client`] sends one
//! heartbeat per broker carrying the data of every consumer group of that client, on one timer,
//! instead of every consumer heartbeating on its own. A consumer that starts waits for the next
//! heartbeat that includes its group: consumers starting together share one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tracing::warn;

use crate::client::Client;
use crate::error::Error;

use super::lock;
use super::rpc;
use super::subscription::{Subscription, SubscriptionData};

/// Groups per HEART_BEAT request: a broker registers (and for a new group creates the retry
/// topic of) every group of a request before it answers, so huge requests time out. Brokers
/// add the groups of a heartbeat without dropping those not listed, so splitting is safe.
const GROUPS_PER_REQUEST: usize = 200;
/// Start-up requests (offset queries, member lists) one client runs at once, so thousands of
/// consumers starting together queue here rather than time out at the broker.
const STARTUP_CONCURRENCY: usize = 32;

/// The consumer groups of one client and their shared heartbeat.
pub(crate) struct GroupHeartbeats {
    state: Mutex<HubState>,
    /// Held while a heartbeat is being sent: one round at a time.
    sending: tokio::sync::Mutex<Round>,
    startup: Semaphore,
}

#[derive(Default)]
struct HubState {
    groups: BTreeMap<String, Member>,
    timer_running: bool,
}

struct Member {
    /// Its `ConsumerData` JSON.
    data: Vec<u8>,
    interval: Duration,
    /// A broker took a heartbeat carrying it.
    announced: bool,
}

/// The last heartbeat round: when it started (it carried every group registered before), and
/// whether any broker took it.
#[derive(Default)]
struct Round {
    started: Option<Instant>,
    accepted: bool,
}

impl GroupHeartbeats {
    pub fn new() -> Self {
        GroupHeartbeats { state: Mutex::default(), sending: tokio::sync::Mutex::default(), startup: Semaphore::new(STARTUP_CONCURRENCY) }
    }

    /// A permit for one start-up request.
    pub async fn startup_permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.startup.acquire().await.expect("the semaphore is never closed")
    }

    /// Adds (or replaces) a group; starts the shared timer if it is not running.
    pub fn register(self: &Arc<Self>, client: &Client, group: &str, data: Vec<u8>, interval: Duration) {
        let mut state = lock(&self.state);
        state.groups.insert(group.to_string(), Member { data, interval, announced: false });
        if !state.timer_running {
            state.timer_running = true;
            tokio::spawn(self.clone().timer(client.clone()));
        }
    }

    pub fn unregister(&self, group: &str) {
        lock(&self.state).groups.remove(group);
    }

    /// Returns once a broker took a heartbeat carrying `group`: rounds are shared by the
    /// consumers starting together, and each round announces at most one request's worth of new
    /// groups. The error of the last broker if a round reached none.
    pub async fn join(&self, client: &Client, group: &str) -> Result<(), Error> {
        loop {
            let mut round = self.sending.lock().await;
            if lock(&self.state).groups.get(group).is_none_or(|member| member.announced) {
                return Ok(());
            }
            self.beat(client, &mut round).await?;
        }
    }

    /// Returns once a heartbeat that started after `since` was taken by a broker, sending one
    /// unless such a round already succeeded: callers waiting together share a round. The error
    /// of the last broker if none took it.
    pub async fn beat_after(&self, client: &Client, since: Instant) -> Result<(), Error> {
        let mut round = self.sending.lock().await;
        if round.accepted && round.started.is_some_and(|started| started >= since) {
            return Ok(());
        }
        self.beat(client, &mut round).await
    }

    async fn beat(&self, client: &Client, round: &mut Round) -> Result<(), Error> {
        let started = Instant::now();
        // Groups the brokers know first: a new group takes the broker long (it creates the
        // group's retry topic), and known groups expire if not refreshed within 2 minutes.
        let mut members: Vec<(bool, String, Vec<u8>)> =
            lock(&self.state).groups.iter().map(|(group, m)| (!m.announced, group.clone(), m.data.clone())).collect();
        members.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        // Few new groups per round keep rounds short, so known groups are refreshed in time.
        let known = members.iter().take_while(|(new, _, _)| !new).count();
        members.truncate(known + GROUPS_PER_REQUEST);
        // A broker restarted or lost us needs the heartbeat even when nothing changed: every broker of any known route.
        let addrs = client.all_broker_addrs();
        let mut accepted = false;
        let mut last_error = None;
        for addr in &addrs {
            for chunk in members.chunks(GROUPS_PER_REQUEST) {
                let datas: Vec<&[u8]> = chunk.iter().map(|(_, _, data)| data.as_slice()).collect();
                let body = heartbeat_body_of(client.client_id(), &datas);
                match rpc::heartbeat(client, addr, body, heartbeat_timeout(client, chunk.len())).await {
                    Ok(()) => {
                        accepted = true;
                        let mut state = lock(&self.state);
                        for (_, group, _) in chunk {
                            if let Some(member) = state.groups.get_mut(group) {
                                member.announced = true;
                            }
                        }
                    }
                    // A slow broker may still take the next chunks; an unreachable one will not.
                    Err(e @ Error::Timeout { .. }) => last_error = Some(e),
                    Err(e) => {
                        last_error = Some(e);
                        break;
                    }
                }
            }
        }
        *round = Round { started: Some(started), accepted };
        match (accepted, last_error) {
            (true, _) => Ok(()),
            (false, Some(e)) => Err(e),
            (false, None) => Err(Error::NoMaster { broker_name: "(any broker of the subscribed topics)".into() }),
        }
    }

    /// The shared periodic heartbeat, at the shortest interval any group asked for; ends when the
    /// last group left (so an unused `Client` can be dropped).
    async fn timer(self: Arc<Self>, client: Client) {
        let mut failing = false;
        loop {
            let interval = {
                let mut state = lock(&self.state);
                match state.groups.values().map(|member| member.interval).min() {
                    Some(interval) => interval,
                    None => {
                        state.timer_running = false;
                        return;
                    }
                }
            };
            tokio::time::sleep(interval).await;
            let mut round = self.sending.lock().await;
            match self.beat(&client, &mut round).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("heartbeats taken again");
                }
                Ok(()) => {}
                // Once per outage: the next rounds retry on their own.
                Err(e) if !failing => {
                    failing = true;
                    warn!(error = %e, "no broker took the heartbeat; retrying every heartbeat interval");
                }
                Err(_) => {}
            }
        }
    }
}

/// A request of many groups takes the broker longer (each new group creates a retry topic).
fn heartbeat_timeout(client: &Client, groups: usize) -> Duration {
    let base = client.config().request_timeout;
    base + base * (groups / 50) as u32
}

/// A HEART_BEAT body from already-serialized `ConsumerData` entries.
fn heartbeat_body_of(client_id: &str, consumer_datas: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::with_capacity(64 + consumer_datas.iter().map(|d| d.len() + 1).sum::<usize>());
    body.extend_from_slice(b"{\"clientID\":");
    body.extend_from_slice(&serde_json::to_vec(client_id).expect("a string serializes"));
    body.extend_from_slice(b",\"consumerDataSet\":[");
    for (index, data) in consumer_datas.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(data);
    }
    body.extend_from_slice(b"],\"producerDataSet\":[]}");
    body
}

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
struct ConsumerData<'a> {
    group_name: &'a str,
    consume_type: &'static str,
    message_model: &'static str,
    consume_from_where: &'static str,
    subscription_data_set: Vec<SubscriptionData<'a>>,
    unit_mode: bool,
}

/// The `ConsumerData` of one clustering consumer in a heartbeat (a push consumer, as the Java
/// client announces it).
pub(crate) fn consumer_data(group: &str, from: ConsumeFromWhere, subscriptions: &[Subscription]) -> Vec<u8> {
    let data = ConsumerData {
        group_name: group,
        consume_type: "CONSUME_PASSIVELY",
        message_model: "CLUSTERING",
        consume_from_where: from.as_str(),
        subscription_data_set: subscriptions.iter().map(Subscription::data).collect(),
        unit_mode: false,
    };
    serde_json::to_vec(&data).expect("consumer data is plain strings and numbers")
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
        let other = consumer_data("H", ConsumeFromWhere::LastOffset, &subs[..1]);
        let first = consumer_data("G", ConsumeFromWhere::FirstOffset, &subs);
        let body = heartbeat_body_of("127.0.0.1@1#2", &[&first, &other]);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["clientID"], "127.0.0.1@1#2");
        assert_eq!(json["producerDataSet"], serde_json::json!([]));
        assert_eq!(json["consumerDataSet"][1]["groupName"], "H", "one heartbeat carries every group");
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
