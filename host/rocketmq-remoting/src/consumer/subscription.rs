//! Tag subscriptions as the Java client builds them (`FilterAPI.buildSubscriptionData`): the
//! expression `*` (or empty) takes everything; `a || b` is a set of tags, and the broker filters
//! on the tags' Java `String.hashCode`, so the client re-checks the tag strings.

use serde::Serialize;

/// The expression that subscribes to every message.
pub const SUB_ALL: &str = "*";

/// One topic's subscription, ready for heartbeats, pull requests and the client-side re-check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub topic: String,
    /// As sent to the broker: `*` or the expression as given.
    pub expression: String,
    /// Empty for `*`; otherwise the distinct tags in expression order.
    pub tags: Vec<String>,
    /// Java `String.hashCode` of each tag in `tags`.
    pub codes: Vec<i32>,
    /// Java sends the creation time in milliseconds; brokers refuse pulls newer than what they know.
    pub version: i64,
}

impl Subscription {
    /// Parses a tag expression; an expression that names no tag (e.g. `||`) is refused.
    pub fn new(topic: &str, expression: &str, version: i64) -> Result<Subscription, String> {
        let trimmed = expression.trim();
        let mut tags: Vec<String> = Vec::new();
        if !trimmed.is_empty() && trimmed != SUB_ALL {
            for tag in trimmed.split("||").map(str::trim).filter(|t| !t.is_empty()) {
                if !tags.iter().any(|t| t == tag) {
                    tags.push(tag.to_string());
                }
            }
            if tags.is_empty() {
                return Err(format!(
                    "subscription expression {expression:?} for topic {topic:?} names no tag; use \"*\" or \"tagA || tagB\""
                ));
            }
        }
        let codes = tags.iter().map(|t| java_string_hash(t)).collect();
        let expression = if tags.is_empty() { SUB_ALL.to_string() } else { trimmed.to_string() };
        Ok(Subscription { topic: topic.to_string(), expression, tags, codes, version })
    }

    pub fn is_all(&self) -> bool {
        self.tags.is_empty()
    }

    /// The client-side re-check (`PullAPIWrapper.processPullResult`): with a tag set, only
    /// messages whose tag is in it pass; a message without tags never does.
    pub fn matches(&self, message_tags: Option<&str>) -> bool {
        self.is_all() || message_tags.is_some_and(|tag| self.tags.iter().any(|t| t == tag))
    }

    /// The JSON form inside a heartbeat's `subscriptionDataSet`.
    pub(crate) fn data(&self) -> SubscriptionData<'_> {
        SubscriptionData {
            class_filter_mode: false,
            topic: &self.topic,
            sub_string: &self.expression,
            tags_set: &self.tags,
            code_set: &self.codes,
            sub_version: self.version,
            expression_type: "TAG",
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionData<'a> {
    class_filter_mode: bool,
    topic: &'a str,
    sub_string: &'a str,
    tags_set: &'a [String],
    code_set: &'a [i32],
    sub_version: i64,
    expression_type: &'static str,
}

/// Java's `String.hashCode`: `s[0]*31^(n-1) + … + s[n-1]` over UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_known_values() {
        // Values printed by Java's "...".hashCode().
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("TagA"), 2598919);
        assert_eq!(java_string_hash("hello world"), 1794106052);
        assert_eq!(java_string_hash("The quick brown fox jumps over the lazy dog"), -609428141);
        // A non-ASCII tag hashes its UTF-16 units: "é" is U+00E9 = 233; "😀" is the pair D83D DE00.
        assert_eq!(java_string_hash("é"), 233);
        assert_eq!(java_string_hash("😀"), 1772899);
    }

    #[test]
    fn star_and_empty_take_everything() {
        for expression in ["*", "", "  * "] {
            let sub = Subscription::new("T", expression, 1).unwrap();
            assert!(sub.is_all());
            assert_eq!(sub.expression, "*");
            assert!(sub.matches(None));
            assert!(sub.matches(Some("anything")));
        }
    }

    #[test]
    fn tag_sets_match_exact_tags_only() {
        let sub = Subscription::new("T", " TagA ||TagB|| TagA || ", 1).unwrap();
        assert_eq!(sub.tags, vec!["TagA", "TagB"]);
        assert_eq!(sub.codes, vec![java_string_hash("TagA"), java_string_hash("TagB")]);
        assert!(sub.matches(Some("TagA")));
        assert!(sub.matches(Some("TagB")));
        assert!(!sub.matches(Some("TagC")));
        assert!(!sub.matches(Some("taga")));
        assert!(!sub.matches(Some("TagA || TagB")));
        assert!(!sub.matches(None));
    }

    #[test]
    fn hash_collisions_are_caught_by_the_string_check() {
        // "Aa" and "BB" share a Java hash: the broker lets both through, the client must not.
        assert_eq!(java_string_hash("Aa"), java_string_hash("BB"));
        let sub = Subscription::new("T", "Aa", 1).unwrap();
        assert!(sub.matches(Some("Aa")));
        assert!(!sub.matches(Some("BB")));
    }

    #[test]
    fn expression_without_tags_is_refused() {
        let err = Subscription::new("T", "||", 1).unwrap_err();
        assert!(err.contains("names no tag"), "{err}");
    }

    #[test]
    fn heartbeat_json_has_java_field_names() {
        let sub = Subscription::new("T", "a || b", 42).unwrap();
        let json = serde_json::to_value(sub.data()).unwrap();
        assert_eq!(json["topic"], "T");
        assert_eq!(json["subString"], "a || b");
        assert_eq!(json["tagsSet"], serde_json::json!(["a", "b"]));
        assert_eq!(json["codeSet"], serde_json::json!([97, 98]));
        assert_eq!(json["subVersion"], 42);
        assert_eq!(json["expressionType"], "TAG");
        assert_eq!(json["classFilterMode"], false);
    }
}
