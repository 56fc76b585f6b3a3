//! The json-router example plugin in each language, side by side: component
//! size, first load (compile), cached load, instantiation, per-message cost,
//! and memory per instance, printed as one table.
//!
//!     plugins/build.sh all
//!     cargo bench -p inflow-plugin --bench languages [-- rust python ...]
//!
//! Loads `target/plugins/json-router-<lang>.wasm` through the same
//! [`Runtime`] the service uses, with a fresh compiled-code cache in a temp
//! folder, so "compile" is a real compilation and "cached" a real cache hit.
//! A language whose component is missing is reported and skipped.

use inflow_plugin::{Instance, Limits, LoadOptions, MessageView, OwnedMessage, Plugin, Runtime, RuntimeConfig, RuleContext};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LANGUAGES: [&str; 4] = ["rust", "python", "js", "c"];
/// Config of the sample rule: route by `device` and `site`, filter on `temp`, fan out.
const CONFIG: &str = r#"{"field":"device","property":"site","filter":{"field":"temp","min":-40,"max":85},"fanout":"all-devices"}"#;
/// How long each per-message measurement runs (after a warm-up of a tenth of it).
const MEASURE_FOR: Duration = Duration::from_millis(1500);
/// Instances created at once to measure resident memory per instance.
const INSTANCES_FOR_MEMORY: usize = 8;
/// The Python component's cached load must stay under this (issue 3).
const PYTHON_CACHED_LOAD_TARGET: Duration = Duration::from_millis(50);

/// A JSON reading padded to `size` bytes; `temp` decides whether the filter keeps it.
fn reading(size: usize, temp: f64) -> OwnedMessage {
    let head = format!(r#"{{"device":"press-7","temp":{temp},"unit":"C","pad":""#);
    let pad = size.saturating_sub(head.len() + 2);
    let body = format!("{head}{}\"}}", "x".repeat(pad)).into_bytes();
    OwnedMessage {
        topic: "telemetry".into(),
        properties: vec![
            ("TAGS".into(), "reading".into()),
            ("KEYS".into(), "sensor".into()),
            ("UNIQ_KEY".into(), "C0A8000100002A9F".into()),
            ("site".into(), "plant-a".into()),
        ],
        body,
        queue_id: 1,
        queue_offset: 42,
        born_timestamp: 1_764_000_000_000,
        store_timestamp: 1_764_000_000_005,
        reconsume_times: 0,
    }
}

struct Row {
    language: &'static str,
    size: u64,
    compile: Duration,
    cached_load: Duration,
    instantiate: Duration,
    routed_256: Result<Duration, String>,
    routed_64k: Result<Duration, String>,
    dropped: Result<Duration, String>,
    resident_per_instance: Option<u64>,
    min_memory_cap: usize,
}

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let chosen: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let cache = std::env::temp_dir().join(format!("inflow-bench-languages-{}", std::process::id()));
    let runtime = Runtime::new(RuntimeConfig::new(&cache)).expect("start the plugin runtime");

    let mut rows = Vec::new();
    for language in LANGUAGES.into_iter().filter(|l| chosen.is_empty() || chosen.iter().any(|c| c == l)) {
        let path = repo.join(format!("target/plugins/json-router-{language}.wasm"));
        if !path.exists() {
            println!("{language}: {} is missing; build it with plugins/build.sh {language}", path.display());
            continue;
        }
        eprintln!("measuring {language} ...");
        rows.push(measure(&runtime, language, &path));
    }
    let _ = std::fs::remove_dir_all(&cache);
    print_table(&rows);
}

fn measure(runtime: &Runtime, language: &'static str, path: &PathBuf) -> Row {
    let size = std::fs::metadata(path).expect("stat the component").len();
    let compiled = runtime.load_with(path, LoadOptions::Uncached).unwrap_or_else(|e| panic!("{language}: load failed: {e}"));
    let compile = compiled.load_time();
    drop(compiled);
    // The first cached load compiles and stores; the later ones read the cache.
    let plugin = runtime.load(path).unwrap_or_else(|e| panic!("{language}: load failed: {e}"));
    let cached_load = median((0..5).map(|_| {
        let again = runtime.load(path).expect("cached load");
        assert!(again.from_cache(), "{language}: the second load did not come from the cache");
        again.load_time()
    }));

    let instantiate = median((0..5).map(|_| {
        let start = Instant::now();
        black_box(new_instance(&plugin, Limits::default()));
        start.elapsed()
    }));

    // A fresh instance for each, so one run's garbage does not weigh on the next.
    let routed_256 = per_call(&mut new_instance(&plugin, Limits::default()), reading(256, 21.5), 2);
    let routed_64k = per_call(&mut new_instance(&plugin, Limits::default()), reading(64 << 10, 21.5), 2);
    let dropped = per_call(&mut new_instance(&plugin, Limits::default()), reading(256, 120.0), 0);

    Row {
        language,
        size,
        compile,
        cached_load,
        instantiate,
        routed_256,
        routed_64k,
        dropped,
        resident_per_instance: resident_per_instance(&plugin),
        min_memory_cap: min_memory_cap(&plugin),
    }
}

fn new_instance(plugin: &Arc<Plugin>, limits: Limits) -> Instance {
    let context = RuleContext { rule_id: "bench".into(), parent_topic: "factory".into() };
    plugin.instantiate(context, CONFIG, limits).unwrap_or_else(|e| panic!("{}: instantiate failed: {e}", plugin.name()))
}

/// Mean time of one `map` call over MEASURE_FOR, checking every result; or
/// what stopped the run (e.g. the instance outgrowing its memory cap).
fn per_call(instance: &mut Instance, sample: OwnedMessage, expected_publishes: usize) -> Result<Duration, String> {
    let message: Arc<dyn MessageView> = Arc::new(sample);
    let mut calls = 0u32;
    let mut call = || -> Result<(), String> {
        calls += 1;
        let publishes = instance.map(message.clone()).map_err(|e| format!("call {calls}: {e:?}"))?;
        assert_eq!(publishes.len(), expected_publishes, "unexpected publishes: {publishes:?}");
        Ok(())
    };
    let warm_up = Instant::now();
    while warm_up.elapsed() < MEASURE_FOR / 10 {
        call()?;
    }
    let (start, mut measured) = (Instant::now(), 0u32);
    while start.elapsed() < MEASURE_FOR {
        call()?;
        measured += 1;
    }
    Ok(start.elapsed() / measured)
}

/// Resident memory added by one live instance that has mapped a message,
/// from /proc/self/statm (None where that is not available).
fn resident_per_instance(plugin: &Arc<Plugin>) -> Option<u64> {
    let message: Arc<dyn MessageView> = Arc::new(reading(256, 21.5));
    let before = resident_bytes()?;
    let instances: Vec<Instance> = (0..INSTANCES_FOR_MEMORY)
        .map(|_| {
            let mut instance = new_instance(plugin, Limits::default());
            instance.map(message.clone()).expect("map a sample message");
            instance
        })
        .collect();
    let after = resident_bytes()?;
    drop(instances);
    Some(after.saturating_sub(before) / INSTANCES_FOR_MEMORY as u64)
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The smallest memory cap (in 64 KiB wasm pages) under which an instance
/// starts and maps a message: the least an operator can set for the rule.
fn min_memory_cap(plugin: &Arc<Plugin>) -> usize {
    const PAGE: usize = 64 << 10;
    let message: Arc<dyn MessageView> = Arc::new(reading(256, 21.5));
    let works = |pages: usize| {
        let context = RuleContext { rule_id: "bench".into(), parent_topic: "factory".into() };
        let limits = Limits { memory_bytes: pages * PAGE, ..Limits::default() };
        plugin.instantiate(context, CONFIG, limits).is_ok_and(|mut instance| instance.map(message.clone()).is_ok())
    };
    let (mut too_small, mut enough) = (0, Limits::default().memory_bytes / PAGE);
    assert!(works(enough), "{}: does not run under the default memory cap", plugin.name());
    while enough - too_small > 1 {
        let middle = (too_small + enough) / 2;
        if works(middle) {
            enough = middle;
        } else {
            too_small = middle;
        }
    }
    enough * PAGE
}

fn median(samples: impl Iterator<Item = Duration>) -> Duration {
    let mut samples: Vec<Duration> = samples.collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn print_table(rows: &[Row]) {
    println!();
    println!("json-router plugin, one instance reused; per-message times are means of `Instance::map`");
    println!("(routed: JSON parsed, 2 publishes keeping the original body; dropped: filtered out, 0 publishes)");
    println!();
    println!(
        "| language | component | compile (first load) | cached load | instantiate + init | routed 256 B | routed 64 KiB | dropped 256 B | resident / instance | min memory cap |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.language,
            bytes(r.size),
            duration(r.compile),
            duration(r.cached_load),
            duration(r.instantiate),
            outcome(&r.routed_256),
            outcome(&r.routed_64k),
            outcome(&r.dropped),
            r.resident_per_instance.map_or("n/a".into(), bytes),
            bytes(r.min_memory_cap as u64),
        );
    }
    if let Some(python) = rows.iter().find(|r| r.language == "python") {
        let verdict = if python.cached_load <= PYTHON_CACHED_LOAD_TARGET { "meets" } else { "MISSES" };
        println!();
        println!(
            "Python component ({}): cached load {} vs compile {} ({:.0}x faster); {verdict} the {} ms target",
            bytes(python.size),
            duration(python.cached_load),
            duration(python.compile),
            python.compile.as_secs_f64() / python.cached_load.as_secs_f64(),
            PYTHON_CACHED_LOAD_TARGET.as_millis(),
        );
    }
}

fn outcome(measured: &Result<Duration, String>) -> String {
    match measured {
        Ok(d) => duration(*d),
        Err(failure) => format!("failed at {failure}"),
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.0} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn duration(d: Duration) -> String {
    match d.as_secs_f64() {
        s if s >= 1.0 => format!("{s:.2} s"),
        s if s >= 1e-3 => format!("{:.1} ms", s * 1e3),
        s => format!("{:.2} µs", s * 1e6),
    }
}
