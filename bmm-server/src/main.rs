//! The `bmm` binary (work in progress).
fn main() {}
