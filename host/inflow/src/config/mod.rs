//! Configuration: one TOML file, secrets overridable from the environment, and validation that
//! reports every mistake at once, each with its place and the fix.

mod model;
mod raw;
mod validate;

pub use model::*;
pub use validate::{ConfigError, ConfigErrors};

use std::path::{Path, PathBuf};

/// Environment variables that override secrets (and the name servers) of the file.
pub mod env {
    pub const ROCKETMQ_NAMESRV: &str = "INFLOW_ROCKETMQ_NAMESRV";
    pub const ROCKETMQ_ACCESS_KEY: &str = "INFLOW_ROCKETMQ_ACCESS_KEY";
    pub const ROCKETMQ_SECRET_KEY: &str = "INFLOW_ROCKETMQ_SECRET_KEY";
    pub const MQTT_USERNAME: &str = "INFLOW_MQTT_USERNAME";
    pub const MQTT_PASSWORD: &str = "INFLOW_MQTT_PASSWORD";
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

/// Reads and validates a config file, taking secrets from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::single(
            path.display().to_string(),
            format!("cannot read the file: {e}"),
            "give the path of an existing, readable TOML file with -c",
        )
    })?;
    let base_dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let exists = |dir: &Path, name: &str| plugin_file(dir, name).is_file();
    parse(&text, &Context { base_dir, env: &env, plugin_exists: &exists })
}

/// Parses and validates config text.
pub fn parse(text: &str, ctx: &Context<'_>) -> Result<Config, ConfigErrors> {
    validate::parse(text, ctx)
}
