//! json-router, the inflow example mapping plugin in Rust.
//!
//! Reads a JSON body, drops it unless a numeric field passes a filter, and
//! publishes the original body to `<parent>/<body field>/<message property>`,
//! plus a copy to `<parent>/<fanout>/<body field>`, with MQTT 5 user
//! properties. The behaviour and the config are described in
//! plugins/README.md; the Python, JavaScript and C plugins do the same.

use std::cell::RefCell;

use serde_json::{Map, Value};

wit_bindgen::generate!({
    path: "../../wit/mapping",
    world: "mapping",
});

use exports::inflow::mapping::mapper::Guest;
use inflow::mapping::host::{log, LogLevel, Message};
use inflow::mapping::types::{Payload, Publish, Qos, RuleContext, UserProperty};

/// The rule's config, parsed once by `init`.
struct Config {
    parent_topic: String,
    field: String,
    property: String,
    qos: Qos,
    filter: Option<Filter>,
    fanout: Option<String>,
}

/// Keeps a message only if `field` is a number within `[min, max]`.
struct Filter {
    field: String,
    min: Option<f64>,
    max: Option<f64>,
}

thread_local! {
    static CONFIG: RefCell<Option<Config>> = const { RefCell::new(None) };
}

struct JsonRouter;

impl Guest for JsonRouter {
    fn init(context: RuleContext, config: String) -> Result<(), String> {
        let config = parse_config(context.parent_topic, &config)?;
        CONFIG.with(|slot| *slot.borrow_mut() = Some(config));
        Ok(())
    }

    fn map_message(message: &Message) -> Result<Vec<Publish>, String> {
        CONFIG.with(|slot| match slot.borrow().as_ref() {
            Some(config) => route(config, message),
            None => Err("map-message called before init".to_string()),
        })
    }
}

export!(JsonRouter);

fn parse_config(parent_topic: String, text: &str) -> Result<Config, String> {
    let mut config = Config {
        parent_topic,
        field: "device".to_string(),
        property: "site".to_string(),
        qos: Qos::AtLeastOnce,
        filter: None,
        fanout: None,
    };
    if text.trim().is_empty() {
        return Ok(config);
    }
    let value: Value = serde_json::from_str(text).map_err(|_| "config is not valid JSON".to_string())?;
    let Value::Object(object) = value else {
        return Err("config must be a JSON object".to_string());
    };
    for (key, value) in &object {
        match key.as_str() {
            "field" => config.field = string_setting(value, "field")?,
            "property" => config.property = string_setting(value, "property")?,
            "qos" => {
                config.qos = match value.as_u64() {
                    Some(0) => Qos::AtMostOnce,
                    Some(1) => Qos::AtLeastOnce,
                    Some(2) => Qos::ExactlyOnce,
                    _ => return Err(r#"config: "qos" must be 0, 1 or 2"#.to_string()),
                }
            }
            "filter" => config.filter = Some(parse_filter(value)?),
            "fanout" => {
                let level = string_setting(value, "fanout")?;
                if !is_topic_level(&level) {
                    return Err(r##"config: "fanout" must be one topic level (no "/", "+" or "#")"##.to_string());
                }
                config.fanout = Some(level);
            }
            _ => return Err(format!(r#"config: unknown key "{key}""#)),
        }
    }
    Ok(config)
}

fn parse_filter(value: &Value) -> Result<Filter, String> {
    const SHAPE: &str = r#"config: "filter" must be an object {"field": string, "min": number, "max": number}"#;
    let object = value.as_object().ok_or(SHAPE)?;
    let mut filter = Filter { field: String::new(), min: None, max: None };
    for (key, value) in object {
        match key.as_str() {
            "field" => filter.field = value.as_str().ok_or(SHAPE)?.to_string(),
            "min" => filter.min = Some(value.as_f64().ok_or(SHAPE)?),
            "max" => filter.max = Some(value.as_f64().ok_or(SHAPE)?),
            _ => return Err(SHAPE.to_string()),
        }
    }
    if filter.field.is_empty() {
        return Err(SHAPE.to_string());
    }
    Ok(filter)
}

fn string_setting(value: &Value, key: &str) -> Result<String, String> {
    match value.as_str() {
        Some(text) if !text.is_empty() => Ok(text.to_string()),
        _ => Err(format!(r#"config: "{key}" must be a non-empty string"#)),
    }
}

/// A value usable as one MQTT topic level: not empty, no separator or wildcard.
fn is_topic_level(text: &str) -> bool {
    !text.is_empty() && !text.contains(['/', '+', '#'])
}

fn route(config: &Config, message: &Message) -> Result<Vec<Publish>, String> {
    let body: Value = serde_json::from_slice(&message.body()).map_err(|_| "body is not valid JSON".to_string())?;
    let Value::Object(body) = body else {
        return Err("body is not a JSON object".to_string());
    };

    if let Some(filter) = &config.filter {
        if let Some(reason) = filter_rejects(filter, &body) {
            log(LogLevel::Debug, &format!("dropped message {}: {reason}", message.message_id()));
            return Ok(Vec::new());
        }
    }

    let device = match body.get(&config.field) {
        None => return Err(format!(r#"body has no "{}" field"#, config.field)),
        Some(Value::String(text)) if !text.is_empty() => text,
        Some(_) => return Err(format!(r#"body field "{}" must be a non-empty string"#, config.field)),
    };
    if !is_topic_level(device) {
        return Err(format!(r#"body field "{}" value "{device}" is not a valid topic level"#, config.field));
    }
    let Some(site) = message.property(&config.property) else {
        return Err(format!(r#"message has no property "{}""#, config.property));
    };
    if !is_topic_level(&site) {
        return Err(format!(r#"property "{}" value "{site}" is not a valid topic level"#, config.property));
    }

    let user_properties = vec![
        UserProperty { key: config.field.clone(), value: device.clone() },
        UserProperty { key: config.property.clone(), value: site.clone() },
        UserProperty { key: "rocketmq-topic".to_string(), value: message.topic() },
        UserProperty { key: "rocketmq-message-id".to_string(), value: message.message_id() },
    ];
    let publish = |topic: String| Publish {
        topic,
        qos: config.qos,
        retain: false,
        // The body goes out unchanged: the host sends its own copy.
        payload: Payload::OriginalBody,
        user_properties: user_properties.clone(),
        content_type: Some("application/json".to_string()),
        message_expiry_interval: None,
    };
    let mut publishes = vec![publish(format!("{}/{device}/{site}", config.parent_topic))];
    if let Some(fanout) = &config.fanout {
        publishes.push(publish(format!("{}/{fanout}/{device}", config.parent_topic)));
    }
    Ok(publishes)
}

/// Why the filter drops this body, or None to keep it.
fn filter_rejects(filter: &Filter, body: &Map<String, Value>) -> Option<String> {
    let Some(number) = body.get(&filter.field).and_then(Value::as_f64) else {
        return Some(format!(r#"field "{}" is not a number"#, filter.field));
    };
    if filter.min.is_some_and(|min| number < min) || filter.max.is_some_and(|max| number > max) {
        return Some(format!(r#"field "{}" is out of range"#, filter.field));
    }
    None
}
