//! A plugin that misbehaves on purpose. `init`'s config string picks how:
//!
//! * `loop`: `map-message` never returns (CPU deadline).
//! * `memory-bomb`: `map-message` allocates until memory runs out (memory cap).
//! * `trap`: `map-message` executes `unreachable`.
//! * `trap-on-odd-offset`: traps on messages with an odd queue offset, maps
//!   the others (the host must re-instantiate in between).
//! * `panic`: `map-message` panics.
//! * `huge-output`: `map-message` returns 100 000 publishes (publish limit).
//! * `huge-payload`: `map-message` returns one 8 MiB payload (payload limit).
//! * `error`: `map-message` returns an error with a reason.
//! * `init-error`: `init` fails.
//! * `echo-fields`: returns one publish whose payload lists every message
//!   field, one `name=value` line each (tests the host's accessors).
//! * `ok`: `map-message` returns one publish (to show the host recovers).

wit_bindgen::generate!({ path: "../../../wit/mapping", world: "mapping" });

use exports::inflow::mapping::mapper::Guest;
use inflow::mapping::host::Message;
use inflow::mapping::types::{Payload, Publish, Qos, RuleContext};
use std::cell::RefCell;

thread_local! {
    static MODE: RefCell<String> = const { RefCell::new(String::new()) };
}

fn publish(topic: &str, payload: Payload) -> Publish {
    Publish {
        topic: topic.to_string(),
        qos: Qos::AtMostOnce,
        retain: false,
        payload,
        user_properties: Vec::new(),
        content_type: None,
        message_expiry_interval: None,
    }
}

fn echo_fields(message: &Message) -> String {
    let properties: Vec<String> = message.properties().into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
    [
        format!("topic={}", message.topic()),
        format!("tags={:?}", message.tags()),
        format!("keys={}", message.keys().join(",")),
        format!("property(device)={:?}", message.property("device")),
        format!("property(absent)={:?}", message.property("absent")),
        format!("properties={}", properties.join(",")),
        format!("body-size={}", message.body_size()),
        format!("body={}", String::from_utf8_lossy(&message.body())),
        format!("message-id={}", message.message_id()),
        format!("queue-id={}", message.queue_id()),
        format!("queue-offset={}", message.queue_offset()),
        format!("born-timestamp={}", message.born_timestamp()),
        format!("store-timestamp={}", message.store_timestamp()),
        format!("reconsume-times={}", message.reconsume_times()),
    ]
    .join("\n")
}

struct Hostile;

impl Guest for Hostile {
    fn init(_context: RuleContext, config: String) -> Result<(), String> {
        if config == "init-error" {
            return Err("init refused: this config asks for an init error".to_string());
        }
        MODE.with(|mode| *mode.borrow_mut() = config);
        Ok(())
    }

    fn map_message(message: &Message) -> Result<Vec<Publish>, String> {
        let mode = MODE.with(|mode| mode.borrow().clone());
        match mode.as_str() {
            "loop" => {
                let mut spins = 0u64;
                loop {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            }
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            // Well-behaved output, but a MiB per call is never freed (as some guest runtimes do).
            "leak" => {
                std::hint::black_box(Vec::leak(vec![1u8; 1 << 20]));
                Ok(vec![publish("t/ok", Payload::OriginalBody)])
            }
            "trap" => core::arch::wasm32::unreachable(),
            "trap-on-odd-offset" if message.queue_offset() % 2 == 1 => core::arch::wasm32::unreachable(),
            "panic" => panic!("hostile plugin panics on message {}", message.message_id()),
            "huge-output" => Ok((0..100_000).map(|_| publish("t/x", Payload::OriginalBody)).collect()),
            "huge-payload" => Ok(vec![publish("t/x", Payload::Bytes(vec![7u8; 8 << 20]))]),
            "echo-fields" => Ok(vec![publish("t/echo", Payload::Bytes(echo_fields(message).into_bytes()))]),
            "error" => Err(format!("cannot map message {}: refused on purpose", message.message_id())),
            _ => Ok(vec![publish("t/ok", Payload::OriginalBody)]),
        }
    }
}

export!(Hostile);
