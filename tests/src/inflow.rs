//! The `inflow` binary under test: its path, and [`Inflow`], an `inflow run` subprocess on a
//! [`Config`] whose output (stderr, the log, and stdout) is captured line by line for assertions.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::rig::{repo_root, unique_name};

/// The `inflow` binary of the release build (`cargo build --release -p inflow`).
pub fn inflow_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    let bin = target.join("release/inflow");
    assert!(bin.exists(), "{} is missing: build it with `cargo build --release -p inflow` (scripts/test.sh does)", bin.display());
    bin
}

/// Marks where one run's log ends and the next begins in [`Inflow::log`].
const RESTART_MARK: &str = "--- restart ---";

/// An `inflow run` subprocess (log level info) on a config written to a folder of its own;
/// killed on drop. On a test failure the drop prints the log and keeps the folder.
pub struct Inflow {
    child: Option<Child>,
    dir: PathBuf,
    /// Extra environment of every run (e.g. `INFLOW_MQTT_PASSWORD`).
    env: Vec<(String, String)>,
    /// Every stderr and stdout line of every run, a [`RESTART_MARK`] between runs.
    log: Arc<Mutex<Vec<String>>>,
    readers: Vec<thread::JoinHandle<()>>,
}

impl Inflow {
    /// Writes `config` with a client id of this inflow's own (two processes with one id would
    /// take the MQTT connection from each other) and starts inflow on it.
    pub fn start(config: &Config) -> Inflow {
        Inflow::start_with_env(config, &[])
    }

    /// Like [`Inflow::start`], with extra environment variables.
    pub fn start_with_env(config: &Config, env: &[(&str, &str)]) -> Inflow {
        let dir = std::env::temp_dir().join(unique_name("inflow-run"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let config = config.clone().client_id(&unique_name("inflow"));
        std::fs::write(dir.join("inflow.toml"), config.render()).expect("write inflow.toml");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut inflow = Inflow { child: None, dir, env, log: Arc::default(), readers: Vec::new() };
        inflow.restart();
        inflow
    }

    /// Starts inflow again on the same config (after [`Inflow::kill9`] or [`Inflow::sigterm`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "inflow still runs");
        if !self.lock_log().is_empty() {
            self.lock_log().push(RESTART_MARK.to_owned());
        }
        let mut child = Command::new(inflow_bin())
            .args(["run", "-c"])
            .arg(self.dir.join("inflow.toml"))
            .env("INFLOW_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start inflow");
        let stderr = child.stderr.take().expect("stderr is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        self.readers.push(read_lines(stderr, self.log.clone()));
        self.readers.push(read_lines(stdout, self.log.clone()));
        self.child = Some(child);
    }

    fn lock_log(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The log lines of every run so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.lock_log().clone()
    }

    /// The log lines of the current run (since the last restart).
    pub fn current_run_log(&self) -> Vec<String> {
        let log = self.lock_log();
        let start = log.iter().rposition(|l| l == RESTART_MARK).map_or(0, |i| i + 1);
        log[start..].to_vec()
    }

    /// The log of every run so far, one text.
    pub fn log(&self) -> String {
        self.lock_log().join("\n")
    }

    /// How many log lines contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.lock_log().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits until `count` log lines contain `needle`, or `timeout` passed; the count then.
    pub fn wait_for_log(&self, needle: &str, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.log_count(needle);
            if seen >= count || Instant::now() > deadline {
                return seen;
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGKILL, and waits for the exit.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("inflow runs");
        child.kill().expect("kill inflow");
        child.wait().expect("wait for inflow");
    }

    /// The folder of the config file (`inflow.toml`), and so of its default rules folder `rules.d`.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// SIGHUP: inflow reloads its config file and rules folder.
    pub fn sighup(&self) {
        let child = self.child.as_ref().expect("inflow runs");
        let ok = Command::new("kill").args(["-HUP", &child.id().to_string()]).status().expect("run kill").success();
        assert!(ok, "kill -HUP failed");
    }

    /// SIGTERM, then the exit status (panics if it takes longer than `within`).
    pub fn sigterm(&mut self, within: Duration) -> ExitStatus {
        let child = self.child.as_ref().expect("inflow runs");
        let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill").success();
        assert!(ok, "kill -TERM failed");
        self.wait_exit(within)
    }

    /// Waits for inflow to exit by itself (e.g. refusing its config) and its output to be read
    /// to the end; panics, killing it, if it still runs after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("inflow runs");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("wait for inflow") {
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("inflow did not exit within {within:?}; log:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Appends every line `output` gives to `log`, until it closes.
fn read_lines(output: impl std::io::Read + Send + 'static, log: Arc<Mutex<Vec<String>>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    })
}

impl Drop for Inflow {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        if thread::panicking() {
            eprintln!("inflow log ({}):\n{}", self.dir.display(), self.log());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
