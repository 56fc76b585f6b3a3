//! Shared by the tests and the call benchmark: builds the guest plugins in
//! tests/plugins for real (once per process) and provides a test message.
#![allow(dead_code)] // each test binary uses a different part

use inflow_plugin::{OwnedMessage, Runtime, RuntimeConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The built guest components.
pub struct Guests {
    pub hostile: PathBuf,
    pub wrong_world: PathBuf,
    /// Publishes without user properties (what the call benchmark measures).
    pub passthrough_v1: PathBuf,
    /// The same plugin tagging `plugin-version: 2`.
    pub passthrough_v2: PathBuf,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

fn cargo_build(manifest: &Path, target_dir: &Path, extra: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .args(extra)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("cannot run cargo to build the test guest plugins");
    assert!(
        status.success(),
        "building the test guest plugins in tests/plugins failed (is the target installed? `rustup target add wasm32-wasip2`)"
    );
}

/// Builds tests/plugins for wasm32-wasip2 into target/test-plugins, once per process.
pub fn guests() -> &'static Guests {
    static GUESTS: OnceLock<Guests> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let root = repo_root();
        let manifest = root.join("tests/plugins/Cargo.toml");
        let target_dir = root.join("target/test-plugins");
        let built = target_dir.join("wasm32-wasip2/release");
        let out = target_dir.join("components");
        std::fs::create_dir_all(&out).expect("create target/test-plugins/components");
        // passthrough is built twice, with and without `v2`, each copied out.
        cargo_build(&manifest, &target_dir, &["-p", "passthrough", "--features", "passthrough/v2"]);
        std::fs::copy(built.join("passthrough.wasm"), out.join("passthrough-v2.wasm")).expect("copy passthrough v2");
        cargo_build(&manifest, &target_dir, &[]);
        for name in ["hostile", "wrong_world", "passthrough"] {
            std::fs::copy(built.join(format!("{name}.wasm")), out.join(format!("{name}.wasm"))).expect("copy guest");
        }
        Guests {
            hostile: out.join("hostile.wasm"),
            wrong_world: out.join("wrong_world.wasm"),
            passthrough_v1: out.join("passthrough.wasm"),
            passthrough_v2: out.join("passthrough-v2.wasm"),
        }
    })
}

/// One runtime per test process, as in the service (one engine per process),
/// with its cache in a fresh temp folder.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<(Runtime, tempfile::TempDir)> = OnceLock::new();
    &RUNTIME
        .get_or_init(|| {
            let cache = tempfile::tempdir().expect("temp cache dir");
            let runtime = Runtime::new(RuntimeConfig::new(cache.path().join("compiled"))).expect("runtime starts");
            (runtime, cache)
        })
        .0
}

/// Logs to the test output (`RUST_LOG=debug` for more).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_test_writer()
        .try_init();
}

/// A message with `device` and `kind` properties (what passthrough reads)
/// and a body of `body_len` bytes.
pub fn test_message(queue_offset: u64, body_len: usize) -> OwnedMessage {
    OwnedMessage {
        topic: "sensors".into(),
        properties: vec![
            ("TAGS".into(), "temp".into()),
            ("KEYS".into(), "k1 k2".into()),
            ("UNIQ_KEY".into(), format!("ID-{queue_offset}")),
            ("device".into(), "dev-7".into()),
            ("kind".into(), "temp".into()),
        ],
        body: vec![b'x'; body_len],
        queue_offset,
        born_timestamp: 1_700_000_000_000,
        store_timestamp: 1_700_000_000_001,
        ..OwnedMessage::default()
    }
}
