//! The one error type of the crate. Messages name the address, the request and what to do.

use std::time::Duration;

use crate::codes::{request_name, response};
use crate::command::RemotingCommand;

/// Every failure of the client. Network input never panics: it becomes one of these.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to {addr}: {source} (is the broker / name server running and reachable?)")]
    Connect { addr: String, source: std::io::Error },

    #[error("connection to {addr} is in reconnect back-off after a failure ({reason}); retry in {retry_in:?}")]
    Backoff { addr: String, reason: String, retry_in: Duration },

    #[error("connection to {addr} closed before the answer to {request} arrived")]
    ConnectionClosed { addr: String, request: String },

    #[error("{request} to {addr} timed out after {timeout:?}")]
    Timeout { addr: String, request: String, timeout: Duration },

    #[error("{addr} answered {request} with code {code} ({code_name}): {remark}")]
    Remote { addr: String, request: String, code: i32, code_name: &'static str, remark: String },

    #[error(
        "{addr} refused the credentials for {request} ({credentials}): {remark}; \
         check the AccessKey / SecretKey and the broker's ACL configuration"
    )]
    AccessDenied { addr: String, request: String, credentials: String, remark: String },

    #[error("malformed frame from {addr}: {reason}")]
    Frame { addr: String, reason: String },

    #[error("malformed message data: {0}")]
    Decode(String),

    #[error("malformed {what} from {addr}: {reason}")]
    BadResponse { addr: String, what: &'static str, reason: String },

    #[error("topic {topic:?} does not exist on name servers {namesrv:?}; {}", if *auto_create {
        "the brokers create topics on first use (autoCreateTopicEnable), so it appears once a producer sends to it"
    } else {
        "create it first (or enable autoCreateTopicEnable on the brokers)"
    })]
    TopicNotFound {
        topic: String,
        namesrv: Vec<String>,
        /// The brokers auto-create topics (their template topic TBW102 is routed).
        auto_create: bool,
    },

    #[error("no name server answered {request}; tried {tried:?}; last error: {last}")]
    NameServerUnavailable { request: String, tried: Vec<String>, last: String },

    #[error("broker {broker_name:?} has no master address in the known routes; the broker may be down")]
    NoMaster { broker_name: String },

    #[error("topic {topic:?} has no writable queue on any master broker")]
    NoWritableQueue { topic: String },

    #[error("invalid message: {0}")]
    InvalidMessage(String),

    #[error("invalid client configuration: {0}")]
    Config(String),

    #[error("cannot compress or decompress a message body: {0}")]
    Compression(String),

    #[error("the client is shut down")]
    Shutdown,
}

impl Error {
    /// The RocketMQ response code if the remote side answered with an error code.
    pub fn remote_code(&self) -> Option<i32> {
        match self {
            Error::Remote { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True for failures of the transport (connect, closed, timeout, back-off): worth a retry elsewhere.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. } | Error::Backoff { .. } | Error::ConnectionClosed { .. } | Error::Timeout { .. }
        )
    }

    /// True for conditions retrying is expected to heal without anyone acting (a broker or name
    /// server restarting, a topic the brokers will create on first send): worth a WARN, not an
    /// ERROR.
    pub fn heals_by_itself(&self) -> bool {
        self.is_transport()
            || matches!(self, Error::NoMaster { .. } | Error::NameServerUnavailable { .. } | Error::TopicNotFound { auto_create: true, .. })
            || matches!(self.remote_code(), Some(response::SYSTEM_BUSY | response::SERVICE_NOT_AVAILABLE))
    }

    /// Turns a non-success response to request `request_code` into an error, recognising
    /// refused credentials (`access_key`: the one the request was signed with).
    pub fn from_response(addr: &str, request_code: i32, access_key: Option<&str>, response: &RemotingCommand) -> Error {
        let remark = response.remark.clone().unwrap_or_default();
        let request_label = request_label(request_code);
        if is_access_denied(response.code, &remark) {
            return Error::AccessDenied {
                addr: addr.to_string(),
                request: request_label,
                credentials: match access_key {
                    Some(key) => format!("AccessKey {key:?}"),
                    None => "no credentials configured".to_string(),
                },
                remark,
            };
        }
        Error::Remote {
            addr: addr.to_string(),
            request: request_label,
            code: response.code,
            code_name: response::name(response.code),
            remark,
        }
    }
}

/// `NAME(code)` for log and error messages.
pub(crate) fn request_label(code: i32) -> String {
    format!("{}({code})", request_name(code))
}

/// Brokers report ACL failures as NO_PERMISSION or as a SYSTEM_ERROR whose remark comes from the
/// ACL validator (4.x plain ACL: "No acl config for ...", "Check signature failed ..."; 5.x auth:
/// "User:... is not found", "check signature failed").
fn is_access_denied(code: i32, remark: &str) -> bool {
    if code == response::NO_PERMISSION {
        return true;
    }
    if code != response::SYSTEM_ERROR {
        return false;
    }
    let remark = remark.to_ascii_lowercase();
    ["signature", "accesskey", "no acl config", "acl", "authentication", "user:", "username", "no user", "secret"]
        .iter()
        .any(|needle| remark.contains(needle))
}
