//! Writes the WASI preview1 *reactor* adapter to the path given as the only
//! argument. `wasm-tools component new --adapt wasi_snapshot_preview1=<path>`
//! uses it to turn a core module built against wasi-libc (preview1) into a
//! component that imports WASI preview2, as inflow's runtime expects.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: write-preview1-adapter <output.wasm>");
        return ExitCode::from(2);
    };
    let adapter = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    // Write beside, then rename: a reader never sees half a file.
    let partial = {
        let mut p = path.clone();
        p.push(".partial");
        p
    };
    match std::fs::write(&partial, adapter).and_then(|()| std::fs::rename(&partial, &path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write the adapter to {}: {e}", path.to_string_lossy());
            ExitCode::FAILURE
        }
    }
}
