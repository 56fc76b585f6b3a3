//! `RemotingCommand`, its JSON (and binary) header, and the length-prefixed frame codec.
//!
//! Frame: `i32 total_len` (4 + header_len + body_len), `i32 (serialize_type << 24 | header_len)`,
//! header, body; big-endian. We always send JSON headers (type 0); we read JSON and the compact
//! binary "ROCKETMQ" headers (type 1) some brokers are configured to answer with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// Protocol version we announce: `MQVersion.Version.V4_9_8.ordinal()`. At or above V4_9_4 (401)
/// name servers answer with standard JSON; 4.9.8 and 5.x brokers both serve 4.9.8 clients.
pub const CLIENT_VERSION: i32 = 409;
/// Language we announce; brokers treat "JAVA" clients as first-class (e.g. JSON quirks off).
pub const CLIENT_LANGUAGE: &str = "JAVA";
/// Default largest frame accepted (the Java client's default, 16 MiB).
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

const FLAG_RESPONSE: i32 = 0b01;
const FLAG_ONEWAY: i32 = 0b10;
const SERIALIZE_JSON: u8 = 0;
const SERIALIZE_ROCKETMQ: u8 = 1;

static NEXT_OPAQUE: AtomicI32 = AtomicI32::new(1);

/// One request or response of the remoting protocol.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemotingCommand {
    pub code: i32,
    pub language: String,
    pub version: i32,
    /// Matches a response to its request.
    pub opaque: i32,
    pub flag: i32,
    pub remark: Option<String>,
    /// The custom header: field name → value, all strings on the wire.
    pub ext_fields: HashMap<String, String>,
    pub body: Bytes,
}

impl RemotingCommand {
    /// A request with a fresh opaque.
    pub fn request(code: i32) -> Self {
        RemotingCommand {
            code,
            language: CLIENT_LANGUAGE.to_string(),
            version: CLIENT_VERSION,
            opaque: NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed),
            ..Default::default()
        }
    }

    /// The response to `request` (same opaque, response flag set).
    pub fn response_to(request: &RemotingCommand, code: i32, remark: Option<String>) -> Self {
        RemotingCommand {
            code,
            language: CLIENT_LANGUAGE.to_string(),
            version: CLIENT_VERSION,
            opaque: request.opaque,
            flag: FLAG_RESPONSE,
            remark,
            ..Default::default()
        }
    }

    /// Adds a header field (builder style). Values are sent as strings, as Java does.
    pub fn with_field(mut self, name: &str, value: impl ToString) -> Self {
        self.ext_fields.insert(name.to_string(), value.to_string());
        self
    }

    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    pub fn mark_oneway(&mut self) {
        self.flag |= FLAG_ONEWAY;
    }

    /// A header field by name.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.ext_fields.get(name).map(String::as_str)
    }

    /// A header field parsed as a number; `None` if missing or not a number.
    pub fn field_i64(&self, name: &str) -> Option<i64> {
        self.field(name).and_then(|v| v.trim().parse().ok())
    }

    /// Appends the whole frame (length prefix included) to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let header = JsonHeaderOut {
            code: self.code,
            language: &self.language,
            version: self.version,
            opaque: self.opaque,
            flag: self.flag,
            remark: self.remark.as_deref(),
            ext_fields: &self.ext_fields,
            serialize_type_current_rpc: "JSON",
        };
        let header = serde_json::to_vec(&header).expect("a JSON header of strings and numbers always serializes");
        dst.reserve(8 + header.len() + self.body.len());
        dst.put_i32((4 + header.len() + self.body.len()) as i32);
        dst.put_i32(header.len() as i32); // serialize type 0 (JSON) in the top byte
        dst.put_slice(&header);
        dst.put_slice(&self.body);
    }

    /// Decodes one frame without its leading `total_len` field (what the codec hands over).
    pub fn decode_frame(mut frame: Bytes) -> Result<RemotingCommand, String> {
        if frame.len() < 4 {
            return Err(format!("frame of {} bytes is shorter than its header-length field", frame.len()));
        }
        let mark = frame.get_i32();
        let serialize_type = ((mark >> 24) & 0xff) as u8;
        let header_len = (mark & 0x00ff_ffff) as usize;
        if header_len > frame.len() {
            return Err(format!("header length {header_len} exceeds the {} bytes left in the frame", frame.len()));
        }
        let header = frame.split_to(header_len);
        let mut command = match serialize_type {
            SERIALIZE_JSON => decode_json_header(&header)?,
            SERIALIZE_ROCKETMQ => decode_binary_header(header)?,
            other => return Err(format!("unknown header serialize type {other}")),
        };
        command.body = frame;
        Ok(command)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonHeaderOut<'a> {
    code: i32,
    language: &'a str,
    version: i32,
    opaque: i32,
    flag: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    remark: Option<&'a str>,
    ext_fields: &'a HashMap<String, String>,
    serialize_type_current_rpc: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonHeaderIn {
    #[serde(default)]
    code: i32,
    #[serde(default)]
    language: Lenient,
    #[serde(default)]
    version: i32,
    #[serde(default)]
    opaque: i32,
    #[serde(default)]
    flag: i32,
    #[serde(default)]
    remark: Option<String>,
    #[serde(default)]
    ext_fields: Option<HashMap<String, Lenient>>,
}

fn decode_json_header(header: &[u8]) -> Result<RemotingCommand, String> {
    let parsed: JsonHeaderIn = parse_json(header).map_err(|e| format!("bad JSON header: {e}"))?;
    let ext_fields = parsed.ext_fields.unwrap_or_default().into_iter().filter_map(|(k, v)| v.0.map(|v| (k, v))).collect();
    Ok(RemotingCommand {
        code: parsed.code,
        language: parsed.language.0.unwrap_or_default(),
        version: parsed.version,
        opaque: parsed.opaque,
        flag: parsed.flag,
        remark: parsed.remark,
        ext_fields,
        body: Bytes::new(),
    })
}

/// A header value: a string in Java, but numbers and booleans are taken as their text, and
/// nulls or nested values are dropped rather than failing the whole frame.
#[derive(Default)]
struct Lenient(Option<String>);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Lenient;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_str<E>(self, v: &str) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Lenient, E> {
                Ok(Lenient(Some(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_string())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_string())))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_string())))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_string())))
            }
            fn visit_unit<E>(self) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_none<E>(self) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Lenient, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Lenient, A::Error> {
                while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The compact binary header (`RocketMQSerializable`).
fn decode_binary_header(mut h: Bytes) -> Result<RemotingCommand, String> {
    fn need(h: &Bytes, n: usize, what: &str) -> Result<(), String> {
        if h.remaining() < n {
            Err(format!("binary header truncated in {what}"))
        } else {
            Ok(())
        }
    }
    need(&h, 2 + 1 + 2 + 4 + 4 + 4, "fixed fields")?;
    let code = h.get_i16() as i32;
    let language = language_name(h.get_u8()).to_string();
    let version = h.get_i16() as i32;
    let opaque = h.get_i32();
    let flag = h.get_i32();
    let remark_len = h.get_i32();
    let remark = if remark_len > 0 {
        need(&h, remark_len as usize, "remark")?;
        Some(String::from_utf8_lossy(&h.split_to(remark_len as usize)).into_owned())
    } else {
        None
    };
    need(&h, 4, "extFields length")?;
    let ext_len = h.get_i32();
    let mut ext_fields = HashMap::new();
    if ext_len > 0 {
        need(&h, ext_len as usize, "extFields")?;
        let mut ext = h.split_to(ext_len as usize);
        while ext.has_remaining() {
            need(&ext, 2, "extFields key length")?;
            let key_len = ext.get_i16().max(0) as usize;
            need(&ext, key_len + 4, "extFields key")?;
            let key = String::from_utf8_lossy(&ext.split_to(key_len)).into_owned();
            let value_len = ext.get_i32().max(0) as usize;
            need(&ext, value_len, "extFields value")?;
            let value = String::from_utf8_lossy(&ext.split_to(value_len)).into_owned();
            ext_fields.insert(key, value);
        }
    }
    Ok(RemotingCommand { code, language, version, opaque, flag, remark, ext_fields, body: Bytes::new() })
}

fn language_name(code: u8) -> &'static str {
    const NAMES: [&str; 13] =
        ["JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP", "OMS", "RUST"];
    NAMES.get(code as usize).copied().unwrap_or("OTHER")
}

/// Parses JSON as RocketMQ servers write it: standard JSON, or fastjson's dialect with unquoted
/// integer map keys (`{0:"127.0.0.1:10911"}`) that old name servers send.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(strict_error) => match quote_integer_keys(bytes) {
            Some(fixed) => serde_json::from_slice(&fixed),
            None => Err(strict_error),
        },
    }
}

/// Rewrites `{1:` / `,1:` (outside strings) to `{"1":`; `None` if there was nothing to rewrite.
fn quote_integer_keys(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() + 16);
    let mut changed = false;
    let mut in_string = false;
    let mut escaped = false;
    let mut after_key_start = false; // last significant byte was `{` or `,`
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        if in_string {
            out.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if after_key_start && (byte.is_ascii_digit() || byte == b'-') {
            let start = i;
            let mut end = i + 1;
            while end < input.len() && input[end].is_ascii_digit() {
                end += 1;
            }
            let mut colon = end;
            while colon < input.len() && input[colon].is_ascii_whitespace() {
                colon += 1;
            }
            if colon < input.len() && input[colon] == b':' {
                out.push(b'"');
                out.extend_from_slice(&input[start..end]);
                out.push(b'"');
                changed = true;
                after_key_start = false;
                i = end;
                continue;
            }
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b',' => after_key_start = true,
            b if b.is_ascii_whitespace() => {}
            _ => after_key_start = false,
        }
        if byte == b'"' {
            after_key_start = false;
        }
        out.push(byte);
        i += 1;
    }
    changed.then_some(out)
}

/// Length-prefixed frame codec for `tokio_util::codec::Framed`.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_frame: usize,
}

impl FrameCodec {
    pub fn new(max_frame: usize) -> Self {
        FrameCodec { max_frame }
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME)
    }
}

/// Decoding failure of the codec: either I/O or a malformed frame (the stream cannot continue).
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Malformed(String),
}

impl tokio_util::codec::Decoder for FrameCodec {
    type Item = RemotingCommand;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<RemotingCommand>, CodecError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let total = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        if total < 4 || total as usize > self.max_frame {
            return Err(CodecError::Malformed(format!(
                "frame length {total} is outside 4..={} bytes",
                self.max_frame
            )));
        }
        let total = total as usize;
        if src.len() < 4 + total {
            src.reserve(4 + total - src.len());
            return Ok(None);
        }
        src.advance(4);
        let frame = src.split_to(total).freeze();
        RemotingCommand::decode_frame(frame).map(Some).map_err(CodecError::Malformed)
    }
}

impl tokio_util::codec::Encoder<RemotingCommand> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, item: RemotingCommand, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.encode(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::codec::Decoder;

    #[test]
    fn json_frame_round_trips() {
        let cmd = RemotingCommand::request(105).with_field("topic", "T1").with_body(&b"body"[..]);
        let mut buf = BytesMut::new();
        cmd.encode(&mut buf);
        let decoded = FrameCodec::default().decode(&mut buf).unwrap().unwrap();
        assert_eq!(decoded, cmd);
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let mut whole = BytesMut::new();
        RemotingCommand::request(11).with_body(vec![7u8; 100]).encode(&mut whole);
        let mut codec = FrameCodec::default();
        let mut partial = BytesMut::from(&whole[..50]);
        assert!(codec.decode(&mut partial).unwrap().is_none());
        partial.extend_from_slice(&whole[50..]);
        assert_eq!(codec.decode(&mut partial).unwrap().unwrap().body.len(), 100);
    }

    #[test]
    fn oversized_and_negative_lengths_are_errors() {
        let mut codec = FrameCodec::new(1024);
        let mut big = BytesMut::from(&2048i32.to_be_bytes()[..]);
        assert!(codec.decode(&mut big).is_err());
        let mut negative = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert!(codec.decode(&mut negative).is_err());
    }

    #[test]
    fn header_length_beyond_frame_is_an_error() {
        let mut frame = BytesMut::new();
        frame.put_i32(8);
        frame.put_i32(1000);
        frame.put_i32(0);
        assert!(FrameCodec::default().decode(&mut frame).is_err());
    }

    #[test]
    fn decodes_a_java_style_response_header() {
        let header = br#"{"code":0,"extFields":{"queueOffset":"12","msgId":"AB","n":5,"b":true,"x":null,"o":{"a":[1]}},"flag":1,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":409}"#;
        let mut frame = BytesMut::new();
        frame.put_i32(4 + header.len() as i32);
        frame.put_i32(header.len() as i32);
        frame.put_slice(header);
        let cmd = FrameCodec::default().decode(&mut frame).unwrap().unwrap();
        assert!(cmd.is_response());
        assert_eq!(cmd.opaque, 7);
        assert_eq!(cmd.field_i64("queueOffset"), Some(12));
        assert_eq!(cmd.field("msgId"), Some("AB"));
        assert_eq!((cmd.field("n"), cmd.field("b"), cmd.field("x"), cmd.field("o")), (Some("5"), Some("true"), None, None));
        assert_eq!(cmd.language, "JAVA");
    }

    #[test]
    fn decodes_a_binary_header() {
        let mut header = BytesMut::new();
        header.put_i16(0);
        header.put_u8(0);
        header.put_i16(479);
        header.put_i32(42);
        header.put_i32(1);
        header.put_i32(2);
        header.put_slice(b"ok");
        let mut ext = BytesMut::new();
        ext.put_i16(3);
        ext.put_slice(b"key");
        ext.put_i32(5);
        ext.put_slice(b"value");
        header.put_i32(ext.len() as i32);
        header.put_slice(&ext);
        let mut frame = BytesMut::new();
        frame.put_i32((SERIALIZE_ROCKETMQ as i32) << 24 | header.len() as i32);
        frame.put_slice(&header);
        frame.put_slice(b"xyz");
        let cmd = RemotingCommand::decode_frame(frame.freeze()).unwrap();
        assert_eq!((cmd.opaque, cmd.version, cmd.remark.as_deref()), (42, 479, Some("ok")));
        assert_eq!(cmd.field("key"), Some("value"));
        assert_eq!(&cmd.body[..], b"xyz");
    }

    #[test]
    fn tolerates_fastjson_integer_keys() {
        let body = br#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911", 1 :"127.0.0.1:10921"},"brokerName":"b{0:"}]}"#;
        let value: serde_json::Value = parse_json(body).unwrap();
        assert_eq!(value["brokerDatas"][0]["brokerAddrs"]["1"], "127.0.0.1:10921");
        assert_eq!(value["brokerDatas"][0]["brokerName"], "b{0:");
    }
}
