//! Stored messages as brokers return them in PULL bodies (`MessageDecoder`'s layout):
//! V1 and V2 magic, IPv4/IPv6 hosts, zlib / LZ4 / ZSTD bodies, `k\x01v\x02` properties.
//! Malformed bytes give [`Error::Decode`], never a panic.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{Buf, Bytes};

use crate::error::Error;

pub const MAGIC_V1: i32 = -626843481;
/// 5.x brokers write V2 for topics longer than 127 bytes: the topic length becomes an i16.
pub const MAGIC_V2: i32 = -626843477;

/// `MessageSysFlag` bits.
pub mod sys_flag {
    pub const COMPRESSED: i32 = 0x1;
    pub const MULTI_TAGS: i32 = 0x2;
    pub const BORN_HOST_V6: i32 = 0x10;
    pub const STORE_HOST_V6: i32 = 0x20;
    pub const COMPRESSION_TYPE_MASK: i32 = 0x700;
    pub const COMPRESSION_LZ4: i32 = 0x100;
    pub const COMPRESSION_ZSTD: i32 = 0x200;
    pub const COMPRESSION_ZLIB: i32 = 0x300;
}

/// Well-known property names (`MessageConst`).
pub mod property {
    pub const TAGS: &str = "TAGS";
    pub const KEYS: &str = "KEYS";
    pub const UNIQ_KEY: &str = "UNIQ_KEY";
    pub const WAIT_STORE_MSG_OK: &str = "WAIT";
    pub const DELAY_TIME_LEVEL: &str = "DELAY";
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    pub const NAME_VALUE_SEPARATOR: char = '\u{1}';
    pub const PROPERTY_SEPARATOR: char = '\u{2}';
}

/// A decompressed body larger than this is refused (protects against decompression bombs;
/// RocketMQ's own limit on a message is 4 MiB by default).
pub const MAX_DECOMPRESSED_BODY: usize = 128 * 1024 * 1024;

/// Message properties in wire order. Lookups return the last value of a name, like Java's map.
///
/// Stored as the wire string (`k\x01v\x02…`) plus the positions of names and values, so decoding
/// a message costs two allocations however many properties it has, and the wire form is free.
#[derive(Clone, Default)]
pub struct Properties {
    text: String,
    /// (name start, name end, value start, value end) byte offsets into `text`.
    entries: Vec<(u32, u32, u32, u32)>,
}

impl Properties {
    pub fn new() -> Self {
        Properties::default()
    }

    fn entry(&self, &(name_start, name_end, value_start, value_end): &(u32, u32, u32, u32)) -> (&str, &str) {
        (&self.text[name_start as usize..name_end as usize], &self.text[value_start as usize..value_end as usize])
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Sets `name` (replacing an earlier value, keeping its position).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        if self.get(&name).is_some() {
            let rebuilt: Vec<(String, String)> = self
                .iter()
                .map(|(k, v)| (k.to_string(), if k == name { value.clone() } else { v.to_string() }))
                .collect();
            *self = Properties::new();
            rebuilt.into_iter().for_each(|(k, v)| self.push(&k, &v));
        } else {
            self.push(&name, &value);
        }
    }

    fn push(&mut self, name: &str, value: &str) {
        // 5.x writers leave out the last separator (4.x ones do not).
        if !self.text.is_empty() && !self.text.ends_with(property::PROPERTY_SEPARATOR) {
            self.text.push(property::PROPERTY_SEPARATOR);
        }
        let name_start = self.text.len();
        self.text.push_str(name);
        let name_end = self.text.len();
        self.text.push(property::NAME_VALUE_SEPARATOR);
        self.text.push_str(value);
        let value_end = self.text.len();
        self.text.push(property::PROPERTY_SEPARATOR);
        self.entries.push((name_start as u32, name_end as u32, (name_end + 1) as u32, value_end as u32));
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        let removed = self.get(name)?.to_string();
        let kept: Vec<(String, String)> =
            self.iter().filter(|(k, _)| *k != name).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        *self = Properties::new();
        kept.into_iter().for_each(|(k, v)| self.push(&k, &v));
        Some(removed)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|entry| self.entry(entry))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Parses `k\x01v\x02k\x01v\x02`; items without a separator are skipped, as Java does.
    pub fn parse(text: &str) -> Properties {
        let mut entries = Vec::with_capacity(8);
        let mut item_start = 0;
        for item in text.split(property::PROPERTY_SEPARATOR) {
            if let Some(separator) = item.find(property::NAME_VALUE_SEPARATOR) {
                let name_end = item_start + separator;
                entries.push((item_start as u32, name_end as u32, (name_end + 1) as u32, (item_start + item.len()) as u32));
            }
            item_start += item.len() + 1;
        }
        Properties { text: text.to_string(), entries }
    }

    /// The wire form `k\x01v\x02…` (Java's `messageProperties2String`): as parsed, or as built.
    /// Readers split it the way Java does: at `\x02`, then each item at its first `\x01`. The last
    /// `\x02` may be missing: 5.x writers leave it out.
    pub fn wire(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Properties {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Properties {}

impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Properties {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut properties = Properties::new();
        for (k, v) in iter {
            properties.insert(k, v);
        }
        properties
    }
}

/// A stored message with its queue position, hosts and (decompressed) body.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageExt {
    pub topic: String,
    /// Set by whoever pulled it (the decoder leaves it empty).
    pub broker_name: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub commit_log_offset: i64,
    pub store_size: i32,
    pub body_crc: i32,
    pub flag: i32,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub store_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: Bytes,
    pub properties: Properties,
}

impl MessageExt {
    pub fn tags(&self) -> Option<&str> {
        self.properties.get(property::TAGS)
    }

    /// Keys are stored space-separated in `KEYS`.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.properties.get(property::KEYS).unwrap_or("").split(' ').filter(|k| !k.is_empty())
    }

    /// The producer-assigned id (`UNIQ_KEY`), if any.
    pub fn uniq_key(&self) -> Option<&str> {
        self.properties.get(property::UNIQ_KEY)
    }

    /// What users see as the message id: `UNIQ_KEY`, else the offset message id.
    pub fn message_id(&self) -> String {
        match self.uniq_key() {
            Some(id) => id.to_string(),
            None => self.offset_msg_id(),
        }
    }

    /// Store host IP + port + commit-log offset, upper-case hex (`MessageDecoder.createMessageId`).
    pub fn offset_msg_id(&self) -> String {
        let mut raw = Vec::with_capacity(28);
        match self.store_host.ip() {
            IpAddr::V4(ip) => raw.extend_from_slice(&ip.octets()),
            IpAddr::V6(ip) => raw.extend_from_slice(&ip.octets()),
        }
        raw.extend_from_slice(&(self.store_host.port() as i32).to_be_bytes());
        raw.extend_from_slice(&self.commit_log_offset.to_be_bytes());
        hex_upper(&raw)
    }
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 0xf) as usize] as char);
    }
    out
}

/// Decodes every message of a PULL response body.
pub fn decode_messages(body: &Bytes) -> Result<Vec<MessageExt>, Error> {
    let mut messages = Vec::new();
    let mut offset = 0;
    while offset < body.len() {
        let message = body.slice(offset..);
        if message.len() < 4 {
            return Err(Error::Decode(format!("{} trailing bytes after message {}", message.len(), messages.len())));
        }
        let size = i32::from_be_bytes([message[0], message[1], message[2], message[3]]);
        if size < 4 || size as usize > message.len() {
            return Err(Error::Decode(format!(
                "message {} declares {size} bytes but {} remain",
                messages.len(),
                message.len()
            )));
        }
        messages.push(decode_message(&message.slice(..size as usize))?);
        offset += size as usize;
    }
    Ok(messages)
}

/// Decodes one stored message (`data` holds exactly or at least that message).
pub fn decode_message(data: &Bytes) -> Result<MessageExt, Error> {
    let mut r = Reader { data, pos: 0 };
    let store_size = r.i32("totalSize")?;
    let magic = r.i32("magicCode")?;
    let v2 = match magic {
        MAGIC_V1 => false,
        MAGIC_V2 => true,
        other => return Err(Error::Decode(format!("unknown message magic code {other:#x}"))),
    };
    let body_crc = r.i32("bodyCRC")?;
    let queue_id = r.i32("queueId")?;
    let flag = r.i32("flag")?;
    let queue_offset = r.i64("queueOffset")?;
    let commit_log_offset = r.i64("physicalOffset")?;
    let sys_flag = r.i32("sysFlag")?;
    let born_timestamp = r.i64("bornTimestamp")?;
    let born_host = r.host(sys_flag & sys_flag::BORN_HOST_V6 != 0, "bornHost")?;
    let store_timestamp = r.i64("storeTimestamp")?;
    let store_host = r.host(sys_flag & sys_flag::STORE_HOST_V6 != 0, "storeHost")?;
    let reconsume_times = r.i32("reconsumeTimes")?;
    let prepared_transaction_offset = r.i64("preparedTransactionOffset")?;
    let body_len = r.i32("bodyLength")?;
    let raw_body = r.bytes(length(body_len, "body")?, "body")?;
    let body = if sys_flag & sys_flag::COMPRESSED != 0 { decompress(&raw_body, sys_flag)? } else { raw_body };
    let topic_len = if v2 { r.u16("topicLength")? as usize } else { r.u8("topicLength")? as usize };
    let topic = String::from_utf8_lossy(&r.bytes(topic_len, "topic")?).into_owned();
    let properties = match r.remaining() {
        0 => Properties::new(), // very old layouts may end here
        _ => {
            let len = r.u16("propertiesLength")? as usize;
            Properties::parse(&String::from_utf8_lossy(&r.bytes(len, "properties")?))
        }
    };
    Ok(MessageExt {
        topic,
        broker_name: String::new(),
        queue_id,
        queue_offset,
        commit_log_offset,
        store_size,
        body_crc,
        flag,
        sys_flag,
        born_timestamp,
        store_timestamp,
        born_host,
        store_host,
        reconsume_times,
        prepared_transaction_offset,
        body,
        properties,
    })
}

fn length(value: i32, what: &str) -> Result<usize, Error> {
    usize::try_from(value).map_err(|_| Error::Decode(format!("negative {what} length {value}")))
}

/// Decompresses a body per the sysFlag's compression type (0 means zlib, for old producers).
pub fn decompress(data: &[u8], sys_flag: i32) -> Result<Bytes, Error> {
    let limit = MAX_DECOMPRESSED_BODY as u64 + 1;
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(1 << 20));
    let result = match sys_flag & sys_flag::COMPRESSION_TYPE_MASK {
        0 | sys_flag::COMPRESSION_ZLIB => {
            flate2::read::ZlibDecoder::new(data).take(limit).read_to_end(&mut out).map(|_| "zlib")
        }
        sys_flag::COMPRESSION_LZ4 => {
            lz4_flex::frame::FrameDecoder::new(data).take(limit).read_to_end(&mut out).map(|_| "LZ4")
        }
        sys_flag::COMPRESSION_ZSTD => ruzstd::decoding::StreamingDecoder::new(data)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
            .and_then(|decoder| decoder.take(limit).read_to_end(&mut out))
            .map(|_| "ZSTD"),
        other => return Err(Error::Decode(format!("unknown compression type {other:#x} in sysFlag {sys_flag:#x}"))),
    };
    match result {
        Err(e) => Err(Error::Decode(format!("compressed body (sysFlag {sys_flag:#x}) is corrupt: {e}"))),
        Ok(_) if out.len() > MAX_DECOMPRESSED_BODY => {
            Err(Error::Decode(format!("decompressed body exceeds {MAX_DECOMPRESSED_BODY} bytes")))
        }
        Ok(_) => Ok(Bytes::from(out)),
    }
}

struct Reader<'a> {
    data: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], Error> {
        if self.remaining() < n {
            return Err(Error::Decode(format!(
                "message truncated in {what}: needs {n} bytes at offset {}, {} left",
                self.pos,
                self.remaining()
            )));
        }
        let slice = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn bytes(&mut self, n: usize, what: &str) -> Result<Bytes, Error> {
        self.take(n, what)?;
        Ok(self.data.slice(self.pos - n..self.pos))
    }

    fn u8(&mut self, what: &str) -> Result<u8, Error> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, Error> {
        Ok(self.take(2, what)?.get_u16())
    }

    fn i32(&mut self, what: &str) -> Result<i32, Error> {
        Ok(self.take(4, what)?.get_i32())
    }

    fn i64(&mut self, what: &str) -> Result<i64, Error> {
        Ok(self.take(8, what)?.get_i64())
    }

    fn host(&mut self, v6: bool, what: &str) -> Result<SocketAddr, Error> {
        let ip = if v6 {
            let octets: [u8; 16] = self.take(16, what)?.try_into().expect("took 16 bytes");
            IpAddr::V6(Ipv6Addr::from(octets))
        } else {
            let octets: [u8; 4] = self.take(4, what)?.try_into().expect("took 4 bytes");
            IpAddr::V4(Ipv4Addr::from(octets))
        };
        let port = self.i32(what)?;
        // Ports are written as i32; keep the low 16 bits rather than failing on odd values.
        Ok(SocketAddr::new(ip, port as u16))
    }
}

/// Encoding of the stored layout, for tests, fuzz seeds and benchmarks of consumers.
pub mod testing {
    use super::*;
    use bytes::BufMut;

    /// Builds stored-message bytes like a broker would return them.
    #[derive(Debug, Clone)]
    pub struct StoredMessage {
        pub v2: bool,
        pub topic: String,
        pub queue_id: i32,
        pub queue_offset: i64,
        pub commit_log_offset: i64,
        pub sys_flag: i32,
        pub born_timestamp: i64,
        pub store_timestamp: i64,
        pub born_host: SocketAddr,
        pub store_host: SocketAddr,
        pub reconsume_times: i32,
        /// Written as is: compress it yourself and set the sysFlag bits.
        pub stored_body: Vec<u8>,
        pub properties: Properties,
    }

    impl StoredMessage {
        pub fn new(topic: &str, body: &[u8]) -> Self {
            let local = SocketAddr::from(([127, 0, 0, 1], 10911));
            StoredMessage {
                v2: false,
                topic: topic.to_string(),
                queue_id: 0,
                queue_offset: 0,
                commit_log_offset: 0,
                sys_flag: 0,
                born_timestamp: 1_700_000_000_000,
                store_timestamp: 1_700_000_000_001,
                born_host: SocketAddr::from(([127, 0, 0, 1], 50000)),
                store_host: local,
                reconsume_times: 0,
                stored_body: body.to_vec(),
                properties: Properties::new(),
            }
        }

        pub fn encode(&self) -> Vec<u8> {
            let mut sys_flag = self.sys_flag & !(sys_flag::BORN_HOST_V6 | sys_flag::STORE_HOST_V6);
            if self.born_host.is_ipv6() {
                sys_flag |= sys_flag::BORN_HOST_V6;
            }
            if self.store_host.is_ipv6() {
                sys_flag |= sys_flag::STORE_HOST_V6;
            }
            let properties = self.properties.wire();
            let mut out = Vec::new();
            out.put_i32(0); // patched below
            out.put_i32(if self.v2 { MAGIC_V2 } else { MAGIC_V1 });
            out.put_i32(0); // body CRC: not checked by consumers
            out.put_i32(self.queue_id);
            out.put_i32(0);
            out.put_i64(self.queue_offset);
            out.put_i64(self.commit_log_offset);
            out.put_i32(sys_flag);
            out.put_i64(self.born_timestamp);
            put_host(&mut out, self.born_host);
            out.put_i64(self.store_timestamp);
            put_host(&mut out, self.store_host);
            out.put_i32(self.reconsume_times);
            out.put_i64(0);
            out.put_i32(self.stored_body.len() as i32);
            out.put_slice(&self.stored_body);
            if self.v2 {
                out.put_u16(self.topic.len() as u16);
            } else {
                out.put_u8(self.topic.len() as u8);
            }
            out.put_slice(self.topic.as_bytes());
            out.put_u16(properties.len() as u16);
            out.put_slice(properties.as_bytes());
            let size = out.len() as i32;
            out[..4].copy_from_slice(&size.to_be_bytes());
            out
        }
    }

    fn put_host(out: &mut Vec<u8>, host: SocketAddr) {
        match host.ip() {
            IpAddr::V4(ip) => out.put_slice(&ip.octets()),
            IpAddr::V6(ip) => out.put_slice(&ip.octets()),
        }
        out.put_i32(host.port() as i32);
    }
}

#[cfg(test)]
mod tests {
    use super::testing::StoredMessage;
    use super::*;
    use std::io::Write;

    fn sample() -> StoredMessage {
        let mut m = StoredMessage::new("orders", b"hello");
        m.queue_id = 3;
        m.queue_offset = 42;
        m.commit_log_offset = 0x1234;
        m.reconsume_times = 2;
        m.properties = [("TAGS", "tagA"), ("KEYS", "k1 k2"), ("UNIQ_KEY", "ABCDEF"), ("color", "blue")]
            .into_iter()
            .collect();
        m
    }

    #[test]
    fn decodes_v1_ipv4() {
        let bytes = Bytes::from(sample().encode());
        let msg = decode_message(&bytes).unwrap();
        assert_eq!(msg.topic, "orders");
        assert_eq!((msg.queue_id, msg.queue_offset, msg.commit_log_offset), (3, 42, 0x1234));
        assert_eq!(msg.reconsume_times, 2);
        assert_eq!(&msg.body[..], b"hello");
        assert_eq!(msg.tags(), Some("tagA"));
        assert_eq!(msg.keys().collect::<Vec<_>>(), ["k1", "k2"]);
        assert_eq!(msg.message_id(), "ABCDEF");
        assert_eq!(msg.properties.get("color"), Some("blue"));
        assert_eq!(msg.born_host, "127.0.0.1:50000".parse().unwrap());
        assert_eq!(msg.store_size as usize, bytes.len());
    }

    #[test]
    fn decodes_v2_with_long_topic_and_ipv6_hosts() {
        let mut m = sample();
        m.v2 = true;
        m.topic = "t".repeat(300);
        m.born_host = "[::1]:40000".parse().unwrap();
        m.store_host = "[fe80::1]:10911".parse().unwrap();
        let msg = decode_message(&Bytes::from(m.encode())).unwrap();
        assert_eq!(msg.topic.len(), 300);
        assert_eq!(msg.born_host, m.born_host);
        assert_eq!(msg.store_host, m.store_host);
        assert!(msg.sys_flag & sys_flag::STORE_HOST_V6 != 0);
        assert_eq!(msg.offset_msg_id().len(), 56);
    }

    #[test]
    fn offset_message_id_matches_java_layout() {
        let mut m = sample();
        m.properties = Properties::new();
        m.store_host = "10.0.0.1:10911".parse().unwrap();
        m.commit_log_offset = 1;
        let msg = decode_message(&Bytes::from(m.encode())).unwrap();
        assert_eq!(msg.message_id(), "0A00000100002A9F0000000000000001");
    }

    fn round_trip_compressed(sys_flag: i32, compressed: Vec<u8>, original: &[u8]) {
        let mut m = sample();
        m.sys_flag = sys_flag;
        m.stored_body = compressed;
        let msg = decode_message(&Bytes::from(m.encode())).unwrap();
        assert_eq!(&msg.body[..], original);
    }

    fn big_body() -> Vec<u8> {
        (0..10_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect()
    }

    #[test]
    fn decodes_zlib_bodies() {
        let body = big_body();
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(5));
        enc.write_all(&body).unwrap();
        let compressed = enc.finish().unwrap();
        round_trip_compressed(sys_flag::COMPRESSED, compressed.clone(), &body);
        round_trip_compressed(sys_flag::COMPRESSED | sys_flag::COMPRESSION_ZLIB, compressed, &body);
    }

    #[test]
    fn decodes_lz4_frame_bodies() {
        let body = big_body();
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(&body).unwrap();
        round_trip_compressed(sys_flag::COMPRESSED | sys_flag::COMPRESSION_LZ4, enc.finish().unwrap(), &body);
    }

    #[test]
    fn decodes_zstd_bodies() {
        let body = big_body();
        let compressed =
            ruzstd::encoding::compress_to_vec(&body[..], ruzstd::encoding::CompressionLevel::Fastest);
        round_trip_compressed(sys_flag::COMPRESSED | sys_flag::COMPRESSION_ZSTD, compressed, &body);
    }

    #[test]
    fn corrupt_compressed_body_is_an_error() {
        let mut m = sample();
        m.sys_flag = sys_flag::COMPRESSED;
        m.stored_body = b"definitely not zlib".to_vec();
        assert!(matches!(decode_message(&Bytes::from(m.encode())), Err(Error::Decode(_))));
    }

    #[test]
    fn decodes_many_messages_and_rejects_truncation() {
        let mut all = Vec::new();
        for i in 0..5 {
            let mut m = sample();
            m.queue_offset = i;
            all.extend(m.encode());
        }
        let messages = decode_messages(&Bytes::from(all.clone())).unwrap();
        assert_eq!(messages.iter().map(|m| m.queue_offset).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        for cut in [1, 3, 10, all.len() - 1] {
            assert!(decode_messages(&Bytes::from(all[..cut].to_vec())).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn unknown_magic_is_an_error() {
        let mut bytes = sample().encode();
        bytes[4..8].copy_from_slice(&0i32.to_be_bytes());
        assert!(decode_message(&Bytes::from(bytes)).is_err());
    }

    #[test]
    fn properties_parse_and_serialize() {
        let p = Properties::parse("a\u{1}1\u{2}junk\u{2}b\u{1}x\u{1}y\u{2}é\u{1}ü\u{2}\u{1}\u{2}c\u{1}3");
        assert_eq!(p.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "x\u{1}y"), ("é", "ü"), ("", ""), ("c", "3")]);
        assert_eq!(Properties::parse(p.wire()), p);
        assert_eq!(p.get("é"), Some("ü"));
        assert!(Properties::parse("").is_empty());
    }

    #[test]
    fn properties_added_to_a_5x_wire_form_without_the_last_separator_stay_apart() {
        let mut p = Properties::parse("a\u{1}1\u{2}b\u{1}2");
        p.insert("c", "3");
        assert_eq!(p.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2"), ("c", "3")]);
        assert_eq!(Properties::parse(p.wire()), p);
    }

    #[test]
    fn properties_insert_replace_remove_keep_order() {
        let mut p = Properties::parse("a\u{1}1\u{2}b\u{1}2\u{2}a\u{1}3\u{2}");
        assert_eq!(p.get("a"), Some("3"), "the last value wins, like Java's map");
        p.insert("b", "two");
        p.insert("c", "4");
        assert_eq!(p.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "two"), ("a", "3"), ("c", "4")]);
        assert_eq!(p.remove("a"), Some("3".to_string()));
        assert_eq!(p.iter().collect::<Vec<_>>(), [("b", "two"), ("c", "4")]);
        assert_eq!(p.remove("zzz"), None);
        assert_eq!(format!("{p:?}"), r#"{"b": "two", "c": "4"}"#);
        assert_eq!(p.wire(), "b\u{1}two\u{2}c\u{1}4\u{2}", "built properties keep the wire form");
    }
}
