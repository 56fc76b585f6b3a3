//! Per-message cost of a Rust plugin that reads two properties and returns
//! one publish keeping the original body (tests/plugins/passthrough), at
//! 256 B and 64 KiB bodies, and load time from the compiled-code cache versus
//! a cold compile.
//!
//! `cargo bench -p inflow-plugin --bench call`
//!
//! Calls are timed in CPU time of the benchmark thread, so that other
//! processes on a shared machine do not inflate them; loads in wall time
//! (compilation runs on several threads).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{guests, runtime, test_message};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use inflow_plugin::{Limits, LoadOptions, MessageView, Payload, RuleContext};
use std::sync::Arc;
use std::time::Duration;

fn map_message(c: &mut Criterion<ThreadCpu>) {
    let plugin = runtime().load(&guests().passthrough_v1).expect("passthrough loads");
    let context = RuleContext { rule_id: "bench".into(), parent_topic: "bench".into() };
    let mut instance = plugin.instantiate(context, "", Limits::default()).expect("passthrough starts");
    let mut group = c.benchmark_group("map_message");
    for body_len in [256usize, 64 << 10] {
        let message: Arc<dyn MessageView> = Arc::new(test_message(1, body_len));
        let publishes = instance.map(message.clone()).expect("maps");
        assert_eq!(publishes[0].payload, Payload::OriginalBody);
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("passthrough", body_len), &message, |b, message| {
            b.iter(|| instance.map(message.clone()).expect("maps"))
        });
    }
    // The floor: a plugin that reads nothing and returns one fixed publish.
    let hostile = runtime().load(&guests().hostile).expect("hostile loads");
    let context = RuleContext { rule_id: "bench".into(), parent_topic: "t".into() };
    let mut minimal = hostile.instantiate(context, "ok", Limits::default()).expect("starts");
    let message: Arc<dyn MessageView> = Arc::new(test_message(1, 256));
    group.bench_with_input(BenchmarkId::new("minimal", 256), &message, |b, message| {
        b.iter(|| minimal.map(message.clone()).expect("maps"))
    });
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

/// CPU time of the calling thread, in nanoseconds.
struct ThreadCpu;

fn thread_cpu_nanos() -> f64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) }, 0);
    now.tv_sec as f64 * 1e9 + now.tv_nsec as f64
}

impl Measurement for ThreadCpu {
    type Intermediate = f64;
    type Value = f64;
    fn start(&self) -> f64 {
        thread_cpu_nanos()
    }
    fn end(&self, started: f64) -> f64 {
        thread_cpu_nanos() - started
    }
    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }
    fn zero(&self) -> f64 {
        0.0
    }
    fn to_f64(&self, value: &f64) -> f64 {
        *value
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self
    }
}

impl ValueFormatter for ThreadCpu {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (divisor, unit) = match typical {
            t if t < 1e3 => (1.0, "ns cpu"),
            t if t < 1e6 => (1e3, "µs cpu"),
            t if t < 1e9 => (1e6, "ms cpu"),
            _ => (1e9, "s cpu"),
        };
        values.iter_mut().for_each(|v| *v /= divisor);
        unit
    }
    fn scale_throughputs(&self, _typical: f64, throughput: &Throughput, values: &mut [f64]) -> &'static str {
        let per_iteration = match throughput {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n as f64,
            Throughput::Bits(n) => *n as f64,
        };
        values.iter_mut().for_each(|v| *v = per_iteration * 1e9 / *v);
        "per cpu-second"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

criterion_group! {
    name = calls;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = map_message
}
criterion_group!(loads, load);
criterion_main!(calls, loads);
