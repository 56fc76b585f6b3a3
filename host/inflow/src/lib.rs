//! inflow: carries messages from Apache RocketMQ into MQTT, one rule at a time, through the
//! built-in mapping or a WebAssembly plugin.
//!
//! The flow runs down the modules, and so do the imports:
//!
//! * [`source`]: RocketMQ in (the client and per-rule consumers)
//! * [`sink`]: MQTT out (the publisher with exact acknowledgement tracking, and the publish type)
//! * [`mapping`]: a message to publishes (built-in property contract, plugins, topic ownership)
//! * [`rule`]: one rule at work over a source, a mapping and a sink
//! * [`supervisor`]: starts, stops and reports the rules; their lifecycle from the files and the API
//! * [`admin`]: the admin HTTP server (health, readiness, metrics, the rule API, the console)
//!
//! Beside them: [`config`] (the TOML model and its validation) and [`cli`] (the `inflow` commands).

pub mod admin;
pub mod cli;
pub mod config;
pub mod mapping;
pub mod rule;
pub mod sink;
pub mod source;
pub mod supervisor;
