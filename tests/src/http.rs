//! HTTP for the admin-server tests, with curl (Debian's `curl`, installed with Mosquitto):
//! a status code and a body, the bearer token optional.

use std::process::Command;

/// `GET url` (5 s at most): the status code (0: no answer) and the body.
pub fn http_get(url: &str, bearer: Option<&str>) -> (u16, String) {
    http_request("GET", url, None, bearer, 5)
}

/// `METHOD url` with an optional JSON body, `timeout_secs` at most: the status code (0: no
/// answer) and the body.
pub fn http_request(method: &str, url: &str, json: Option<&str>, bearer: Option<&str>, timeout_secs: u32) -> (u16, String) {
    let mut curl = Command::new("curl");
    curl.args(["-s", "-m", &timeout_secs.to_string(), "-X", method, "-w", "\n%{http_code}"]);
    if let Some(token) = bearer {
        curl.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    if let Some(body) = json {
        curl.args(["-H", "Content-Type: application/json", "--data-binary", body]);
    }
    let out = curl.arg(url).output().expect("curl (Debian's curl package; scripts/install/mosquitto.sh)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port()
}
