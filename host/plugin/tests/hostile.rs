//! Hostile plugins: each misbehaviour costs one message (or is refused at
//! load) with a clear error, and the host goes on serving.

mod common;

use common::{guests, init_tracing, runtime, test_message};
use inflow_plugin::{Instance, LoadError, Limits, MapError, OwnedMessage, Payload, Plugin, PluginError, RuleContext};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn context() -> RuleContext {
    RuleContext { rule_id: "hostile-rule".into(), parent_topic: "t".into() }
}

fn hostile() -> Arc<Plugin> {
    init_tracing();
    runtime().load(&guests().hostile).expect("the hostile plugin loads")
}

fn instance(mode: &str, limits: Limits) -> Instance {
    hostile().instantiate(context(), mode, limits).expect("the hostile plugin starts")
}

fn message(offset: u64) -> Arc<OwnedMessage> {
    Arc::new(test_message(offset, 256))
}

/// The host is unaffected: a well-behaved instance of the same plugin still maps.
fn assert_host_still_serves() {
    let mut fine = instance("ok", Limits::default());
    let publishes = fine.map(message(0)).expect("a well-behaved instance maps after the hostile one");
    assert_eq!(publishes.len(), 1);
    assert_eq!(publishes[0].payload, Payload::OriginalBody);
}

#[test]
fn infinite_loop_hits_the_deadline() {
    let limits = Limits { call_deadline: Duration::from_millis(50), ..Limits::default() };
    let mut looping = instance("loop", limits);
    for _ in 0..2 {
        let started = Instant::now();
        let err = looping.map(message(1)).expect_err("an endless loop cannot succeed");
        assert!(matches!(err, MapError::Deadline { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "interrupted late: {:?}", started.elapsed());
        assert!(err.to_string().contains("CPU deadline"), "{err}");
    }
    assert_host_still_serves();
}

#[test]
fn memory_bomb_hits_the_memory_cap() {
    let limits = Limits { memory_bytes: 16 << 20, ..Limits::default() };
    let mut bomb = instance("memory-bomb", limits);
    let err = bomb.map(message(1)).expect_err("a memory bomb cannot succeed");
    assert!(matches!(err, MapError::OutOfMemory { cap, .. } if cap == 16 << 20), "{err:?}");
    assert!(err.to_string().contains("memory cap"), "{err}");
    assert_host_still_serves();
}

#[test]
fn trap_costs_one_message_and_the_instance_recovers() {
    let mut flaky = instance("trap-on-odd-offset", Limits::default());
    for offset in 0..6u64 {
        let outcome = flaky.map(message(offset));
        if offset % 2 == 1 {
            let err = outcome.expect_err("odd offsets trap");
            assert!(matches!(err, MapError::Trap { .. }), "{err:?}");
            assert!(err.to_string().contains("unreachable"), "{err}");
        } else {
            assert_eq!(outcome.expect("even offsets map after a re-instantiation").len(), 1);
        }
    }
}

#[test]
fn failed_calls_and_recycles_are_counted() {
    use std::sync::atomic::Ordering::Relaxed;
    // A plugin of this test's own: its counters see no other test's calls.
    let plugin = hostile();
    let start = |mode: &str, limits| plugin.instantiate(context(), mode, limits).expect("the hostile plugin starts");
    let mut flaky = start("trap-on-odd-offset", Limits::default());
    for offset in 0..4u64 {
        let _ = flaky.map(message(offset));
    }
    let _ = start("loop", Limits { call_deadline: Duration::from_millis(50), ..Limits::default() }).map(message(1));
    let _ = start("memory-bomb", Limits { memory_bytes: 16 << 20, ..Limits::default() }).map(message(1));
    let stats = plugin.stats();
    assert_eq!(stats.traps.load(Relaxed), 2, "offsets 1 and 3");
    assert_eq!(stats.deadline_hits.load(Relaxed), 1);
    assert_eq!(stats.memory_cap_hits.load(Relaxed), 1);
    assert_eq!(stats.recycles.load(Relaxed), 0, "a new instance after a trap is no recycle");
    assert_eq!(stats.call_seconds.count(), 6, "every call is timed");
}

#[test]
fn unreachable_traps() {
    let err = instance("trap", Limits::default()).map(message(1)).expect_err("unreachable traps");
    assert!(matches!(err, MapError::Trap { .. }), "{err:?}");
    assert_host_still_serves();
}

#[test]
fn panic_traps() {
    let err = instance("panic", Limits::default()).map(message(1)).expect_err("a panic traps");
    assert!(matches!(err, MapError::Trap { .. }), "{err:?}");
    // The panic message reaches the error through the plugin's stderr.
    assert!(err.to_string().contains("hostile plugin panics on message ID-1"), "{err}");
    assert_host_still_serves();
}

#[test]
fn huge_output_list_breaks_the_publish_limit() {
    // Building 100 000 publishes takes the guest tens of ms of CPU on a slow machine: a deadline
    // far from that keeps this a test of the publish limit alone.
    let limits = Limits { call_deadline: Duration::from_secs(5), ..Limits::default() };
    let err = instance("huge-output", limits).map(message(1)).expect_err("100 000 publishes are too many");
    assert!(matches!(&err, MapError::Limit { reason, .. } if reason.contains("100000 publishes")), "{err:?}");
    assert_host_still_serves();
}

#[test]
fn huge_payload_breaks_the_payload_limit() {
    let err = instance("huge-payload", Limits::default()).map(message(1)).expect_err("8 MiB is too big");
    assert!(matches!(&err, MapError::Limit { reason, .. } if reason.contains("max_payload_bytes")), "{err:?}");
}

#[test]
fn plugin_error_carries_its_reason() {
    let err = instance("error", Limits::default()).map(message(42)).expect_err("the plugin refuses");
    assert_eq!(
        err,
        MapError::Plugin { plugin: "hostile".into(), reason: "cannot map message ID-42: refused on purpose".into() }
    );
}

#[test]
fn init_error_refuses_the_rule() {
    let err = hostile().instantiate(context(), "init-error", Limits::default()).expect_err("init refuses");
    assert!(matches!(&err, PluginError::Init { reason, .. } if reason.contains("init refused")), "{err:?}");
}

/// Copies `bytes` into a fresh folder as `name` and loads it.
fn load_bytes(name: &str, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let path: PathBuf = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write plugin file");
    runtime().load(&path)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read built guest")
}

#[test]
fn wrong_world_component_is_refused() {
    let err = load_bytes("other.wasm", &read(&guests().wrong_world)).expect_err("wrong world");
    assert_eq!(err.reason(), "wrong_world", "{err}");
    assert!(err.to_string().contains("inflow:mapping/mapper"), "{err}");
    assert_host_still_serves();
}

#[test]
fn garbage_file_is_refused() {
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let err = load_bytes("garbage.wasm", &garbage).expect_err("garbage");
    assert_eq!(err.reason(), "not_wasm", "{err}");
    // Garbage behind a valid component header gets past the cheap check and
    // is refused by the parser.
    let mut disguised = read(&guests().hostile)[..8].to_vec();
    disguised.extend_from_slice(&garbage);
    let err = load_bytes("disguised.wasm", &disguised).expect_err("garbage with a header");
    assert_eq!(err.reason(), "invalid", "{err}");
    assert_host_still_serves();
}

#[test]
fn truncated_file_is_refused() {
    let full = read(&guests().hostile);
    for cut in [full.len() / 2, full.len() - 1] {
        let err = load_bytes("truncated.wasm", &full[..cut]).expect_err("truncated");
        assert_eq!(err.reason(), "invalid", "{err}");
    }
    assert_host_still_serves();
}

#[test]
fn core_module_is_refused() {
    // The smallest valid core module: magic and version 1.
    let err = load_bytes("core.wasm", b"\0asm\x01\0\0\0").expect_err("core module");
    assert_eq!(err.reason(), "core_module", "{err}");
    assert!(err.to_string().contains("wasm-tools component new"), "{err}");
}

#[test]
fn precompiled_code_is_refused() {
    hostile();
    let cached = std::fs::read_dir(runtime().cache_dir())
        .expect("cache dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("loading hostile cached its compiled code");
    let err = load_bytes("precompiled.wasm", &read(&cached)).expect_err("precompiled code");
    assert_eq!(err.reason(), "precompiled", "{err}");
}
