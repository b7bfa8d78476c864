//! bmm-core integration tests: example specs, the schema golden file, robustness.

// A panic in a test is a failed test, not a crash on input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod examples;
mod golden;
mod robustness;

use std::path::{Path, PathBuf};

/// The workspace root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether golden files should be rewritten instead of compared (`BMM_BLESS=1`).
fn bless() -> bool {
    std::env::var_os("BMM_BLESS").is_some_and(|v| v != "0")
}
