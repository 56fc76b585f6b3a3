//! inflow: carries messages from Apache RocketMQ into MQTT, one rule at a time, through the
//! built-in mapping or a WebAssembly plugin.
//!
//! * [`config`]: the TOML model and its validation
//! * [`rule`]: mappings (built-in property contract, plugins)
//! * [`sink`]: the MQTT publisher with exact acknowledgement tracking

pub mod config;
pub mod rule;
pub mod sink;
