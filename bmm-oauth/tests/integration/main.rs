//! Integration tests of bmm-oauth: one binary driving the real routers.

// Helpers outside `#[test]` functions panic on purpose: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod flows;
mod negative;
mod verifier;
