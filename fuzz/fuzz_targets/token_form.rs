//! `cargo fuzz run --sanitizer none token_form` (docs/security.md, Fuzzing).
//! The properties live in `provisio_server::fuzzing::token_form`,
//! shared with the test that replays `fuzz/corpus/token_form/` under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| provisio_server::fuzzing::token_form(data));
