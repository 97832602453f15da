//! Protocol integration tests, one binary (links are slow on two cores).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fuzz_corpus;
mod signature;
