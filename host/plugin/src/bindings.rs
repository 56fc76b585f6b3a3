//! The `mapping` world's generated bindings and the host's side of its
//! imports (`inflow:mapping/host`: the lent `message` resource and `log`).

use crate::state::StoreState;
use crate::types::MessageView;
use wasmtime::component::{HasSelf, Linker, Resource, WasmStr};

wasmtime::component::bindgen!({
    path: "../../wit/mapping",
    world: "mapping",
    with: { "inflow:mapping/host.message": crate::bindings::MessageHandle },
    imports: { default: trappable },
});

use inflow::mapping::{host, types as wit};

/// The host's side of a `message` resource.
///
/// The guest only ever holds a borrow of it, lent for one `map-message` call,
/// so the handle carries nothing: the message under mapping is
/// [`StoreState::lent`], set for the call and cleared after it. That is
/// cheaper than a resource table entry per call, or a table lookup per
/// accessor.
pub struct MessageHandle;

/// The representation of every lent `message` handle.
pub(crate) const LENT: u32 = 0;

impl host::Host for StoreState {
    fn log(&mut self, level: host::LogLevel, message: String) -> wasmtime::Result<()> {
        let level = match level {
            host::LogLevel::Debug => tracing::Level::DEBUG,
            host::LogLevel::Info => tracing::Level::INFO,
            host::LogLevel::Warn => tracing::Level::WARN,
            host::LogLevel::Error => tracing::Level::ERROR,
        };
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

/// Links the `inflow:mapping` imports (WASI is linked by the runtime).
pub(crate) fn add_host_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    host::add_to_linker::<StoreState, HasSelf<StoreState>>(linker, |state| state)?;
    wit::add_to_linker::<StoreState, HasSelf<StoreState>>(linker, |state| state)?;
    // `message.property` again, reading the key in place in the guest's
    // memory instead of copying it into a `String` first (the generated
    // binding can only lift an owned `String`): the hot call of most plugins.
    linker.allow_shadowing(true);
    let shadowed = linker.instance("inflow:mapping/host@0.1.0")?.func_wrap(
        "[method]message.property",
        |store: wasmtime::StoreContextMut<'_, StoreState>, (this, key): (Resource<MessageHandle>, WasmStr)| {
            let key = key.to_str(&store)?;
            Ok((store.data().message(&this)?.property(&key).map(str::to_string),))
        },
    );
    linker.allow_shadowing(false);
    shadowed
}
