//! The process-wide plugin host: the wasmtime engine, the epoch ticker that
//! drives CPU deadlines, the linker (empty WASI plus the `inflow:mapping`
//! imports) and the compiled-code cache. Loading plugins is in `plugin`.

use crate::cache::CodeCache;
use crate::state::StoreState;
use crate::types::Limits;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::component::Linker;
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

/// The runtime could not start (engine, linker, cache folder or ticker thread).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(String);

/// The plugin host; one per process (wasmtime engines are heavy and 48.x
/// leaks memory when many are created). Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<StoreState>,
    pub(crate) cache: CodeCache,
    pub(crate) epoch_tick: Duration,
    pub(crate) canary_limits: Limits,
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
        crate::bindings::add_host_to_linker(&mut linker)
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
}
