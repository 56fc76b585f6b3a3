//! Config mistakes: each one names its place, the problem and the fix, and validation collects
//! all of them before it answers, so one run of `inflow check` (or one admin API call) shows them
//! all.

use serde::Serialize;
use std::fmt;

/// One mistake in the config: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigError {
    /// Where the mistake is, e.g. `[mqtt] url` or `rule[2] (id "x") target.parent_topic`.
    pub place: String,
    pub problem: String,
    pub fix: String,
}

impl ConfigError {
    pub fn new(place: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError { place: place.into(), problem: problem.into(), fix: fix.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}\n      fix: {}", self.place, self.problem, self.fix)
    }
}

/// Every mistake found in one config (or one rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn single(place: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError::new(place, problem, fix)])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the config:", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The mistakes found so far, while validation goes on.
#[derive(Default)]
pub(super) struct Errors(pub(super) Vec<ConfigError>);

impl Errors {
    pub(super) fn add(&mut self, place: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) {
        self.0.push(ConfigError::new(place, problem, fix));
    }

    pub(super) fn count(&self) -> usize {
        self.0.len()
    }

    /// `value` when nothing was found, else every mistake.
    pub(super) fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.0))
        }
    }
}
