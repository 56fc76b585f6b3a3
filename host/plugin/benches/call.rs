//! Per-message cost of a Rust plugin that reads two properties and returns
//! one publish keeping the original body (tests/plugins/passthrough), at
//! 256 B and 64 KiB bodies, and load time from the compiled-code cache versus
//! a cold compile.
//!
//! `cargo bench -p inflow-plugin --bench call`

#[path = "../tests/common/mod.rs"]
mod common;

use common::{guests, runtime, TestMessage};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use inflow_plugin::{Limits, LoadOptions, MessageView, Payload, RuleContext};
use std::sync::Arc;
use std::time::Duration;

fn map_message(c: &mut Criterion) {
    let plugin = runtime().load(&guests().passthrough_v1).expect("passthrough loads");
    let context = RuleContext { rule_id: "bench".into(), parent_topic: "bench".into() };
    let mut instance = plugin.instantiate(context, "", Limits::default()).expect("passthrough starts");
    let mut group = c.benchmark_group("map_message");
    for body_len in [256usize, 64 << 10] {
        let message: Arc<dyn MessageView> = Arc::new(TestMessage::new(1, body_len));
        let publishes = instance.map(message.clone()).expect("maps");
        assert_eq!(publishes[0].payload, Payload::OriginalBody);
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("passthrough", body_len), &message, |b, message| {
            b.iter(|| instance.map(message.clone()).expect("maps"))
        });
    }
    group.finish();
    eprintln!("passthrough instance memory: {} bytes", instance.memory_bytes());
}

fn load(c: &mut Criterion) {
    let path = &guests().passthrough_v1;
    runtime().load(path).expect("warms the cache");
    let mut group = c.benchmark_group("load");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.bench_function("passthrough/cached", |b| b.iter(|| runtime().load(path).expect("loads")));
    group.bench_function("passthrough/compile", |b| {
        b.iter(|| runtime().load_with(path, LoadOptions::Uncached).expect("loads"))
    });
    group.finish();
}

criterion_group!(benches, map_message, load);
criterion_main!(benches);
