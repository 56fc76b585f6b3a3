//! `/metrics`: every figure is read at scrape time from the counters the rules and the sink
//! keep anyway (atomics), so metrics cost the hot path nothing beyond them.

use super::{process, AdminState};
use crate::mapping::ErrorKind;
use crate::rule::RuleStatus;
use crate::sink::QoS;
use crate::supervisor::RuleReport;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt::Error;
use std::time::UNIX_EPOCH;

/// The exposition text of everything inflow measures.
pub fn render(state: &AdminState) -> Result<String, Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot { rules: state.rules.snapshot(), mqtt_connected: state.sink.is_connected() }));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// The state of one scrape.
struct Snapshot {
    rules: Vec<RuleReport>,
    mqtt_connected: bool,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("rules", &self.rules.len()).finish()
    }
}

/// The rule states a `inflow_rule_state` series is exported for.
const STATES: [&str; 7] = ["disabled", "starting", "running", "waiting_for_plugin", "paused", "failing", "stopped"];


impl Snapshot {
    /// One series per rule of a value read from its report.
    fn per_rule(&self, encoder: &mut DescriptorEncoder, name: &str, help: &str, kind: MetricType, value: impl Fn(&RuleReport) -> f64) -> Result<(), Error> {
        let mut family = encoder.encode_descriptor(name, help, None, kind)?;
        for rule in &self.rules {
            let labels = [("rule", rule.id.as_str())];
            let mut series = family.encode_family(&labels)?;
            match kind {
                MetricType::Counter => series.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&(value(rule) as u64), None)?,
                _ => series.encode_gauge(&value(rule))?,
            }
        }
        Ok(())
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let e = &mut encoder;
        self.per_rule(e, "inflow_rule_messages_consumed", "Messages the rule took from RocketMQ.", MetricType::Counter, |r| {
            r.counters.messages.load(Relaxed) as f64
        })?;
        self.per_rule(e, "inflow_rule_messages_forwarded", "Messages whose every publish the MQTT broker acknowledged.", MetricType::Counter, |r| {
            r.counters.forwarded.load(Relaxed) as f64
        })?;
        self.per_rule(e, "inflow_rule_dead_lettered", "Messages sent back to RocketMQ's retry / dead-letter topic by the on-error policy.", MetricType::Counter, |r| {
            r.counters.dead_lettered.load(Relaxed) as f64
        })?;
        self.per_rule(e, "inflow_rule_skipped", "Messages skipped by the on-error policy.", MetricType::Counter, |r| r.counters.skipped.load(Relaxed) as f64)?;
        self.per_rule(e, "inflow_rule_in_flight", "Messages whose publishes are outstanding.", MetricType::Gauge, |r| r.counters.in_flight.load(Relaxed) as f64)?;
        self.per_rule(e, "inflow_rule_paused", "1 while the rule is paused by its on-error policy.", MetricType::Gauge, |r| {
            f64::from(u8::from(matches!(r.status, RuleStatus::Paused(_))))
        })?;
        self.per_rule(
            e,
            "inflow_rule_last_forward_timestamp_seconds",
            "When the rule last forwarded a message (Unix time; 0: never).",
            MetricType::Gauge,
            |r| r.counters.last_forward().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0.0, |d| d.as_secs_f64()),
        )?;

        let mut publishes = e.encode_descriptor("inflow_rule_publishes", "Publishes the rule handed to the MQTT sink, by QoS.", None, MetricType::Counter)?;
        for rule in &self.rules {
            for (qos, level) in [(QoS::AtMostOnce, "0"), (QoS::AtLeastOnce, "1"), (QoS::ExactlyOnce, "2")] {
                let labels = [("rule", rule.id.as_str()), ("qos", level)];
                publishes.encode_family(&labels)?.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&rule.counters.publishes(qos), None)?;
            }
        }
        drop(publishes);

        let mut errors = e.encode_descriptor("inflow_rule_mapping_errors", "Messages that failed, by kind (contract, plugin, trap, deadline, topic_refused, broker_refused).", None, MetricType::Counter)?;
        for rule in &self.rules {
            for kind in ErrorKind::ALL {
                let labels = [("rule", rule.id.as_str()), ("kind", kind.as_str())];
                errors.encode_family(&labels)?.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&rule.counters.errors(kind), None)?;
            }
        }
        drop(errors);

        let mut states = e.encode_descriptor("inflow_rule_state", "1 for the state the rule is in.", None, MetricType::Gauge)?;
        for rule in &self.rules {
            let current = RuleStatus::name(&rule.status);
            for state in STATES {
                let labels = [("rule", rule.id.as_str()), ("state", state)];
                states.encode_family(&labels)?.encode_gauge(&i64::from(current == state))?;
            }
        }
        drop(states);

        let mut map_time = e.encode_descriptor("inflow_rule_map_seconds", "Time to map one message (built-in or plugin call).", None, MetricType::Histogram)?;
        for rule in &self.rules {
            let labels = [("rule", rule.id.as_str())];
            rule.counters.map_seconds.encode(map_time.encode_family(&labels)?)?;
        }
        drop(map_time);

        e.encode_descriptor("inflow_mqtt_connected", "1 while the MQTT connection is up.", None, MetricType::Gauge)?
            .encode_gauge(&i64::from(self.mqtt_connected))?;

        let process = process::read();
        if let Some(bytes) = process.resident_bytes {
            e.encode_descriptor("process_resident_memory_bytes", "Resident memory of the inflow process.", None, MetricType::Gauge)?.encode_gauge(&(bytes as i64))?;
        }
        if let Some(seconds) = process.cpu_seconds {
            e.encode_descriptor("process_cpu_seconds", "CPU time (user + system) of the inflow process.", None, MetricType::Counter)?
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&seconds, None)?;
        }
        if let Some(fds) = process.open_fds {
            e.encode_descriptor("process_open_fds", "Open file descriptors of the inflow process.", None, MetricType::Gauge)?.encode_gauge(&(fds as i64))?;
        }
        Ok(())
    }
}
