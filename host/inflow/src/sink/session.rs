//! The publisher's session state, independent of sockets: which publishes are outstanding, in
//! which order, with which packet id, and what to write next. Survives reconnects: everything not
//! yet acknowledged is written again (DUP) on the next connection, in the original order.
//!
//! It also keeps one publish from holding the connection hostage: a 3.1.1 broker answers a packet
//! over its size limit by closing the connection, and re-sending it would close every next
//! connection too. A publish the broker closed the connection on twice in a row is failed back.

use super::codec::{self, Packet};
use super::publish::{Publish, QoS};
use super::stats::SinkStats;
use super::PublishError;
use crate::config::Protocol;
use bytes::BytesMut;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

pub(crate) type Done = oneshot::Sender<Result<(), PublishError>>;

pub(crate) struct Entry {
    pub publish: Publish,
    pub done: Done,
    /// When the rule handed it over: the start of its publish-to-ack latency.
    pub queued_at: Instant,
    /// Holds a slot of the sink's window until the publish completes (freed on drop).
    #[expect(dead_code, reason = "held only for its Drop")]
    pub permit: OwnedSemaphorePermit,
}

struct Outstanding {
    entry: Entry,
    pkid: u16,
    /// The connection it was last written on (0: never); written before means a re-send carries DUP.
    written_on: u64,
    /// Its encoded PUBLISH, in bytes, once written.
    encoded_len: usize,
    /// QoS 2 after PUBREC: what is owed is a PUBREL, not the PUBLISH.
    released: bool,
}

pub(crate) struct Session {
    protocol: Protocol,
    next_seq: u64,
    next_pkid: u16,
    outstanding: BTreeMap<u64, Outstanding>,
    by_pkid: HashMap<u16, u64>,
    /// Not yet written on the current connection, in order.
    unsent: VecDeque<u64>,
    /// QoS > 0 packets written and not complete: limited by the broker's receive maximum.
    on_wire: usize,
    receive_maximum: usize,
    /// The smaller of `[mqtt] max_packet_bytes` and the broker's announced maximum, and which it is.
    max_packet_size: Option<(usize, &'static str)>,
    configured_max_packet_size: Option<u32>,
    /// Counts the connections; the current one's number.
    connection: u64,
    /// An ack arrived on the current connection.
    progressed: bool,
    /// The publish the last connection loss was blamed on, while no ack has arrived since.
    blamed: Option<u64>,
    stats: Arc<SinkStats>,
}

impl Session {
    /// `max_packet_bytes`: the operator's limit (`[mqtt] max_packet_bytes`), for brokers that cannot announce one.
    pub fn new(protocol: Protocol, max_packet_bytes: Option<u32>, stats: Arc<SinkStats>) -> Session {
        Session {
            protocol,
            next_seq: 0,
            next_pkid: 0,
            outstanding: BTreeMap::new(),
            by_pkid: HashMap::new(),
            unsent: VecDeque::new(),
            on_wire: 0,
            receive_maximum: 65535,
            max_packet_size: None,
            configured_max_packet_size: max_packet_bytes,
            connection: 0,
            progressed: false,
            blamed: None,
            stats,
        }
    }

    pub fn len(&self) -> usize {
        self.outstanding.len()
    }

    /// A new connection is up: everything outstanding is written again, in order.
    pub fn on_connect(&mut self, receive_maximum: u16, max_packet_size: Option<u32>) {
        self.receive_maximum = receive_maximum.max(1) as usize;
        let configured = self.configured_max_packet_size.map(|n| (n as usize, "[mqtt] max_packet_bytes ="));
        let announced = max_packet_size.map(|n| (n as usize, "the broker's announced maximum packet size of"));
        self.max_packet_size = match (configured, announced) {
            (Some(c), Some(a)) => Some(if a.0 < c.0 { a } else { c }),
            (c, a) => c.or(a),
        };
        self.connection += 1;
        self.progressed = false;
        self.on_wire = 0;
        self.unsent = self.outstanding.keys().copied().collect();
    }

    pub fn push(&mut self, entry: Entry) {
        let pkid = if entry.publish.qos == QoS::AtMostOnce { 0 } else { self.allocate_pkid() };
        let seq = self.next_seq;
        self.next_seq += 1;
        if pkid != 0 {
            self.by_pkid.insert(pkid, seq);
        }
        self.outstanding.insert(seq, Outstanding { entry, pkid, written_on: 0, encoded_len: 0, released: false });
        self.unsent.push_back(seq);
    }

    /// The window (at most 65535 outstanding) guarantees a free id exists.
    fn allocate_pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.wrapping_add(1).max(1);
            if !self.by_pkid.contains_key(&self.next_pkid) {
                return self.next_pkid;
            }
        }
    }

    /// Encodes what may be written now into `out`. Returns the QoS 0 publishes written, to be
    /// completed once `out` is flushed to the socket.
    pub fn write_ready(&mut self, out: &mut BytesMut) -> Vec<Done> {
        let mut qos0 = Vec::new();
        while let Some(&seq) = self.unsent.front() {
            let Some(o) = self.outstanding.get_mut(&seq) else {
                self.unsent.pop_front();
                continue;
            };
            let acked = o.entry.publish.qos != QoS::AtMostOnce;
            if acked && self.on_wire >= self.receive_maximum {
                break;
            }
            self.unsent.pop_front();
            if o.released {
                codec::encode_pubrel(out, o.pkid);
                self.on_wire += 1;
                continue;
            }
            let start = out.len();
            let encoded = codec::encode_publish(out, self.protocol, &o.entry.publish, o.pkid, o.written_on != 0);
            let len = out.len() - start;
            let unsendable = match (encoded, self.max_packet_size) {
                (Err(e), _) => Some(e.to_string()),
                (Ok(()), Some((limit, which))) if len > limit => {
                    Some(format!("the publish packet is {len} bytes, over {which} {limit} bytes"))
                }
                (Ok(()), _) => None,
            };
            if let Some(reason) = unsendable {
                out.truncate(start);
                self.finish(seq, Err(PublishError::Unsendable(reason)));
                continue;
            }
            o.written_on = self.connection;
            o.encoded_len = len;
            if acked {
                self.on_wire += 1;
            } else if let Some(o) = self.remove(seq) {
                qos0.push(o.entry.done);
            }
        }
        qos0
    }

    /// Applies an acknowledgement from the broker; may queue a PUBREL to write.
    pub fn on_packet(&mut self, packet: &Packet) {
        let (pkid, code, stage) = match *packet {
            Packet::PubAck { pkid, code } => (pkid, code, QoS::AtLeastOnce),
            Packet::PubRec { pkid, code } => (pkid, code, QoS::ExactlyOnce),
            Packet::PubComp { pkid, code } => (pkid, code, QoS::AtMostOnce),
            _ => return,
        };
        let Some(&seq) = self.by_pkid.get(&pkid) else { return };
        self.progressed = true;
        self.blamed = None;
        self.on_wire = self.on_wire.saturating_sub(1);
        match stage {
            QoS::ExactlyOnce if !codec::is_failure(code) => {
                if let Some(o) = self.outstanding.get_mut(&seq) {
                    o.released = true;
                    self.unsent.push_front(seq);
                }
            }
            // PUBCOMP completes even with "packet id not found": the broker took the message at
            // PUBREC; only its session state was lost in a reconnect.
            QoS::AtMostOnce => self.finish(seq, Ok(())),
            _ if codec::is_failure(code) => self.finish(seq, Err(PublishError::Rejected { code })),
            _ => self.finish(seq, Ok(())),
        }
    }

    /// Whether the broker answered anything on the current connection.
    pub fn progressed(&self) -> bool {
        self.progressed
    }

    /// The current connection ended. If the broker closed it, the oldest publish it has not
    /// answered, written on this connection, is blamed; blamed by two losses in a row with no ack in
    /// between, it is failed back to its rule and the rest go on.
    pub fn on_connection_lost(&mut self, closed_by_broker: bool) {
        let connection = self.connection;
        let suspect = self
            .outstanding
            .iter()
            .find(|(_, o)| !o.released)
            .filter(|(_, o)| closed_by_broker && o.written_on == connection)
            .map(|(&seq, o)| (seq, o.encoded_len));
        match suspect {
            Some((seq, bytes)) if self.blamed == Some(seq) => {
                self.blamed = None;
                self.stats.hostage_publishes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.finish(seq, Err(PublishError::ConnectionClosedOnPublish { bytes }));
            }
            _ => self.blamed = suspect.map(|(seq, _)| seq),
        }
    }

    fn remove(&mut self, seq: u64) -> Option<Outstanding> {
        let o = self.outstanding.remove(&seq)?;
        if o.pkid != 0 {
            self.by_pkid.remove(&o.pkid);
        }
        Some(o)
    }

    fn finish(&mut self, seq: u64, result: Result<(), PublishError>) {
        if let Some(o) = self.remove(seq) {
            if result.is_ok() {
                self.stats.record_ack_latency(o.entry.queued_at.elapsed());
            }
            // The receiver may be gone (its rule stopped); the slot is freed either way.
            let _ = o.entry.done.send(result);
        }
    }

    /// Fails everything outstanding (the sink is closing for good).
    pub fn fail_all(&mut self) {
        let seqs: Vec<u64> = self.outstanding.keys().copied().collect();
        for seq in seqs {
            self.finish(seq, Err(PublishError::Closed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio::sync::Semaphore;

    fn entry(topic: &str, qos: QoS) -> (Entry, oneshot::Receiver<Result<(), PublishError>>) {
        let (done, rx) = oneshot::channel();
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        (Entry { publish: Publish::new(topic, qos, Bytes::from_static(b"x")), done, permit, queued_at: Instant::now() }, rx)
    }

    fn session(protocol: Protocol, max_packet_bytes: Option<u32>) -> Session {
        Session::new(protocol, max_packet_bytes, Arc::new(SinkStats::default()))
    }

    #[test]
    fn qos1_completes_on_puback_and_resends_with_dup_after_reconnect() {
        let mut s = session(Protocol::V311, None);
        s.on_connect(65535, None);
        let (e1, mut r1) = entry("a", QoS::AtLeastOnce);
        let (e2, mut r2) = entry("b", QoS::AtLeastOnce);
        s.push(e1);
        s.push(e2);
        let mut out = BytesMut::new();
        assert!(s.write_ready(&mut out).is_empty());
        assert_eq!(&out[..], b"\x32\x06\x00\x01a\x00\x01x\x32\x06\x00\x01b\x00\x02x");
        s.on_packet(&Packet::PubAck { pkid: 2, code: 0 });
        assert_eq!(r2.try_recv().unwrap(), Ok(()));
        assert!(r1.try_recv().is_err());
        // reconnect: the unacknowledged one goes again, with DUP
        s.on_connect(65535, None);
        let mut out = BytesMut::new();
        s.write_ready(&mut out);
        assert_eq!(&out[..], b"\x3a\x06\x00\x01a\x00\x01x");
        s.on_packet(&Packet::PubAck { pkid: 1, code: 0 });
        assert_eq!(r1.try_recv().unwrap(), Ok(()));
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn qos2_flow_and_receive_maximum() {
        let mut s = session(Protocol::V5, None);
        s.on_connect(1, None);
        let (e1, mut r1) = entry("a", QoS::ExactlyOnce);
        let (e2, _r2) = entry("b", QoS::AtLeastOnce);
        s.push(e1);
        s.push(e2);
        let mut out = BytesMut::new();
        s.write_ready(&mut out);
        assert_eq!(out[0], 0x34, "only one fits the broker's receive maximum of 1");
        assert_eq!(out.len(), 2 + 5 + 1 + 1);
        s.on_packet(&Packet::PubRec { pkid: 1, code: 0 });
        let mut out = BytesMut::new();
        s.write_ready(&mut out);
        assert_eq!(&out[..], b"\x62\x02\x00\x01", "PUBREL before anything else");
        assert!(r1.try_recv().is_err());
        s.on_packet(&Packet::PubComp { pkid: 1, code: 0 });
        assert_eq!(r1.try_recv().unwrap(), Ok(()));
        let mut out = BytesMut::new();
        s.write_ready(&mut out);
        assert_eq!(out[0], 0x32);
    }

    #[test]
    fn rejected_and_qos0() {
        let mut s = session(Protocol::V5, None);
        s.on_connect(10, None);
        let (e1, mut r1) = entry("a", QoS::AtLeastOnce);
        let (e0, mut r0) = entry("z", QoS::AtMostOnce);
        s.push(e1);
        s.push(e0);
        let mut out = BytesMut::new();
        let qos0 = s.write_ready(&mut out);
        assert_eq!(qos0.len(), 1);
        for d in qos0 {
            d.send(Ok(())).unwrap();
        }
        assert_eq!(r0.try_recv().unwrap(), Ok(()));
        s.on_packet(&Packet::PubAck { pkid: 1, code: 0x87 });
        assert_eq!(r1.try_recv().unwrap(), Err(PublishError::Rejected { code: 0x87 }));
    }

    #[test]
    fn over_max_packet_size_is_unsendable() {
        let mut s = session(Protocol::V5, None);
        s.on_connect(10, Some(8));
        let (e, mut r) = entry("long/topic", QoS::AtLeastOnce);
        s.push(e);
        let mut out = BytesMut::new();
        s.write_ready(&mut out);
        assert!(out.is_empty());
        assert!(matches!(r.try_recv().unwrap(), Err(PublishError::Unsendable(_))));
    }

    /// Writes what is ready on a fresh connection and returns the bytes.
    fn reconnect_and_write(s: &mut Session) -> BytesMut {
        s.on_connect(65535, None);
        let mut out = BytesMut::new();
        s.write_ready(&mut out);
        out
    }

    #[test]
    fn a_publish_the_broker_closes_on_twice_in_a_row_fails_back_and_the_rest_go_on() {
        let mut s = session(Protocol::V311, None);
        let (before, mut r_before) = entry("before", QoS::AtLeastOnce);
        let (hostage, mut r_hostage) = entry("hostage", QoS::AtLeastOnce);
        let (after, mut r_after) = entry("after", QoS::AtLeastOnce);
        s.push(before);
        s.push(hostage);
        s.push(after);
        reconnect_and_write(&mut s);
        s.on_packet(&Packet::PubAck { pkid: 1, code: 0 });
        assert_eq!(r_before.try_recv().unwrap(), Ok(()));
        s.on_connection_lost(true);
        assert!(r_hostage.try_recv().is_err(), "one close is not enough: brokers restart");
        reconnect_and_write(&mut s);
        assert!(!s.progressed());
        s.on_connection_lost(true);
        assert_eq!(r_hostage.try_recv().unwrap(), Err(PublishError::ConnectionClosedOnPublish { bytes: 2 + 2 + 7 + 2 + 1 }));
        let out = reconnect_and_write(&mut s);
        assert_eq!(&out[..], b"\x3a\x0a\x00\x05after\x00\x03x", "only the rest is re-sent");
        s.on_packet(&Packet::PubAck { pkid: 3, code: 0 });
        assert_eq!(r_after.try_recv().unwrap(), Ok(()));
        assert_eq!(s.stats.hostage_publishes.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn an_ack_between_the_closes_or_a_close_not_by_the_broker_blames_nobody() {
        let mut s = session(Protocol::V311, None);
        let (first, mut r_first) = entry("first", QoS::AtLeastOnce);
        let (second, _r_second) = entry("second", QoS::AtLeastOnce);
        s.push(first);
        s.push(second);
        reconnect_and_write(&mut s);
        s.on_connection_lost(true);
        reconnect_and_write(&mut s);
        s.on_packet(&Packet::PubAck { pkid: 2, code: 0 });
        assert!(s.progressed());
        s.on_connection_lost(true);
        assert!(r_first.try_recv().is_err(), "the broker answered in between");
        reconnect_and_write(&mut s);
        s.on_connection_lost(false);
        reconnect_and_write(&mut s);
        s.on_connection_lost(true);
        assert!(r_first.try_recv().is_err(), "a keep-alive timeout is not the broker closing on it");
        // Queued but not written on the connection that closed: not to blame.
        s.on_connect(65535, None);
        s.on_connection_lost(true);
        assert!(r_first.try_recv().is_err());
    }

    #[test]
    fn max_packet_bytes_refuses_before_sending_and_the_smaller_limit_wins() {
        let mut s = session(Protocol::V5, Some(10));
        s.on_connect(10, Some(100));
        let (e, mut r) = entry("long/topic", QoS::AtLeastOnce);
        s.push(e);
        let mut out = BytesMut::new();
        s.write_ready(&mut out);
        assert!(out.is_empty());
        let Err(PublishError::Unsendable(why)) = r.try_recv().unwrap() else { panic!() };
        assert_eq!(why, "the publish packet is 18 bytes, over [mqtt] max_packet_bytes = 10 bytes");
        s.on_connect(10, Some(8));
        let (e, mut r) = entry("long/topic", QoS::AtLeastOnce);
        s.push(e);
        s.write_ready(&mut out);
        let Err(PublishError::Unsendable(why)) = r.try_recv().unwrap() else { panic!() };
        assert!(why.contains("the broker's announced maximum packet size of 8 bytes"), "{why}");
    }
}
