//! The process-wide engine, the linker, loading and validating components.

use crate::cache::{hex_sha256, CodeCache};
use crate::instance::{bindings::MappingPre, new_store, Instance, StoreState};
use crate::types::{Limits, RuleContext};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

/// How the [`Runtime`] is set up.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where compiled code is cached. Host-private (created with mode 0700):
    /// it must not be, or be inside, the watched plugin folder.
    pub cache_dir: PathBuf,
    /// Resolution of call deadlines: the epoch ticker thread advances the
    /// engine's epoch this often.
    pub epoch_tick: Duration,
    /// The bounds for the canary instantiation a plugin must pass to load.
    pub canary_limits: Limits,
}

impl RuntimeConfig {
    pub fn new(cache_dir: impl Into<PathBuf>) -> RuntimeConfig {
        RuntimeConfig { cache_dir: cache_dir.into(), epoch_tick: Duration::from_millis(5), canary_limits: Limits::default() }
    }

    /// `$INFLOW_CACHE/compiled`, else `$XDG_CACHE_HOME/inflow/compiled`, else
    /// `$HOME/.cache/inflow/compiled`, else a folder under the temp dir.
    pub fn default_cache_dir() -> PathBuf {
        let env_dir = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = env_dir("INFLOW_CACHE") {
            return dir.join("compiled");
        }
        env_dir("XDG_CACHE_HOME")
            .or_else(|| env_dir("HOME").map(|home| home.join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("inflow")
            .join("compiled")
    }
}

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

/// The runtime could not start (engine, linker, cache folder or ticker thread).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(String);

/// Why an instance of a loaded plugin could not start for a rule.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin}: instantiation failed: {reason}")]
    Instantiate { plugin: String, reason: String },
    #[error("plugin {plugin}: init refused the rule's config: {reason}")]
    Init { plugin: String, reason: String },
}

/// The plugin host; one per process (wasmtime engines are heavy and 48.x
/// leaks memory when many are created). Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<StoreState>,
    cache: CodeCache,
    pub(crate) epoch_tick: Duration,
    canary_limits: Limits,
    ticker_stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

fn engine_config() -> Config {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        // Sync calls only: concurrency support makes each call ~4x slower.
        .concurrency_support(false)
        .wasm_component_model(true)
        .parallel_compilation(true)
        // On-demand allocation: instances live long (one per rule and
        // worker), so a pooling allocator's faster instantiation buys little,
        // while a pool must reserve address space for the worst-case plugin
        // (a Python component has several memories) in every slot up front.
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::OnDemand);
    config
}

impl Runtime {
    /// Creates the engine, starts the epoch ticker and opens the cache.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let engine = Engine::new(&engine_config()).map_err(|err| RuntimeError(format!("cannot create the wasmtime engine: {err}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|err| RuntimeError(format!("cannot link WASI: {err}")))?;
        crate::instance::add_host_to_linker(&mut linker)
            .map_err(|err| RuntimeError(format!("cannot link the inflow host interface: {err}")))?;
        let cache = CodeCache::open(&config.cache_dir, &engine).map_err(|err| {
            RuntimeError(format!("cannot create the compiled-code cache folder {}: {err}", config.cache_dir.display()))
        })?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            let tick = config.epoch_tick;
            std::thread::Builder::new()
                .name("inflow-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .map_err(|err| RuntimeError(format!("cannot start the epoch ticker thread: {err}")))?
        };
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                cache,
                epoch_tick: config.epoch_tick,
                canary_limits: config.canary_limits,
                ticker_stop,
                ticker: Some(ticker),
            }),
        })
    }

    /// The compiled-code cache folder.
    pub fn cache_dir(&self) -> &Path {
        self.inner.cache.dir()
    }

    /// Loads a plugin file: compiles it (or takes its compiled code from the
    /// cache), checks it against the `mapping` world and canary-instantiates it.
    /// Blocking; compiling a large component takes seconds.
    pub fn load(&self, path: &Path) -> Result<Arc<Plugin>, LoadError> {
        self.load_with(path, LoadOptions::Cached)
    }

    /// [`Runtime::load`] with a choice about the compiled-code cache.
    pub fn load_with(&self, path: &Path, options: LoadOptions) -> Result<Arc<Plugin>, LoadError> {
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
        };
        let mut store = new_store(&plugin, "canary", &self.inner.canary_limits);
        plugin
            .pre
            .instantiate(&mut store)
            .map_err(|err| LoadError::Canary { path: path.to_path_buf(), reason: crate::instance::describe_failure(err, &store) })?;
        Ok(Arc::new(Plugin { load_time: started.elapsed(), ..plugin }))
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
    pub(crate) runtime: Runtime,
    name: String,
    path: PathBuf,
    content_hash: String,
    pub(crate) pre: MappingPre<StoreState>,
    from_cache: bool,
    load_time: Duration,
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

    /// A new instance for one rule on one worker: instantiates the component
    /// and calls its `init` with the rule's config.
    pub fn instantiate(self: &Arc<Self>, context: RuleContext, config: &str, limits: Limits) -> Result<Instance, PluginError> {
        Instance::start(self.clone(), context, config.to_string(), limits)
    }
}
