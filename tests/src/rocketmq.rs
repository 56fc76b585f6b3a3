//! RocketMQ brokers from the rig: the shared one of a test run ([`RocketMq::shared`]) or a
//! private one a test starts, restarts and stops ([`RocketMq::start`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::java::JavaTool;
use crate::rig::{read_env_file, required_env, rig_dir, run_script, TempDir};

/// RocketMQ ACL credentials (an admin account of the rig's ACL broker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

/// A RocketMQ name server + broker from the rig.
pub struct RocketMq {
    /// Name server address, `127.0.0.1:port`.
    pub namesrv: String,
    /// Broker address, `127.0.0.1:port` (also listens on port − 2, the VIP channel).
    pub broker: String,
    pub broker_name: String,
    pub cluster: String,
    /// The rig version (a line of `tests/rig/versions`), e.g. `4.9.8`.
    pub version: String,
    /// Set when the broker enforces ACL.
    pub credentials: Option<Credentials>,
    /// On a 4.x ACL broker: an account that may consume only as the group named here.
    pub limited: Option<(Credentials, String)>,
    statedir: Option<PathBuf>,
    /// Present for a broker this process started: stopped and removed on drop.
    own: Option<TempDir>,
}

impl RocketMq {
    /// The broker `scripts/test.sh` started for the version under test (env
    /// `INFLOW_TEST_NAMESRV`, `INFLOW_TEST_ROCKETMQ_VERSION`, `INFLOW_TEST_ROCKETMQ_DIR`).
    /// Share it politely: use [`unique_name`] topics and groups, never restart it.
    pub fn shared() -> &'static RocketMq {
        static SHARED: OnceLock<RocketMq> = OnceLock::new();
        SHARED.get_or_init(|| {
            let statedir = PathBuf::from(required_env("INFLOW_TEST_ROCKETMQ_DIR"));
            let mut rmq = RocketMq::from_statedir(&statedir, None);
            rmq.namesrv = required_env("INFLOW_TEST_NAMESRV");
            let version = required_env("INFLOW_TEST_ROCKETMQ_VERSION");
            assert_eq!(
                rmq.version,
                version,
                "INFLOW_TEST_ROCKETMQ_VERSION disagrees with the broker in {}",
                statedir.display()
            );
            rmq
        })
    }

    /// The version under test (env `INFLOW_TEST_ROCKETMQ_VERSION`), for tests that start
    /// their own broker of the same version.
    pub fn version_under_test() -> String {
        required_env("INFLOW_TEST_ROCKETMQ_VERSION")
    }

    /// Starts a broker of this process's own (10–20 s), with ACL if `acl`; stopped on drop.
    pub fn start(version: &str, acl: bool) -> RocketMq {
        let dir = TempDir::new("inflow-rocketmq");
        let statedir = dir.0.to_string_lossy().into_owned();
        let mut args = vec!["start", version, statedir.as_str()];
        if acl {
            args.push("--acl");
        }
        run_script("rocketmq.sh", &args);
        RocketMq::from_statedir(&dir.0.clone(), Some(dir))
    }

    fn from_statedir(statedir: &Path, own: Option<TempDir>) -> RocketMq {
        let env = read_env_file(&statedir.join("env"));
        let get = |key: &str| {
            env.get(key)
                .cloned()
                .unwrap_or_else(|| panic!("{} has no {key}", statedir.join("env").display()))
        };
        let credentials = match (env.get("ACCESS_KEY"), env.get("SECRET_KEY")) {
            (Some(ak), Some(sk)) => Some(Credentials { access_key: ak.clone(), secret_key: sk.clone() }),
            _ => None,
        };
        let limited = match (env.get("LIMITED_ACCESS_KEY"), env.get("LIMITED_SECRET_KEY"), env.get("LIMITED_GROUP")) {
            (Some(ak), Some(sk), Some(group)) => Some((Credentials { access_key: ak.clone(), secret_key: sk.clone() }, group.clone())),
            _ => None,
        };
        RocketMq {
            namesrv: get("NAMESRV"),
            broker: get("BROKER"),
            broker_name: get("BROKER_NAME"),
            cluster: get("CLUSTER"),
            version: get("VERSION"),
            credentials,
            limited,
            statedir: Some(statedir.to_path_buf()),
            own,
        }
    }

    fn own_statedir(&self, what: &str) -> String {
        assert!(self.own.is_some(), "{what} needs a broker of the test's own: use RocketMq::start, not shared()");
        self.statedir.as_ref().expect("own broker has a statedir").to_string_lossy().into_owned()
    }

    /// Stops the broker and starts it again on the same ports and store (name server stays).
    pub fn restart_broker(&self) {
        let statedir = self.own_statedir("restart_broker");
        run_script("rocketmq.sh", &["restart-broker", &statedir]);
    }

    /// Stops the broker only (name server stays), e.g. to test reconnects; [`start_broker`]
    /// brings it back.
    ///
    /// [`start_broker`]: RocketMq::start_broker
    pub fn stop_broker(&self) {
        let statedir = self.own_statedir("stop_broker");
        run_script("rocketmq.sh", &["stop-broker", &statedir]);
    }

    /// Starts the broker stopped by [`RocketMq::stop_broker`], on the same ports and store.
    pub fn start_broker(&self) {
        let statedir = self.own_statedir("start_broker");
        run_script("rocketmq.sh", &["start-broker", &statedir]);
    }

    /// Creates (or updates) `topic` with `queues` read/write queues and waits for its route.
    pub fn create_topic(&self, topic: &str, queues: u32) {
        self.java().create_topic(topic, queues);
    }

    /// The Java tool against this broker, with its credentials if it enforces ACL.
    pub fn java(&self) -> JavaTool {
        JavaTool { version: self.version.clone(), namesrv: self.namesrv.clone(), credentials: self.credentials.clone() }
    }
}

impl Drop for RocketMq {
    fn drop(&mut self) {
        // The statedir itself goes with `own` (dropped after this).
        if let (Some(_), Some(statedir)) = (&self.own, &self.statedir) {
            let _ = Command::new(rig_dir().join("rocketmq.sh"))
                .arg("stop")
                .arg(statedir)
                .stdin(Stdio::null())
                .status();
        }
    }
}
