//! Deploying to Coolify through its REST API (feature `coolify`).
//!
//! [`CoolifyDeployer`] runs each server as one Coolify application created
//! from a docker image that was built and pushed beforehand
//! (`POST /applications/dockerimage`). The spec reaches the container as a
//! file Coolify mounts ([`CoolifyConfig::spec_path`], `/server.json` by
//! default); each secret as an environment variable `BMM_SECRET_<NAME>`,
//! which is what `bmm run` reads. A deploy then asks Coolify to deploy
//! (`POST /deploy`), follows the deployment (`GET /deployments/{uuid}`) and
//! waits for the application to report `running:healthy`. Then, as the
//! other targets do, it checks the server from where bmm runs (`/healthz`
//! and an MCP `tools/list` at `{domain}/mcp/{slug}`) unless
//! [`CoolifyConfig::probe`] is off.
//!
//! | call | Coolify API |
//! |---|---|
//! | `deploy` (new server) | `GET /applications?tag=bmm-{slug}`, `POST /applications/dockerimage`, `GET`/`POST /applications/{uuid}/storages`, `PATCH /applications/{uuid}/envs/bulk`, `POST /deploy`, `GET /deployments/{uuid}`, `GET /applications/{uuid}`, `GET /applications/{uuid}/envs` |
//! | `deploy` (new version) | as above, with `PATCH /applications/{uuid}` and `PATCH /applications/{uuid}/storages`; on failure the previous image, description and spec are put back (and redeployed when the new container had already taken over) |
//! | `status` | `GET /applications?tag=bmm-{slug}` |
//! | `logs` | `GET /applications/{uuid}/logs?lines=1000`, polled when following |
//! | `stop` | `POST /applications/{uuid}/stop` |
//! | `remove` | `DELETE /applications/{uuid}` (configuration, volumes and networks too) |
//! | `list`, `reconcile` | `GET /applications?tag=bmm`, `DELETE /applications/{uuid}` |
//!
//! Applications bmm made are named `bmm-{slug}`, tagged `bmm` and
//! `bmm-{slug}`, and described `bmm:{slug}@{version} …`.
//!
//! Errors: a 401 (or 403) is [`DeployError::Unauthorized`](crate::DeployError::Unauthorized)
//! with a message that says to check `COOLIFY_TOKEN`; a 422 is
//! [`DeployError::Api`](crate::DeployError::Api) with status 422 and Coolify's
//! messages field by field; other statuses are `Api { status, .. }`; an
//! unreachable instance is `DaemonUnavailable`. Only `GET`s are retried (5xx,
//! 429, timeouts, refused connections). The API token is a
//! [`SecretValue`](bmm_core::SecretValue) and secret values are redacted from
//! every message built from Coolify's answers.
//!
//! `fake` (feature `coolify-fake`) is a local fake of the API that checks
//! every request against Coolify's published OpenAPI document.

mod client;
mod deployer;
#[cfg(feature = "coolify-fake")]
pub mod fake;

pub use client::{
    ApiError, Application, ClientOptions, CoolifyClient, CreateDockerImageApplication,
    DeploymentState, EnvVar, FileStorage, ImageRef, NewEnvVar, QueuedDeployment, UpdateApplication,
};
pub use deployer::{BMM_TAG, CoolifyConfig, CoolifyDeployer, NAME_PREFIX};
