//! Generating a `ServerSpec` from a prompt or an OpenAPI document (not yet implemented).
//!
//! This crate will own the `SpecGenerator` trait, its providers (Anthropic,
//! mock, OpenAPI importer), the repair loop and codegen. Its work is tracked in
//! the generator issue; until then it exposes nothing.
