//! The publisher's session state, independent of sockets: which publishes are outstanding, in
//! which order, with which packet id, and what to write next. Survives reconnects: everything not
//! yet acknowledged is written again (DUP) on the next connection, in the original order.

use super::codec::{self, Packet};
use super::PublishError;
use crate::config::Protocol;
use super::publish::{Publish, QoS};
use bytes::BytesMut;
use std::collections::{BTreeMap, HashMap, VecDeque};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

pub(crate) type Done = oneshot::Sender<Result<(), PublishError>>;

pub(crate) struct Entry {
    pub publish: Publish,
    pub done: Done,
    /// Holds a slot of the sink's window until the publish completes (freed on drop).
    #[expect(dead_code, reason = "held only for its Drop")]
    pub permit: OwnedSemaphorePermit,
}

struct Outstanding {
    entry: Entry,
    pkid: u16,
    /// Written on some connection already: a re-send carries DUP.
    written: bool,
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
    max_packet_size: usize,
}

impl Session {
    pub fn new(protocol: Protocol) -> Session {
        Session {
            protocol,
            next_seq: 0,
            next_pkid: 0,
            outstanding: BTreeMap::new(),
            by_pkid: HashMap::new(),
            unsent: VecDeque::new(),
            on_wire: 0,
            receive_maximum: 65535,
            max_packet_size: usize::MAX,
        }
    }

    pub fn len(&self) -> usize {
        self.outstanding.len()
    }

    /// A new connection is up: everything outstanding is written again, in order.
    pub fn on_connect(&mut self, receive_maximum: u16, max_packet_size: Option<u32>) {
        self.receive_maximum = receive_maximum.max(1) as usize;
        self.max_packet_size = max_packet_size.map_or(usize::MAX, |n| n as usize);
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
        self.outstanding.insert(seq, Outstanding { entry, pkid, written: false, released: false });
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
            let encoded = codec::encode_publish(out, self.protocol, &o.entry.publish, o.pkid, o.written);
            let unsendable = match encoded {
                Err(e) => Some(e.to_string()),
                Ok(()) if out.len() - start > self.max_packet_size => {
                    Some(format!("publish is over the broker's maximum packet size of {} bytes", self.max_packet_size))
                }
                Ok(()) => None,
            };
            if let Some(reason) = unsendable {
                out.truncate(start);
                self.finish(seq, Err(PublishError::Unsendable(reason)));
                continue;
            }
            o.written = true;
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

    fn remove(&mut self, seq: u64) -> Option<Outstanding> {
        let o = self.outstanding.remove(&seq)?;
        if o.pkid != 0 {
            self.by_pkid.remove(&o.pkid);
        }
        Some(o)
    }

    fn finish(&mut self, seq: u64, result: Result<(), PublishError>) {
        if let Some(o) = self.remove(seq) {
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
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    fn entry(topic: &str, qos: QoS) -> (Entry, oneshot::Receiver<Result<(), PublishError>>) {
        let (done, rx) = oneshot::channel();
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        (Entry { publish: Publish::new(topic, qos, Bytes::from_static(b"x")), done, permit }, rx)
    }

    #[test]
    fn qos1_completes_on_puback_and_resends_with_dup_after_reconnect() {
        let mut s = Session::new(Protocol::V311);
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
        let mut s = Session::new(Protocol::V5);
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
        let mut s = Session::new(Protocol::V5);
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
        let mut s = Session::new(Protocol::V5);
        s.on_connect(10, Some(8));
        let (e, mut r) = entry("long/topic", QoS::AtLeastOnce);
        s.push(e);
        let mut out = BytesMut::new();
        s.write_ready(&mut out);
        assert!(out.is_empty());
        assert!(matches!(r.try_recv().unwrap(), Err(PublishError::Unsendable(_))));
    }
}
