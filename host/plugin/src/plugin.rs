//! Loading a plugin: reading the file, compiling it (or taking its compiled
//! code from the cache), checking it against the `mapping` world and the
//! canary instantiation; and [`Plugin`], the loaded result.

use crate::bindings::MappingPre;
use crate::cache::hex_sha256;
use crate::runtime::Runtime;
use crate::state::{new_store, CallFailure, StoreState};
use crate::stats::PluginStats;
use crate::types::Limits;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use wasmtime::component::Component;
use wasmtime::Store;

/// Whether [`Runtime::load_with`] may use the compiled-code cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadOptions {
    /// Read compiled code from the cache when present; store it after compiling.
    #[default]
    Cached,
    /// Compile from scratch and leave the cache alone (benchmarks of cold loads).
    Uncached,
}

/// Why a file was refused as a plugin. [`LoadError::reason`] is a short,
/// stable label for metrics.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read plugin file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a WebAssembly file (it does not start with the `\\0asm` magic); a plugin must be a WebAssembly component built for the inflow:mapping world")]
    NotWasm { path: PathBuf },
    #[error("{path} is precompiled native code (a wasmtime .cwasm); inflow never runs precompiled code from the plugin folder: drop the component's .wasm file instead")]
    Precompiled { path: PathBuf },
    #[error("{path} is a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`")]
    CoreModule { path: PathBuf },
    #[error("{path} is not a valid WebAssembly component (truncated or corrupt?): {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path} does not implement the inflow:mapping@0.1.0 `mapping` world (wit/mapping/mapping.wit): {reason}")]
    WrongWorld { path: PathBuf, reason: String },
    #[error("{path} failed its canary instantiation: {reason}")]
    Canary { path: PathBuf, reason: String },
    #[error("plugin file name {path} is not valid UTF-8 or has no name before `.wasm`")]
    BadName { path: PathBuf },
}

impl LoadError {
    /// A short label for metrics: `io`, `not_wasm`, `precompiled`,
    /// `core_module`, `invalid`, `wrong_world`, `canary`, `bad_name`.
    pub fn reason(&self) -> &'static str {
        match self {
            LoadError::Io { .. } => "io",
            LoadError::NotWasm { .. } => "not_wasm",
            LoadError::Precompiled { .. } => "precompiled",
            LoadError::CoreModule { .. } => "core_module",
            LoadError::Invalid { .. } => "invalid",
            LoadError::WrongWorld { .. } => "wrong_world",
            LoadError::Canary { .. } => "canary",
            LoadError::BadName { .. } => "bad_name",
        }
    }
}

impl Runtime {
    /// Loads a plugin file: compiles it (or takes its compiled code from the
    /// cache), checks it against the `mapping` world and canary-instantiates it.
    /// Blocking; compiling a large component takes seconds.
    pub fn load(&self, path: &Path) -> Result<Arc<Plugin>, LoadError> {
        self.load_with(path, LoadOptions::Cached)
    }

    /// [`Runtime::load`] with a choice about the compiled-code cache.
    pub fn load_with(&self, path: &Path, options: LoadOptions) -> Result<Arc<Plugin>, LoadError> {
        self.load_counting(path, options, Arc::default())
    }

    /// Loads a plugin whose calls count into `stats` (the folder's counters of its name).
    pub(crate) fn load_counting(&self, path: &Path, options: LoadOptions, stats: Arc<PluginStats>) -> Result<Arc<Plugin>, LoadError> {
        let started = Instant::now();
        let name = plugin_name(path).ok_or_else(|| LoadError::BadName { path: path.to_path_buf() })?;
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
        check_header(path, &bytes)?;
        let content_hash = hex_sha256(&bytes);
        let engine = &self.inner.engine;
        let cached = match options {
            LoadOptions::Cached => self.inner.cache.get(engine, &content_hash),
            LoadOptions::Uncached => None,
        };
        let from_cache = cached.is_some();
        let component = match cached {
            Some(component) => component,
            None => {
                let component = Component::from_binary(engine, &bytes)
                    .map_err(|err| LoadError::Invalid { path: path.to_path_buf(), reason: format!("{err:#}") })?;
                if options == LoadOptions::Cached {
                    if let Err(err) = self.inner.cache.put(&content_hash, &component) {
                        tracing::warn!(plugin = %name, error = %err, "cannot store compiled code in the cache; the next load compiles again");
                    }
                }
                component
            }
        };
        let instance_pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|err| LoadError::WrongWorld { path: path.to_path_buf(), reason: format!("{err:#}") })?;
        let pre = MappingPre::new(instance_pre)
            .map_err(|err| LoadError::WrongWorld { path: path.to_path_buf(), reason: format!("{err:#}") })?;
        let plugin = Plugin {
            runtime: self.clone(),
            name,
            path: path.to_path_buf(),
            content_hash,
            pre,
            from_cache,
            load_time: Duration::ZERO,
            loaded_at: SystemTime::now(),
            stats,
        };
        let mut store = plugin.new_store("canary", &self.inner.canary_limits);
        plugin
            .pre
            .instantiate(&mut store)
            .map_err(|err| LoadError::Canary { path: path.to_path_buf(), reason: CallFailure::of(err, &store).to_string() })?;
        Ok(Arc::new(Plugin { load_time: started.elapsed(), loaded_at: SystemTime::now(), ..plugin }))
    }
}

/// `foo.wasm` → `foo`.
fn plugin_name(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    (!stem.is_empty()).then(|| stem.to_string())
}

/// Refuses, before compiling, what is certainly not a component: precompiled
/// native code, non-wasm files and core modules.
fn check_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    const ELF: &[u8] = b"\x7fELF";
    const WASM: &[u8] = b"\0asm";
    const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];
    let path = path.to_path_buf();
    if bytes.starts_with(ELF) {
        return Err(LoadError::Precompiled { path });
    }
    if !bytes.starts_with(WASM) {
        return Err(LoadError::NotWasm { path });
    }
    if bytes.get(4..8) == Some(&CORE_MODULE_VERSION[..]) {
        return Err(LoadError::CoreModule { path });
    }
    Ok(())
}

/// A loaded plugin: compiled, checked against the `mapping` world and
/// canary-instantiated. Shared by every rule and worker that uses it.
pub struct Plugin {
    runtime: Runtime,
    name: String,
    path: PathBuf,
    content_hash: String,
    pub(crate) pre: MappingPre<StoreState>,
    from_cache: bool,
    load_time: Duration,
    loaded_at: SystemTime,
    pub(crate) stats: Arc<PluginStats>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("content_hash", &self.content_hash)
            .field("from_cache", &self.from_cache)
            .field("load_time", &self.load_time)
            .finish()
    }
}

impl Plugin {
    /// The file stem: `foo.wasm` → `foo`.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hex sha256 of the file: the plugin's version.
    pub fn content_hash(&self) -> &str {
        &self.content_hash
    }

    /// Whether the compiled code came from the cache rather than a compilation.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// How long loading took: reading, compiling or reading the cache,
    /// linking and the canary instantiation.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// The counters its calls count into (shared by every version loaded from the folder).
    pub fn stats(&self) -> &Arc<PluginStats> {
        &self.stats
    }

    /// When loading finished.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// A store for one instance of this plugin serving `rule_id`.
    pub(crate) fn new_store(&self, rule_id: &str, limits: &Limits) -> Store<StoreState> {
        let runtime = &self.runtime.inner;
        new_store(&runtime.engine, runtime.epoch_tick, &self.name, rule_id, limits)
    }
}
