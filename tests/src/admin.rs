//! inflow's admin API from a test, through curl ([`crate::http`]), so the client is
//! independent of inflow's own code.

use crate::http::http_request;
use serde_json::Value;
use std::thread;
use std::time::{Duration, Instant};

/// The admin API of one inflow on a loopback port.
#[derive(Clone, Copy, Debug)]
pub struct Admin {
    pub port: u16,
}

impl Admin {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `METHOD path` with an optional JSON body: the status code and the body (0 when nothing
    /// answered).
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
        let body = body.map(Value::to_string);
        http_request(method, &format!("{}{path}", self.url()), body.as_deref(), None, 60)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, None)
    }

    /// `METHOD path` that must answer `want`; its body as JSON.
    pub fn expect(&self, method: &str, path: &str, body: Option<&Value>, want: u16) -> Value {
        let (code, text) = self.request(method, path, body);
        assert_eq!(code, want, "{method} {path} answered {code}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
    }

    /// Polls `path` until its status is `want` (at most a minute); returns the body. `log`
    /// shows what inflow said when it does not come.
    pub fn wait_status(&self, path: &str, want: u16, log: impl Fn() -> String) -> String {
        self.wait_until(path, |code, _| code == want, log)
    }

    /// Polls `GET path` until `done(code, body)` (at most a minute); returns the body.
    pub fn wait_until(&self, path: &str, done: impl Fn(u16, &str) -> bool, log: impl Fn() -> String) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, body) = self.get(path);
            if done(code, &body) {
                return body;
            }
            assert!(Instant::now() < deadline, "GET {path} stayed {code} ({body}); log:\n{}", log());
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until rule `id` reports `state` (e.g. `running`, `disabled`).
    pub fn wait_rule_state(&self, id: &str, state: &str, log: impl Fn() -> String) {
        let want = format!("\"state\":\"{state}\"");
        self.wait_until(&format!("/api/v1/rules/{id}/status"), |code, body| code == 200 && body.contains(&want), log);
    }
}

/// The value of the series `series` (name and labels exactly as exposed) in a Prometheus
/// exposition, e.g. a `/metrics` body.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
