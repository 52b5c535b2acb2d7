#![no_main]
//! `cargo fuzz run zone`: see lbdns::fuzzing::zone for what it feeds and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| lbdns::fuzzing::zone(data));
