//! A Prometheus server of the test's own (Debian's `prometheus`, scripts/install/prometheus.sh)
//! on a free loopback port, scraping inflow's admin server every second; and `promtool`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::{free_port, http_get};
use crate::rig::TempDir;

/// A `prometheus` process, killed on drop (its data folder removed).
pub struct Prometheus {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `127.0.0.1:<admin_port>/metrics` every second with these
    /// rule files loaded, and waits until it is ready.
    pub fn start(admin_port: u16, rule_files: &[&Path]) -> Prometheus {
        let dir = TempDir::new("inflow-prometheus");
        let rules: Vec<String> = rule_files.iter().map(|p| format!("\"{}\"", p.display())).collect();
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{}]\n\
             scrape_configs: [{{job_name: inflow, static_configs: [{{targets: [\"127.0.0.1:{admin_port}\"]}}]}}]\n",
            rules.join(", ")
        );
        let config_path = dir.0.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.0.join("prometheus.log")).expect("create prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.0.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start prometheus (Debian's prometheus package: scripts/install/prometheus.sh)");
        let prometheus = Prometheus { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(&prometheus.url("/-/ready"), None).0 != 200 {
            assert!(Instant::now() < deadline, "prometheus not ready within 30 s; its log:\n{}", prometheus.log());
            thread::sleep(Duration::from_millis(200));
        }
        prometheus
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Prometheus's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/<path>` (an `api/v1` path with its query string): the `data` of a success.
    pub fn api(&self, path: &str) -> Value {
        let (code, body) = http_get(&self.url(&format!("/api/v1/{path}")), None);
        let reply: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("prometheus answered {code} {body:?}: {e}"));
        assert_eq!(reply["status"], "success", "{body}");
        reply["data"].clone()
    }

    /// The value of an instant query that yields one sample, `None` while it yields none.
    pub fn query_one(&self, expr: &str) -> Option<f64> {
        let data = self.api(&format!("query?query={}", percent_encode(expr)));
        let result = data["result"].as_array().expect("a vector result");
        assert!(result.len() <= 1, "{expr} yields more than one sample: {data}");
        result.first().map(|sample| sample["value"][1].as_str().expect("a sample value").parse().expect("a number"))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("prometheus log:\n{}", self.log());
        }
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a query string.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `promtool <args>` with `stdin` as its input: Ok(output) if it passed, Err(output) if not.
pub fn promtool(args: &[&str], stdin: &str) -> Result<String, String> {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (Debian's prometheus package: scripts/install/prometheus.sh)");
    child.stdin.take().expect("piped stdin").write_all(stdin.as_bytes()).expect("write promtool's stdin");
    let out = child.wait_with_output().expect("wait for promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// `docs/alerts.yml`, the alerting rules the operations page documents.
pub fn alerts_file() -> PathBuf {
    crate::rig::repo_root().join("docs/alerts.yml")
}
