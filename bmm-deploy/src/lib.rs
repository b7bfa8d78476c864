//! Putting a bmm server somewhere: one [`Deployer`] trait, several targets.
//!
//! A [`Bundle`] (a validated spec, its secret values and [`DeployOptions`])
//! goes to a [`Deployer`], which makes it serve MCP and answers with a
//! [`Deployment`]: where the server is reachable and in what state. The
//! control plane holds an `Arc<dyn Deployer>` and never cares which target is
//! behind it.
//!
//! Every adapter deploys **blue/green**: a redeploy of a server starts the new
//! version beside the old one, waits until it answers its health check (the
//! runner's `/healthz`, then a real MCP `tools/list`), and only then moves
//! traffic and stops the old version. When the new version fails, the old one
//! keeps serving and the error ([`DeployError::HealthCheckFailed`]) says why.
//!
//! | adapter | target | where the server runs |
//! |---|---|---|
//! | [`InProcessDeployer`] | [`Target::InProcess`] | a [`bmm_runtime::Host`] in this process |
//! | [`ProcessDeployer`] | [`Target::Process`] | a `bmm run` child of a detached `bmm supervise` process |
//! | `DockerDeployer` | [`Target::Docker`] | a hardened `FROM scratch` container (feature `docker`) |
//! | [`coolify::CoolifyDeployer`] | [`Target::Coolify`] | an application on a Coolify server, through its REST API (feature `coolify`) |
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `docker` | no | `DockerDeployer`, through the Docker Engine API (bollard) |
//! | `coolify` | no | the Coolify adapter |
//! | `coolify-fake` | no | `coolify::fake`: a local fake of Coolify's API that checks every request against its OpenAPI document, for tests |
//!
//! Secret values never reach a log line, an error, an event, a label, an
//! image or an argument list: they travel as `BMM_SECRET_<NAME>` environment
//! variables of the runner, which is what `bmm run` reads.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bmm_core::{BuildStep, CheckOptions, Format, Level, ValidatedSpec};
use bmm_runtime::Secrets;
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};

#[cfg(feature = "coolify")]
pub mod coolify;
#[cfg(feature = "docker")]
pub mod docker;
mod health;
pub mod inprocess;
mod logs;
pub mod ports;
pub mod process;

#[cfg(feature = "docker")]
pub use docker::{DockerConfig, DockerDeployer};
pub use health::check_health;
pub use inprocess::InProcessDeployer;
pub use ports::PortRange;
pub use process::{ProcessConfig, ProcessDeployer, supervise};

/// A specialised `Result` whose error defaults to [`DeployError`].
pub type Result<T, E = DeployError> = std::result::Result<T, E>;

/// The file a bundle folder holds its spec in.
pub const BUNDLE_SPEC_FILE: &str = "server.json";

/// What a deploy needs: the validated spec, its secret values and how to run it.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// The spec to serve.
    pub spec: ValidatedSpec,
    /// Secret values by name; `Debug` shows the names only.
    pub secrets: Secrets,
    /// How to deploy it.
    pub options: DeployOptions,
}

impl Bundle {
    /// A bundle of `spec` with no secrets and default options.
    pub fn from_spec(spec: ValidatedSpec) -> Self {
        Self {
            spec,
            secrets: Secrets::new(),
            options: DeployOptions::default(),
        }
    }

    /// Loads a bundle from a folder holding [`BUNDLE_SPEC_FILE`], or from a
    /// spec file (JSON or YAML) directly. The spec is validated with `check`.
    pub fn from_dir(path: &Path, check: &CheckOptions) -> Result<Self> {
        let file = if path.is_dir() {
            path.join(BUNDLE_SPEC_FILE)
        } else {
            path.to_path_buf()
        };
        let text = read_spec_text(&file)?;
        let format = Format::from_path(&file).unwrap_or_else(|| Format::sniff(&text));
        let spec = bmm_core::check_text(&text, format, check).map_err(|report| {
            DeployError::InvalidBundle {
                reason: format!("{} is not a valid spec:\n{report}", file.display()),
            }
        })?;
        Ok(Self::from_spec(spec))
    }

    /// These secret values (only the ones the spec declares are used).
    pub fn with_secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    /// These options.
    pub fn with_options(mut self, options: DeployOptions) -> Self {
        self.options = options;
        self
    }

    /// The server's slug.
    pub fn slug(&self) -> &str {
        self.spec.spec().slug.as_str()
    }

    /// The spec's version.
    pub fn version(&self) -> &str {
        &self.spec.spec().version
    }

    /// The spec as pretty JSON, as written to `server.json`.
    pub fn spec_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self.spec.spec()).map_err(|e| DeployError::InvalidBundle {
            reason: format!("cannot serialize the spec: {e}"),
        })
    }

    /// The secret values the spec declares, as `(BMM_SECRET_<NAME>, value)`
    /// environment pairs for a runner. Callers must never log them.
    pub(crate) fn secret_env(&self) -> Vec<(String, String)> {
        self.spec
            .spec()
            .secrets
            .iter()
            .filter_map(|declared| {
                let name = declared.name.as_str();
                let value = self.secrets.get(name)?;
                Some((
                    format!("BMM_SECRET_{name}"),
                    value.expose_secret().to_owned(),
                ))
            })
            .collect()
    }

    /// Reports a progress event through the options' callback, if any.
    pub(crate) fn progress(&self, step: BuildStep, message: impl Into<String>) {
        self.options.report(step, Level::Info, message);
    }

    /// The error of a failed health check: reports it as progress and adds
    /// the end of the new instance's log (`tail`, may be empty) to the reason.
    pub(crate) fn health_failed(&self, reason: String, tail: &str) -> DeployError {
        let reason = if tail.is_empty() {
            reason
        } else {
            format!("{reason}; its log ends with:\n{tail}")
        };
        self.options
            .report(BuildStep::HealthCheck, Level::Error, reason.clone());
        DeployError::HealthCheckFailed {
            server: self.spec.spec().slug.as_str().to_owned(),
            version: self.spec.spec().version.clone(),
            reason,
        }
    }
}

fn read_spec_text(file: &Path) -> Result<String> {
    let meta = std::fs::metadata(file).map_err(|e| DeployError::InvalidBundle {
        reason: format!("cannot read {}: {e}", file.display()),
    })?;
    if meta.len() > bmm_core::MAX_DOCUMENT_BYTES as u64 {
        return Err(DeployError::InvalidBundle {
            reason: format!(
                "{} is larger than {} bytes",
                file.display(),
                bmm_core::MAX_DOCUMENT_BYTES
            ),
        });
    }
    std::fs::read_to_string(file).map_err(|e| DeployError::InvalidBundle {
        reason: format!("cannot read {}: {e}", file.display()),
    })
}

/// A callback that receives progress events of a deploy.
pub type ProgressFn = Arc<dyn Fn(DeployEvent) + Send + Sync>;

/// How to deploy a bundle. A `Config` struct with public fields.
#[derive(Clone)]
pub struct DeployOptions {
    /// The organisation that owns the server (a label/record, not a secret).
    pub org: Option<String>,
    /// How long the new version has to pass its health check.
    pub health_timeout: Duration,
    /// Extra `Host` header names the runner accepts (a public name behind a
    /// proxy). Loopback names are always accepted.
    pub allowed_hosts: Vec<String>,
    /// Accept plain http URLs in the spec (local development and tests only).
    pub allow_http: bool,
    /// Networks the tools may reach although forbidden by default, e.g.
    /// `127.0.0.1/32` for a local upstream (development and tests only).
    pub allow_networks: Vec<String>,
    /// Receives progress events ("building image", "starting", "healthy").
    pub progress: Option<ProgressFn>,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            org: None,
            health_timeout: Duration::from_secs(30),
            allowed_hosts: Vec::new(),
            allow_http: false,
            allow_networks: Vec::new(),
            progress: None,
        }
    }
}

impl DeployOptions {
    /// Reports one event to the progress callback, if there is one.
    pub fn report(&self, step: BuildStep, level: Level, message: impl Into<String>) {
        if let Some(progress) = &self.progress {
            progress(DeployEvent {
                step,
                level,
                message: message.into(),
            });
        }
    }
}

impl fmt::Debug for DeployOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeployOptions")
            .field("org", &self.org)
            .field("health_timeout", &self.health_timeout)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allow_http", &self.allow_http)
            .field("allow_networks", &self.allow_networks)
            .field("progress", &self.progress.as_ref().map(|_| "callback"))
            .finish()
    }
}

/// One step of a deploy, for a person watching. The control plane turns it
/// into a [`bmm_core::BuildEvent`] (adding the sequence number and time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployEvent {
    /// [`BuildStep::Bundle`], [`BuildStep::Deploy`] or [`BuildStep::HealthCheck`].
    pub step: BuildStep,
    /// How to show it.
    pub level: Level,
    /// What happened. Never a secret.
    pub message: String,
}

/// Where a deployed server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Target {
    /// A [`bmm_runtime::Host`] inside the calling process.
    InProcess,
    /// A local `bmm run` process under a supervisor.
    Process,
    /// A Docker container.
    Docker,
    /// An application on a Coolify server.
    Coolify,
}

impl Target {
    /// The target's name as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::InProcess => "inprocess",
            Target::Process => "process",
            Target::Docker => "docker",
            Target::Coolify => "coolify",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The state of a deployed server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
#[non_exhaustive]
pub enum Status {
    /// Started, not yet healthy.
    Starting,
    /// Serving.
    Running,
    /// It died and is being restarted.
    Restarting {
        /// How many restarts so far (from 1).
        attempt: u32,
    },
    /// Stopped on request.
    Stopped,
    /// Not serving, and not coming back by itself.
    Failed {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Starting => f.write_str("starting"),
            Status::Running => f.write_str("running"),
            Status::Restarting { attempt } => write!(f, "restarting (attempt {attempt})"),
            Status::Stopped => f.write_str("stopped"),
            Status::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

/// A deployed server: what, where, and in what state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// This deployment's id, unique per deploy (a container id, an instance id).
    pub id: String,
    /// The server's slug.
    pub server: String,
    /// The spec's version.
    pub version: String,
    /// Where it runs.
    pub target: Target,
    /// Its MCP endpoint.
    pub url: url::Url,
    /// Its state.
    pub status: Status,
}

/// Which stream a log line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogSource {
    /// The server's standard output.
    Stdout,
    /// The server's standard error.
    Stderr,
    /// The deployer or supervisor itself (started, restarted, replaced).
    Deployer,
}

/// One line of a server's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Where it came from.
    pub source: LogSource,
    /// The text, without the line break.
    pub text: String,
}

/// A stream of log lines; it ends when the log ends (or, when following,
/// when the server is removed).
pub type LogStream = BoxStream<'static, Result<LogLine>>;

/// What [`Deployer::reconcile`] found left by an earlier run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciled {
    /// Servers found alive and taken back under management.
    pub adopted: Vec<String>,
    /// Leftovers removed (dead records, half-finished deploys), by id.
    pub cleaned: Vec<String>,
}

/// Puts servers somewhere and manages them there. Object safe: the control
/// plane holds an `Arc<dyn Deployer>`.
#[async_trait]
pub trait Deployer: Send + Sync {
    /// The target this deployer deploys to.
    fn target(&self) -> Target;

    /// Deploys `bundle`, blue/green when the server already runs: the new
    /// version serves only after its health check passes; if it fails, the
    /// old version keeps serving and the error says why.
    async fn deploy(&self, bundle: Bundle) -> Result<Deployment>;

    /// The deployment of `server` (a slug).
    async fn status(&self, server: &str) -> Result<Deployment>;

    /// The log of `server`; with `follow`, new lines as they come.
    async fn logs(&self, server: &str, follow: bool) -> Result<LogStream>;

    /// Stops `server`, keeping its record (it shows as [`Status::Stopped`]).
    async fn stop(&self, server: &str) -> Result<()>;

    /// Stops `server` and deletes everything deployed for it.
    async fn remove(&self, server: &str) -> Result<()>;

    /// Every server this deployer manages, sorted by slug.
    async fn list(&self) -> Result<Vec<Deployment>>;

    /// Adopts what an earlier run left running and cleans what it left broken.
    async fn reconcile(&self) -> Result<Reconciled>;
}

/// Everything that can go wrong while deploying or managing a server.
///
/// Messages never carry a secret's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// No server with this slug is deployed here.
    #[error("no server {server:?} is deployed on this target")]
    UnknownServer {
        /// The slug asked for.
        server: String,
    },

    /// Every port of the configured range is taken.
    #[error("every port in {range} is in use; free one or configure a larger range (--port-range)")]
    PortRangeExhausted {
        /// The range, as `A-B`.
        range: String,
    },

    /// The new version did not become healthy; the previous one, if any,
    /// keeps serving.
    #[error(
        "{server} v{version} did not become healthy, the previous version (if any) keeps serving: {reason}"
    )]
    HealthCheckFailed {
        /// The server's slug.
        server: String,
        /// The version that failed.
        version: String,
        /// What the health check saw.
        reason: String,
    },

    /// The engine the target needs (e.g. the Docker daemon) cannot be reached.
    #[error("{what} is not reachable: {reason}; {fix}")]
    DaemonUnavailable {
        /// What was not reachable, e.g. "the Docker daemon at unix:///var/run/docker.sock".
        what: String,
        /// Why, as the client reported it.
        reason: String,
        /// How to fix it, e.g. "start dockerd (sudo systemctl start docker)".
        fix: String,
    },

    /// The target refused our credentials.
    #[error("the target refused the credentials: {message}")]
    Unauthorized {
        /// What it said.
        message: String,
    },

    /// The target's API answered with an error.
    #[error("the target's API failed ({status}): {message}")]
    Api {
        /// The HTTP status, or 0 when there was none.
        status: u16,
        /// What it said.
        message: String,
    },

    /// The bundle cannot be deployed (invalid spec, unreadable file, missing binary).
    #[error("invalid bundle: {reason}")]
    InvalidBundle {
        /// What is wrong.
        reason: String,
    },

    /// The deployer is configured wrongly.
    #[error("invalid deployer configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },

    /// A state file is unreadable or corrupt.
    #[error("corrupt deployer state at {path}: {reason}")]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// This target is not built into this binary.
    #[error("the {target} target is not built into this binary yet")]
    Unsupported {
        /// The target asked for.
        target: Target,
    },

    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl DeployError {
    /// An [`DeployError::Io`] with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DeployError::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use bmm_runtime::SecretValue;

    use super::*;

    const SPEC: &str = r#"{
        "bmm": "1", "name": "T", "slug": "tee", "version": "0.3.0", "description": "T.",
        "egress": ["api.example.com"],
        "secrets": [{"name": "KEY", "description": "A key."}],
        "tools": [{"name": "me", "description": "Me.", "input_schema": {"type": "object"},
            "implementation": {"kind": "http", "method": "GET", "url": "https://api.example.com/me",
                "headers": {"X-Key": "{{secrets.KEY}}"}}}]
    }"#;

    #[test]
    fn bundles_load_from_a_folder_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(BUNDLE_SPEC_FILE), SPEC).unwrap();
        let from_dir = Bundle::from_dir(dir.path(), &CheckOptions::default()).unwrap();
        assert_eq!((from_dir.slug(), from_dir.version()), ("tee", "0.3.0"));
        let file = dir.path().join(BUNDLE_SPEC_FILE);
        let from_file = Bundle::from_dir(&file, &CheckOptions::default()).unwrap();
        assert_eq!(from_file.spec, from_dir.spec);
        let reloaded: serde_json::Value =
            serde_json::from_slice(&from_file.spec_json().unwrap()).unwrap();
        assert_eq!(reloaded["slug"], "tee");

        let empty = tempfile::tempdir().unwrap();
        let missing = Bundle::from_dir(empty.path(), &CheckOptions::default()).unwrap_err();
        assert!(
            matches!(missing, DeployError::InvalidBundle { .. }),
            "{missing}"
        );
        std::fs::write(empty.path().join(BUNDLE_SPEC_FILE), r#"{"bmm": "1"}"#).unwrap();
        let invalid = Bundle::from_dir(empty.path(), &CheckOptions::default()).unwrap_err();
        assert!(
            invalid.to_string().contains("is not a valid spec"),
            "{invalid}"
        );
    }

    #[test]
    fn only_declared_secrets_reach_the_environment_and_none_is_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("spec.json");
        std::fs::write(&file, SPEC).unwrap();
        let secrets: Secrets = [
            ("KEY", SecretValue::new("value-of-key-1")),
            ("OTHER", SecretValue::new("value-of-other-2")),
        ]
        .into_iter()
        .collect();
        let bundle = Bundle::from_dir(&file, &CheckOptions::default())
            .unwrap()
            .with_secrets(secrets);
        assert_eq!(
            bundle.secret_env(),
            [("BMM_SECRET_KEY".to_owned(), "value-of-key-1".to_owned())]
        );
        let shown = format!("{bundle:?}");
        assert!(!shown.contains("value-of"), "{shown}");
    }

    #[test]
    fn the_trait_is_object_safe() {
        fn _takes(_: std::sync::Arc<dyn Deployer>) {}
        assert_eq!(Target::Process.to_string(), "process");
        assert_eq!(format!("{:<9}|", Target::Docker), "docker   |");
        assert_eq!(
            Status::Restarting { attempt: 2 }.to_string(),
            "restarting (attempt 2)"
        );
    }
}
