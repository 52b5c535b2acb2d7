#![no_main]
//! `cargo fuzz run tcp`: see lbdns::fuzzing::tcp for what it feeds and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| lbdns::fuzzing::tcp(data));
