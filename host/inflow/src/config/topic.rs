//! MQTT topic filters (`+` one level, `#` the rest), as the rules' `target.allow_topics` write
//! them, and the matching the mapping uses to keep a rule's publishes inside what it owns.

/// Whether the MQTT topic name `topic` matches the topic filter `filter`, as a broker decides it
/// for a subscription (MQTT 3.1.1 §4.7, MQTT 5 §4.7): `+` matches exactly one level (also an
/// empty one), a last `#` matches the level before it and everything below (`a/#` matches `a`),
/// and a filter starting with a wildcard does not match topics starting with `$`.
/// A topic containing a wildcard, or a filter that is not valid, matches nothing.
pub fn topic_matches_filter(filter: &str, topic: &str) -> bool {
    if topic.is_empty() || topic.contains(['+', '#']) {
        return false;
    }
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let (mut filter_levels, mut topic_levels) = (filter.split('/'), topic.split('/'));
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some("#"), _) => return filter_levels.next().is_none(),
            (Some("+"), Some(_)) => {}
            // The topic has no wildcards, so equal levels are literal ones.
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Checks a topic filter a rule may publish to: MQTT's filter syntax, and not a `$` topic (those
/// are the broker's).
pub(super) fn check_topic_filter(filter: &str) -> Result<(), String> {
    if filter.is_empty() {
        return Err("an empty topic filter".into());
    }
    if filter.len() > 65535 {
        return Err(format!("topic filter {:?}… is longer than 65535 bytes", &filter[..filter.floor_char_boundary(40)]));
    }
    if filter.contains('\0') {
        return Err(format!("topic filter {filter:?} contains a NUL character"));
    }
    if filter.starts_with('$') {
        return Err(format!("topic filter {filter:?} starts with '$', which MQTT reserves for the broker"));
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (index, level) in levels.iter().enumerate() {
        let is_last = index + 1 == levels.len();
        match *level {
            "+" => {}
            "#" if is_last => {}
            "#" => return Err(format!("topic filter {filter:?} has '#' before its last level")),
            other if other.contains(['+', '#']) => {
                return Err(format!("topic filter {filter:?} has a wildcard inside the level {other:?}"))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_a_broker_matches_them() {
        let matching = [
            ("a/b", "a/b"),
            ("a/+", "a/b"),
            ("a/+", "a/"),
            ("+/b", "a/b"),
            ("a/#", "a"),
            ("a/#", "a/b/c"),
            ("#", "a/b"),
            ("+", "a"),
            ("+/+", "/x"),
            ("$SYS/#", "$SYS/load"),
        ];
        for (filter, topic) in matching {
            assert!(topic_matches_filter(filter, topic), "{filter} should match {topic}");
        }
        let not_matching = [
            ("a/b", "a/b/c"),
            ("a/b", "a"),
            ("a/+", "a/b/c"),
            ("a/+", "a"),
            ("+", "a/b"),
            ("a/#", "ab"),
            ("#", "$SYS/load"),
            ("+/load", "$SYS/load"),
            ("a/#/b", "a/x/b"),
            ("a+", "a+"),
            ("a/b", "a/+"),
            ("", ""),
        ];
        for (filter, topic) in not_matching {
            assert!(!topic_matches_filter(filter, topic), "{filter} should not match {topic}");
        }
    }

    #[test]
    fn filter_syntax() {
        for good in ["a", "a/b", "a/+/c", "+", "#", "a/#", "+/+/#", "a//b"] {
            assert_eq!(check_topic_filter(good), Ok(()), "{good}");
        }
        for (bad, problem) in [
            ("", "empty"),
            ("a/#/b", "before its last level"),
            ("a#", "wildcard inside"),
            ("a/b+", "wildcard inside"),
            ("$SYS/#", "reserves"),
            ("a\0b", "NUL"),
        ] {
            let err = check_topic_filter(bad).unwrap_err();
            assert!(err.contains(problem), "{bad:?}: {err}");
        }
    }
}
