//! End-to-end tests: `bmm run` as a child process, a local upstream, and real
//! MCP clients (the Python `mcp` package) driving it.

// A panic in a test is a failed test, not a crash on input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;
mod deploy_coolify;
mod deploy_docker;
mod deploy_process;
mod deploy_support;
mod generate_serve;
mod harness;
mod hosts;
mod oauth;
mod oauth_external;
mod python;
mod run_dir;
