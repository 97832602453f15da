//! `cargo fuzz run --sanitizer none signature_header` (docs/security.md, Fuzzing).
//! The properties live in `provisio_protocol::fuzz_checks::signature_header`,
//! shared with the test that replays `fuzz/corpus/signature_header/` under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| provisio_protocol::fuzz_checks::signature_header(data));
