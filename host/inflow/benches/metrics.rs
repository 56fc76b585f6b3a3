//! The cost of one `/metrics` scrape at 1 000 rules: rendering the exposition (classic text
//! format, what promtool reads; and OpenMetrics, what Prometheus asks for) of 1 000 running rules
//! with 4 queues and a retry queue each, 10 plugins, and the MQTT and process figures. Prints
//! the size of the text once.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use inflow::admin::metrics::{Format, Mqtt, Rule, Snapshot};
use inflow::sink::{QoS, SinkStats};
use inflow::supervisor::{QueueReport, RuleCounters, RuleReport, RuleStatus};
use inflow_plugin::PluginStats;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

const RULES: usize = 1000;

/// Rules that have been busy: counters with realistic widths, a filled histogram.
fn rules() -> Vec<(RuleReport, Vec<QueueReport>)> {
    (0..RULES)
        .map(|i| {
            let counters = Arc::new(RuleCounters::default());
            counters.messages.store(1_234_567 + i as u64, Relaxed);
            counters.forwarded.store(1_234_500 + i as u64, Relaxed);
            counters.count_publish(QoS::AtLeastOnce);
            counters.count_forwarded();
            for n in 0..100 {
                counters.map_seconds.observe(1e-6 * n as f64);
            }
            let queue = |topic: &str, queue_id| QueueReport {
                topic: topic.to_string(),
                broker: "broker-a".into(),
                queue_id,
                committed_offset: 308_000 + i64::from(queue_id),
                max_offset: 308_020,
                lag: 20 - u64::from(queue_id),
                in_flight: 3,
            };
            let topic = format!("plant-{i}-telemetry");
            let mut queues: Vec<QueueReport> = (0..4).map(|q| queue(&topic, q)).collect();
            queues.push(queue(&format!("%RETRY%inflow-rule-{i}"), 0));
            (RuleReport { id: format!("rule-{i:04}"), status: RuleStatus::Running, counters }, queues)
        })
        .collect()
}

fn snapshot(rules: &[(RuleReport, Vec<QueueReport>)], plugins: &[(String, Arc<PluginStats>)], sink: &Arc<SinkStats>) -> Snapshot {
    Snapshot {
        rules: rules.iter().map(|(report, queues)| Rule { report: report.clone(), queues: queues.clone() }).collect(),
        plugins: plugins.to_vec(),
        mqtt: Mqtt { connected: true, window_in_use: 100, window_size: 1000, stats: sink.clone() },
        reloads: (3, 1),
    }
}

fn scrape(c: &mut Criterion) {
    let rules = rules();
    let plugins: Vec<(String, Arc<PluginStats>)> = (0..10).map(|i| (format!("plugin-{i}"), Arc::new(PluginStats::default()))).collect();
    let sink = Arc::new(SinkStats::default());
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = snapshot(&rules, &plugins, &sink).render(format).expect("renders");
        println!("{format:?} at {RULES} rules: {} bytes, {} lines", text.len(), text.lines().count());
        c.bench_function(&format!("metrics render {format:?}, {RULES} rules"), |b| {
            b.iter_batched(|| snapshot(&rules, &plugins, &sink), |s| s.render(format).expect("renders"), BatchSize::LargeInput)
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(10));
    targets = scrape
}
criterion_main!(benches);
