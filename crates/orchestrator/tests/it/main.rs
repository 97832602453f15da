//! Tests of the conformance suite itself: it passes against the real provider, and every broken
//! provider makes exactly the checks that concern its defect fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bench;
mod broken;
mod callback;
mod fair;
mod proxy;
mod real;
mod support;
