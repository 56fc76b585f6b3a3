//! Puts the git commit into `inflow --version` ("unknown" outside a git checkout, e.g. a crate tarball).
use std::path::Path;
use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git").args(args).output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=INFLOW_COMMIT={commit}");
    // Rerun only when HEAD moves: HEAD (a checkout), the branch's ref (a commit) or packed-refs
    // (a packed ref). Git finds them, since a worktree keeps HEAD apart from the refs. Only
    // existing files: a missing one would make cargo rerun this, and rebuild inflow, every time.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name]).filter(|p| Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
