//! Serving a `ServerSpec` as a live MCP server (not yet implemented).
//!
//! This crate will own the MCP handler over Streamable HTTP, the executors for
//! `http` and `script` tools, the egress policy and the multi-tenant host. Its
//! work is tracked in the runtime issue; until then it exposes nothing.
