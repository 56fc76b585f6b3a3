//! A producer: SEND_MESSAGE_V2 with tags, keys and properties, round-robin over writable queues,
//! retry on another broker / queue, zlib compression of bodies over 4 KiB like the Java client.

use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tracing::debug;

use crate::client::{Client, AUTO_CREATE_TOPIC};
use crate::codes::{request, response};
use crate::command::RemotingCommand;
use crate::error::Error;
use crate::message::{hex_upper, property, sys_flag, Properties};
use crate::route::{MessageQueue, TopicRoute};

/// Java's default: bodies larger than this are zlib-compressed.
pub const COMPRESS_BODY_OVER: usize = 4 * 1024;
/// Java's default `compressLevel`.
const COMPRESS_LEVEL: u32 = 5;
/// Java's default `maxMessageSize`.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// Java's `defaultTopicQueueNums`: the queues per broker a topic created on first send gets
/// (whatever TBW102 has), so only these ids may be picked from TBW102's route.
const DEFAULT_TOPIC_QUEUES: i32 = 4;

/// A message to send. Topic is the user-facing name (the client's namespace is applied).
#[derive(Debug, Clone, Default)]
pub struct OutgoingMessage {
    pub topic: String,
    pub tags: Option<String>,
    pub keys: Vec<String>,
    /// User properties; `UNIQ_KEY` is generated when absent.
    pub properties: Properties,
    pub body: Bytes,
}

impl OutgoingMessage {
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        OutgoingMessage { topic: topic.into(), body: body.into(), ..Default::default() }
    }

    pub fn with_tags(mut self, tags: impl Into<String>) -> Self {
        self.tags = Some(tags.into());
        self
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.keys.push(key.into());
        self
    }

    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(name, value);
        self
    }
}

/// Where a message went.
#[derive(Debug, Clone, PartialEq)]
pub struct SendResult {
    /// The producer-assigned id (`UNIQ_KEY`), what consumers see as the message id.
    pub msg_id: String,
    /// The broker's offset message id.
    pub offset_msg_id: String,
    pub queue: MessageQueue,
    pub queue_offset: i64,
}

/// Sends messages; cheap to share behind an `Arc` (methods take `&self`).
pub struct Producer {
    client: Client,
    group: String,
    next_queue: AtomicUsize,
    ids: UniqIdGenerator,
    /// Extra attempts on other queues after a failure (Java's `retryTimesWhenSendFailed`).
    pub retries: usize,
}

impl Producer {
    pub async fn start(client: Client, group: &str) -> Result<Producer, Error> {
        if group.trim().is_empty() {
            return Err(Error::Config("the producer group is empty; give it a name".into()));
        }
        let ids = UniqIdGenerator::new(client.client_id());
        // Start the round-robin at a random queue, as Java does, so short-lived producers spread.
        let first_queue = std::collections::hash_map::RandomState::new().build_hasher().finish() as usize;
        Ok(Producer { group: client.wrap(group), client, next_queue: AtomicUsize::new(first_queue % 1024), ids, retries: 2 })
    }

    /// Sends to the next writable queue (round-robin), retrying elsewhere on failure.
    pub async fn send(&self, message: OutgoingMessage) -> Result<SendResult, Error> {
        let topic = self.client.wrap(&message.topic);
        let (route, default_topic) = self.route_for_sending(&topic).await?;
        let queues = sendable_queues(&route, &topic, default_topic);
        if queues.is_empty() {
            return Err(Error::NoWritableQueue { topic: message.topic.clone() });
        }
        let prepared = self.prepare(&message, &topic)?;
        let start = self.next_queue.fetch_add(1, Ordering::Relaxed);
        let mut failed_broker: Option<String> = None;
        let mut last_error = None;
        for attempt in 0..=self.retries {
            let queue = pick_queue(&queues, start + attempt, failed_broker.as_deref());
            match self.send_prepared(&prepared, queue, default_topic).await {
                Ok(result) => return Ok(result),
                Err(e) if attempt < self.retries && is_retryable(&e) => {
                    debug!(queue = %queue, error = %e, "send failed; retrying on another queue");
                    failed_broker = Some(queue.broker_name.clone());
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.expect("the loop ran at least once"))
    }

    /// Sends to one given queue (wire topic name in `queue`), without retries elsewhere.
    pub async fn send_to(&self, message: OutgoingMessage, queue: &MessageQueue) -> Result<SendResult, Error> {
        let prepared = self.prepare(&message, &queue.topic)?;
        self.send_prepared(&prepared, queue, false).await
    }

    async fn route_for_sending(&self, topic: &str) -> Result<(std::sync::Arc<TopicRoute>, bool), Error> {
        match self.client.topic_route(topic).await {
            Ok(route) => Ok((route, false)),
            // Brokers with autoCreateTopicEnable create the topic on first send via TBW102's route.
            Err(not_found @ Error::TopicNotFound { .. }) => match self.client.topic_route(AUTO_CREATE_TOPIC).await {
                Ok(route) if !route.write_queues(AUTO_CREATE_TOPIC).is_empty() => Ok((route, true)),
                _ => Err(not_found),
            },
            Err(e) => Err(e),
        }
    }

    fn prepare(&self, message: &OutgoingMessage, topic: &str) -> Result<Prepared, Error> {
        if message.topic.is_empty() {
            return Err(Error::InvalidMessage("the topic is empty".into()));
        }
        if message.body.is_empty() {
            return Err(Error::InvalidMessage(format!("the body of a message to {:?} is empty", message.topic)));
        }
        if message.body.len() > MAX_BODY {
            return Err(Error::InvalidMessage(format!(
                "the body has {} bytes; brokers accept at most {MAX_BODY}",
                message.body.len()
            )));
        }
        let mut properties = message.properties.clone();
        if let Some(tags) = &message.tags {
            properties.insert(property::TAGS, tags.clone());
        }
        if !message.keys.is_empty() {
            properties.insert(property::KEYS, message.keys.join(" "));
        }
        if properties.get(property::UNIQ_KEY).is_none() {
            properties.insert(property::UNIQ_KEY, self.ids.next());
        }
        if properties.get(property::WAIT_STORE_MSG_OK).is_none() {
            properties.insert(property::WAIT_STORE_MSG_OK, "true");
        }
        for (name, value) in properties.iter() {
            let separators = [property::NAME_VALUE_SEPARATOR, property::PROPERTY_SEPARATOR];
            if name.is_empty() || name.contains(separators) || value.contains(separators) {
                return Err(Error::InvalidMessage(format!(
                    "property {name:?} is empty or contains the reserved characters \\u0001 / \\u0002"
                )));
            }
        }
        let (body, sys_flag) = if message.body.len() > COMPRESS_BODY_OVER {
            (Bytes::from(zlib(&message.body)?), sys_flag::COMPRESSED)
        } else {
            (message.body.clone(), 0)
        };
        Ok(Prepared { topic: topic.to_string(), msg_id: properties.get(property::UNIQ_KEY).unwrap_or_default().to_string(), properties: properties.wire().to_string(), body, sys_flag })
    }

    async fn send_prepared(&self, prepared: &Prepared, queue: &MessageQueue, default_topic: bool) -> Result<SendResult, Error> {
        let addr = self.client.find_master(&queue.topic, &queue.broker_name).await?;
        let born = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default();
        let request = RemotingCommand::request(request::SEND_MESSAGE_V2)
            .with_field("a", &self.group)
            .with_field("b", &prepared.topic)
            .with_field("c", AUTO_CREATE_TOPIC)
            .with_field("d", DEFAULT_TOPIC_QUEUES)
            .with_field("e", queue.queue_id)
            .with_field("f", prepared.sys_flag)
            .with_field("g", born)
            .with_field("h", 0)
            .with_field("i", &prepared.properties)
            .with_field("j", 0)
            .with_field("k", false)
            .with_field("m", false)
            .with_field("n", &queue.broker_name)
            .with_body(prepared.body.clone());
        let response = self.client.invoke(&addr, request, self.client.config().request_timeout).await?;
        match response.code {
            // Stored; the flush / slave states only matter for sync-replication guarantees.
            response::SUCCESS | response::FLUSH_DISK_TIMEOUT | response::FLUSH_SLAVE_TIMEOUT | response::SLAVE_NOT_AVAILABLE => {}
            _ => return Err(self.client.response_error(&addr, request::SEND_MESSAGE_V2, &response)),
        }
        if default_topic {
            // The broker has just created the topic: use its own route from now on.
            self.client.forget_route(&prepared.topic);
        }
        let queue_id = response.field_i64("queueId").map(|id| id as i32).unwrap_or(queue.queue_id);
        Ok(SendResult {
            msg_id: prepared.msg_id.clone(),
            offset_msg_id: response.field("msgId").unwrap_or_default().to_string(),
            queue: MessageQueue { topic: queue.topic.clone(), broker_name: queue.broker_name.clone(), queue_id },
            queue_offset: response.field_i64("queueOffset").ok_or_else(|| Error::BadResponse {
                addr,
                what: "send response",
                reason: "no queueOffset in the header".into(),
            })?,
        })
    }
}

struct Prepared {
    topic: String,
    msg_id: String,
    properties: String,
    body: Bytes,
    sys_flag: i32,
}

/// The writable queues of `topic`; from TBW102's route (`default_topic`) only those the broker
/// will create, as Java's `topicRouteData2TopicPublishInfo` caps them.
fn sendable_queues(route: &TopicRoute, topic: &str, default_topic: bool) -> Vec<MessageQueue> {
    let mut queues = route.write_queues(topic);
    if default_topic {
        queues.retain(|queue| queue.queue_id < DEFAULT_TOPIC_QUEUES);
    }
    queues
}

/// The queue at `index` (round-robin), skipping the broker that just failed when possible.
fn pick_queue<'a>(queues: &'a [MessageQueue], index: usize, avoid_broker: Option<&str>) -> &'a MessageQueue {
    (0..queues.len())
        .map(|step| &queues[(index + step) % queues.len()])
        .find(|q| Some(q.broker_name.as_str()) != avoid_broker)
        .unwrap_or(&queues[index % queues.len()])
}

/// Failures where another queue or broker may succeed (Java's retry list, minus permissions).
fn is_retryable(error: &Error) -> bool {
    error.is_transport()
        || matches!(error, Error::NoMaster { .. })
        || matches!(
            error.remote_code(),
            Some(response::SYSTEM_ERROR | response::SYSTEM_BUSY | response::SERVICE_NOT_AVAILABLE | response::TOPIC_NOT_EXIST)
        )
}

fn zlib(body: &[u8]) -> Result<Vec<u8>, Error> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::with_capacity(body.len() / 2), flate2::Compression::new(COMPRESS_LEVEL));
    encoder.write_all(body).and_then(|_| encoder.finish()).map_err(|e| Error::Compression(e.to_string()))
}

/// Message ids in the format of Java's `MessageClientIDSetter`: 32 upper-case hex digits of
/// IPv4 (4 bytes), pid (2), a per-process random (4), milliseconds since the start of the
/// month (4, UTC here) and a counter (2).
struct UniqIdGenerator {
    prefix: String,
    counter: AtomicU16,
}

impl UniqIdGenerator {
    fn new(client_id: &str) -> Self {
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let ip = match client_id.split('@').next().and_then(|ip| ip.parse::<IpAddr>().ok()) {
            Some(IpAddr::V4(ip)) => ip.octets(),
            _ => (random >> 32).to_be_bytes()[4..].try_into().expect("4 bytes"),
        };
        let mut fixed = Vec::with_capacity(10);
        fixed.extend_from_slice(&ip);
        fixed.extend_from_slice(&(std::process::id() as u16).to_be_bytes());
        fixed.extend_from_slice(&(random as u32).to_be_bytes());
        UniqIdGenerator { prefix: hex_upper(&fixed), counter: AtomicU16::new(0) }
    }

    fn next(&self) -> String {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default();
        let mut tail = Vec::with_capacity(6);
        tail.extend_from_slice(&((now_ms - month_start_ms(now_ms)) as i32).to_be_bytes());
        tail.extend_from_slice(&self.counter.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        format!("{}{}", self.prefix, hex_upper(&tail))
    }
}

/// Milliseconds at 00:00 UTC on the first day of the month containing `ms`.
fn month_start_ms(ms: i64) -> i64 {
    const DAY_MS: i64 = 86_400_000;
    let days = ms.div_euclid(DAY_MS);
    // Civil-from-days (Howard Hinnant's algorithm): only the day of the month is needed.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day_of_month = day_of_year - (153 * month_index + 2) / 5; // 0-based
    (days - day_of_month) * DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_start() {
        // 2024-03-15T12:00:00Z → 2024-03-01T00:00:00Z
        assert_eq!(month_start_ms(1_710_504_000_000), 1_709_251_200_000);
        // 2024-02-29T23:59:59.999Z → 2024-02-01
        assert_eq!(month_start_ms(1_709_251_199_999), 1_706_745_600_000);
        assert_eq!(month_start_ms(1_709_251_200_000), 1_709_251_200_000);
    }

    #[test]
    fn uniq_ids_look_like_java_ones_and_differ() {
        let ids = UniqIdGenerator::new("10.1.2.3@123#456");
        let (a, b) = (ids.next(), ids.next());
        assert_eq!(a.len(), 32);
        assert!(a.starts_with("0A010203"));
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_topic_created_on_first_send_gets_at_most_the_default_queue_count() {
        let route: TopicRoute = crate::command::parse_json(
            br#"{"brokerDatas":[{"brokerAddrs":{"0":"x:1"},"brokerName":"b","cluster":"C"}],
                 "queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":8,"writeQueueNums":8}]}"#,
        )
        .unwrap();
        let ids = |queues: Vec<MessageQueue>| queues.into_iter().map(|q| q.queue_id).collect::<Vec<_>>();
        assert_eq!(ids(sendable_queues(&route, "New", true)), [0, 1, 2, 3]);
        assert_eq!(ids(sendable_queues(&route, "Known", false)).len(), 8);
    }

    #[test]
    fn picks_round_robin_and_avoids_the_failed_broker() {
        let q = |b: &str, id| MessageQueue { topic: "T".into(), broker_name: b.into(), queue_id: id };
        let queues = vec![q("a", 0), q("a", 1), q("b", 0)];
        assert_eq!(pick_queue(&queues, 4, None), &q("a", 1));
        assert_eq!(pick_queue(&queues, 0, Some("a")), &q("b", 0));
        assert_eq!(pick_queue(&queues[..2], 0, Some("a")), &q("a", 0));
    }
}
