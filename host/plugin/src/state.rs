//! What a plugin's store holds: the empty WASI context, the message lent to
//! the running call, the sandbox (memory cap, CPU clock, log) and the stderr
//! tail; how a store is made and armed for a call, and how a failed call is
//! told apart (memory cap, deadline or trap).

use crate::sandbox::{CallClock, MemoryCap, PluginLog};
use crate::stderr::StderrTail;
use crate::types::{Limits, MessageView};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Everything a plugin's store holds.
pub(crate) struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The message lent to the running `map-message` call (see
    /// [`crate::bindings::MessageHandle`]).
    pub(crate) lent: Option<Arc<dyn MessageView>>,
    pub(crate) memory: MemoryCap,
    pub(crate) log: PluginLog,
    clock: CallClock,
    stderr: StderrTail,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// A store for one instance of the plugin `plugin`, with an empty WASI
/// context (no files, sockets, environment or arguments; no stdin, stdout
/// discarded, stderr kept as a short tail for trap reports) and the memory cap.
pub(crate) fn new_store(engine: &Engine, epoch_tick: Duration, plugin: &str, rule_id: &str, limits: &Limits) -> Store<StoreState> {
    let stderr = StderrTail::default();
    let state = StoreState {
        wasi: WasiCtx::builder().stderr(stderr.clone()).build(),
        stderr,
        table: ResourceTable::new(),
        lent: None,
        memory: MemoryCap::new(limits.memory_bytes),
        log: PluginLog::new(plugin, rule_id),
        clock: CallClock::new(limits.call_deadline, epoch_tick),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.memory);
    store.epoch_deadline_callback(|mut store| Ok(store.data_mut().clock.on_deadline()));
    arm_deadline(&mut store);
    store
}

/// Arms the CPU deadline for the next call.
pub(crate) fn arm_deadline(store: &mut Store<StoreState>) {
    let ticks = store.data_mut().clock.arm();
    store.set_epoch_deadline(ticks);
}

/// Why a call into the plugin failed, as far as the store can tell.
pub(crate) enum CallFailure {
    /// The instance tried to grow its memory beyond the cap.
    MemoryCap { cap: usize },
    /// The CPU clock interrupted the call.
    Deadline,
    /// Any other trap, with its reason.
    Trap(String),
}

impl CallFailure {
    /// Tells the failure `err` of a call into `store` apart.
    pub(crate) fn of(err: wasmtime::Error, store: &Store<StoreState>) -> CallFailure {
        let memory = &store.data().memory;
        if memory.exceeded {
            CallFailure::MemoryCap { cap: memory.cap }
        } else if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            CallFailure::Deadline
        } else {
            CallFailure::Trap(trap_reason(err, store))
        }
    }
}

/// For a log line or an error that needs no more than the failure's words.
impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallFailure::MemoryCap { cap } => write!(f, "memory cap of {cap} bytes exceeded"),
            CallFailure::Deadline => f.write_str("CPU deadline exceeded"),
            CallFailure::Trap(reason) => f.write_str(reason),
        }
    }
}

/// A trap's message, with what the plugin last wrote to stderr (a panic message, say).
/// One line: the trap code without the wasm backtrace (the functions of a
/// stripped guest have no names anyway).
fn trap_reason(err: wasmtime::Error, store: &Store<StoreState>) -> String {
    let what = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{err:#}"),
    };
    match store.data().stderr.take() {
        Some(stderr) => format!("{what}; the plugin's stderr: {stderr}"),
        None => what,
    }
}
