//! Network addresses as the config writes them: name-server lists, `host:port`, MQTT broker URLs
//! and the admin server's listen address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The name servers in `entries`: each entry may hold several addresses separated by `;` (the
/// Java client's `NAMESRV_ADDR` form) or `,`. Spaces around addresses and empty items are dropped.
///
/// The one parser for the file's `namesrv` list, `INFLOW_ROCKETMQ_NAMESRV` and `inflow send
/// --namesrv`; it splits as `rocketmq_remoting::ClientConfig` does, so every form means the same.
pub fn namesrv_list<'a>(entries: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    entries
        .into_iter()
        .flat_map(|entry| entry.split([';', ',']))
        .map(str::trim)
        .filter(|addr| !addr.is_empty())
        .map(str::to_string)
        .collect()
}

/// `host:port` or `[v6]:port` → (host, port); host without brackets.
pub(super) fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h, p)
    } else {
        s.rsplit_once(':')?
    };
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| (host.to_string(), port))
}

/// `mqtt://host[:port]` or `mqtts://host[:port]` → (host, port, tls).
pub(super) fn parse_mqtt_url(url: &str) -> Result<(String, u16, bool), String> {
    let (rest, secure) = if let Some(r) = url.strip_prefix("mqtt://") {
        (r, false)
    } else if let Some(r) = url.strip_prefix("mqtts://") {
        (r, true)
    } else if url.is_empty() {
        return Err("no MQTT broker url".into());
    } else {
        return Err(format!("{url:?} does not start with mqtt:// or mqtts://"));
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') || rest.contains('@') {
        return Err(format!("{url:?} has a path or user info; credentials go in username / password"));
    }
    let default_port = if secure { 8883 } else { 1883 };
    let hp = if let Some(host) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        (host.to_string(), default_port)
    } else if rest.contains(':') {
        parse_host_port(rest).ok_or_else(|| format!("{url:?} has a bad host or port"))?
    } else {
        (rest.to_string(), default_port)
    };
    if hp.0.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok((hp.0, hp.1, secure))
}

/// A listen address: an IP address and port (`127.0.0.1:9464`, `[::]:9464`), or `localhost:PORT`
/// for the IPv4 loopback. No other names: a server binds an address, and resolving a name at start
/// would make where it listens depend on DNS.
pub(super) fn parse_listen(s: &str) -> Option<SocketAddr> {
    if let Ok(addr) = s.parse() {
        return Some(addr);
    }
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    host.eq_ignore_ascii_case("localhost").then_some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_server_lists_split_at_semicolons_and_commas() {
        let expected = ["a:1", "b:2", "c:3"];
        assert_eq!(namesrv_list(["a:1;b:2;c:3"]), expected);
        assert_eq!(namesrv_list(["a:1, b:2,c:3"]), expected);
        assert_eq!(namesrv_list(["a:1", " b:2 ;", "c:3;;"]), expected);
        assert!(namesrv_list([" ; , "]).is_empty());
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen("0.0.0.0:9464"), Some("0.0.0.0:9464".parse().unwrap()));
        assert_eq!(parse_listen("[::1]:80"), Some("[::1]:80".parse().unwrap()));
        assert_eq!(parse_listen("localhost:9464"), Some("127.0.0.1:9464".parse().unwrap()));
        for bad in ["9464", "example.com:9464", "127.0.0.1", "127.0.0.1:x", "localhost:99999"] {
            assert_eq!(parse_listen(bad), None, "{bad}");
        }
    }
}
