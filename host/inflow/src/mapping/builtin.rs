//! The built-in mapping: the managed service's property contract (see the README's "The
//! built-in mapping").
//!
//! Pure: a message's properties and body in, one publish or a [`MapError`] out.

use super::MapError;
use crate::sink::{Publish, QoS};
use bytes::Bytes;
use serde::Deserialize;

pub const SECOND_TOPIC: &str = "mqttSecondTopic";
pub const REAL_TOPIC: &str = "mqttRealTopic";
pub const QOS_LEVEL: &str = "qoslevel";
pub const CLEAN_SESSION: &str = "cleansessionflag";
pub const USER_PROPERTY: &str = "mqtt5UserProperty";
pub const EXPIRE_INTERVAL: &str = "mqtt5MsgExpireInterval";
pub const CONTENT_TYPE: &str = "mqtt5ContentType";

/// Largest `mqtt5UserProperty` value accepted.
pub const MAX_USER_PROPERTY_BYTES: usize = 8 * 1024;

/// The result of the built-in mapping for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    pub publish: Publish,
    /// `cleansessionflag`: carried for point-to-point semantics; it does not change the publish.
    pub clean_session: bool,
}

/// Maps one message. `property` looks a RocketMQ message property up by key.
pub fn map<'a>(
    parent_topic: &str,
    max_topic_bytes: usize,
    property: impl Fn(&str) -> Option<&'a str>,
    body: Bytes,
) -> Result<Mapped, MapError> {
    let topic = match property(REAL_TOPIC) {
        Some(real) => {
            check_topic_name(REAL_TOPIC, real)?;
            real.to_string()
        }
        None => {
            let second = property(SECOND_TOPIC).unwrap_or("");
            if !second.is_empty() {
                if !second.starts_with('/') {
                    return Err(bad(SECOND_TOPIC, second, "a subtopic starts with '/', e.g. /room1/temp"));
                }
                check_topic_name(SECOND_TOPIC, second)?;
            }
            let mut topic = String::with_capacity(parent_topic.len() + second.len());
            topic.push_str(parent_topic);
            topic.push_str(second);
            topic
        }
    };
    if topic.len() > max_topic_bytes {
        return Err(MapError::TopicTooLong { len: topic.len(), topic, limit: max_topic_bytes });
    }
    let qos = match property(QOS_LEVEL).map(str::trim) {
        None => QoS::AtLeastOnce,
        Some("0") => QoS::AtMostOnce,
        Some("1") => QoS::AtLeastOnce,
        Some("2") => QoS::ExactlyOnce,
        Some(other) => return Err(bad(QOS_LEVEL, other, "QoS is 0, 1 or 2")),
    };
    let clean_session = match property(CLEAN_SESSION).map(str::trim) {
        None => true,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(other) => return Err(bad(CLEAN_SESSION, other, "use true or false")),
    };
    let user_properties = match property(USER_PROPERTY) {
        None => Vec::new(),
        Some(json) => parse_user_properties(json)?,
    };
    let message_expiry_interval = match property(EXPIRE_INTERVAL) {
        None => None,
        Some(v) => match v.trim().parse::<u32>() {
            Ok(secs) if secs <= 65535 => Some(secs),
            _ => return Err(bad(EXPIRE_INTERVAL, v, "seconds from 0 to 65535")),
        },
    };
    let content_type = property(CONTENT_TYPE).map(str::to_string);
    Ok(Mapped {
        publish: Publish { topic, qos, retain: false, payload: body, user_properties, content_type, message_expiry_interval },
        clean_session,
    })
}

fn bad(key: &'static str, value: &str, reason: &str) -> MapError {
    let mut value = value.to_string();
    if value.len() > 200 {
        let mut cut = 200;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        value.truncate(cut);
        value.push('…');
    }
    MapError::BadProperty { key, value, reason: reason.to_string() }
}

/// A topic we publish to: not empty, no wildcards, no NUL.
pub(crate) fn check_topic_name(key: &'static str, topic: &str) -> Result<(), MapError> {
    if topic.is_empty() {
        return Err(bad(key, topic, "the topic is empty"));
    }
    if topic.contains(['+', '#']) {
        return Err(bad(key, topic, "'+' and '#' are MQTT wildcards, not allowed in a published topic"));
    }
    if topic.contains('\0') {
        return Err(bad(key, topic, "NUL is not allowed in an MQTT topic"));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserProperty {
    key: String,
    value: String,
}

fn parse_user_properties(json: &str) -> Result<Vec<(String, String)>, MapError> {
    if json.len() > MAX_USER_PROPERTY_BYTES {
        return Err(bad(USER_PROPERTY, json, &format!("{} bytes, over the limit of 8 KiB", json.len())));
    }
    let list: Vec<UserProperty> = serde_json::from_str(json).map_err(|e| {
        bad(USER_PROPERTY, json, &format!("expected a JSON array of {{\"key\":\"k\",\"value\":\"v\"}} objects: {e}"))
    })?;
    if list.iter().any(|p| p.key.contains('\0') || p.value.contains('\0')) {
        return Err(bad(USER_PROPERTY, json, "NUL is not allowed in MQTT strings"));
    }
    Ok(list.into_iter().map(|p| (p.key, p.value)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(props: &[(&str, &str)]) -> Result<Mapped, MapError> {
        run_limit(props, 65535)
    }

    fn run_limit(props: &[(&str, &str)], limit: usize) -> Result<Mapped, MapError> {
        let map: HashMap<&str, &str> = props.iter().copied().collect();
        super::map("parent", limit, |k| map.get(k).copied(), Bytes::from_static(b"body"))
    }

    fn key_of(e: MapError) -> &'static str {
        match e {
            MapError::BadProperty { key, .. } => key,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults_without_properties() {
        let m = run(&[]).unwrap();
        assert_eq!(m.publish.topic, "parent");
        assert_eq!(m.publish.qos, QoS::AtLeastOnce);
        assert!(!m.publish.retain);
        assert!(m.clean_session);
        assert!(m.publish.user_properties.is_empty());
        assert_eq!(m.publish.content_type, None);
        assert_eq!(m.publish.message_expiry_interval, None);
        assert_eq!(&m.publish.payload[..], b"body");
    }

    #[test]
    fn body_is_shared_not_copied() {
        let body = Bytes::from(vec![7u8; 4096]);
        let m = super::map("p", 65535, |_| None, body.clone()).unwrap();
        assert_eq!(m.publish.payload.as_ptr(), body.as_ptr());
    }

    #[test]
    fn second_topic_is_appended() {
        assert_eq!(run(&[(SECOND_TOPIC, "/room1/temp")]).unwrap().publish.topic, "parent/room1/temp");
        assert_eq!(run(&[(SECOND_TOPIC, "/p2p/GID_x@@@dev1")]).unwrap().publish.topic, "parent/p2p/GID_x@@@dev1");
        assert_eq!(run(&[(SECOND_TOPIC, "")]).unwrap().publish.topic, "parent");
    }

    #[test]
    fn second_topic_errors() {
        for bad in ["/a/+/b", "/a/#", "/+", "room1", "/a\0b"] {
            assert_eq!(key_of(run(&[(SECOND_TOPIC, bad)]).unwrap_err()), SECOND_TOPIC, "{bad:?}");
        }
    }

    #[test]
    fn real_topic_overrides() {
        let m = run(&[(SECOND_TOPIC, "/x"), (REAL_TOPIC, "other/p2p/dev1")]).unwrap();
        assert_eq!(m.publish.topic, "other/p2p/dev1");
        assert_eq!(key_of(run(&[(REAL_TOPIC, "a/#")]).unwrap_err()), REAL_TOPIC);
        assert_eq!(key_of(run(&[(REAL_TOPIC, "")]).unwrap_err()), REAL_TOPIC);
    }

    #[test]
    fn qos_levels() {
        assert_eq!(run(&[(QOS_LEVEL, "0")]).unwrap().publish.qos, QoS::AtMostOnce);
        assert_eq!(run(&[(QOS_LEVEL, "1")]).unwrap().publish.qos, QoS::AtLeastOnce);
        assert_eq!(run(&[(QOS_LEVEL, "2")]).unwrap().publish.qos, QoS::ExactlyOnce);
        for bad in ["7", "-1", "", "one", "1.0"] {
            assert_eq!(key_of(run(&[(QOS_LEVEL, bad)]).unwrap_err()), QOS_LEVEL, "{bad:?}");
        }
    }

    #[test]
    fn clean_session_flag() {
        assert!(run(&[(CLEAN_SESSION, "true")]).unwrap().clean_session);
        assert!(!run(&[(CLEAN_SESSION, "false")]).unwrap().clean_session);
        assert!(!run(&[(CLEAN_SESSION, "FALSE")]).unwrap().clean_session);
        assert_eq!(key_of(run(&[(CLEAN_SESSION, "maybe")]).unwrap_err()), CLEAN_SESSION);
    }

    #[test]
    fn user_properties_keep_order_and_duplicates() {
        let json = r#"[{"key":"a","value":"1"},{"key":"a","value":"2"},{"key":"b","value":""}]"#;
        let m = run(&[(USER_PROPERTY, json)]).unwrap();
        let expected: Vec<(String, String)> =
            [("a", "1"), ("a", "2"), ("b", "")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(m.publish.user_properties, expected);
        assert!(run(&[(USER_PROPERTY, "[]")]).unwrap().publish.user_properties.is_empty());
    }

    #[test]
    fn user_property_errors() {
        for bad in [
            "not json",
            "{\"key\":\"a\",\"value\":\"b\"}",
            "[{\"key\":\"a\"}]",
            "[{\"key\":1,\"value\":\"b\"}]",
            "[{\"key\":\"a\",\"value\":\"b\",\"extra\":1}]",
            "[{\"key\":\"a\",\"value\":\"b\"}",
        ] {
            assert_eq!(key_of(run(&[(USER_PROPERTY, bad)]).unwrap_err()), USER_PROPERTY, "{bad:?}");
        }
    }

    #[test]
    fn user_property_size_limit() {
        let entry = r#"{"key":"k","value":"v"},"#;
        let fits = format!("[{}{{\"key\":\"k\",\"value\":\"v\"}}]", entry.repeat((MAX_USER_PROPERTY_BYTES - 30) / entry.len()));
        assert!(fits.len() <= MAX_USER_PROPERTY_BYTES);
        assert!(run(&[(USER_PROPERTY, &fits)]).is_ok());
        let over = format!("[{}{{\"key\":\"k\",\"value\":\"v\"}}]", entry.repeat(MAX_USER_PROPERTY_BYTES / entry.len() + 1));
        assert!(over.len() > MAX_USER_PROPERTY_BYTES);
        assert_eq!(key_of(run(&[(USER_PROPERTY, &over)]).unwrap_err()), USER_PROPERTY);
    }

    #[test]
    fn expiry_interval_range() {
        assert_eq!(run(&[(EXPIRE_INTERVAL, "0")]).unwrap().publish.message_expiry_interval, Some(0));
        assert_eq!(run(&[(EXPIRE_INTERVAL, "65535")]).unwrap().publish.message_expiry_interval, Some(65535));
        for bad in ["65536", "-1", "abc", ""] {
            assert_eq!(key_of(run(&[(EXPIRE_INTERVAL, bad)]).unwrap_err()), EXPIRE_INTERVAL, "{bad:?}");
        }
    }

    #[test]
    fn content_type_passes_through() {
        assert_eq!(run(&[(CONTENT_TYPE, "application/json")]).unwrap().publish.content_type.as_deref(), Some("application/json"));
    }

    #[test]
    fn topic_length_limit() {
        let sub = format!("/{}", "a".repeat(93));
        assert_eq!(run_limit(&[(SECOND_TOPIC, &sub)], 100).unwrap().publish.topic.len(), 100);
        let sub = format!("/{}", "a".repeat(94));
        assert!(matches!(run_limit(&[(SECOND_TOPIC, &sub)], 100), Err(MapError::TopicTooLong { len: 101, limit: 100, .. })));
        let sub = format!("/{}", "a".repeat(65535));
        assert!(matches!(run(&[(SECOND_TOPIC, &sub)]), Err(MapError::TopicTooLong { .. })));
    }
}
