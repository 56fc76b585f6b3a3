//! Arbitrary PULL bodies through the stored-message decoder: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rocketmq_remoting::fuzzing::messages(data);
});
