//! `cargo fuzz run --sanitizer none catalog_loader` (docs/security.md, Fuzzing).
//! The properties live in `provisio_server::fuzzing::catalog_loader`,
//! shared with the test that replays `fuzz/corpus/catalog_loader/` under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| provisio_server::fuzzing::catalog_loader(data));
