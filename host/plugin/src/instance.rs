//! One plugin instance per rule and worker: starting it (`init` with the
//! rule's config), the call path of `map-message`, recycling, and turning the
//! plugin's output and failures into the host's types.

use crate::bindings::inflow::mapping::types as wit;
use crate::bindings::{Mapping, LENT};
use crate::plugin::Plugin;
use crate::state::{arm_deadline, CallFailure, StoreState};
use crate::types::{Limits, MessageView, Payload, Publish, Qos, RuleContext};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::Resource;
use wasmtime::Store;

/// Why an instance of a loaded plugin could not start for a rule.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin}: instantiation failed: {reason}")]
    Instantiate { plugin: String, reason: String },
    #[error("plugin {plugin}: init refused the rule's config: {reason}")]
    Init { plugin: String, reason: String },
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

impl Plugin {
    /// A new instance for one rule on one worker: instantiates the component
    /// and calls its `init` with the rule's config.
    pub fn instantiate(self: &Arc<Self>, context: RuleContext, config: &str, limits: Limits) -> Result<Instance, PluginError> {
        Instance::start(self.clone(), context, config.to_string(), limits)
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
        let mut store = plugin.new_store(&self.context.rule_id, &self.limits);
        let mapping = plugin.pre.instantiate(&mut store).map_err(|err| PluginError::Instantiate {
            plugin: plugin.name().to_string(),
            reason: CallFailure::of(err, &store).to_string(),
        })?;
        let context = wit::RuleContext { rule_id: self.context.rule_id.clone(), parent_topic: self.context.parent_topic.clone() };
        arm_deadline(&mut store);
        match mapping.inflow_mapping_mapper().call_init(&mut store, &context, &self.config) {
            Ok(Ok(())) => Ok(Live { store, mapping, calls: 0 }),
            Ok(Err(reason)) => Err(PluginError::Init { plugin: plugin.name().to_string(), reason }),
            Err(err) => Err(PluginError::Init { plugin: plugin.name().to_string(), reason: CallFailure::of(err, &store).to_string() }),
        }
    }

    /// Maps one message. On a trap, deadline or memory overrun the instance is
    /// dropped and a fresh one (with `init` called again) serves the next message.
    pub fn map(&mut self, message: Arc<dyn MessageView>) -> Result<Vec<Publish>, MapError> {
        let limits = &self.limits;
        let stats = &self.plugin.stats;
        let live = match &mut self.live {
            Some(live) if !due_for_recycle(live, limits) => live,
            recycled => {
                if recycled.is_some() {
                    stats.recycles.fetch_add(1, Relaxed);
                }
                self.live = None;
                let fresh = self.new_live().map_err(|err| MapError::Restart(err.to_string()))?;
                self.live.insert(fresh)
            }
        };
        live.calls += 1;
        let store = &mut live.store;
        arm_deadline(store);
        store.data_mut().lent = Some(message);
        let started = Instant::now();
        let outcome = live.mapping.inflow_mapping_mapper().call_map_message(&mut *store, Resource::new_borrow(LENT));
        stats.call_seconds.observe(started.elapsed().as_secs_f64());
        store.data_mut().lent = None;
        let plugin = || self.plugin.name().to_string();
        match outcome {
            Ok(Ok(publishes)) => convert(publishes, &self.limits).map_err(|reason| MapError::Limit { plugin: plugin(), reason }),
            Ok(Err(reason)) => Err(MapError::Plugin { plugin: plugin(), reason }),
            Err(err) => {
                let failure = classify(CallFailure::of(err, store), &self.limits, plugin());
                let counter = match failure {
                    MapError::Deadline { .. } => &stats.deadline_hits,
                    MapError::OutOfMemory { .. } => &stats.memory_cap_hits,
                    _ => &stats.traps,
                };
                counter.fetch_add(1, Relaxed);
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

/// A failed call in the words of [`MapError`].
fn classify(failure: CallFailure, limits: &Limits, plugin: String) -> MapError {
    match failure {
        CallFailure::MemoryCap { .. } => MapError::OutOfMemory { plugin, cap: limits.memory_bytes },
        CallFailure::Deadline => MapError::Deadline { plugin, deadline: limits.call_deadline },
        CallFailure::Trap(reason) => MapError::Trap { plugin, reason },
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
