//! inflow: carries messages from Apache RocketMQ into MQTT, one rule at a time, through the
//! built-in mapping or a WebAssembly plugin.
//!
//! * [`config`]: the TOML model and its validation
//! * [`source`]: the RocketMQ client and per-rule consumers
//! * [`rule`]: mappings (built-in property contract, plugins)
//! * [`sink`]: the MQTT publisher with exact acknowledgement tracking
//! * [`supervisor`]: runs the rules
//! * [`cli`]: the `inflow` commands

pub mod cli;
pub mod config;
pub mod rule;
pub mod sink;
pub mod source;
pub mod supervisor;
