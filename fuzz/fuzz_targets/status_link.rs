#![no_main]
//! Arbitrary bytes as a status-page subscriber link token and as a subscribing
//! address: refused or parsed, never a panic, never a forged token accepted.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tocsin_ingest::fuzzing::status_link(data));
