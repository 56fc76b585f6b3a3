//! {{name}}: an inflow mapping plugin. Publishes each message's body unchanged to
//! `<parent topic>/<tag>`; a message without a tag is refused.

wit_bindgen::generate!({ path: "wit", world: "mapping" });

use exports::inflow::mapping::mapper::Guest;
use inflow::mapping::host::Message;
use inflow::mapping::types::{Payload, Publish, Qos, RuleContext};
use std::cell::RefCell;

thread_local! {
    /// The rule's parent topic, set by `init`; one instance serves one rule.
    static PARENT: RefCell<String> = const { RefCell::new(String::new()) };
}

struct Plugin;

impl Guest for Plugin {
    fn init(context: RuleContext, _config: String) -> Result<(), String> {
        PARENT.with(|parent| *parent.borrow_mut() = context.parent_topic);
        Ok(())
    }

    fn map_message(message: &Message) -> Result<Vec<Publish>, String> {
        let tag = message.tags().ok_or("message has no tag")?;
        let topic = PARENT.with(|parent| format!("{}/{tag}", parent.borrow()));
        Ok(vec![Publish {
            topic,
            qos: Qos::AtLeastOnce,
            retain: false,
            // The body goes out unchanged: the host sends its own copy.
            payload: Payload::OriginalBody,
            user_properties: vec![],
            content_type: None,
            message_expiry_interval: None,
        }])
    }
}

export!(Plugin);
