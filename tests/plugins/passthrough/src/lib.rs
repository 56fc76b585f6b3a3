//! A well-behaved mapping: reads the `device` and `kind` properties and
//! publishes the original body, unchanged and uncopied, to
//! `<parent>/<device>/<kind>`. Used by the swap test and the call benchmark.

wit_bindgen::generate!({ path: "../../../wit/mapping", world: "mapping" });

use exports::inflow::mapping::mapper::Guest;
use inflow::mapping::host::Message;
use inflow::mapping::types::{Payload, Publish, Qos, RuleContext, UserProperty};
use std::cell::RefCell;

const VERSION: &str = if cfg!(feature = "v2") { "2" } else { "1" };

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
        let device = message.property("device").ok_or("the message has no `device` property")?;
        let kind = message.property("kind").unwrap_or_else(|| "unknown".to_string());
        let topic = PARENT_TOPIC.with(|parent| format!("{}/{device}/{kind}", parent.borrow()));
        Ok(vec![Publish {
            topic,
            qos: Qos::AtLeastOnce,
            retain: false,
            payload: Payload::OriginalBody,
            user_properties: vec![UserProperty { key: "plugin-version".into(), value: VERSION.into() }],
            content_type: None,
            message_expiry_interval: None,
        }])
    }
}

export!(Passthrough);
