//! Cost of the client's hot path on one core: decoding PULL response frames and the stored
//! messages in them (32 messages of 256 B with typical properties, as a busy queue returns).
//!
//! `cargo bench -p rocketmq-remoting --bench decode` prints nanoseconds per message.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rocketmq_remoting::command::FrameCodec;
use rocketmq_remoting::message::testing::StoredMessage;
use rocketmq_remoting::{decode_messages, RemotingCommand};
use tokio_util::codec::Decoder;

const MESSAGES_PER_PULL: usize = 32;

fn pull_body() -> Bytes {
    let mut body = Vec::new();
    for i in 0..MESSAGES_PER_PULL {
        let mut message = StoredMessage::new("bench-topic", &[b'x'; 256]);
        message.queue_offset = i as i64;
        message.properties = [
            ("TAGS", "tagA"),
            ("KEYS", "order-123"),
            ("UNIQ_KEY", "7F0000010A0ECD7FC53F7F9346990000"),
            ("WAIT", "true"),
            ("CLUSTER", "DefaultCluster"),
            ("MIN_OFFSET", "0"),
            ("MAX_OFFSET", "1000000"),
        ]
        .into_iter()
        .collect();
        body.extend(message.encode());
    }
    Bytes::from(body)
}

fn pull_frame(body: &Bytes) -> BytesMut {
    let mut response = RemotingCommand::response_to(&RemotingCommand::request(11), 0, None)
        .with_field("nextBeginOffset", 1032)
        .with_field("minOffset", 0)
        .with_field("maxOffset", 1_000_000)
        .with_field("suggestWhichBrokerId", 0)
        .with_body(body.clone());
    response.opaque = 12345;
    let mut frame = BytesMut::new();
    response.encode(&mut frame);
    frame
}

/// Runs `f` repeatedly for about `budget` and returns nanoseconds per call.
fn time_per_call(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..100 {
        f();
    }
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < budget {
        for _ in 0..100 {
            f();
        }
        calls += 100;
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

fn main() {
    let body = pull_body();
    let frame = pull_frame(&body);
    let budget = Duration::from_secs(2);
    let frame_ns = time_per_call(budget, || {
        let mut input = frame.clone();
        black_box(FrameCodec::default().decode(&mut input).unwrap());
    });
    let messages_ns = time_per_call(budget, || {
        black_box(decode_messages(black_box(&body)).unwrap());
    });
    let per_message = (frame_ns + messages_ns) / MESSAGES_PER_PULL as f64;
    println!("PULL frame (header) decode: {frame_ns:.0} ns per frame of {} bytes", frame.len());
    println!("stored messages decode:     {:.0} ns per message (256 B body, 7 properties)", messages_ns / MESSAGES_PER_PULL as f64);
    println!("total:                      {per_message:.0} ns per message");
}
