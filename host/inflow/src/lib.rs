//! inflow: carries messages from Apache RocketMQ into MQTT, one rule at a time, through the
//! built-in mapping or a WebAssembly plugin.
//!
//! * [`config`]: the TOML model and its validation
//! The flow runs down the modules, and so do the imports:
//!
//! * [`source`]: RocketMQ in (the client and per-rule consumers)
//! * [`sink`]: MQTT out (the publisher with exact acknowledgement tracking, and the publish type)
//! * [`mapping`]: a message to publishes (built-in property contract, plugins)
//! * [`rule`]: one rule at work over a source, a mapping and a sink
//! * [`supervisor`]: starts, stops and reports the rules
//! * [`admin`]: the admin HTTP server (health, readiness, metrics)
//! * [`cli`]: the `inflow` commands

pub mod admin;
pub mod cli;
pub mod config;
pub mod mapping;
pub mod rule;
pub mod sink;
pub mod source;
pub mod supervisor;
