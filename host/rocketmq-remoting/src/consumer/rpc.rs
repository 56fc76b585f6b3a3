//! The broker requests a cluster consumer makes, with Java's header names. Names are wire
//! names (namespace already applied).

use std::time::Duration;

use crate::client::Client;
use crate::codes::{request, response};
use crate::command::{parse_json, RemotingCommand};
use crate::connection::PendingAnswer;
use crate::error::Error;
use crate::message::MessageExt;
use crate::route::MessageQueue;

use super::heartbeat::ConsumerList;
use super::subscription::Subscription;

/// `PullSysFlag`: the broker stores `commitOffset` as the group's offset of the queue.
const PULL_FLAG_COMMIT_OFFSET: i32 = 0x1;
/// `PullSysFlag`: hold the request until messages arrive (long poll).
const PULL_FLAG_SUSPEND: i32 = 0x2;
/// `PullSysFlag`: the request carries the subscription, so the broker does not need our
/// heartbeat first.
const PULL_FLAG_SUBSCRIPTION: i32 = 0x4;

/// The outcome of one PULL_MESSAGE.
#[derive(Debug)]
pub(crate) enum PullResult {
    /// Messages (still encoded in `body`) and where the next pull starts.
    Found { body: bytes::Bytes, next_begin: i64 },
    /// Nothing new within the long-poll time (NO_NEW_MSG).
    NoNewMessage { next_begin: i64 },
    /// Messages exist but none matched the tag hashes (NO_MATCHED_MSG): go on from `next_begin`.
    NoMatchedMessage { next_begin: i64 },
    /// Our offset is outside the queue (OFFSET_ILLEGAL): the broker says where to restart.
    OffsetIllegal { next_begin: i64 },
}

pub(crate) struct PullRequest<'a> {
    pub group: &'a str,
    pub queue: &'a MessageQueue,
    pub offset: i64,
    pub max_messages: u32,
    pub subscription: &'a Subscription,
    pub suspend: Duration,
    /// The acknowledged offset to store with this pull (Java's push consumer piggy-backs it).
    pub commit_offset: Option<i64>,
}

fn pull_command(pull: &PullRequest<'_>) -> RemotingCommand {
    // Like Java, only a positive offset is worth committing (0 is every queue's start).
    let commit_offset = pull.commit_offset.filter(|offset| *offset > 0);
    let commit_flag = if commit_offset.is_some() { PULL_FLAG_COMMIT_OFFSET } else { 0 };
    RemotingCommand::request(request::PULL_MESSAGE)
        .with_field("consumerGroup", pull.group)
        .with_field("topic", &pull.queue.topic)
        .with_field("queueId", pull.queue.queue_id)
        .with_field("queueOffset", pull.offset)
        .with_field("maxMsgNums", pull.max_messages)
        .with_field("sysFlag", commit_flag | PULL_FLAG_SUSPEND | PULL_FLAG_SUBSCRIPTION)
        .with_field("commitOffset", commit_offset.unwrap_or(0))
        .with_field("suspendTimeoutMillis", pull.suspend.as_millis())
        .with_field("subscription", &pull.subscription.expression)
        .with_field("subVersion", pull.subscription.version)
        .with_field("expressionType", "TAG")
}

/// Sends PULL_MESSAGE; [`pull_result`] reads the answer. Split so the long wait for it holds
/// only a [`PendingAnswer`] (a pull per queue waits, thousands per process).
pub(crate) async fn send_pull(client: &Client, addr: &str, pull: PullRequest<'_>) -> Result<PendingAnswer, Error> {
    let request = pull_command(&pull);
    // Java waits 30 s for a 15 s long poll: the broker answers at the end of the hold.
    client.send(addr, request, pull.suspend * 2).await
}

/// The outcome of a pull, and the queue's max offset if the broker's answer carries it
/// (every answer of a 4.x / 5.x broker does).
pub(crate) fn pull_result(client: &Client, addr: &str, response: RemotingCommand) -> Result<(PullResult, Option<i64>), Error> {
    let next_begin = || {
        response.field_i64("nextBeginOffset").ok_or_else(|| Error::BadResponse {
            addr: addr.to_string(),
            what: "pull response",
            reason: format!("code {} without a nextBeginOffset header", response.code),
        })
    };
    let result = match response.code {
        response::SUCCESS => PullResult::Found { next_begin: next_begin()?, body: response.body.clone() },
        response::PULL_NOT_FOUND => PullResult::NoNewMessage { next_begin: next_begin()? },
        response::PULL_RETRY_IMMEDIATELY => PullResult::NoMatchedMessage { next_begin: next_begin()? },
        response::PULL_OFFSET_MOVED => PullResult::OffsetIllegal { next_begin: next_begin()? },
        _ => return Err(client.response_error(addr, request::PULL_MESSAGE, &response)),
    };
    Ok((result, response.field_i64("maxOffset")))
}

/// QUERY_CONSUMER_OFFSET: the group's stored offset, `None` when the broker has none.
/// `setZeroIfNotFound=false` asks 5.x brokers to say "none" for a new group instead of 0 on a
/// young queue; 4.9 brokers ignore it (see the module docs of `consumer`).
pub(crate) async fn query_offset(client: &Client, addr: &str, group: &str, queue: &MessageQueue, timeout: Duration) -> Result<Option<i64>, Error> {
    let request = RemotingCommand::request(request::QUERY_CONSUMER_OFFSET)
        .with_field("consumerGroup", group)
        .with_field("topic", &queue.topic)
        .with_field("queueId", queue.queue_id)
        .with_field("setZeroIfNotFound", false);
    let response = client.invoke(addr, request, timeout).await?;
    match response.code {
        response::SUCCESS => offset_field(addr, &response, "offset").map(Some),
        response::QUERY_NOT_FOUND => Ok(None),
        _ => Err(client.response_error(addr, request::QUERY_CONSUMER_OFFSET, &response)),
    }
}

/// UPDATE_CONSUMER_OFFSET, waiting for the broker's answer so failures can be reported.
pub(crate) async fn update_offset(client: &Client, addr: &str, group: &str, queue: &MessageQueue, offset: i64, timeout: Duration) -> Result<(), Error> {
    let request = RemotingCommand::request(request::UPDATE_CONSUMER_OFFSET)
        .with_field("consumerGroup", group)
        .with_field("topic", &queue.topic)
        .with_field("queueId", queue.queue_id)
        .with_field("commitOffset", offset);
    client.invoke_ok(addr, request, timeout).await.map(drop)
}

/// GET_MAX_OFFSET: the offset the next message of the queue will get.
pub(crate) async fn max_offset(client: &Client, addr: &str, queue: &MessageQueue, timeout: Duration) -> Result<i64, Error> {
    let request = RemotingCommand::request(request::GET_MAX_OFFSET)
        .with_field("topic", &queue.topic)
        .with_field("queueId", queue.queue_id);
    let response = client.invoke_ok(addr, request, timeout).await?;
    offset_field(addr, &response, "offset")
}

/// SEARCH_OFFSET_BY_TIMESTAMP: the first offset stored at or after `timestamp_ms`.
pub(crate) async fn search_offset(client: &Client, addr: &str, queue: &MessageQueue, timestamp_ms: i64, timeout: Duration) -> Result<i64, Error> {
    let request = RemotingCommand::request(request::SEARCH_OFFSET_BY_TIMESTAMP)
        .with_field("topic", &queue.topic)
        .with_field("queueId", queue.queue_id)
        .with_field("timestamp", timestamp_ms);
    let response = client.invoke_ok(addr, request, timeout).await?;
    offset_field(addr, &response, "offset")
}

pub(crate) async fn heartbeat(client: &Client, addr: &str, body: Vec<u8>, timeout: Duration) -> Result<(), Error> {
    let request = RemotingCommand::request(request::HEART_BEAT).with_body(body);
    client.invoke_ok(addr, request, timeout).await.map(drop)
}

/// GET_CONSUMER_LIST_BY_GROUP: the client ids the broker currently lists in the group.
pub(crate) async fn consumer_list(client: &Client, addr: &str, group: &str, timeout: Duration) -> Result<Vec<String>, Error> {
    let request = RemotingCommand::request(request::GET_CONSUMER_LIST_BY_GROUP).with_field("consumerGroup", group);
    let response = client.invoke_ok(addr, request, timeout).await?;
    let list: ConsumerList = parse_json(&response.body).map_err(|e| Error::BadResponse {
        addr: addr.to_string(),
        what: "consumer list",
        reason: e.to_string(),
    })?;
    Ok(list.consumer_id_list)
}

/// UNREGISTER_CLIENT: leave the group now, so the others re-balance without waiting for our
/// heartbeat to expire.
pub(crate) async fn unregister(client: &Client, addr: &str, client_id: &str, group: &str, timeout: Duration) -> Result<(), Error> {
    let request = RemotingCommand::request(request::UNREGISTER_CLIENT)
        .with_field("clientID", client_id)
        .with_field("consumerGroup", group);
    client.invoke_ok(addr, request, timeout).await.map(drop)
}

/// What CONSUMER_SEND_MSG_BACK needs.
pub(crate) struct SendBack<'a> {
    pub group: &'a str,
    pub message: &'a MessageExt,
    /// The message's original topic (wire name), also for redelivered messages.
    pub origin_topic: &'a str,
    pub delay_level: i32,
    pub max_reconsume_times: i32,
}

/// CONSUMER_SEND_MSG_BACK: the broker copies the stored message to `%RETRY%group` (delayed by
/// `delay_level`), or to `%DLQ%group` once it was reconsumed `max_reconsume_times` times.
pub(crate) async fn send_back(client: &Client, addr: &str, back: SendBack<'_>, timeout: Duration) -> Result<(), Error> {
    let request = RemotingCommand::request(request::CONSUMER_SEND_MSG_BACK)
        .with_field("offset", back.message.commit_log_offset)
        .with_field("group", back.group)
        .with_field("delayLevel", back.delay_level)
        .with_field("originMsgId", back.message.message_id())
        .with_field("originTopic", back.origin_topic)
        .with_field("unitMode", false)
        .with_field("maxReconsumeTimes", back.max_reconsume_times);
    client.invoke_ok(addr, request, timeout).await.map(drop)
}

fn offset_field(addr: &str, response: &RemotingCommand, name: &'static str) -> Result<i64, Error> {
    response.field_i64(name).ok_or_else(|| Error::BadResponse {
        addr: addr.to_string(),
        what: "offset response",
        reason: format!("no numeric {name:?} header"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(commit_offset: Option<i64>) -> RemotingCommand {
        let queue = MessageQueue { topic: "T".into(), broker_name: "b".into(), queue_id: 3 };
        let subscription = Subscription::new("T", "*", 1).unwrap();
        pull_command(&PullRequest {
            group: "G",
            queue: &queue,
            offset: 40,
            max_messages: 32,
            subscription: &subscription,
            suspend: Duration::from_secs(15),
            commit_offset,
        })
    }

    #[test]
    fn a_pull_carries_the_acknowledged_offset_with_the_commit_flag() {
        let pull = command(Some(37));
        assert_eq!(pull.field("sysFlag"), Some("7"), "commit | suspend | subscription");
        assert_eq!(pull.field("commitOffset"), Some("37"));
        assert_eq!(pull.field("queueOffset"), Some("40"));
    }

    #[test]
    fn nothing_to_commit_clears_the_flag() {
        for nothing in [None, Some(0)] {
            let pull = command(nothing);
            assert_eq!(pull.field("sysFlag"), Some("6"));
            assert_eq!(pull.field("commitOffset"), Some("0"));
        }
    }
}
