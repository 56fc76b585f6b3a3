//! A well-behaved mapping: reads the `device` and `kind` properties and
//! publishes the original body, unchanged and uncopied, to
//! `<parent>/<device>/<kind>`. Used by the swap test and the call benchmark.
//!
//! It reads both properties with one `encoded-properties` call, the cheapest
//! way to read two or more (see wit/mapping/mapping.wit).

wit_bindgen::generate!({ path: "../../../wit/mapping", world: "mapping" });

use exports::inflow::mapping::mapper::Guest;
use inflow::mapping::host::Message;
use inflow::mapping::types::{Payload, Publish, Qos, RuleContext, UserProperty};
use std::cell::RefCell;

thread_local! {
    static PARENT_TOPIC: RefCell<String> = const { RefCell::new(String::new()) };
}

struct Passthrough;

impl Guest for Passthrough {
    fn init(context: RuleContext, _config: String) -> Result<(), String> {
        PARENT_TOPIC.with(|parent| *parent.borrow_mut() = context.parent_topic);
        Ok(())
    }

    fn map_message(message: &Message) -> Result<Vec<Publish>, String> {
        let properties = message.encoded_properties();
        let (mut device, mut kind) = (None, None);
        // RocketMQ's encoding: `name\u{1}value`, each followed by `\u{2}` but perhaps the last; the last of a name wins.
        for (name, value) in properties.split('\u{2}').filter_map(|item| item.split_once('\u{1}')) {
            match name {
                "device" => device = Some(value),
                "kind" => kind = Some(value),
                _ => {}
            }
        }
        let device = device.ok_or("the message has no `device` property")?;
        let kind = kind.unwrap_or("unknown");
        let topic = PARENT_TOPIC.with(|parent| [parent.borrow().as_str(), device, kind].join("/"));
        Ok(vec![Publish {
            topic,
            qos: Qos::AtLeastOnce,
            retain: false,
            payload: Payload::OriginalBody,
            user_properties: version_tag(),
            content_type: None,
            message_expiry_interval: None,
        }])
    }
}

/// Version 2 (built with the `v2` feature) tags its publishes
/// `plugin-version: 2`, so the swap test can tell which version mapped a
/// message; version 1 publishes no user properties.
fn version_tag() -> Vec<UserProperty> {
    if cfg!(feature = "v2") {
        vec![UserProperty { key: "plugin-version".into(), value: "2".into() }]
    } else {
        Vec::new()
    }
}

export!(Passthrough);
