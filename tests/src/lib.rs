//! Harness for inflow's end-to-end tests against real brokers.
//!
//! The brokers come from the rig scripts in `tests/rig/`: a shared RocketMQ and Mosquitto
//! that `scripts/test.sh` starts once per RocketMQ version (found through `INFLOW_TEST_*`
//! environment variables), or private ones a test starts for itself (ACL, broker restarts,
//! outages), stopped when dropped. Messages are produced and consumed independently of
//! inflow through the official Java client (`tests/rig/java/RmqTool.java`, [`JavaTool`]) and
//! Mosquitto's own clients ([`MqttSub`], [`Mosquitto::publish`]). inflow itself runs as a
//! subprocess ([`Inflow`]) on a config built with [`Config`] and [`Rule`].
//!
//! Modules: [`admin`] (the admin API through curl), [`rig`] (scripts, unique names, temporary folders), [`rocketmq`] (brokers),
//! [`java`] (the Java tool), [`mosquitto`] (broker and clients), [`config`] (the TOML
//! builder), [`inflow`] (the binary and its process), [`http`] (curl), [`prometheus`] (a
//! Prometheus server scraping inflow, and promtool).

pub mod admin;
pub mod config;
pub mod http;
pub mod inflow;
pub mod java;
pub mod mosquitto;
pub mod prometheus;
pub mod rig;
pub mod rocketmq;

pub use admin::{sample, Admin};
pub use config::{toml_string, Config, Rule};
pub use http::{free_port, http_get, http_request};
pub use inflow::{inflow_bin, Inflow};
pub use java::{JavaConsumer, JavaTool, Produce, ToolError};
pub use mosquitto::{Mosquitto, MqttMessage, MqttSecure, MqttSub, MqttVersion};
pub use prometheus::{alerts_file, promtool, Prometheus};
pub use rig::{repo_root, rig_dir, rocketmq_versions, unique_name};
pub use rocketmq::{Credentials, RocketMq};
pub use serde_json::Value;
