//! Deploying bmm servers (not yet implemented).
//!
//! This crate will own the `Deployer` trait and its adapters (in-process, local
//! process, Docker, Coolify). Its work is tracked in the deploy issue; until
//! then it exposes nothing.

#[cfg(feature = "coolify")]
pub mod coolify;
