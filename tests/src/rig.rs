//! The rig's scripts and shared helpers: where the repository and `tests/rig` are, the
//! RocketMQ versions served, unique names for topics and groups, running a rig script, its
//! `env` files, and private temporary folders.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const HOW_TO_RUN: &str = "run scripts/test.sh (it starts the brokers), or start them with \
                          tests/rig/shared.sh up <version> <statedir> and export what it prints";

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The folder of the rig scripts (`tests/rig`).
pub fn rig_dir() -> PathBuf {
    repo_root().join("tests/rig")
}

/// The RocketMQ versions the rig serves (`tests/rig/versions`), the 4.x line first.
pub fn rocketmq_versions() -> Vec<String> {
    let path = rig_dir().join("versions");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// A name no other test (or earlier run) uses: `<prefix>-<pid>-<n>-<time>`. Only letters,
/// digits, `-` and `_`, so it is valid as a RocketMQ topic or group and an MQTT topic level.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("{prefix}-{}-{n}-{}", std::process::id(), millis % 100_000_000)
}

pub(crate) fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("environment variable {name} is not set: {HOW_TO_RUN}"),
    }
}

/// Runs a rig script, panicking with its output when it fails.
pub(crate) fn run_script(script: &str, args: &[&str]) -> String {
    let path = rig_dir().join(script);
    let out = Command::new(&path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    if !out.status.success() {
        panic!(
            "{} {} failed ({}):\n{}{}",
            path.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Reads a rig `env` file (`KEY=value` lines).
pub(crate) fn read_env_file(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// A private temporary folder, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `&str`s as owned arguments of a command.
pub(crate) fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_valid_topics() {
        let a = unique_name("t");
        let b = unique_name("t");
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{a}");
    }

    #[test]
    fn versions_file_lists_a_4x_and_a_5x() {
        let v = rocketmq_versions();
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].starts_with("4.") && v[1].starts_with("5."), "{v:?}");
    }
}
