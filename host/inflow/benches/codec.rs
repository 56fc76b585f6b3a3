//! Our MQTT codec against rumqttc's `mqttbytes` (v4 and v5), per publish: encoding a QoS 1 PUBLISH
//! of 256 bytes from the sink's `Publish` (with and without MQTT 5 user properties), and decoding
//! its PUBACK. The rumqttc side includes building its packet type from ours, as the sink would.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use inflow::config::Protocol;
use inflow::sink::codec;
use inflow::sink::{Publish, QoS};
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

fn publish(user_properties: usize) -> Publish {
    let mut p = Publish::new("devices/room1/temp", QoS::AtLeastOnce, Bytes::from(vec![0x5a; 256]));
    p.user_properties = (0..user_properties).map(|i| (format!("key{i}"), format!("value{i}"))).collect();
    p
}

fn rumqttc_v4(p: &Publish, pkid: u16) -> v4::Publish {
    let mut r = v4::Publish::from_bytes(p.topic.clone(), rumqttc::mqttbytes::QoS::AtLeastOnce, p.payload.clone());
    r.pkid = pkid;
    r
}

fn rumqttc_v5(p: &Publish, pkid: u16) -> v5::Publish {
    let properties = v5::PublishProperties {
        user_properties: p.user_properties.clone(),
        content_type: p.content_type.clone(),
        message_expiry_interval: p.message_expiry_interval,
        ..Default::default()
    };
    let has_properties = properties != v5::PublishProperties::default();
    let mut r = v5::Publish::new(
        p.topic.clone(),
        rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        p.payload.clone(),
        has_properties.then_some(properties),
    );
    r.pkid = pkid;
    r
}

fn encode(c: &mut Criterion) {
    let mut out = BytesMut::with_capacity(64 * 1024);
    let cases = [("v311", Protocol::V311, 0), ("v5", Protocol::V5, 0), ("v5_4_user_properties", Protocol::V5, 4)];
    for (name, protocol, props) in cases {
        let p = publish(props);
        c.bench_function(&format!("encode_publish/{name}/inflow"), |b| {
            b.iter(|| {
                out.clear();
                codec::encode_publish(&mut out, protocol, black_box(&p), 7, false).unwrap();
            })
        });
        c.bench_function(&format!("encode_publish/{name}/rumqttc"), |b| {
            b.iter(|| {
                out.clear();
                match protocol {
                    Protocol::V311 => rumqttc_v4(black_box(&p), 7).write(&mut out).unwrap(),
                    Protocol::V5 => rumqttc_v5(black_box(&p), 7).write(&mut out).unwrap(),
                };
            })
        });
    }
}

fn decode(c: &mut Criterion) {
    // PUBACK of packet id 7: 3.1.1 form, and MQTT 5 with reason code 0 and no properties.
    let cases: [(&str, Protocol, &[u8]); 2] = [("v311", Protocol::V311, b"\x40\x02\x00\x07"), ("v5", Protocol::V5, b"\x40\x03\x00\x07\x00")];
    for (name, protocol, wire) in cases {
        let mut buf = BytesMut::with_capacity(64);
        c.bench_function(&format!("decode_puback/{name}/inflow"), |b| {
            b.iter(|| {
                buf.extend_from_slice(black_box(wire));
                black_box(codec::decode(&mut buf, protocol, 1 << 20).unwrap());
            })
        });
        c.bench_function(&format!("decode_puback/{name}/rumqttc"), |b| {
            b.iter(|| {
                buf.extend_from_slice(black_box(wire));
                match protocol {
                    Protocol::V311 => drop(black_box(v4::Packet::read(&mut buf, 1 << 20).unwrap())),
                    Protocol::V5 => drop(black_box(v5::Packet::read(&mut buf, Some(1 << 20)).unwrap())),
                }
            })
        });
    }
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
