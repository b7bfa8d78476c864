//! The Docker target (feature `docker`): each server is a hardened container
//! of a `FROM scratch` image holding the static `bmm` binary and the spec.
//!
//! The image is built from an in-memory tar context (a Dockerfile, the
//! binary, `server.json`, and the host's CA certificates for the runner's
//! HTTPS client), so nothing is pulled. The container runs as user
//! 65532 with a read-only root filesystem, every capability dropped,
//! `no-new-privileges`, and memory, process-count and CPU limits; its port
//! 8080 is published on a port of the configured range, bound to
//! `127.0.0.1` by default. Secret values are container environment variables
//! (`BMM_SECRET_<NAME>`): never in the image, never in a label.
//!
//! Containers and images carry the labels `dev.bmm.managed=true`,
//! `dev.bmm.server`, `dev.bmm.org`, `dev.bmm.version` (and `dev.bmm.port`),
//! which is how a later run finds them: the daemon is the state.
//!
//! A redeploy is blue/green: the new container starts on another port and
//! must pass the health check before the old one is stopped and removed
//! with its image; a failed new version is removed and the old keeps serving.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bmm_core::BuildStep;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerSummary, ContainerSummaryStateEnum, HostConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, InspectContainerOptions,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use url::Url;

use crate::{
    Bundle, DeployError, Deployer, Deployment, LogLine, LogSource, LogStream, PortRange,
    Reconciled, Result, Status, Target, check_health,
};

/// The label every container and image this adapter makes carries.
pub const LABEL_MANAGED: &str = "dev.bmm.managed";
/// The label holding the server's slug.
pub const LABEL_SERVER: &str = "dev.bmm.server";
/// The label holding the owning organisation (empty when none).
pub const LABEL_ORG: &str = "dev.bmm.org";
/// The label holding the spec's version.
pub const LABEL_VERSION: &str = "dev.bmm.version";
/// The label holding the published host port.
pub const LABEL_PORT: &str = "dev.bmm.port";

/// The user the server runs as inside the container (the conventional
/// "nonroot" id of distroless images).
pub const CONTAINER_USER: &str = "65532:65532";

/// Where hosts keep their CA bundle (Debian and derivatives, Red Hat and derivatives).
const HOST_CA_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// The port `bmm run` listens on inside the container.
const CONTAINER_PORT: u16 = 8080;

/// How a [`DockerDeployer`] reaches the daemon and runs containers. A
/// `Config` struct with public fields.
#[derive(Clone, Debug)]
pub struct DockerConfig {
    /// The daemon's socket: `unix:///var/run/docker.sock` style or a plain
    /// path. `None`: `DOCKER_HOST` when it names a unix socket, else
    /// `/var/run/docker.sock`.
    pub socket: Option<String>,
    /// The static `bmm` binary put in images (see `scripts/build-static`);
    /// the CLI takes it from `--static-binary` or `BMM_STATIC_BINARY`.
    pub static_binary: PathBuf,
    /// The CA certificates (PEM bundle) put in images at
    /// `/etc/ssl/certs/ca-certificates.crt`, for the runner's HTTPS client.
    /// `None`: the host's own bundle (Debian's or Red Hat's path).
    pub ca_bundle: Option<PathBuf>,
    /// Host ports containers are published on.
    pub port_range: PortRange,
    /// Host address the ports are bound to (default `127.0.0.1`).
    pub bind: IpAddr,
    /// Memory limit per container, in bytes (default 256 MiB).
    pub memory_bytes: i64,
    /// Process/thread limit per container (default 256).
    pub pids_limit: i64,
    /// CPU limit per container in billionths of a CPU (default 1 CPU).
    pub nano_cpus: i64,
}

impl DockerConfig {
    /// The defaults, with the static binary at `static_binary`.
    pub fn new(static_binary: impl Into<PathBuf>) -> Self {
        Self {
            socket: None,
            static_binary: static_binary.into(),
            ca_bundle: None,
            port_range: PortRange::DEFAULT,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            memory_bytes: 256 << 20,
            pids_limit: 256,
            nano_cpus: 1_000_000_000,
        }
    }
}

/// Deploys servers as hardened Docker containers.
#[derive(Debug)]
pub struct DockerDeployer {
    docker: Docker,
    config: DockerConfig,
    socket: String,
    lock: tokio::sync::Mutex<()>,
}

impl DockerDeployer {
    /// Connects to the daemon and checks that it answers; fails with
    /// [`DeployError::DaemonUnavailable`] (naming the fix) when it does not.
    pub async fn connect(config: DockerConfig) -> Result<Self> {
        let socket = config.socket.clone().unwrap_or_else(default_socket);
        let path = socket.trim_start_matches("unix://").to_owned();
        let unavailable = |reason: String| DeployError::DaemonUnavailable {
            what: format!("the Docker daemon at unix://{path}"),
            reason,
            fix: "start dockerd (`sudo systemctl start docker`, or `sudo dockerd &`), \
                  or point DOCKER_HOST / --docker-host at a running daemon"
                .into(),
        };
        let docker = Docker::connect_with_unix(&path, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| unavailable(e.to_string()))?;
        docker
            .ping()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        Ok(Self {
            docker,
            config,
            socket: path,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The client, e.g. to inspect what this deployer made.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The configuration.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// The id of the container serving `server` now.
    pub async fn container_id(&self, server: &str) -> Result<String> {
        let current = self.current(server).await?;
        current.id.ok_or_else(|| unknown(server))
    }

    fn error(&self, error: BollardError) -> DeployError {
        match error {
            BollardError::DockerResponseServerError {
                status_code: 401 | 403,
                message,
            } => DeployError::Unauthorized { message },
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => DeployError::Api {
                status: status_code,
                message,
            },
            BollardError::SocketNotFoundError(_)
            | BollardError::HyperResponseError { .. }
            | BollardError::IOError { .. } => DeployError::DaemonUnavailable {
                what: format!("the Docker daemon at unix://{}", self.socket),
                reason: error.to_string(),
                fix: "start dockerd (`sudo systemctl start docker`, or `sudo dockerd &`)".into(),
            },
            other => DeployError::Api {
                status: 0,
                message: other.to_string(),
            },
        }
    }

    /// Every container this adapter made (running or not), newest first;
    /// only `server`'s when given.
    async fn managed(&self, server: Option<&str>) -> Result<Vec<ContainerSummary>> {
        let mut labels = vec![format!("{LABEL_MANAGED}=true")];
        if let Some(server) = server {
            labels.push(format!("{LABEL_SERVER}={server}"));
        }
        let filters: HashMap<&str, Vec<String>> = [("label", labels)].into();
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let mut found = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.error(e))?;
        found.sort_by_key(|c| std::cmp::Reverse(c.created.unwrap_or(0)));
        Ok(found)
    }

    /// The container serving `server`: the newest running one, else the newest.
    async fn current(&self, server: &str) -> Result<ContainerSummary> {
        let all = self.managed(Some(server)).await?;
        let running = all
            .iter()
            .position(|c| c.state == Some(ContainerSummaryStateEnum::RUNNING));
        let index = running.unwrap_or(0);
        all.into_iter().nth(index).ok_or_else(|| unknown(server))
    }

    fn deployment(&self, container: &ContainerSummary) -> Result<Deployment> {
        let labels = container.labels.clone().unwrap_or_default();
        let label = |name: &str| labels.get(name).cloned().unwrap_or_default();
        let port: u16 = label(LABEL_PORT).parse().unwrap_or(0);
        let status = match container.state {
            Some(ContainerSummaryStateEnum::RUNNING) => Status::Running,
            Some(ContainerSummaryStateEnum::CREATED) => Status::Starting,
            Some(ContainerSummaryStateEnum::RESTARTING) => Status::Restarting { attempt: 1 },
            Some(ContainerSummaryStateEnum::EXITED | ContainerSummaryStateEnum::PAUSED) => {
                Status::Stopped
            }
            _ => Status::Failed {
                reason: container
                    .status
                    .clone()
                    .unwrap_or_else(|| "unknown container state".into()),
            },
        };
        Ok(Deployment {
            id: container.id.clone().unwrap_or_default(),
            server: label(LABEL_SERVER),
            version: label(LABEL_VERSION),
            target: Target::Docker,
            url: self.url(port)?,
            status,
        })
    }

    fn url(&self, port: u16) -> Result<Url> {
        let host = match self.config.bind {
            IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_owned(),
            IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_owned(),
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        Url::parse(&format!("http://{host}:{port}/mcp")).map_err(|e| DeployError::InvalidConfig {
            reason: format!("no URL for {host}:{port}: {e}"),
        })
    }

    /// Host ports held by managed containers.
    async fn taken_ports(&self) -> Result<std::collections::HashSet<u16>> {
        Ok(self
            .managed(None)
            .await?
            .iter()
            .filter_map(|c| c.labels.as_ref()?.get(LABEL_PORT)?.parse().ok())
            .collect())
    }

    async fn build_image(
        &self,
        bundle: &Bundle,
        tag: &str,
        labels: &HashMap<String, String>,
    ) -> Result<()> {
        let binary = tokio::fs::read(&self.config.static_binary)
            .await
            .map_err(|e| DeployError::InvalidConfig {
                reason: format!(
                    "cannot read the static bmm binary {} ({e}); build it with scripts/build-static and set BMM_STATIC_BINARY",
                    self.config.static_binary.display()
                ),
            })?;
        let ca_path = match &self.config.ca_bundle {
            Some(path) => path.clone(),
            None => HOST_CA_BUNDLES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
                .ok_or_else(|| DeployError::InvalidConfig {
                    reason: format!(
                        "no CA certificate bundle at {}; install ca-certificates or configure DockerConfig::ca_bundle",
                        HOST_CA_BUNDLES.join(" or ")
                    ),
                })?,
        };
        let certificates = tokio::fs::read(&ca_path)
            .await
            .map_err(|e| DeployError::io(format!("cannot read {}", ca_path.display()), e))?;
        let context = build_context(
            &dockerfile(bundle),
            &binary,
            &bundle.spec_json()?,
            &certificates,
        )?;
        let options = BuildImageOptionsBuilder::new()
            .dockerfile("Dockerfile")
            .t(tag)
            .rm(true)
            .forcerm(true)
            .labels(labels)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context.into())));
        while let Some(step) = stream.next().await {
            let info = step.map_err(|e| self.error(e))?;
            if let Some(error) = info.error {
                return Err(DeployError::Api {
                    status: 0,
                    message: format!("image build failed: {error}"),
                });
            }
        }
        Ok(())
    }

    /// Removes a container (and its anonymous volumes), then its image.
    async fn discard(&self, container: &str, image: Option<&str>) {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        // Already gone is fine: the goal is that it is gone.
        let _ = self.docker.remove_container(container, Some(options)).await;
        if let Some(image) = image {
            let options = RemoveImageOptionsBuilder::new().force(true).build();
            let _ = self.docker.remove_image(image, Some(options), None).await;
        }
    }

    /// The last `lines` lines of a container's output.
    async fn tail(&self, container: &str, lines: usize) -> String {
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let chunks: Vec<_> = self.docker.logs(container, Some(options)).collect().await;
        let text: String = chunks
            .into_iter()
            .filter_map(|c| c.ok())
            .map(|c| c.to_string())
            .collect();
        text.trim_end().to_owned()
    }

    /// Resolves when the container has stopped or restarted, with why.
    async fn watch_exit(&self, container: &str) -> String {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Ok(inspect) = self
                .docker
                .inspect_container(container, None::<InspectContainerOptions>)
                .await
            else {
                return "the container disappeared".into();
            };
            let restarts = inspect.restart_count.unwrap_or(0);
            let state = inspect.state.unwrap_or_default();
            if restarts > 0 || state.running == Some(false) {
                return format!(
                    "the container exited (code {})",
                    state.exit_code.unwrap_or(-1)
                );
            }
        }
    }
}

#[async_trait]
impl Deployer for DockerDeployer {
    fn target(&self) -> Target {
        Target::Docker
    }

    async fn deploy(&self, bundle: Bundle) -> Result<Deployment> {
        let _guard = self.lock.lock().await;
        let slug = bundle.slug().to_owned();
        let version = bundle.version().to_owned();
        let options = &bundle.options;
        let previous = self.managed(Some(&slug)).await?;
        let port = self
            .config
            .port_range
            .pick(self.config.bind, &self.taken_ports().await?)?;
        let suffix = unique_suffix();
        let tag = format!("bmm/{slug}:{}-{suffix}", tag_safe(&version));
        let name = format!("bmm-{slug}-{suffix}");
        let labels: HashMap<String, String> = [
            (LABEL_MANAGED, "true".to_owned()),
            (LABEL_SERVER, slug.clone()),
            (LABEL_ORG, options.org.clone().unwrap_or_default()),
            (LABEL_VERSION, version.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();

        bundle.progress(BuildStep::Bundle, format!("building image {tag}"));
        self.build_image(&bundle, &tag, &labels).await?;

        let mut container_labels = labels.clone();
        container_labels.insert(LABEL_PORT.to_owned(), port.to_string());
        let env: Vec<String> = bundle
            .secret_env()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let exposed = format!("{CONTAINER_PORT}/tcp");
        let host_config = HostConfig {
            port_bindings: Some(
                [(
                    exposed.clone(),
                    Some(vec![PortBinding {
                        host_ip: Some(self.config.bind.to_string()),
                        host_port: Some(port.to_string()),
                    }]),
                )]
                .into(),
            ),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges:true".into()]),
            memory: Some(self.config.memory_bytes),
            memory_swap: Some(self.config.memory_bytes),
            pids_limit: Some(self.config.pids_limit),
            nano_cpus: Some(self.config.nano_cpus),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            ..HostConfig::default()
        };
        let body = ContainerCreateBody {
            image: Some(tag.clone()),
            user: Some(CONTAINER_USER.into()),
            env: Some(env),
            labels: Some(container_labels),
            exposed_ports: Some([(exposed, HashMap::new())].into()),
            host_config: Some(host_config),
            ..ContainerCreateBody::default()
        };
        bundle.progress(
            BuildStep::Deploy,
            format!("starting container {name} on port {port}"),
        );
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                body,
            )
            .await;
        let id = match created {
            Ok(created) => created.id,
            Err(error) => {
                self.discard(&name, Some(&tag)).await;
                return Err(self.error(error));
            }
        };
        if let Err(error) = self
            .docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
        {
            self.discard(&id, Some(&tag)).await;
            return Err(self.error(error));
        }

        let url = self.url(port)?;
        let checked = tokio::select! {
            checked = check_health(&url, options.health_timeout, || None) => checked,
            reason = self.watch_exit(&id) => Err(reason),
        };
        if let Err(reason) = checked {
            let tail = self.tail(&id, 5).await;
            self.discard(&id, Some(&tag)).await;
            return Err(bundle.health_failed(reason, &tail));
        }
        bundle.progress(BuildStep::HealthCheck, format!("healthy; serving at {url}"));

        for old in previous {
            let Some(old_id) = old.id.as_deref() else {
                continue;
            };
            bundle.progress(BuildStep::Deploy, "removing the previous version");
            let stop = StopContainerOptionsBuilder::new().t(5).build();
            let _ = self.docker.stop_container(old_id, Some(stop)).await;
            self.discard(old_id, old.image.as_deref()).await;
        }
        self.status(&slug).await
    }

    async fn status(&self, server: &str) -> Result<Deployment> {
        let current = self.current(server).await?;
        let mut deployment = self.deployment(&current)?;
        if let (Status::Restarting { .. }, Some(id)) = (&deployment.status, &current.id)
            && let Ok(inspect) = self
                .docker
                .inspect_container(id, None::<InspectContainerOptions>)
                .await
        {
            let attempt = u32::try_from(inspect.restart_count.unwrap_or(1)).unwrap_or(u32::MAX);
            deployment.status = Status::Restarting { attempt };
        }
        Ok(deployment)
    }

    async fn logs(&self, server: &str, follow: bool) -> Result<LogStream> {
        let id = self.container_id(server).await?;
        let options = LogsOptionsBuilder::new()
            .follow(follow)
            .stdout(true)
            .stderr(true)
            .tail("all")
            .build();
        let socket = self.socket.clone();
        let stream = self.docker.logs(&id, Some(options)).flat_map(move |chunk| {
            let lines: Vec<Result<LogLine>> = match chunk {
                Ok(output) => {
                    let source = match output {
                        LogOutput::StdErr { .. } => LogSource::Stderr,
                        _ => LogSource::Stdout,
                    };
                    output
                        .to_string()
                        .lines()
                        .map(|text| {
                            Ok(LogLine {
                                source,
                                text: text.to_owned(),
                            })
                        })
                        .collect()
                }
                Err(error) => vec![Err(DeployError::Api {
                    status: 0,
                    message: format!("reading logs from unix://{socket}: {error}"),
                })],
            };
            futures_util::stream::iter(lines)
        });
        Ok(stream.boxed())
    }

    async fn stop(&self, server: &str) -> Result<()> {
        let _guard = self.lock.lock().await;
        let id = self.container_id(server).await?;
        let stop = StopContainerOptionsBuilder::new().t(5).build();
        self.docker
            .stop_container(&id, Some(stop))
            .await
            .map_err(|e| self.error(e))
    }

    async fn remove(&self, server: &str) -> Result<()> {
        let _guard = self.lock.lock().await;
        let all = self.managed(Some(server)).await?;
        if all.is_empty() {
            return Err(unknown(server));
        }
        for container in all {
            if let Some(id) = container.id.as_deref() {
                self.discard(id, container.image.as_deref()).await;
            }
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Deployment>> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for container in self.managed(None).await? {
            let server = container
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_SERVER))
                .cloned()
                .unwrap_or_default();
            if seen.insert(server.clone()) {
                out.push(self.status(&server).await?);
            }
        }
        out.sort_by(|a, b| a.server.cmp(&b.server));
        Ok(out)
    }

    /// Adopts, per server, the newest running container; removes the others
    /// (left by an interrupted blue/green deploy) with their images.
    async fn reconcile(&self) -> Result<Reconciled> {
        let _guard = self.lock.lock().await;
        let mut report = Reconciled::default();
        let mut by_server: HashMap<String, Vec<ContainerSummary>> = HashMap::new();
        for container in self.managed(None).await? {
            let server = container
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_SERVER))
                .cloned()
                .unwrap_or_default();
            by_server.entry(server).or_default().push(container);
        }
        for (server, containers) in by_server {
            let keep = containers
                .iter()
                .position(|c| c.state == Some(ContainerSummaryStateEnum::RUNNING))
                .unwrap_or(0);
            for (index, container) in containers.iter().enumerate() {
                let id = container.id.clone().unwrap_or_default();
                if index == keep {
                    if container.state == Some(ContainerSummaryStateEnum::RUNNING) {
                        report.adopted.push(server.clone());
                    }
                    continue;
                }
                self.discard(&id, container.image.as_deref()).await;
                report.cleaned.push(id);
            }
        }
        report.adopted.sort();
        Ok(report)
    }
}

/// The Dockerfile of a server's image.
fn dockerfile(bundle: &Bundle) -> String {
    let options = &bundle.options;
    let mut entrypoint: Vec<String> = [
        "/bmm",
        "run",
        "--spec",
        "/server.json",
        "--bind",
        "0.0.0.0",
        "--port",
        "8080",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for host in &options.allowed_hosts {
        entrypoint.extend(["--allow-host".to_owned(), host.clone()]);
    }
    if options.allow_http {
        entrypoint.push("--allow-http".into());
    }
    for network in &options.allow_networks {
        entrypoint.extend(["--allow-network".to_owned(), network.clone()]);
    }
    // A JSON array is the exec form of ENTRYPOINT; serde quotes every item.
    let entrypoint = serde_json::to_string(&entrypoint).unwrap_or_else(|_| "[\"/bmm\"]".into());
    format!(
        "FROM scratch\n\
         COPY bmm /bmm\n\
         COPY server.json /server.json\n\
         COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n\
         USER {CONTAINER_USER}\n\
         EXPOSE {CONTAINER_PORT}\n\
         ENTRYPOINT {entrypoint}\n"
    )
}

/// The build context: a tar of the Dockerfile, the binary, the spec and the
/// CA certificates.
fn build_context(
    dockerfile: &str,
    binary: &[u8],
    spec: &[u8],
    certificates: &[u8],
) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let files: [(&str, &[u8], u32); 4] = [
        ("Dockerfile", dockerfile.as_bytes(), 0o644),
        ("bmm", binary, 0o755),
        ("server.json", spec, 0o444),
        ("ca-certificates.crt", certificates, 0o444),
    ];
    for (name, bytes, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, Path::new(name), bytes)
            .map_err(|e| DeployError::io("cannot build the image context", e))?;
    }
    tar.into_inner()
        .map_err(|e| DeployError::io("cannot build the image context", e))
}

fn default_socket() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| h.starts_with("unix://"))
        .unwrap_or_else(|| "/var/run/docker.sock".into())
}

/// A version as a tag component: `[A-Za-z0-9_.-]`, at most 100 characters.
fn tag_safe(version: &str) -> String {
    version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect()
}

fn unique_suffix() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}{:03}", now.as_secs(), now.subsec_millis())
}

fn unknown(server: &str) -> DeployError {
    DeployError::UnknownServer {
        server: server.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use bmm_core::{CheckOptions, check};
    use serde_json::json;

    use super::*;
    use crate::DeployOptions;

    #[test]
    fn the_dockerfile_runs_as_nonroot_from_scratch_with_exec_form() {
        let spec = json!({
            "bmm": "1", "name": "T", "slug": "t", "description": "T.",
            "tools": [{"name": "x", "description": "X.", "input_schema": {"type": "object"},
                "implementation": {"kind": "script", "source": "export default () => 1"}}]
        });
        let bundle = Bundle::from_spec(check(&spec, &CheckOptions::default()).unwrap())
            .with_options(DeployOptions {
                allowed_hosts: vec!["mcp.example.com".into()],
                ..DeployOptions::default()
            });
        let text = dockerfile(&bundle);
        assert!(text.starts_with("FROM scratch\n"), "{text}");
        assert!(text.contains("USER 65532:65532\n"), "{text}");
        assert!(text.contains(
            r#"ENTRYPOINT ["/bmm","run","--spec","/server.json","--bind","0.0.0.0","--port","8080","--allow-host","mcp.example.com"]"#
        ), "{text}");
        let context = build_context(&text, b"ELF", b"{}", b"PEM").unwrap();
        let mut archive = tar::Archive::new(context.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            ["Dockerfile", "bmm", "server.json", "ca-certificates.crt"]
        );
    }

    #[test]
    fn versions_become_valid_tags() {
        assert_eq!(tag_safe("1.2.3-rc.1+build.5"), "1.2.3-rc.1-build.5");
    }

    #[tokio::test]
    async fn an_absent_daemon_names_the_fix() {
        let mut config = DockerConfig::new("/nonexistent/bmm");
        config.socket = Some("unix:///nonexistent/docker.sock".into());
        let error = DockerDeployer::connect(config).await.unwrap_err();
        assert!(
            matches!(error, DeployError::DaemonUnavailable { .. }),
            "{error}"
        );
        let text = error.to_string();
        assert!(text.contains("/nonexistent/docker.sock"), "{text}");
        assert!(text.contains("start dockerd"), "{text}");
    }
}
