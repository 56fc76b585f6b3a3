//! The watched plugin folder: startup scan, hot replace, refusal keeps the
//! serving version, removal, ignored temp files, and a swap under load.

mod common;

use common::{guests, init_tracing, runtime, test_message};
use inflow_plugin::{Limits, Plugin, PluginDir, Publish, RuleContext};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const DEBOUNCE: Duration = Duration::from_millis(200);

/// Deploys `source` as `dir/name` the recommended way: a dot-file copy, then a rename.
fn deploy(source: &Path, dir: &Path, name: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::copy(source, &tmp).expect("copy to temp file");
    std::fs::rename(&tmp, dir.join(name)).expect("atomic rename");
}

/// Waits until `rx` shows a value that satisfies `done`.
fn wait_for(rx: &mut watch::Receiver<Option<Arc<Plugin>>>, what: &str, done: impl Fn(&Option<Arc<Plugin>>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(&rx.borrow_and_update()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn version_tag(plugin: &Arc<Plugin>) -> String {
    let mut instance = plugin
        .instantiate(RuleContext { rule_id: "r1".into(), parent_topic: "p".into() }, "", Limits::default())
        .expect("passthrough starts");
    let publishes = instance.map(Arc::new(test_message(0, 16))).expect("passthrough maps");
    version_of(&publishes[0])
}

/// Which passthrough version made `publish`: v2 tags it `plugin-version: 2`, v1 not at all.
fn version_of(publish: &Publish) -> String {
    let tag = publish.user_properties.iter().find(|(k, _)| k == "plugin-version");
    tag.map_or("1", |(_, v)| v.as_str()).to_string()
}

#[test]
fn folder_lifecycle_load_replace_refuse_remove() {
    init_tracing();
    let guests = guests();
    let folder = tempfile::tempdir().expect("temp dir");
    deploy(&guests.passthrough_v1, folder.path(), "router.wasm");
    let plugins = PluginDir::open(runtime().clone(), folder.path(), DEBOUNCE).expect("folder opens");

    // Loaded by the startup scan, before open returns.
    let mut rx = plugins.subscribe("router");
    let v1 = rx.borrow_and_update().clone().expect("router loaded at start");
    assert_eq!(version_tag(&v1), "1");
    assert!(plugins.subscribe("absent").borrow().is_none());

    // Replaced → the new version.
    deploy(&guests.passthrough_v2, folder.path(), "router.wasm");
    wait_for(&mut rx, "v2", |p| p.as_ref().is_some_and(|p| p.content_hash() != v1.content_hash()));
    let v2 = plugins.current("router").expect("v2 serves");
    assert_eq!(version_tag(&v2), "2");

    // A broken replacement is refused; v2 goes on serving.
    std::fs::write(folder.path().join(".router.wasm.part"), b"not a plugin").unwrap();
    std::fs::rename(folder.path().join(".router.wasm.part"), folder.path().join("router.wasm")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while plugins.counters().refusals.get("not_wasm").copied().unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "the broken file was not refused");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(plugins.current("router").expect("still serving").content_hash(), v2.content_hash());
    assert!(plugins.last_refusal("router").expect("refusal kept").contains("not a WebAssembly file"));
    let refused = plugins.report().into_iter().find(|r| r.name == "router").expect("router reported");
    assert!(refused.last_refusal.is_some_and(|r| r.reason.contains("not a WebAssembly file")));
    assert_eq!(refused.version.as_deref(), Some(v2.content_hash()), "v2 still serves");
    assert!(!rx.has_changed().unwrap(), "a refused file must not reach subscribers");

    // Removed → None; back → serving again.
    std::fs::remove_file(folder.path().join("router.wasm")).unwrap();
    wait_for(&mut rx, "removal", |p| p.is_none());
    deploy(&guests.passthrough_v1, folder.path(), "router.wasm");
    wait_for(&mut rx, "return of v1", |p| p.is_some());
    assert_eq!(version_tag(plugins.current("router").as_ref().unwrap()), "1");

    // Temp files and dot files are never loaded.
    std::fs::copy(&guests.passthrough_v1, folder.path().join("other.wasm.tmp")).unwrap();
    std::fs::copy(&guests.passthrough_v1, folder.path().join("other.wasm.part")).unwrap();
    std::fs::copy(&guests.passthrough_v1, folder.path().join(".other.wasm")).unwrap();
    std::thread::sleep(DEBOUNCE * 3);
    assert!(plugins.current("other").is_none());
    assert!(plugins.current("other.wasm").is_none());

    let report = plugins.report();
    assert_eq!(report.len(), 1, "only router has a file serving or refused: {report:?}");
    assert_eq!(report[0].name, "router");
    assert_eq!(report[0].version.as_deref(), Some(plugins.current("router").unwrap().content_hash()));
    assert!(report[0].loaded_at.is_some_and(|at| at > 1_700_000_000), "{report:?}");
    assert!(report[0].last_refusal.is_none(), "the refusal is cleared once a version loads: {report:?}");
    let router = &plugins.stats().into_iter().find(|(name, _)| name == "router").expect("router counted").1;
    assert_eq!(router.refusals().get("not_wasm"), Some(&1));

    let counters = plugins.counters();
    assert_eq!(counters.loads, 3, "{counters:?}");
    assert_eq!(counters.removals, 1, "{counters:?}");
    assert_eq!(counters.refusals.values().sum::<u64>(), 1, "{counters:?}");
}

#[test]
fn cache_folder_inside_the_plugin_folder_is_refused() {
    init_tracing();
    let cache_parent = runtime().cache_dir().parent().expect("cache dir has a parent");
    let err = PluginDir::open(runtime().clone(), cache_parent, DEBOUNCE).err().expect("refused");
    assert!(err.to_string().contains("host-private"), "{err}");
}

/// A stream of messages runs through instances obtained from the folder
/// while the plugin file is replaced several times; every message is mapped
/// exactly once, each by whole version that was current at its boundary.
#[test]
fn swap_under_load_maps_every_message_exactly_once() {
    init_tracing();
    let guests = guests();
    let folder = tempfile::tempdir().expect("temp dir");
    // Compile v2 ahead so every swap is a quick cached load, shorter than the swap period.
    runtime().load(&guests.passthrough_v2).expect("v2 loads");
    deploy(&guests.passthrough_v1, folder.path(), "router.wasm");
    let plugins = PluginDir::open(runtime().clone(), folder.path(), DEBOUNCE).expect("folder opens");
    let mut rx = plugins.subscribe("router");
    let swaps_done = Arc::new(AtomicBool::new(false));
    // Versions the mapping loop has switched to; the swapper waits for each
    // swap to be taken up before the next, so a loaded machine cannot merge two.
    let switches_taken = Arc::new(AtomicUsize::new(0));

    const SWAPS: usize = 6;
    let swapper = {
        let (dir, done, taken) = (folder.path().to_path_buf(), swaps_done.clone(), switches_taken.clone());
        let (v1, v2) = (guests.passthrough_v1.clone(), guests.passthrough_v2.clone());
        std::thread::spawn(move || {
            for swap in 0..SWAPS {
                std::thread::sleep(Duration::from_millis(100)); // messages flow under this version
                deploy(if swap % 2 == 0 { &v2 } else { &v1 }, &dir, "router.wasm");
                let deadline = Instant::now() + Duration::from_secs(30);
                while taken.load(Ordering::SeqCst) <= swap {
                    assert!(Instant::now() < deadline, "swap {swap} was never taken up");
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let context = RuleContext { rule_id: "swap".into(), parent_topic: "p".into() };
    let start = |plugin: &Arc<Plugin>| {
        let instance = plugin.instantiate(context.clone(), "", Limits::default()).expect("instance starts");
        (version_tag(plugin), instance)
    };
    let (mut expected_tag, mut instance) = start(&rx.borrow_and_update().clone().expect("loaded at start"));
    let mut mapped_tags: Vec<String> = Vec::new();
    let mut offset = 0u64;
    while !swaps_done.load(Ordering::SeqCst) {
        // The message boundary: take a new version if there is one.
        if rx.has_changed().unwrap() {
            if let Some(plugin) = rx.borrow_and_update().clone() {
                (expected_tag, instance) = start(&plugin);
                switches_taken.fetch_add(1, Ordering::SeqCst);
            }
        }
        let publishes = instance.map(Arc::new(test_message(offset, 256))).expect("maps");
        assert_eq!(publishes.len(), 1, "message {offset} mapped to {} publishes", publishes.len());
        let tag = version_of(&publishes[0]);
        assert_eq!(tag, expected_tag, "message {offset} mapped by a version that was not current");
        mapped_tags.push(tag);
        offset += 1;
    }
    swapper.join().unwrap();

    assert_eq!(mapped_tags.len() as u64, offset, "every message mapped exactly once");
    let switches = mapped_tags.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(switches, SWAPS, "version switches seen in {offset} messages");
    assert_eq!(expected_tag, "1", "the last swap deploys v1");
    assert_eq!(plugins.counters().loads, 1 + SWAPS as u64);
    eprintln!("{offset} messages, {switches} version switches");
}
