#![no_main]
//! Arbitrary bytes into the email parser: it must refuse or parse, never panic,
//! and a parsed event keeps the promises checked in tocsin_ingest::fuzzing.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tocsin_ingest::fuzzing::email(data));
