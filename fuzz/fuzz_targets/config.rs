#![no_main]
//! `cargo fuzz run config`: see lbdns::fuzzing::config for what it feeds and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| lbdns::fuzzing::config(data));
