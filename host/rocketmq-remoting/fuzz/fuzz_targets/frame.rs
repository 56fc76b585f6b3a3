//! Arbitrary bytes from a socket through the frame codec: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rocketmq_remoting::fuzzing::frames(data);
});
