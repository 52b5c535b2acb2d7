#![no_main]
//! `cargo fuzz run udp`: see lbdns::fuzzing::udp for what it feeds and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| lbdns::fuzzing::udp(data));
