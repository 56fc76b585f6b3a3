//! inflow's plugin runtime: WebAssembly components that map one RocketMQ
//! message to MQTT publishes, hosted with wasmtime.
//!
//! * [`Runtime`]: one per process. It owns the wasmtime engine, its epoch
//!   ticker (CPU deadlines), the linker (an empty WASI context plus the
//!   `inflow:mapping/host` imports) and the compiled-code cache.
//! * [`Plugin`]: a component compiled, checked against the `mapping` world
//!   (`wit/mapping/mapping.wit`) and canary-instantiated.
//! * [`Instance`]: one per rule and worker; maps messages one at a time under
//!   a CPU deadline and a memory cap, re-instantiating itself after a trap.
//! * [`PluginDir`]: watches the plugin folder and hands out the current
//!   version of each plugin through `tokio::sync::watch` receivers.

//!
//! Modules, each importing only those listed after it:
//! `dir` (the folder) → `instance` (the call path) → `plugin` (loading) →
//! `runtime` (engine, ticker, cache) → `bindings` (WIT bindings, host imports)
//! → `state` (the store) → `sandbox` (memory cap, CPU clock, log), `stderr`,
//! `cache`, `owned`, `types`.

mod bindings;
mod cache;
mod dir;
mod instance;
mod owned;
mod plugin;
mod runtime;
mod sandbox;
mod state;
mod stats;
mod stderr;
mod types;

pub use dir::{DirCounters, PluginDir, PluginReport, Refusal};
pub use instance::{Instance, MapError, PluginError};
pub use owned::OwnedMessage;
pub use plugin::{LoadError, LoadOptions, Plugin};
pub use runtime::{Runtime, RuntimeConfig, RuntimeError};
pub use stats::PluginStats;
pub use types::{Limits, MessageView, Payload, Publish, Qos, RuleContext};
