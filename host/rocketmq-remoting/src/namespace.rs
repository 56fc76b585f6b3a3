//! Instance namespaces as the Java client applies them (`NamespaceUtil`): resources are sent as
//! `NS%name`; retry and dead-letter topics keep their prefix outside: `%RETRY%NS%group`.

const SEPARATOR: char = '%';
const RETRY_PREFIX: &str = "%RETRY%";
const DLQ_PREFIX: &str = "%DLQ%";
/// System topics never get a namespace.
const SYSTEM_TOPIC_PREFIX: &str = "rmq_sys_";
const SYSTEM_TOPICS: [&str; 8] = [
    "TBW102",
    "SELF_TEST_TOPIC",
    "BenchmarkTest",
    "OFFSET_MOVED_EVENT",
    "SCHEDULE_TOPIC_XXXX",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRACE_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
];

fn is_system(resource: &str) -> bool {
    resource.starts_with(SYSTEM_TOPIC_PREFIX) || SYSTEM_TOPICS.contains(&resource)
}

/// `NS%resource` (or `%RETRY%NS%group` / `%DLQ%NS%group`); unchanged without a namespace, for
/// system topics, and when already wrapped.
pub fn wrap(namespace: Option<&str>, resource: &str) -> String {
    let Some(namespace) = namespace.filter(|ns| !ns.is_empty()) else {
        return resource.to_string();
    };
    if is_system(resource) {
        return resource.to_string();
    }
    for prefix in [RETRY_PREFIX, DLQ_PREFIX] {
        if let Some(group) = resource.strip_prefix(prefix) {
            return format!("{prefix}{}", wrap(Some(namespace), group));
        }
    }
    let wrapped_prefix = format!("{namespace}{SEPARATOR}");
    if resource.starts_with(&wrapped_prefix) {
        return resource.to_string();
    }
    format!("{wrapped_prefix}{resource}")
}

/// The inverse of [`wrap`]: strips `NS%` (keeping a `%RETRY%` / `%DLQ%` prefix).
pub fn unwrap<'a>(namespace: Option<&str>, resource: &'a str) -> std::borrow::Cow<'a, str> {
    let Some(namespace) = namespace.filter(|ns| !ns.is_empty()) else {
        return resource.into();
    };
    for prefix in [RETRY_PREFIX, DLQ_PREFIX] {
        if let Some(rest) = resource.strip_prefix(prefix) {
            return format!("{prefix}{}", unwrap(Some(namespace), rest)).into();
        }
    }
    match resource.strip_prefix(namespace).and_then(|rest| rest.strip_prefix(SEPARATOR)) {
        Some(bare) => bare.into(),
        None => resource.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_unwraps() {
        let ns = Some("MQ_INST_1");
        assert_eq!(wrap(ns, "orders"), "MQ_INST_1%orders");
        assert_eq!(wrap(ns, "MQ_INST_1%orders"), "MQ_INST_1%orders");
        assert_eq!(wrap(ns, "%RETRY%group"), "%RETRY%MQ_INST_1%group");
        assert_eq!(wrap(ns, "%DLQ%group"), "%DLQ%MQ_INST_1%group");
        assert_eq!(wrap(ns, "TBW102"), "TBW102");
        assert_eq!(wrap(None, "orders"), "orders");
        assert_eq!(wrap(Some(""), "orders"), "orders");
        assert_eq!(unwrap(ns, "MQ_INST_1%orders"), "orders");
        assert_eq!(unwrap(ns, "%RETRY%MQ_INST_1%group"), "%RETRY%group");
        assert_eq!(unwrap(ns, "other%orders"), "other%orders");
        assert_eq!(unwrap(None, "MQ_INST_1%orders"), "MQ_INST_1%orders");
    }
}
