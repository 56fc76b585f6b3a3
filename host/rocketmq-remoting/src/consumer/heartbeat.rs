//! Group membership: HEART_BEAT to every broker (so they list us in the group and tell us when
//! members change), GET_CONSUMER_LIST_BY_GROUP, UNREGISTER_CLIENT.
//!
//! Like the Java client's `MQClientInstance`, one [`GroupHeartbeats`] per [`Client`] sends one
//! heartbeat per broker carrying the data of every consumer group of that client, on one timer,
//! instead of every consumer heartbeating on its own. A consumer that starts waits for the next
//! heartbeat that announces its group: consumers starting together share one, and such a round
//! carries only groups not announced yet, so starting n groups costs O(n), not a re-send of
//! every known group per round. Refreshing the announced groups runs beside the joins, never
//! behind them: a broker busy creating the retry topics of thousands of new groups must not
//! expire (and close the connection of) groups already running. It also takes
//! NOTIFY_CONSUMER_IDS_CHANGED for all the groups and wakes the one group named.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};
use tracing::{debug, warn};

use crate::client::Client;
use crate::codes::{request, response};
use crate::command::RemotingCommand;
use crate::connection::RequestHandler;
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
    /// Held while new groups are being announced: one join round at a time.
    joining: tokio::sync::Mutex<()>,
    /// Held while the announced groups are being refreshed: one refresh at a time.
    refreshing: tokio::sync::Mutex<Round>,
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
    /// Notified when a broker says the group's members changed.
    members_changed: Arc<Notify>,
}

/// The last refresh of the announced groups: when it started, and whether any broker took it.
#[derive(Default)]
struct Round {
    started: Option<Instant>,
    accepted: bool,
}

/// Which groups a round carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Up to one request's worth of groups no broker took yet: what a starting consumer waits
    /// for. Slow for the broker (it creates each group's retry topic and subscription group).
    Joining,
    /// Every announced group: brokers drop (and close the connection of) a member whose
    /// heartbeat is older than 2 minutes, and a restarted broker knows none. Fast for the broker.
    Known,
}

impl GroupHeartbeats {
    pub fn new() -> Self {
        GroupHeartbeats {
            state: Mutex::default(),
            joining: tokio::sync::Mutex::default(),
            refreshing: tokio::sync::Mutex::default(),
            startup: Semaphore::new(STARTUP_CONCURRENCY),
        }
    }

    /// A permit for one start-up request.
    pub async fn startup_permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.startup.acquire().await.expect("the semaphore is never closed")
    }

    /// Adds (or replaces) a group; starts the shared timer if it is not running.
    /// `members_changed` is notified whenever a broker says the group's members changed.
    pub fn register(self: &Arc<Self>, client: &Client, group: &str, data: Vec<u8>, interval: Duration, members_changed: Arc<Notify>) {
        let mut state = lock(&self.state);
        state.groups.insert(group.to_string(), Member { data, interval, announced: false, members_changed });
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
            let _joining = self.joining.lock().await;
            if lock(&self.state).groups.get(group).is_none_or(|member| member.announced) {
                return Ok(());
            }
            self.beat(client, Scope::Joining).await?;
        }
    }

    /// Returns once a refresh of the announced groups that started after `since` was taken by
    /// a broker, sending one unless such a round already succeeded: callers waiting together
    /// share a round. The error of the last broker if none took it.
    pub async fn beat_after(&self, client: &Client, since: Instant) -> Result<(), Error> {
        let mut round = self.refreshing.lock().await;
        if round.accepted && round.started.is_some_and(|started| started >= since) {
            return Ok(());
        }
        self.refresh(client, &mut round).await
    }

    async fn refresh(&self, client: &Client, round: &mut Round) -> Result<(), Error> {
        let started = Instant::now();
        let result = self.beat(client, Scope::Known).await;
        *round = Round { started: Some(started), accepted: result.is_ok() };
        result
    }

    /// Sends the groups of `scope` to every broker, in requests of [`GROUPS_PER_REQUEST`].
    async fn beat(&self, client: &Client, scope: Scope) -> Result<(), Error> {
        let members: Vec<(String, Vec<u8>)> = {
            let (announced, limit) = match scope {
                Scope::Joining => (false, GROUPS_PER_REQUEST),
                Scope::Known => (true, usize::MAX),
            };
            let state = lock(&self.state);
            let chosen = state.groups.iter().filter(|(_, member)| member.announced == announced);
            chosen.take(limit).map(|(group, member)| (group.clone(), member.data.clone())).collect()
        };
        if members.is_empty() {
            return Ok(());
        }
        // A broker restarted or lost us needs the heartbeat even when nothing changed: every broker of any known route.
        let addrs = client.all_broker_addrs();
        let mut accepted = false;
        let mut last_error = None;
        for addr in &addrs {
            for chunk in members.chunks(GROUPS_PER_REQUEST) {
                let datas: Vec<&[u8]> = chunk.iter().map(|(_, data)| data.as_slice()).collect();
                let body = heartbeat_body_of(client.client_id(), &datas);
                match rpc::heartbeat(client, addr, body, heartbeat_timeout(client, chunk.len())).await {
                    Ok(()) => {
                        accepted = true;
                        let mut state = lock(&self.state);
                        for (group, _) in chunk {
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
            let mut round = self.refreshing.lock().await;
            match self.refresh(&client, &mut round).await {
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

/// Wakes the re-balance of the group a broker names, in O(1) however many groups run.
impl RequestHandler for GroupHeartbeats {
    fn handle(&self, server_addr: &str, request: &RemotingCommand) -> Option<RemotingCommand> {
        if request.code != request::NOTIFY_CONSUMER_IDS_CHANGED {
            return None;
        }
        let group = request.field("consumerGroup")?;
        let members_changed = lock(&self.state).groups.get(group)?.members_changed.clone();
        debug!(group, broker = server_addr, "group members changed; re-balancing");
        members_changed.notify_one();
        Some(RemotingCommand::response_to(request, response::SUCCESS, None))
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
    use crate::client::ClientConfig;
    use crate::consumer::fake;

    /// A cluster that takes every heartbeat and sends the group names of each on `heartbeats`.
    async fn fake_cluster(heartbeats: tokio::sync::mpsc::UnboundedSender<Vec<String>>) -> String {
        fake::fake_cluster(move |request| {
            if request.code == request::HEART_BEAT {
                let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                let groups = body["consumerDataSet"].as_array().unwrap().iter().map(|c| c["groupName"].as_str().unwrap().to_string());
                heartbeats.send(groups.collect()).unwrap();
            }
            vec![RemotingCommand::response_to(request, response::SUCCESS, None)]
        })
        .await
    }

    #[tokio::test]
    async fn a_joining_group_is_announced_alone_and_the_refresh_carries_every_group() {
        let (tx, mut heartbeats) = tokio::sync::mpsc::unbounded_channel();
        let addr = fake_cluster(tx).await;
        let client = Client::new(ClientConfig::new([addr])).unwrap();
        client.topic_route("T").await.unwrap();
        let hub = client.group_heartbeats().clone();
        let changed: Vec<Arc<Notify>> = (0..3).map(|_| Arc::default()).collect();
        for (index, group) in ["A", "B", "C"].into_iter().enumerate() {
            hub.register(&client, group, consumer_data(group, ConsumeFromWhere::LastOffset, &[]), Duration::from_secs(3600), changed[index].clone());
            hub.join(&client, group).await.unwrap();
            assert_eq!(heartbeats.recv().await.unwrap(), [group], "a join round carries only the groups no broker took yet");
        }
        hub.join(&client, "A").await.unwrap();
        assert!(heartbeats.try_recv().is_err(), "an announced group joins without a round");
        let joining = Arc::default();
        hub.register(&client, "D", consumer_data("D", ConsumeFromWhere::LastOffset, &[]), Duration::from_secs(3600), joining);
        let since = Instant::now();
        hub.beat_after(&client, since).await.unwrap();
        assert_eq!(heartbeats.recv().await.unwrap(), ["A", "B", "C"], "a refresh carries every announced group, and no joining one");
        hub.beat_after(&client, since).await.unwrap();
        assert!(heartbeats.try_recv().is_err(), "callers asking together share one refresh");

        let notify = |group: &str| {
            let request = RemotingCommand::request(request::NOTIFY_CONSUMER_IDS_CHANGED).with_field("consumerGroup", group);
            hub.handle("broker", &request)
        };
        assert!(notify("B").is_some_and(|answer| answer.code == response::SUCCESS));
        tokio::time::timeout(Duration::from_secs(1), changed[1].notified()).await.expect("B's re-balance is woken");
        assert!(notify("unknown").is_none(), "a group of no consumer here is left to other handlers");
    }

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
