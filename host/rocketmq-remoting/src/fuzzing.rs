//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the seeded property tests below,
//! which run the same checks on stable in every `cargo test`: decoders fed arbitrary or mutated
//! bytes must return errors, never panic, and whatever they accept must be consistent.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

use crate::command::{FrameCodec, RemotingCommand};
use crate::message::decode_messages;

/// Feeds `data` to the frame codec in one piece and again in small chunks; both must agree.
pub fn frames(data: &[u8]) {
    let whole = decode_all(data, data.len().max(1));
    let chunked = decode_all(data, 7);
    assert_eq!(whole, chunked, "chunking changed what the frame codec decoded");
    for command in whole.into_iter().flatten() {
        // Whatever decoded must encode and decode to the same command.
        let mut again = BytesMut::new();
        command.encode(&mut again);
        let reparsed = FrameCodec::new(usize::MAX >> 1).decode(&mut again).expect("re-encoded frame decodes");
        assert_eq!(reparsed.as_ref().map(|c| (&c.ext_fields, c.code, c.opaque, &c.body)), Some((&command.ext_fields, command.code, command.opaque, &command.body)));
    }
}

/// Decodes frames until the input ends or the codec fails (a failure ends a connection).
fn decode_all(data: &[u8], chunk: usize) -> Vec<Option<RemotingCommand>> {
    let mut codec = FrameCodec::new(1 << 20);
    let mut buffer = BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        buffer.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(command)) => out.push(Some(command)),
                Ok(None) => break,
                Err(_) => {
                    out.push(None);
                    return out;
                }
            }
        }
    }
    out
}

/// Decodes `data` as a PULL body; accepted messages must be self-consistent.
pub fn messages(data: &[u8]) {
    if let Ok(messages) = decode_messages(&Bytes::copy_from_slice(data)) {
        let total: usize = messages.iter().map(|m| m.store_size as usize).sum();
        assert_eq!(total, data.len(), "decoded message sizes must cover the body exactly");
        for message in &messages {
            let _ = (message.message_id(), message.tags(), message.keys().count());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::property;
    use crate::message::sys_flag;
    use crate::message::testing::StoredMessage;
    use std::io::Write;

    /// xorshift64*: deterministic, so a failure reproduces from its seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Bit flips, byte overwrites with boundary values, truncation, duplication, insertion.
    fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
        let mut data = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            match rng.below(6) {
                0 if !data.is_empty() => {
                    let i = rng.below(data.len());
                    data[i] ^= 1 << rng.below(8);
                }
                1 if data.len() >= 4 => {
                    let i = rng.below(data.len() - 3);
                    let value: i32 = [0, -1, 1, i32::MAX, i32::MIN, 0x7f, 0xffff, 16][rng.below(8)];
                    data[i..i + 4].copy_from_slice(&value.to_be_bytes());
                }
                2 => data.truncate(rng.below(data.len() + 1)),
                3 if !data.is_empty() => {
                    let start = rng.below(data.len());
                    let end = start + rng.below(data.len() - start);
                    let copy = data[start..end].to_vec();
                    data.extend_from_slice(&copy);
                }
                4 => {
                    let i = rng.below(data.len() + 1);
                    let junk: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
                    data.splice(i..i, junk);
                }
                _ => data.push(rng.next() as u8),
            }
        }
        data
    }

    fn frame_seeds() -> Vec<Vec<u8>> {
        let mut seeds = Vec::new();
        for cmd in [
            RemotingCommand::request(11).with_field("topic", "T").with_field("queueId", 3).with_body(vec![1, 2, 3]),
            RemotingCommand::response_to(&RemotingCommand::request(105), 17, Some("No topic route info".into())),
        ] {
            let mut buf = BytesMut::new();
            cmd.encode(&mut buf);
            seeds.push(buf.to_vec());
        }
        // A binary (ROCKETMQ) header frame.
        let header = [0u8, 0, 0, 1, 0xdf, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 8, 0, 1, b'k', 0, 0, 0, 1, b'v'];
        let mut frame = ((4 + header.len()) as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&(1i32 << 24 | header.len() as i32).to_be_bytes());
        frame.extend_from_slice(&header);
        seeds.push(frame);
        seeds
    }

    fn message_seeds() -> Vec<Vec<u8>> {
        let body = b"hello hello hello hello hello hello".repeat(20);
        let mut plain = StoredMessage::new("orders", &body);
        plain.properties = [(property::TAGS, "a"), (property::KEYS, "k1 k2"), (property::UNIQ_KEY, "AB")].into_iter().collect();
        let mut v2 = plain.clone();
        v2.v2 = true;
        v2.store_host = "[::1]:10911".parse().unwrap();
        let mut zlib = plain.clone();
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&body).unwrap();
        zlib.stored_body = encoder.finish().unwrap();
        zlib.sys_flag = sys_flag::COMPRESSED;
        let mut lz4 = plain.clone();
        let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
        encoder.write_all(&body).unwrap();
        lz4.stored_body = encoder.finish().unwrap();
        lz4.sys_flag = sys_flag::COMPRESSED | sys_flag::COMPRESSION_LZ4;
        let mut zstd = plain.clone();
        zstd.stored_body = ruzstd::encoding::compress_to_vec(&body[..], ruzstd::encoding::CompressionLevel::Fastest);
        zstd.sys_flag = sys_flag::COMPRESSED | sys_flag::COMPRESSION_ZSTD;
        let mut two = plain.encode();
        two.extend(v2.encode());
        vec![plain.encode(), v2.encode(), zlib.encode(), lz4.encode(), zstd.encode(), two]
    }

    const ROUNDS: usize = 20_000;

    /// Writes the seeds as the cargo-fuzz seed corpus (`fuzz/seeds/<target>/`):
    /// `cargo test --release -p rocketmq-remoting --lib write_fuzz_seeds -- --ignored`.
    #[test]
    #[ignore = "writes files; run by hand to refresh the fuzz seeds"]
    fn write_fuzz_seeds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
        for (target, seeds) in [("frame", frame_seeds()), ("message", message_seeds())] {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (index, seed) in seeds.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{index}")), seed).unwrap();
            }
        }
    }

    #[test]
    fn fuzz_frames_random_and_mutated() {
        let seeds = frame_seeds();
        let mut rng = Rng(0x5eed_f4a3_e001);
        for seed in &seeds {
            frames(seed);
            assert!(decode_all(seed, seed.len()).iter().all(Option::is_some), "seed must decode cleanly");
        }
        for round in 0..ROUNDS {
            let data = if round % 4 == 0 {
                (0..rng.below(64)).map(|_| rng.next() as u8).collect()
            } else {
                mutate(&seeds[rng.below(seeds.len())], &mut rng)
            };
            frames(&data);
        }
    }

    #[test]
    fn fuzz_messages_random_and_mutated() {
        let seeds = message_seeds();
        let mut rng = Rng(0x5eed_0bad_cafe);
        for seed in &seeds {
            assert!(decode_messages(&Bytes::from(seed.clone())).is_ok(), "seed must decode cleanly");
        }
        for round in 0..ROUNDS {
            let data = if round % 4 == 0 {
                (0..rng.below(200)).map(|_| rng.next() as u8).collect()
            } else {
                mutate(&seeds[rng.below(seeds.len())], &mut rng)
            };
            messages(&data);
        }
    }
}
