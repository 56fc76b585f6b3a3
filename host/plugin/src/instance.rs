//! One plugin instance per rule and worker: the store, the host side of the
//! `inflow:mapping/host` interface and the call path.

use crate::runtime::{Plugin, PluginError};
use crate::stderr::StderrTail;
use crate::types::{Limits, MessageView, Payload, Publish, Qos, RuleContext};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/mapping",
        world: "mapping",
        with: { "inflow:mapping/host.message": super::MessageHandle },
        imports: { default: trappable },
    });
}

use bindings::inflow::mapping::{host, types as wit};
use bindings::Mapping;

/// The host's side of a `message` resource.
///
/// The guest only ever holds a borrow of it, lent for one `map-message` call,
/// so the handle carries nothing: the message under mapping is
/// [`StoreState::lent`], set for the call and cleared after it. That is
/// cheaper than a resource table entry per call, or a table lookup per
/// accessor.
pub struct MessageHandle;

/// The representation of every lent `message` handle.
const LENT: u32 = 0;

/// Everything a plugin's store holds.
pub(crate) struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The message lent to the running `map-message` call (see [`MessageHandle`]).
    lent: Option<Arc<dyn MessageView>>,
    memory: MemoryCap,
    log: PluginLog,
    clock: CallClock,
    stderr: StderrTail,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps all linear memories of a store together. Written instead of
/// wasmtime's `StoreLimits` so an exceeded cap is told apart from any other
/// trap (it records the fact), and growth beyond it traps at once rather
/// than letting the guest's allocator fail in its own way.
struct MemoryCap {
    cap: usize,
    used: usize,
    exceeded: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("memory cap of {cap} bytes exceeded (asked for {asked} bytes)")]
struct MemoryCapExceeded {
    cap: usize,
    asked: usize,
}

/// Most table elements one store may hold (funcref tables of large guests
/// such as CPython hold tens of thousands).
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let asked = self.used - current + desired;
        if asked > self.cap {
            self.exceeded = true;
            return Err(MemoryCapExceeded { cap: self.cap, asked }.into());
        }
        self.used = asked;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The CPU deadline of the running call.
///
/// The epoch ticker measures wall time, and a thread starved of CPU (an
/// overloaded machine, a container throttled by its CPU quota) would see
/// honest calls interrupted. Reading the thread's CPU clock at every call
/// costs a system call (microseconds in a VM), so it is read only once the
/// wall-time deadline has passed: a one-tick probe then measures what share of
/// the CPU the thread is getting, which estimates the CPU time the call used
/// so far. The call is interrupted once that estimate reaches the budget: on
/// an idle machine about one tick after the wall deadline; on a starved one
/// correspondingly later.
struct CallClock {
    budget: Duration,
    tick: Duration,
    probe: Option<Probe>,
}

struct Probe {
    cpu: Duration,
    wall: Instant,
}

impl CallClock {
    fn ticks(&self, time: Duration) -> u64 {
        (time.as_nanos().div_ceil(self.tick.as_nanos().max(1)) as u64).max(1)
    }

    /// Called by wasmtime when the epoch deadline is reached mid-call.
    fn on_deadline(&mut self) -> UpdateDeadline {
        let Some(probe) = &self.probe else {
            self.probe = Some(Probe { cpu: thread_cpu_time(), wall: Instant::now() });
            return UpdateDeadline::Continue(1);
        };
        let cpu_in_probe = thread_cpu_time().saturating_sub(probe.cpu);
        let wall_in_probe = probe.wall.elapsed().max(Duration::from_micros(1));
        let share = (cpu_in_probe.as_secs_f64() / wall_in_probe.as_secs_f64()).min(1.0);
        let used = self.budget.mul_f64(share) + cpu_in_probe;
        if used >= self.budget {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Continue(self.ticks((self.budget - used).div_f64(share.max(0.01))))
        }
    }
}

/// CPU time this thread has run.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Plugin log lines, tagged and rate-limited per instance.
struct PluginLog {
    plugin: String,
    rule_id: String,
    window_start: Instant,
    lines_in_window: u32,
    dropped: u64,
}

const LOG_LINES_PER_SECOND: u32 = 20;
const MAX_LOG_LINE_BYTES: usize = 2048;

impl PluginLog {
    fn write(&mut self, level: host::LogLevel, message: &str) {
        if self.window_start.elapsed() >= Duration::from_secs(1) {
            if self.dropped > 0 {
                tracing::warn!(plugin = %self.plugin, rule = %self.rule_id, dropped = self.dropped, "plugin log lines dropped by the rate limit");
            }
            self.window_start = Instant::now();
            self.lines_in_window = 0;
            self.dropped = 0;
        }
        if self.lines_in_window >= LOG_LINES_PER_SECOND {
            self.dropped += 1;
            return;
        }
        self.lines_in_window += 1;
        let message = truncate_utf8(message, MAX_LOG_LINE_BYTES);
        let (plugin, rule) = (&self.plugin, &self.rule_id);
        match level {
            host::LogLevel::Debug => tracing::debug!(plugin = %plugin, rule = %rule, "{message}"),
            host::LogLevel::Info => tracing::info!(plugin = %plugin, rule = %rule, "{message}"),
            host::LogLevel::Warn => tracing::warn!(plugin = %plugin, rule = %rule, "{message}"),
            host::LogLevel::Error => tracing::error!(plugin = %plugin, rule = %rule, "{message}"),
        }
    }
}

fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl host::Host for StoreState {
    fn log(&mut self, level: host::LogLevel, message: String) -> wasmtime::Result<()> {
        self.log.write(level, &message);
        Ok(())
    }
}

impl StoreState {
    /// The lent message. Its handle needs no lookup: wasmtime checks a
    /// borrow the guest passes against what the guest was lent, and only the
    /// message of the running call is ever lent.
    fn message(&self, _handle: &Resource<MessageHandle>) -> wasmtime::Result<&dyn MessageView> {
        self.lent.as_deref().ok_or_else(|| wasmtime::Error::msg("no message is lent to the plugin outside map-message"))
    }
}

impl host::HostMessage for StoreState {
    fn topic(&mut self, this: Resource<MessageHandle>) -> wasmtime::Result<String> {
        Ok(self.message(&this)?.topic().to_string())
    }
    fn tags(&mut self, this: Resource<MessageHandle>) -> wasmtime::Result<Option<String>> {
        Ok(self.message(&this)?.tags().map(str::to_string))
    }
    fn keys(&mut self, this: Resource<MessageHandle>) -> wasmtime::Result<Vec<String>> {
        Ok(self.message(&this)?.keys().into_iter().map(str::to_string).collect())
    }
    fn property(&mut self, this: Resource<MessageHandle>, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.message(&this)?.property(&key).map(str::to_string))
    }
    fn properties(&mut self, this: Resource<MessageHandle>) -> wasmtime::Result<Vec<(String, String)>> {
        let message = self.message(&this)?;
        Ok(message.properties().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
    fn encoded_properties(&mut self, this: Resource<MessageHandle>) -> wasmtime::Result<String> {
        Ok(self.message(&this)?.encoded_properties().into_owned())
    }
    fn body_size(&mut self, this: Resource<MessageHandle>) -> wasmtime::Result<u32> {
        Ok(u32::try_from(self.message(&this)?.body().len()).unwrap_or(u32::MAX))
    }
    fn body(&mut self, this: Resource<MessageHandle>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.message(&this)?.body().to_vec())
    }
    fn message_id(&mut self, this: Resource<MessageHandle>) -> wasmtime::Result<String> {
        Ok(self.message(&this)?.message_id())
    }
    fn queue_id(&mut self, this: Resource<MessageHandle>) -> wasmtime::Result<u32> {
        Ok(self.message(&this)?.queue_id())
    }
    fn queue_offset(&mut self, this: Resource<MessageHandle>) -> wasmtime::Result<u64> {
        Ok(self.message(&this)?.queue_offset())
    }
    fn born_timestamp(&mut self, this: Resource<MessageHandle>) -> wasmtime::Result<u64> {
        Ok(self.message(&this)?.born_timestamp())
    }
    fn store_timestamp(&mut self, this: Resource<MessageHandle>) -> wasmtime::Result<u64> {
        Ok(self.message(&this)?.store_timestamp())
    }
    fn reconsume_times(&mut self, this: Resource<MessageHandle>) -> wasmtime::Result<u32> {
        Ok(self.message(&this)?.reconsume_times())
    }
    /// Never called: the guest is only ever lent borrows, which it does not drop.
    fn drop(&mut self, _this: Resource<MessageHandle>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl wit::Host for StoreState {}

pub(crate) fn add_host_to_linker(linker: &mut wasmtime::component::Linker<StoreState>) -> wasmtime::Result<()> {
    host::add_to_linker::<StoreState, wasmtime::component::HasSelf<StoreState>>(linker, |state| state)?;
    wit::add_to_linker::<StoreState, wasmtime::component::HasSelf<StoreState>>(linker, |state| state)?;
    // `message.property` again, reading the key in place in the guest's
    // memory instead of copying it into a `String` first (the generated
    // binding can only lift an owned `String`): the hot call of most plugins.
    linker.allow_shadowing(true);
    let shadowed = linker.instance("inflow:mapping/host@0.1.0")?.func_wrap(
        "[method]message.property",
        |store: wasmtime::StoreContextMut<'_, StoreState>,
         (this, key): (Resource<MessageHandle>, wasmtime::component::WasmStr)| {
            let key = key.to_str(&store)?;
            Ok((store.data().message(&this)?.property(&key).map(str::to_string),))
        },
    );
    linker.allow_shadowing(false);
    shadowed
}

/// A store for one instance of `plugin`, with an empty WASI context (no
/// files, sockets, environment or arguments; no stdin, stdout discarded,
/// stderr kept as a short tail for trap reports) and the memory cap.
pub(crate) fn new_store(plugin: &Plugin, rule_id: &str, limits: &Limits) -> Store<StoreState> {
    let stderr = StderrTail::default();
    let state = StoreState {
        wasi: WasiCtx::builder().stderr(stderr.clone()).build(),
        stderr,
        table: ResourceTable::new(),
        lent: None,
        memory: MemoryCap { cap: limits.memory_bytes, used: 0, exceeded: false },
        log: PluginLog {
            plugin: plugin.name().to_string(),
            rule_id: rule_id.to_string(),
            window_start: Instant::now(),
            lines_in_window: 0,
            dropped: 0,
        },
        clock: CallClock { budget: limits.call_deadline, tick: plugin.runtime.inner.epoch_tick, probe: None },
    };
    let mut store = Store::new(&plugin.runtime.inner.engine, state);
    store.limiter(|state| &mut state.memory);
    store.epoch_deadline_callback(|mut store| Ok(store.data_mut().clock.on_deadline()));
    arm_deadline(&mut store);
    store
}

/// Arms the CPU deadline for the next call.
fn arm_deadline(store: &mut Store<StoreState>) {
    let clock = &mut store.data_mut().clock;
    clock.probe = None;
    let ticks = clock.ticks(clock.budget);
    store.set_epoch_deadline(ticks);
}

/// Why one message could not be mapped. The message goes to the rule's
/// on-error policy; the host and other rules are unaffected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The plugin trapped (e.g. `unreachable`, a Rust panic, an out-of-bounds
    /// access). The instance is replaced before the next message.
    #[error("plugin {plugin} trapped: {reason}")]
    Trap { plugin: String, reason: String },
    /// The call ran past the rule's CPU deadline and was interrupted.
    #[error("plugin {plugin} ran past its {deadline:?} CPU deadline and was interrupted")]
    Deadline { plugin: String, deadline: Duration },
    /// The instance tried to grow its memory beyond the rule's cap.
    #[error("plugin {plugin} exceeded its memory cap of {cap} bytes")]
    OutOfMemory { plugin: String, cap: usize },
    /// The plugin returned an error for this message.
    #[error("plugin {plugin} refused the message: {reason}")]
    Plugin { plugin: String, reason: String },
    /// The plugin's output broke the rule's limits on publishes.
    #[error("plugin {plugin} broke a limit: {reason}")]
    Limit { plugin: String, reason: String },
    /// A fresh instance (after a trap or a recycle) could not start.
    #[error("{0}")]
    Restart(String),
}

struct Live {
    store: Store<StoreState>,
    mapping: Mapping,
    calls: u64,
}

/// One plugin instance serving one rule on one worker. Not shared between
/// threads; create one per worker from the same [`Plugin`].
pub struct Instance {
    plugin: Arc<Plugin>,
    context: RuleContext,
    config: String,
    limits: Limits,
    live: Option<Live>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.plugin.name())
            .field("version", &self.plugin.content_hash())
            .field("rule", &self.context.rule_id)
            .field("live", &self.live.is_some())
            .finish()
    }
}

/// Describes a failed call for a log line or error, in the words of [`MapError`].
pub(crate) fn describe_failure(err: wasmtime::Error, store: &Store<StoreState>) -> String {
    let memory = &store.data().memory;
    if memory.exceeded {
        format!("memory cap of {} bytes exceeded", memory.cap)
    } else if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        "CPU deadline exceeded".to_string()
    } else {
        trap_reason(err, store)
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

impl Instance {
    pub(crate) fn start(plugin: Arc<Plugin>, context: RuleContext, config: String, limits: Limits) -> Result<Instance, PluginError> {
        let mut instance = Instance { plugin, context, config, limits, live: None };
        instance.live = Some(instance.new_live()?);
        Ok(instance)
    }

    /// The plugin this instance runs.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Linear memory the live instance holds now, all memories together
    /// (0 between a trap and the next message).
    pub fn memory_bytes(&self) -> usize {
        self.live.as_ref().map_or(0, |live| live.store.data().memory.used)
    }

    fn new_live(&self) -> Result<Live, PluginError> {
        let plugin = &self.plugin;
        let mut store = new_store(plugin, &self.context.rule_id, &self.limits);
        let mapping = plugin.pre.instantiate(&mut store).map_err(|err| PluginError::Instantiate {
            plugin: plugin.name().to_string(),
            reason: describe_failure(err, &store),
        })?;
        let context = wit::RuleContext { rule_id: self.context.rule_id.clone(), parent_topic: self.context.parent_topic.clone() };
        arm_deadline(&mut store);
        match mapping.inflow_mapping_mapper().call_init(&mut store, &context, &self.config) {
            Ok(Ok(())) => Ok(Live { store, mapping, calls: 0 }),
            Ok(Err(reason)) => Err(PluginError::Init { plugin: plugin.name().to_string(), reason }),
            Err(err) => Err(PluginError::Init { plugin: plugin.name().to_string(), reason: describe_failure(err, &store) }),
        }
    }

    /// Maps one message. On a trap, deadline or memory overrun the instance is
    /// dropped and a fresh one (with `init` called again) serves the next message.
    pub fn map(&mut self, message: Arc<dyn MessageView>) -> Result<Vec<Publish>, MapError> {
        let limits = &self.limits;
        let live = match &mut self.live {
            Some(live) if !due_for_recycle(live, limits) => live,
            _ => {
                self.live = None;
                let fresh = self.new_live().map_err(|err| MapError::Restart(err.to_string()))?;
                self.live.insert(fresh)
            }
        };
        live.calls += 1;
        let store = &mut live.store;
        arm_deadline(store);
        store.data_mut().lent = Some(message);
        let outcome = live.mapping.inflow_mapping_mapper().call_map_message(&mut *store, Resource::new_borrow(LENT));
        store.data_mut().lent = None;
        let plugin = || self.plugin.name().to_string();
        match outcome {
            Ok(Ok(publishes)) => convert(publishes, &self.limits).map_err(|reason| MapError::Limit { plugin: plugin(), reason }),
            Ok(Err(reason)) => Err(MapError::Plugin { plugin: plugin(), reason }),
            Err(err) => {
                let failure = classify(err, store, &self.limits, plugin());
                self.live = None;
                Err(failure)
            }
        }
    }
}

/// A live instance is replaced between messages after `recycle_after_calls`
/// calls, or once its memory passes three quarters of the cap: some guests
/// never free what they allocate (componentize-js keeps every `body()` copy),
/// and recycling early turns that leak into a re-instantiation instead of an
/// out-of-memory that would cost a message.
fn due_for_recycle(live: &Live, limits: &Limits) -> bool {
    live.calls >= limits.recycle_after_calls || live.store.data().memory.used > limits.memory_bytes / 4 * 3
}

fn classify(err: wasmtime::Error, store: &Store<StoreState>, limits: &Limits, plugin: String) -> MapError {
    if store.data().memory.exceeded {
        MapError::OutOfMemory { plugin, cap: limits.memory_bytes }
    } else if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        MapError::Deadline { plugin, deadline: limits.call_deadline }
    } else {
        MapError::Trap { plugin, reason: trap_reason(err, store) }
    }
}

fn convert(publishes: Vec<wit::Publish>, limits: &Limits) -> Result<Vec<Publish>, String> {
    if publishes.len() > limits.max_publishes {
        return Err(format!(
            "{} publishes for one message; the rule allows at most {} (limits.max_publishes)",
            publishes.len(),
            limits.max_publishes
        ));
    }
    publishes
        .into_iter()
        .map(|publish| {
            let payload = match publish.payload {
                wit::Payload::OriginalBody => Payload::OriginalBody,
                wit::Payload::Bytes(bytes) if bytes.len() > limits.max_payload_bytes => {
                    return Err(format!(
                        "a {} byte payload for topic {:?}; the rule allows at most {} bytes (limits.max_payload_bytes)",
                        bytes.len(),
                        publish.topic,
                        limits.max_payload_bytes
                    ))
                }
                wit::Payload::Bytes(bytes) => Payload::Bytes(bytes),
            };
            Ok(Publish {
                topic: publish.topic,
                qos: match publish.qos {
                    wit::Qos::AtMostOnce => Qos::AtMostOnce,
                    wit::Qos::AtLeastOnce => Qos::AtLeastOnce,
                    wit::Qos::ExactlyOnce => Qos::ExactlyOnce,
                },
                retain: publish.retain,
                payload,
                user_properties: publish.user_properties.into_iter().map(|p| (p.key, p.value)).collect(),
                content_type: publish.content_type,
                message_expiry_interval: publish.message_expiry_interval,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(budget_ms: u64) -> CallClock {
        CallClock { budget: Duration::from_millis(budget_ms), tick: Duration::from_millis(5), probe: None }
    }

    #[test]
    fn a_call_starved_of_cpu_is_not_interrupted() {
        let mut clock = clock(10);
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Continue(1)));
        std::thread::sleep(Duration::from_millis(30)); // wall time passes, no CPU used
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Continue(_)));
    }

    #[test]
    fn a_call_burning_cpu_is_interrupted() {
        let mut clock = clock(10);
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Continue(1)));
        let spin_until = thread_cpu_time() + Duration::from_millis(12);
        while thread_cpu_time() < spin_until {
            std::hint::spin_loop();
        }
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Interrupt));
    }
}
