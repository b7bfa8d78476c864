//! Turning a sentence or an OpenAPI document into a checked `ServerSpec`,
//! and a checked spec into a deployable bundle.
//!
//! - [`openapi`] imports an OpenAPI 3.0/3.1 document as one `http` tool per
//!   operation.
//! - [`codegen`] renders a spec into a deploy bundle, install snippets and an
//!   ejected cargo project.
//!
//! The `SpecGenerator` trait, its providers (Anthropic, mock) and the repair
//! loop land next to these modules.

pub mod codegen;
pub mod openapi;
