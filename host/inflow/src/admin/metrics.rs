//! `/metrics`: every figure is read at scrape time from the counters the rules and the sink
//! keep anyway (atomics), so metrics cost the hot path nothing beyond them.

use super::{process, AdminState};
use crate::mapping::ErrorKind;
use crate::rule::RuleStatus;
use crate::sink::{QoS, SinkStats, ACK_LATENCY_BOUNDS_MS};
use crate::supervisor::{QueueReport, RuleReport};
use inflow_plugin::PluginStats;
use prometheus_client::encoding::NoLabelSet;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt::Error;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// The text formats a scrape may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/openmetrics-text; version=1.0.0` (what Prometheus asks for first).
    OpenMetrics,
    /// `text/plain; version=0.0.4`, the classic format (`promtool check metrics`, older scrapers).
    Prometheus,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it names it, else the classic one.
    pub fn accepted(accept: Option<&str>) -> Format {
        if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The exposition text of everything inflow measures, in `format`.
pub fn render(state: &AdminState, format: Format) -> Result<String, Error> {
    Snapshot::of(state).render(format)
}

/// OpenMetrics text in the classic format: the same samples, but a counter family is named
/// with its `_total` suffix (OpenMetrics names it without; the classic format then finds
/// `_total` samples of an undeclared family) and there is no `# EOF`.
fn to_prometheus_text(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len() + 1024);
    let mut lines = open_metrics.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "# EOF" {
            continue;
        }
        if let Some((name, help)) = line.strip_prefix("# HELP ").and_then(|rest| rest.split_once(' ')) {
            let counter = format!("# TYPE {name} counter");
            if lines.peek() == Some(&counter.as_str()) {
                lines.next();
                out.push_str(&format!("# HELP {name}_total {help}\n# TYPE {name}_total counter\n"));
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// What one scrape reads, taken at once; public so the benchmark can build one of any size.
pub struct Snapshot {
    pub rules: Vec<Rule>,
    pub plugins: Vec<(String, Arc<PluginStats>)>,
    pub mqtt: Mqtt,
    /// Reloads of the rule files and the files they refused.
    pub reloads: (u64, u64),
}

pub struct Rule {
    pub report: RuleReport,
    /// Read once per scrape: the total lag is their sum.
    pub queues: Vec<QueueReport>,
}

impl Rule {
    fn lag(&self) -> u64 {
        self.queues.iter().map(|q| q.lag).sum()
    }
}

pub struct Mqtt {
    pub connected: bool,
    pub window_in_use: usize,
    pub window_size: usize,
    pub stats: Arc<SinkStats>,
}


impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("rules", &self.rules.len()).finish()
    }
}

/// The rule states a `inflow_rule_state` series is exported for.
const STATES: [&str; 7] = ["disabled", "starting", "running", "waiting_for_plugin", "paused", "failing", "stopped"];


impl Snapshot {
    /// Everything the admin state shows now.
    pub fn of(state: &AdminState) -> Snapshot {
        Snapshot {
            rules: state.rules.snapshot().into_iter().map(|report| Rule { queues: report.counters.queues(), report }).collect(),
            plugins: state.plugins.get().map(|dir| dir.stats()).unwrap_or_default(),
            mqtt: Mqtt {
                connected: state.sink.is_connected(),
                window_in_use: state.sink.window_in_use(),
                window_size: state.sink.max_inflight(),
                stats: state.sink.stats(),
            },
            reloads: {
                let c = state.control.counters();
                (c.reloads.load(Relaxed), c.refused.load(Relaxed))
            },
        }
    }

    /// The exposition text of this scrape, in `format`.
    pub fn render(self, format: Format) -> Result<String, Error> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        Ok(match format {
            Format::OpenMetrics => text,
            Format::Prometheus => to_prometheus_text(&text),
        })
    }

    /// One series per rule of a value read from its report.
    fn per_rule(&self, encoder: &mut DescriptorEncoder, name: &str, help: &str, kind: MetricType, value: impl Fn(&Rule) -> f64) -> Result<(), Error> {
        let mut family = encoder.encode_descriptor(name, help, None, kind)?;
        for rule in &self.rules {
            let labels = [("rule", rule.report.id.as_str())];
            let mut series = family.encode_family(&labels)?;
            match kind {
                MetricType::Counter => series.encode_counter::<NoLabelSet, _, u64>(&(value(rule) as u64), None)?,
                _ => series.encode_gauge(&value(rule))?,
            }
        }
        Ok(())
    }

    /// One counter series per plugin.
    fn per_plugin(&self, encoder: &mut DescriptorEncoder, name: &str, help: &str, value: impl Fn(&PluginStats) -> u64) -> Result<(), Error> {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (plugin, stats) in &self.plugins {
            let labels = [("plugin", plugin.as_str())];
            family.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&value(stats), None)?;
        }
        Ok(())
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), Error> {
        let e = &mut encoder;
        self.per_rule(e, "inflow_rule_messages_consumed", "Messages the rule took from RocketMQ.", MetricType::Counter, |r| {
            r.report.counters.messages.load(Relaxed) as f64
        })?;
        self.per_rule(e, "inflow_rule_messages_forwarded", "Messages whose every publish the MQTT broker acknowledged.", MetricType::Counter, |r| {
            r.report.counters.forwarded.load(Relaxed) as f64
        })?;
        self.per_rule(e, "inflow_rule_dead_lettered", "Messages sent back to RocketMQ's retry / dead-letter topic by the on-error policy.", MetricType::Counter, |r| {
            r.report.counters.dead_lettered.load(Relaxed) as f64
        })?;
        self.per_rule(e, "inflow_rule_skipped", "Messages skipped by the on-error policy.", MetricType::Counter, |r| r.report.counters.skipped.load(Relaxed) as f64)?;
        self.per_rule(e, "inflow_rule_in_flight", "Messages whose publishes are outstanding.", MetricType::Gauge, |r| r.report.counters.in_flight.load(Relaxed) as f64)?;
        self.per_rule(e, "inflow_rule_paused", "1 while the rule is paused by its on-error policy.", MetricType::Gauge, |r| {
            f64::from(u8::from(matches!(r.report.status, RuleStatus::Paused(_))))
        })?;
        self.per_rule(
            e,
            "inflow_rule_last_forward_timestamp_seconds",
            "When the rule last forwarded a message (Unix time; 0: never).",
            MetricType::Gauge,
            |r| r.report.counters.last_forward().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0.0, |d| d.as_secs_f64()),
        )?;

        let mut publishes = e.encode_descriptor("inflow_rule_publishes", "Publishes the rule handed to the MQTT sink, by QoS.", None, MetricType::Counter)?;
        for rule in &self.rules {
            for (qos, level) in [(QoS::AtMostOnce, "0"), (QoS::AtLeastOnce, "1"), (QoS::ExactlyOnce, "2")] {
                let labels = [("rule", rule.report.id.as_str()), ("qos", level)];
                publishes.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&rule.report.counters.publishes(qos), None)?;
            }
        }

        let mut errors = e.encode_descriptor("inflow_rule_mapping_errors", "Messages that failed, by kind (contract, plugin, trap, deadline, topic_refused, broker_refused).", None, MetricType::Counter)?;
        for rule in &self.rules {
            for kind in ErrorKind::ALL {
                let labels = [("rule", rule.report.id.as_str()), ("kind", kind.as_str())];
                errors.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&rule.report.counters.errors(kind), None)?;
            }
        }

        let mut states = e.encode_descriptor("inflow_rule_state", "1 for the state the rule is in.", None, MetricType::Gauge)?;
        for rule in &self.rules {
            let current = rule.report.status.name();
            for state in STATES {
                let labels = [("rule", rule.report.id.as_str()), ("state", state)];
                states.encode_family(&labels)?.encode_gauge(&i64::from(current == state))?;
            }
        }

        let mut map_time = e.encode_descriptor("inflow_rule_map_seconds", "Time to map one message (built-in or plugin call).", None, MetricType::Histogram)?;
        for rule in &self.rules {
            let labels = [("rule", rule.report.id.as_str())];
            rule.report.counters.map_seconds.encode(map_time.encode_family(&labels)?)?;
        }

        self.per_rule(e, "inflow_rule_lag_messages", "Messages in the rule's queues not yet done (max offset - acknowledged point, summed).", MetricType::Gauge, |r| {
            r.lag() as f64
        })?;
        let mut queue_lag = e.encode_descriptor("inflow_rule_queue_lag_messages", "Messages in one queue not yet done (max offset - acknowledged point).", None, MetricType::Gauge)?;
        for rule in &self.rules {
            for q in &rule.queues {
                let queue_id = q.queue_id.to_string();
                let labels = [("rule", rule.report.id.as_str()), ("topic", q.topic.as_str()), ("broker", q.broker.as_str()), ("queue", queue_id.as_str())];
                queue_lag.encode_family(&labels)?.encode_gauge(&(q.lag as i64))?;
            }
        }
        self.per_rule(e, "inflow_rocketmq_offset_commit_failures", "Offset commits of the rule's consumer that failed (retried every commit interval).", MetricType::Counter, |r| {
            r.report.counters.consumer.commit_failures() as f64
        })?;
        self.per_rule(e, "inflow_rocketmq_rebalances", "Re-balances that changed the queues the rule's consumer owns.", MetricType::Counter, |r| {
            r.report.counters.consumer.rebalances() as f64
        })?;
        self.per_rule(e, "inflow_rocketmq_pull_errors", "Pulls of the rule's consumer that failed (retried with back-off).", MetricType::Counter, |r| {
            r.report.counters.consumer.pull_errors() as f64
        })?;

        self.per_plugin(e, "inflow_plugin_loads", "Versions of the plugin loaded and made live.", |p| p.loads.load(Relaxed))?;
        let mut refusals = e.encode_descriptor("inflow_plugin_refusals", "Plugin files refused, by reason (io, not_wasm, precompiled, core_module, invalid, wrong_world, canary, bad_name).", None, MetricType::Counter)?;
        for (plugin, stats) in &self.plugins {
            for (reason, count) in stats.refusals() {
                let labels = [("plugin", plugin.as_str()), ("reason", reason)];
                refusals.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&count, None)?;
            }
        }
        self.per_plugin(e, "inflow_plugin_traps", "Plugin calls that trapped (the instance is replaced).", |p| p.traps.load(Relaxed))?;
        self.per_plugin(e, "inflow_plugin_deadline_hits", "Plugin calls interrupted at the rule's CPU deadline.", |p| p.deadline_hits.load(Relaxed))?;
        self.per_plugin(e, "inflow_plugin_memory_cap_hits", "Plugin calls stopped at the rule's memory cap.", |p| p.memory_cap_hits.load(Relaxed))?;
        self.per_plugin(e, "inflow_plugin_recycles", "Plugin instances replaced between messages by the recycle policy.", |p| p.recycles.load(Relaxed))?;
        let mut call_time = e.encode_descriptor("inflow_plugin_call_seconds", "Time of one map-message call of the plugin.", None, MetricType::Histogram)?;
        for (plugin, stats) in &self.plugins {
            let labels = [("plugin", plugin.as_str())];
            stats.call_seconds.encode(call_time.encode_family(&labels)?)?;
        }

        let mqtt = &self.mqtt;
        e.encode_descriptor("inflow_mqtt_connected", "1 while the MQTT connection is up.", None, MetricType::Gauge)?
            .encode_gauge(&i64::from(mqtt.connected))?;
        e.encode_descriptor("inflow_mqtt_connect_attempts", "MQTT connection attempts, the first one included.", None, MetricType::Counter)?
            .encode_counter::<NoLabelSet, _, u64>(&mqtt.stats.connect_attempts.load(Relaxed), None)?;
        e.encode_descriptor("inflow_mqtt_reconnects", "MQTT connection attempts after the first, successful or not.", None, MetricType::Counter)?
            .encode_counter::<NoLabelSet, _, u64>(&mqtt.stats.reconnects(), None)?;
        e.encode_descriptor("inflow_mqtt_hostage_publishes", "Publishes failed back because the broker closed the connection on them twice in a row.", None, MetricType::Counter)?
            .encode_counter::<NoLabelSet, _, u64>(&mqtt.stats.hostage_publishes.load(Relaxed), None)?;
        e.encode_descriptor("inflow_mqtt_window_in_use", "Publishes outstanding now (QoS 1/2 waiting for their ack, or queued).", None, MetricType::Gauge)?
            .encode_gauge(&(mqtt.window_in_use as i64))?;
        e.encode_descriptor("inflow_mqtt_window_size", "At most this many publishes outstanding ([mqtt] max_inflight).", None, MetricType::Gauge)?
            .encode_gauge(&(mqtt.window_size as i64))?;
        let (counts, sum_us) = mqtt.stats.ack_latency();
        let buckets: Vec<(f64, u64)> = ACK_LATENCY_BOUNDS_MS.iter().map(|ms| *ms as f64 / 1e3).chain([f64::MAX]).zip(counts).collect();
        e.encode_descriptor("inflow_mqtt_ack_latency_seconds", "From handing a publish to the connection to its completing ack (PUBACK / PUBCOMP).", None, MetricType::Histogram)?
            .encode_histogram::<NoLabelSet>(sum_us as f64 / 1e6, counts.iter().sum(), &buckets, None)?;

        e.encode_descriptor("inflow_config_reloads", "Reloads of the config file and the rules folder (file change or SIGHUP).", None, MetricType::Counter)?
            .encode_counter::<NoLabelSet, _, u64>(&self.reloads.0, None)?;
        e.encode_descriptor("inflow_config_refusals", "Config and rule files refused at start or on a reload (what ran kept running).", None, MetricType::Counter)?
            .encode_counter::<NoLabelSet, _, u64>(&self.reloads.1, None)?;

        let process = process::read();
        if let Some(bytes) = process.resident_bytes {
            e.encode_descriptor("process_resident_memory_bytes", "Resident memory of the inflow process.", None, MetricType::Gauge)?.encode_gauge(&(bytes as i64))?;
        }
        if let Some(seconds) = process.cpu_seconds {
            e.encode_descriptor("process_cpu_seconds", "CPU time (user + system) of the inflow process.", None, MetricType::Counter)?
                .encode_counter::<NoLabelSet, _, u64>(&seconds, None)?;
        }
        if let Some(fds) = process.open_fds {
            e.encode_descriptor("process_open_fds", "Open file descriptors of the inflow process.", None, MetricType::Gauge)?.encode_gauge(&(fds as i64))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counter_families_with_their_total() {
        let open_metrics = "# HELP a_messages Messages.\n# TYPE a_messages counter\na_messages_total{rule=\"r\"} 3\n\
                            # HELP b_lag Lag.\n# TYPE b_lag gauge\nb_lag 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(open_metrics),
            "# HELP a_messages_total Messages.\n# TYPE a_messages_total counter\na_messages_total{rule=\"r\"} 3\n\
             # HELP b_lag Lag.\n# TYPE b_lag gauge\nb_lag 1\n"
        );
    }

    #[test]
    fn openmetrics_only_when_asked_for() {
        assert_eq!(Format::accepted(Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")), Format::OpenMetrics);
        assert_eq!(Format::accepted(Some("text/plain")), Format::Prometheus);
        assert_eq!(Format::accepted(None), Format::Prometheus);
    }
}
