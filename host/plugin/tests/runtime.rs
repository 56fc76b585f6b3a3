//! The runtime's ordinary paths: message accessors, the compiled-code cache,
//! instance recycling.

mod common;

use common::{guests, init_tracing, runtime, test_message};
use inflow_plugin::{Limits, LoadOptions, Payload, RuleContext};
use std::sync::Arc;

fn context() -> RuleContext {
    RuleContext { rule_id: "r1".into(), parent_topic: "t".into() }
}

#[test]
fn plugin_reads_every_message_field() {
    init_tracing();
    let plugin = runtime().load(&guests().hostile).expect("loads");
    let mut instance = plugin.instantiate(context(), "echo-fields", Limits::default()).expect("starts");
    let mut message = test_message(42, 0);
    message.body = b"hello body".to_vec();
    let publishes = instance.map(Arc::new(message)).expect("maps");
    let Payload::Bytes(echo) = &publishes[0].payload else { panic!("expected bytes, got {:?}", publishes[0].payload) };
    let expected = [
        "topic=sensors",
        "tags=Some(\"temp\")",
        "keys=k1,k2",
        "property(device)=Some(\"dev-7\")",
        "property(absent)=None",
        "properties=TAGS:temp,KEYS:k1 k2,UNIQ_KEY:ID-42,device:dev-7,kind:temp",
        "body-size=10",
        "body=hello body",
        "message-id=ID-42",
        "queue-id=0",
        "queue-offset=42",
        "born-timestamp=1700000000000",
        "store-timestamp=1700000000001",
        "reconsume-times=0",
    ]
    .join("\n");
    assert_eq!(String::from_utf8_lossy(echo), expected);
}

#[test]
fn compiled_code_is_cached_and_reused() {
    init_tracing();
    let cold = runtime().load_with(&guests().passthrough_v1, LoadOptions::Uncached).expect("loads uncached");
    assert!(!cold.from_cache());
    let first = runtime().load(&guests().passthrough_v1).expect("loads");
    let second = runtime().load(&guests().passthrough_v1).expect("loads again");
    assert!(second.from_cache(), "the second load must come from the cache");
    assert_eq!(first.content_hash(), second.content_hash());
    // The first load caches the compiled code, the second finds it there:
    // the world is checked either way.
    for _ in 0..2 {
        let err = runtime().load(&guests().wrong_world).expect_err("wrong world");
        assert_eq!(err.reason(), "wrong_world");
    }
}

#[test]
fn instances_recycle_and_keep_mapping() {
    init_tracing();
    let plugin = runtime().load(&guests().passthrough_v1).expect("loads");
    let limits = Limits { recycle_after_calls: 2, ..Limits::default() };
    let mut instance = plugin.instantiate(context(), "", limits).expect("starts");
    for offset in 0..7 {
        let publishes = instance.map(Arc::new(test_message(offset, 64))).expect("maps across recycles");
        assert_eq!(publishes[0].topic, "t/dev-7/temp");
        assert_eq!(publishes[0].payload, Payload::OriginalBody);
    }
    assert_eq!(plugin.stats().recycles.load(std::sync::atomic::Ordering::Relaxed), 3, "calls 3, 5 and 7 start afresh");
}

#[test]
fn a_leaking_instance_is_recycled_before_it_costs_a_message() {
    init_tracing();
    let plugin = runtime().load(&guests().hostile).expect("loads");
    let limits = Limits { memory_bytes: 8 << 20, ..Limits::default() };
    let mut instance = plugin.instantiate(context(), "leak", limits).expect("starts");
    // Each call leaks a MiB: without recycling, the 8 MiB cap is hit within a few calls.
    for offset in 0..40 {
        let publishes = instance.map(Arc::new(test_message(offset, 64))).expect("no message lost to the leak");
        assert_eq!(publishes[0].topic, "t/ok");
        assert!(instance.memory_bytes() <= 8 << 20);
    }
}
