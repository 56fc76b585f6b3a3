//! The compiled-code cache: wasmtime's precompiled form of each component,
//! in a folder only the host writes, keyed by the component's bytes and the
//! engine's compatibility hash so a new wasmtime or a changed `Config` never
//! reads stale code.

use sha2::{Digest, Sha256};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::Engine;

pub(crate) struct CodeCache {
    dir: PathBuf,
    /// Hex sha256 of the engine's compatibility hash, part of every key.
    engine_key: String,
}

/// Feeds `Hash` output into sha256, so the engine key is stable across runs
/// (std's `DefaultHasher` promises no stability).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        unreachable!("only the full digest is used")
    }
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl CodeCache {
    /// Opens (creating, owner-only) the cache folder.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<CodeCache> {
        fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex(&hasher.0.finalize());
        Ok(CodeCache { dir: dir.to_path_buf(), engine_key })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, content_hash: &str) -> PathBuf {
        let key = hex_sha256(format!("{content_hash}/{}", self.engine_key).as_bytes());
        self.dir.join(format!("{key}.cwasm"))
    }

    /// The cached compiled code of a component with these content hash, if
    /// present and loadable. A corrupt entry is removed and reported as absent.
    pub(crate) fn get(&self, engine: &Engine, content_hash: &str) -> Option<Component> {
        let path = self.entry(content_hash);
        if !path.exists() {
            return None;
        }
        // SAFETY: entries are written only by `put` below, into a folder only
        // the host writes, under a key that includes the engine's
        // compatibility hash; never from the watched plugin folder.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "dropping unreadable compiled-code cache entry");
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores compiled code atomically (temp file + rename), so a concurrent
    /// reader or a crash never sees half an entry.
    pub(crate) fn put(&self, content_hash: &str, component: &Component) -> std::io::Result<()> {
        let code = component.serialize().map_err(std::io::Error::other)?;
        let path = self.entry(content_hash);
        let mut tmp = tempfile_in(&self.dir)?;
        tmp.1.write_all(&code)?;
        tmp.1.sync_all()?;
        drop(tmp.1);
        fs::rename(&tmp.0, &path).inspect_err(|_| {
            let _ = fs::remove_file(&tmp.0);
        })
    }
}

/// A fresh, exclusively created file in `dir`, named after this process and
/// a counter so concurrent writers never collide.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".tmp-{}-{n}", std::process::id()));
        match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
}
