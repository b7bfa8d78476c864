//! OAuth 2.1 for MCP servers (not yet implemented).
//!
//! This crate will own the authorization server (an axum `Router` over a
//! `Store` trait) and the resource-server side (a tower layer, protected
//! resource metadata, `WWW-Authenticate` challenges). Its work is tracked in
//! the OAuth issue; until then it exposes nothing.
