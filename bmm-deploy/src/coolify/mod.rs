//! Deploying to Coolify through its REST API (feature `coolify`).
//!
//! [`CoolifyClient`] is a typed client of the few endpoints bmm needs;
//! the fake in [`fake`] (feature `coolify-fake`) checks a client against
//! Coolify's published OpenAPI document.

mod client;
#[cfg(feature = "coolify-fake")]
pub mod fake;

pub use client::{
    ApiError, Application, ClientOptions, CoolifyClient, CreateDockerImageApplication, EnvVar,
    ImageRef, NewEnvVar, QueuedDeployment, UpdateApplication,
};
