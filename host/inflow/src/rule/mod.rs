//! One rule at work: consume from its source, map each message, publish, and acknowledge a
//! message only once every publish it produced is complete.

mod runner;
mod status;

pub(crate) use runner::{run, RuleEnv};
pub use status::{QueueReport, RuleCounters, RuleStatus};
