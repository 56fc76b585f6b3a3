//! The MQTT packets a publish-only client needs, for protocol 3.1.1 and 5:
//! encode CONNECT, PUBLISH, PUBREL, PINGREQ, DISCONNECT; decode CONNACK, PUBACK, PUBREC, PUBCOMP,
//! PINGRESP, DISCONNECT. Decoding never panics on bad input: it returns [`DecodeError`].

use crate::config::Protocol;
use super::publish::{Publish, QoS};
use bytes::{Buf, BufMut, Bytes, BytesMut};

const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PUBREC: u8 = 5;
const PUBREL: u8 = 6;
const PUBCOMP: u8 = 7;
const PINGREQ: u8 = 12;
const PINGRESP: u8 = 13;
const DISCONNECT: u8 = 14;

// MQTT 5 property identifiers we write.
const PROP_MESSAGE_EXPIRY: u8 = 0x02;
const PROP_CONTENT_TYPE: u8 = 0x03;
const PROP_RECEIVE_MAXIMUM: u8 = 0x21;
const PROP_MAXIMUM_PACKET_SIZE: u8 = 0x27;
const PROP_REASON_STRING: u8 = 0x1F;
const PROP_USER_PROPERTY: u8 = 0x26;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("malformed {0} packet")]
    Malformed(&'static str),
    #[error("unexpected packet type {0} from the broker")]
    Unexpected(u8),
    #[error("packet of {0} bytes exceeds the limit")]
    TooLarge(usize),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("{what} is {len} bytes, over MQTT's 65535")]
    StringTooLong { what: &'static str, len: usize },
    #[error("packet of {0} bytes is over MQTT's 256 MiB")]
    PacketTooLarge(usize),
}

pub struct ConnectOptions<'a> {
    pub protocol: Protocol,
    pub client_id: &'a str,
    pub keep_alive_secs: u16,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    /// What we can take back: the window we announce as MQTT 5 Receive Maximum.
    pub receive_maximum: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    /// 0 = accepted; the 3.1.1 return code or the MQTT 5 reason code otherwise.
    pub code: u8,
    /// MQTT 5: how many QoS > 0 publishes the broker takes at once (65535 when unsaid).
    pub receive_maximum: u16,
    pub maximum_packet_size: Option<u32>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    ConnAck(ConnAck),
    /// PUBACK / PUBREC / PUBCOMP: packet id and reason code (0 on 3.1.1).
    PubAck { pkid: u16, code: u8 },
    PubRec { pkid: u16, code: u8 },
    PubComp { pkid: u16, code: u8 },
    PingResp,
    Disconnect { code: u8, reason: Option<String> },
}

fn put_str(buf: &mut BytesMut, what: &'static str, s: &[u8]) -> Result<(), EncodeError> {
    if s.len() > 65535 {
        return Err(EncodeError::StringTooLong { what, len: s.len() });
    }
    buf.put_u16(s.len() as u16);
    buf.put_slice(s);
    Ok(())
}

fn put_varint(buf: &mut BytesMut, mut n: usize) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if n == 0 {
            break;
        }
    }
}

fn varint_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

const MAX_REMAINING: usize = 268_435_455;

/// Writes the fixed header and the variable part built in `body`.
fn finish(out: &mut BytesMut, first_byte: u8, body: &[u8], payload: &[u8]) -> Result<(), EncodeError> {
    let remaining = body.len() + payload.len();
    if remaining > MAX_REMAINING {
        return Err(EncodeError::PacketTooLarge(remaining));
    }
    out.reserve(1 + varint_len(remaining) + remaining);
    out.put_u8(first_byte);
    put_varint(out, remaining);
    out.put_slice(body);
    out.put_slice(payload);
    Ok(())
}

pub fn encode_connect(out: &mut BytesMut, o: &ConnectOptions<'_>) -> Result<(), EncodeError> {
    let mut b = BytesMut::with_capacity(64);
    put_str(&mut b, "protocol name", b"MQTT")?;
    b.put_u8(if o.protocol == Protocol::V5 { 5 } else { 4 });
    let mut flags = 0x02; // clean session / clean start: unacknowledged publishes are re-sent by us
    if o.username.is_some() {
        flags |= 0x80;
    }
    if o.password.is_some() {
        flags |= 0x40;
    }
    b.put_u8(flags);
    b.put_u16(o.keep_alive_secs);
    if o.protocol == Protocol::V5 {
        let mut props = BytesMut::new();
        props.put_u8(PROP_RECEIVE_MAXIMUM);
        props.put_u16(o.receive_maximum.max(1));
        put_varint(&mut b, props.len());
        b.put_slice(&props);
    }
    put_str(&mut b, "client id", o.client_id.as_bytes())?;
    if let Some(u) = o.username {
        put_str(&mut b, "username", u.as_bytes())?;
    }
    if let Some(p) = o.password {
        put_str(&mut b, "password", p.as_bytes())?;
    }
    finish(out, CONNECT << 4, &b, &[])
}

/// Encodes a PUBLISH; `pkid` is ignored for QoS 0.
pub fn encode_publish(out: &mut BytesMut, protocol: Protocol, p: &Publish, pkid: u16, dup: bool) -> Result<(), EncodeError> {
    let mut first = (PUBLISH << 4) | ((p.qos as u8) << 1);
    if dup && p.qos != QoS::AtMostOnce {
        first |= 0x08;
    }
    if p.retain {
        first |= 0x01;
    }
    let mut b = BytesMut::with_capacity(p.topic.len() + 16);
    put_str(&mut b, "topic", p.topic.as_bytes())?;
    if p.qos != QoS::AtMostOnce {
        b.put_u16(pkid);
    }
    if protocol == Protocol::V5 {
        let mut props = BytesMut::new();
        if let Some(secs) = p.message_expiry_interval {
            props.put_u8(PROP_MESSAGE_EXPIRY);
            props.put_u32(secs);
        }
        if let Some(ct) = &p.content_type {
            props.put_u8(PROP_CONTENT_TYPE);
            put_str(&mut props, "content type", ct.as_bytes())?;
        }
        for (k, v) in &p.user_properties {
            props.put_u8(PROP_USER_PROPERTY);
            put_str(&mut props, "user property key", k.as_bytes())?;
            put_str(&mut props, "user property value", v.as_bytes())?;
        }
        put_varint(&mut b, props.len());
        b.put_slice(&props);
    }
    finish(out, first, &b, &p.payload)
}

pub fn encode_pubrel(out: &mut BytesMut, pkid: u16) {
    // Reason code 0 may be omitted in MQTT 5, which makes the 3.1.1 and 5 encodings the same.
    out.put_slice(&[(PUBREL << 4) | 0x02, 2]);
    out.put_u16(pkid);
}

pub fn encode_pingreq(out: &mut BytesMut) {
    out.put_slice(&[PINGREQ << 4, 0]);
}

pub fn encode_disconnect(out: &mut BytesMut) {
    out.put_slice(&[DISCONNECT << 4, 0]);
}

/// Decodes one packet from the front of `buf` if it is complete; leaves partial packets in place.
pub fn decode(buf: &mut BytesMut, protocol: Protocol, max_size: usize) -> Result<Option<Packet>, DecodeError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let mut remaining = 0usize;
    let mut header_len = 1;
    loop {
        let Some(&byte) = buf.get(header_len) else { return Ok(None) };
        remaining |= ((byte & 0x7F) as usize) << (7 * (header_len - 1));
        header_len += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if header_len > 4 {
            return Err(DecodeError::Malformed("remaining length of a"));
        }
    }
    if remaining > max_size {
        return Err(DecodeError::TooLarge(remaining));
    }
    if buf.len() < header_len + remaining {
        return Ok(None);
    }
    let first = buf[0];
    buf.advance(header_len);
    let body = buf.split_to(remaining).freeze();
    decode_body(first, body, protocol).map(Some)
}

fn decode_body(first: u8, mut b: Bytes, protocol: Protocol) -> Result<Packet, DecodeError> {
    let kind = first >> 4;
    let v5 = protocol == Protocol::V5;
    match kind {
        CONNACK => {
            let name = "CONNACK";
            need(&b, 2, name)?;
            let session_present = b.get_u8() & 0x01 != 0;
            let code = b.get_u8();
            let mut ack = ConnAck { session_present, code, receive_maximum: 65535, maximum_packet_size: None, reason: None };
            if v5 && b.has_remaining() {
                for prop in properties(&mut b, name)? {
                    match prop {
                        Property::U16(PROP_RECEIVE_MAXIMUM, n) => ack.receive_maximum = n.max(1),
                        Property::U32(PROP_MAXIMUM_PACKET_SIZE, n) => ack.maximum_packet_size = Some(n),
                        Property::Str(PROP_REASON_STRING, s) => ack.reason = Some(s),
                        _ => {}
                    }
                }
            }
            Ok(Packet::ConnAck(ack))
        }
        PUBACK | PUBREC | PUBCOMP => {
            let name = match kind {
                PUBACK => "PUBACK",
                PUBREC => "PUBREC",
                _ => "PUBCOMP",
            };
            need(&b, 2, name)?;
            let pkid = b.get_u16();
            let code = if v5 && b.has_remaining() { b.get_u8() } else { 0 };
            if v5 && b.has_remaining() {
                properties(&mut b, name)?;
            }
            Ok(match kind {
                PUBACK => Packet::PubAck { pkid, code },
                PUBREC => Packet::PubRec { pkid, code },
                _ => Packet::PubComp { pkid, code },
            })
        }
        PINGRESP => Ok(Packet::PingResp),
        DISCONNECT => {
            let code = if b.has_remaining() { b.get_u8() } else { 0 };
            let mut reason = None;
            if v5 && b.has_remaining() {
                for prop in properties(&mut b, "DISCONNECT")? {
                    if let Property::Str(PROP_REASON_STRING, s) = prop {
                        reason = Some(s);
                    }
                }
            }
            Ok(Packet::Disconnect { code, reason })
        }
        other => Err(DecodeError::Unexpected(other)),
    }
}

fn need(b: &Bytes, n: usize, name: &'static str) -> Result<(), DecodeError> {
    if b.remaining() < n {
        Err(DecodeError::Malformed(name))
    } else {
        Ok(())
    }
}

enum Property {
    U16(u8, u16),
    U32(u8, u32),
    Str(u8, String),
    Other,
}

fn read_varint(b: &mut Bytes, name: &'static str) -> Result<usize, DecodeError> {
    let mut n = 0usize;
    for i in 0..4 {
        need(b, 1, name)?;
        let byte = b.get_u8();
        n |= ((byte & 0x7F) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err(DecodeError::Malformed(name))
}

fn read_bin(b: &mut Bytes, name: &'static str) -> Result<Bytes, DecodeError> {
    need(b, 2, name)?;
    let len = b.get_u16() as usize;
    need(b, len, name)?;
    Ok(b.split_to(len))
}

/// Reads an MQTT 5 property list, keeping the ones we use.
fn properties(b: &mut Bytes, name: &'static str) -> Result<Vec<Property>, DecodeError> {
    let len = read_varint(b, name)?;
    need(b, len, name)?;
    let mut p = b.split_to(len);
    let mut out = Vec::new();
    while p.has_remaining() {
        let id = p.get_u8();
        out.push(match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => {
                need(&p, 1, name)?;
                p.advance(1);
                Property::Other
            }
            0x13 | 0x21 | 0x22 | 0x23 => {
                need(&p, 2, name)?;
                Property::U16(id, p.get_u16())
            }
            0x02 | 0x11 | 0x18 | 0x27 => {
                need(&p, 4, name)?;
                Property::U32(id, p.get_u32())
            }
            0x0B => {
                read_varint(&mut p, name)?;
                Property::Other
            }
            0x03 | 0x08 | 0x12 | 0x15 | 0x1A | 0x1C | 0x1F => {
                let s = read_bin(&mut p, name)?;
                Property::Str(id, String::from_utf8_lossy(&s).into_owned())
            }
            0x09 | 0x16 => {
                read_bin(&mut p, name)?;
                Property::Other
            }
            0x26 => {
                read_bin(&mut p, name)?;
                read_bin(&mut p, name)?;
                Property::Other
            }
            _ => return Err(DecodeError::Malformed(name)),
        });
    }
    Ok(out)
}

/// Whether an MQTT 5 reason code (or a 3.1.1 CONNACK return code) means failure.
pub fn is_failure(code: u8) -> bool {
    code >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish() -> Publish {
        let mut p = Publish::new("a/b", QoS::AtLeastOnce, Bytes::from_static(b"hello"));
        p.user_properties = vec![("k".into(), "v".into()), ("k".into(), "w".into())];
        p.content_type = Some("text/plain".into());
        p.message_expiry_interval = Some(60);
        p
    }

    #[test]
    fn publish_v311_layout() {
        let mut out = BytesMut::new();
        encode_publish(&mut out, Protocol::V311, &publish(), 7, true).unwrap();
        assert_eq!(&out[..], b"\x3a\x0c\x00\x03a/b\x00\x07hello");
    }

    #[test]
    fn publish_v5_properties() {
        let mut out = BytesMut::new();
        encode_publish(&mut out, Protocol::V5, &publish(), 1, false).unwrap();
        let mut expected = BytesMut::new();
        expected.put_slice(b"\x00\x03a/b\x00\x01");
        let props: &[u8] = b"\x02\x00\x00\x00\x3c\x03\x00\x0atext/plain\x26\x00\x01k\x00\x01v\x26\x00\x01k\x00\x01w";
        expected.put_u8(props.len() as u8);
        expected.put_slice(props);
        expected.put_slice(b"hello");
        assert_eq!(out[0], 0x32);
        assert_eq!(out[1] as usize, expected.len());
        assert_eq!(&out[2..], &expected[..]);
    }

    #[test]
    fn qos0_has_no_packet_id_and_no_dup() {
        let mut out = BytesMut::new();
        let p = Publish::new("t", QoS::AtMostOnce, Bytes::from_static(b"x"));
        encode_publish(&mut out, Protocol::V311, &p, 9, true).unwrap();
        assert_eq!(&out[..], b"\x30\x04\x00\x01tx");
    }

    #[test]
    fn connect_v5_and_v311() {
        let o = ConnectOptions {
            protocol: Protocol::V311,
            client_id: "c",
            keep_alive_secs: 30,
            username: Some("u"),
            password: Some("p"),
            receive_maximum: 10,
        };
        let mut out = BytesMut::new();
        encode_connect(&mut out, &o).unwrap();
        assert_eq!(&out[..], b"\x10\x13\x00\x04MQTT\x04\xc2\x00\x1e\x00\x01c\x00\x01u\x00\x01p");
        let mut out = BytesMut::new();
        encode_connect(&mut out, &ConnectOptions { protocol: Protocol::V5, username: None, password: None, ..o }).unwrap();
        assert_eq!(&out[..], b"\x10\x11\x00\x04MQTT\x05\x02\x00\x1e\x03\x21\x00\x0a\x00\x01c");
    }

    #[test]
    fn decodes_acks_and_waits_for_partial_packets() {
        let mut buf = BytesMut::from(&b"\x40\x02\x00\x05\x50\x03\x00"[..]);
        assert_eq!(decode(&mut buf, Protocol::V5, 1024).unwrap(), Some(Packet::PubAck { pkid: 5, code: 0 }));
        assert_eq!(decode(&mut buf, Protocol::V5, 1024).unwrap(), None);
        buf.put_slice(b"\x06\x10");
        assert_eq!(decode(&mut buf, Protocol::V5, 1024).unwrap(), Some(Packet::PubRec { pkid: 6, code: 0x10 }));
        assert!(buf.is_empty());
        let mut buf = BytesMut::from(&b"\x70\x02\x00\x07\x70\x03\x00\x08\x92\xd0\x00"[..]);
        assert_eq!(decode(&mut buf, Protocol::V311, 1024).unwrap(), Some(Packet::PubComp { pkid: 7, code: 0 }));
        assert_eq!(decode(&mut buf, Protocol::V5, 1024).unwrap(), Some(Packet::PubComp { pkid: 8, code: 0x92 }));
        assert_eq!(decode(&mut buf, Protocol::V5, 1024).unwrap(), Some(Packet::PingResp));
    }

    #[test]
    fn decodes_connack_v5_properties() {
        let mut buf = BytesMut::from(&b"\x20\x0d\x00\x00\x0a\x21\x00\x14\x27\x00\x01\x00\x00\x24\x01"[..]);
        let Some(Packet::ConnAck(ack)) = decode(&mut buf, Protocol::V5, 1024).unwrap() else { panic!() };
        assert_eq!(ack.code, 0);
        assert_eq!(ack.receive_maximum, 20);
        assert_eq!(ack.maximum_packet_size, Some(65536));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b"\x20\x01\x00"[..], b"\x40\x01\x00", b"\x30\x00", b"\x20\x05\x00\x00\x09\x99\x00", b"\x40\xff\xff\xff\xff\x01"] {
            let mut buf = BytesMut::from(bytes);
            assert!(decode(&mut buf, Protocol::V5, 1 << 20).is_err(), "{bytes:?}");
        }
        let mut big = BytesMut::from(&b"\x40\xff\xff\x7f"[..]);
        assert_eq!(decode(&mut big, Protocol::V5, 1024), Err(DecodeError::TooLarge(2_097_151)));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200_000 {
            let len = (next() % 12) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(first) = bytes.first_mut() {
                // Mostly the packet types a broker sends us, so decoding goes deep.
                *first = (*first & 0x0F) | ((2 + next() % 13) as u8) << 4;
            }
            for protocol in [Protocol::V311, Protocol::V5] {
                let mut buf = BytesMut::from(&bytes[..]);
                while let Ok(Some(_)) = decode(&mut buf, protocol, 1 << 20) {}
            }
        }
    }
}
