//! Configuration: one TOML file, secrets overridable from the environment, and validation that
//! reports every mistake at once, each with its place and the fix.
//!
//! `raw` is the file as written and `model` what the service runs with. `validate` checks the
//! whole file: its sections in `sections`, each rule on its own in `rule` (also reachable alone,
//! as [`validate_rule`], for the admin API) and the rules against each other in `rule_set`.
//! [`rule_files`] reads and writes the rules folder. [`topic`] matches MQTT topic filters; `address` reads name-server lists and other addresses.

mod address;
mod error;
mod model;
mod raw;
mod rule;
pub mod rule_files;
mod rule_set;
mod sections;
pub mod topic;
mod validate;

pub use address::namesrv_list;
pub use error::{ConfigError, ConfigErrors};
pub use model::*;
pub use rule::{rule_json, validate_rule, PluginLookup};

use std::path::{Path, PathBuf};

/// Environment variables that override secrets (and the name servers) of the file.
pub mod env {
    pub const ROCKETMQ_NAMESRV: &str = "INFLOW_ROCKETMQ_NAMESRV";
    pub const ROCKETMQ_ACCESS_KEY: &str = "INFLOW_ROCKETMQ_ACCESS_KEY";
    pub const ROCKETMQ_SECRET_KEY: &str = "INFLOW_ROCKETMQ_SECRET_KEY";
    pub const MQTT_USERNAME: &str = "INFLOW_MQTT_USERNAME";
    pub const MQTT_PASSWORD: &str = "INFLOW_MQTT_PASSWORD";
    /// The admin API's bearer token; only ever from the environment.
    pub const ADMIN_TOKEN: &str = "INFLOW_ADMIN_TOKEN";
}

/// Where the lookups validation needs come from, so tests can supply their own.
pub struct Context<'a> {
    /// The folder relative paths in the file are resolved against (the file's own folder).
    pub base_dir: &'a Path,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Whether a plugin of this name is in the plugin folder.
    pub plugin_exists: &'a dyn Fn(&Path, &str) -> bool,
}

/// The file a plugin named `name` is loaded from.
pub fn plugin_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.wasm"))
}

/// Whether the plugin `name` is in `dir` on disk.
pub(crate) fn plugin_on_disk(dir: &Path, name: &str) -> bool {
    plugin_file(dir, name).is_file()
}

/// Reads and validates a config file, taking secrets from the process environment. A rule
/// naming a plugin that is not in the plugin folder is a mistake (what `inflow check` says).
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_with(path, &plugin_on_disk)
}

/// [`load`] for the service: a rule whose plugin is not in the folder yet waits for it.
pub fn load_waiting_for_plugins(path: &Path) -> Result<Config, ConfigErrors> {
    load_with(path, &any_plugin)
}

/// A lookup that takes every plugin as present: the service waits for missing files.
pub(crate) fn any_plugin(_: &Path, _: &str) -> bool {
    true
}

fn load_with(path: &Path, plugin_exists: &dyn Fn(&Path, &str) -> bool) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::single(
            path.display().to_string(),
            format!("cannot read the file: {e}"),
            "give the path of an existing, readable TOML file with -c",
        )
    })?;
    let base_dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    parse(&text, &Context { base_dir, env: &env, plugin_exists })
}

/// Parses and validates config text.
pub fn parse(text: &str, ctx: &Context<'_>) -> Result<Config, ConfigErrors> {
    validate::parse(text, ctx)
}
