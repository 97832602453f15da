//! `cargo fuzz run --sanitizer none endpoint_bodies` (docs/security.md, Fuzzing).
//! The properties live in `provisio_server::fuzzing::endpoint_bodies`,
//! shared with the test that replays `fuzz/corpus/endpoint_bodies/` under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| provisio_server::fuzzing::endpoint_bodies(data));
