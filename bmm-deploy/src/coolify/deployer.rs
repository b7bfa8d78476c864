//! [`CoolifyDeployer`]: the [`Deployer`] that runs a server as a Coolify
//! application, and its [`CoolifyConfig`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bmm_core::{BuildStep, Level, SecretValue};
use futures_util::StreamExt;
use tokio::time::Instant;
use url::Url;

use super::client::{
    ApiError, Application, ClientOptions, CoolifyClient, CreateDockerImageApplication, ImageRef,
    NewEnvVar, UpdateApplication,
};
use crate::{
    Bundle, DeployError, Deployer, Deployment, LogLine, LogSource, LogStream, Reconciled, Result,
    Status, Target,
};

/// The tag every application bmm creates carries; `list` and `reconcile` look for it.
pub const BMM_TAG: &str = "bmm";

/// What names an application bmm made: `bmm-{slug}`.
pub const NAME_PREFIX: &str = "bmm-";

/// The start of the description bmm gives its applications:
/// `bmm:{slug}@{version}`, then a sentence for people.
const MARKER: &str = "bmm:";

/// The prefix of the environment variables `bmm run` reads secrets from.
const SECRET_PREFIX: &str = "BMM_SECRET_";

/// How many log lines are asked for at a time.
const LOG_LINES: u32 = 1000;

/// How a [`CoolifyDeployer`] reaches Coolify and what it deploys there.
///
/// `Debug` shows everything but the token.
#[derive(Clone, Debug)]
pub struct CoolifyConfig {
    /// The instance's URL (`COOLIFY_URL`), e.g. `https://coolify.example.com`.
    pub url: Url,
    /// An API token with read and write permission (`COOLIFY_TOKEN`).
    pub token: SecretValue,
    /// The project the applications go in (`COOLIFY_PROJECT_UUID`).
    pub project_uuid: String,
    /// The server they run on (`COOLIFY_SERVER_UUID`).
    pub server_uuid: String,
    /// The project's environment (`COOLIFY_ENVIRONMENT_NAME`, default `production`).
    pub environment_name: String,
    /// The environment's UUID, when known (`COOLIFY_ENVIRONMENT_UUID`).
    pub environment_uuid: Option<String>,
    /// The image to run (`COOLIFY_IMAGE`), pushed beforehand, e.g.
    /// `ghcr.io/acme/bmm-{slug}:{version}`; `{slug}` and `{version}` are
    /// replaced by the spec's. The image runs `bmm run --spec` on
    /// [`spec_path`](Self::spec_path), binding `0.0.0.0:`[`port`](Self::port)
    /// and accepting the application's domain as `Host`.
    pub image: String,
    /// The public URL(s) of the application (`COOLIFY_DOMAIN`), with `{slug}`
    /// replaced, e.g. `https://{slug}.mcp.example.com`; none lets Coolify
    /// generate one.
    pub domain: Option<String>,
    /// The port `bmm run` listens on in the container.
    pub port: u16,
    /// Where the spec is mounted in the container (a Coolify file storage).
    pub spec_path: String,
    /// How long Coolify may take to pull and start the image.
    pub deploy_timeout: Duration,
    /// Once Coolify reports the container healthy, also check the server from
    /// here as the other targets do (its `/healthz`, then an MCP `tools/list`
    /// at [`Deployment::url`]); on by default, off with `COOLIFY_PROBE=0`
    /// when the application's domain is not reachable from where bmm runs.
    pub probe: bool,
    /// How often a deployment's progress is read.
    pub poll_interval: Duration,
    /// How often logs are read when following.
    pub log_poll_interval: Duration,
    /// Timeouts and retries of API calls.
    pub client: ClientOptions,
}

impl CoolifyConfig {
    /// A configuration with the required values and defaults for the rest.
    pub fn new(
        url: Url,
        token: SecretValue,
        project_uuid: impl Into<String>,
        server_uuid: impl Into<String>,
        image: impl Into<String>,
    ) -> Self {
        Self {
            url,
            token,
            project_uuid: project_uuid.into(),
            server_uuid: server_uuid.into(),
            environment_name: "production".into(),
            environment_uuid: None,
            image: image.into(),
            domain: None,
            port: 8080,
            spec_path: "/server.json".into(),
            deploy_timeout: Duration::from_secs(600),
            probe: true,
            poll_interval: Duration::from_secs(2),
            log_poll_interval: Duration::from_secs(2),
            client: ClientOptions::default(),
        }
    }

    /// Reads the configuration from the process environment: `COOLIFY_URL`,
    /// `COOLIFY_TOKEN`, `COOLIFY_PROJECT_UUID`, `COOLIFY_SERVER_UUID` and
    /// `COOLIFY_IMAGE` are required; `COOLIFY_ENVIRONMENT_NAME`,
    /// `COOLIFY_ENVIRONMENT_UUID`, `COOLIFY_DOMAIN` and `COOLIFY_PROBE` are optional.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = [
            "COOLIFY_URL",
            "COOLIFY_TOKEN",
            "COOLIFY_PROJECT_UUID",
            "COOLIFY_SERVER_UUID",
            "COOLIFY_IMAGE",
        ];
        let missing: Vec<&str> = required.into_iter().filter(|n| get(n).is_none()).collect();
        if !missing.is_empty() {
            return Err(DeployError::InvalidConfig {
                reason: format!("set {} to deploy to Coolify", missing.join(", ")),
            });
        }
        let text = |name: &str| get(name).unwrap_or_default();
        let url = Url::parse(&text("COOLIFY_URL")).map_err(|e| DeployError::InvalidConfig {
            reason: format!("COOLIFY_URL is not a URL: {e}"),
        })?;
        let mut config = Self::new(
            url,
            SecretValue::new(text("COOLIFY_TOKEN")),
            text("COOLIFY_PROJECT_UUID"),
            text("COOLIFY_SERVER_UUID"),
            text("COOLIFY_IMAGE"),
        );
        if let Some(name) = get("COOLIFY_ENVIRONMENT_NAME") {
            config.environment_name = name;
        }
        config.environment_uuid = get("COOLIFY_ENVIRONMENT_UUID");
        config.domain = get("COOLIFY_DOMAIN");
        if let Some(probe) = get("COOLIFY_PROBE") {
            config.probe = !matches!(
                probe.to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off"
            );
        }
        Ok(config)
    }

    /// The image reference for one server.
    fn image_for(&self, slug: &str, version: &str) -> Result<ImageRef> {
        let reference = self
            .image
            .replace("{slug}", slug)
            .replace("{version}", version);
        ImageRef::parse(&reference).map_err(|e| DeployError::InvalidConfig {
            reason: format!("COOLIFY_IMAGE: {e}"),
        })
    }
}

/// Deploys servers as Coolify applications created from a pushed docker image.
///
/// One application per server, named `bmm-{slug}`, tagged [`BMM_TAG`] and
/// `bmm-{slug}`, described `bmm:{slug}@{version} …`. The spec is a file
/// Coolify mounts at [`CoolifyConfig::spec_path`]; each declared secret is
/// an environment variable `BMM_SECRET_<NAME>` (literal, shown once in
/// Coolify's interface). Coolify itself is the source of truth: this
/// deployer keeps no state, so [`Deployer::reconcile`] has nothing to
/// restore and only adopts and cleans.
///
/// A redeploy relies on Coolify's rolling update (the health check on
/// `/healthz` is turned on): the new container serves only once healthy.
/// When it fails, this deployer puts the previous image, description and
/// spec back on the application, so a later restart runs the old version
/// too, and answers [`DeployError::HealthCheckFailed`].
pub struct CoolifyDeployer {
    client: CoolifyClient,
    config: CoolifyConfig,
}

impl fmt::Debug for CoolifyDeployer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoolifyDeployer")
            .field("client", &self.client)
            .field("project_uuid", &self.config.project_uuid)
            .field("server_uuid", &self.config.server_uuid)
            .field("image", &self.config.image)
            .finish_non_exhaustive()
    }
}

/// What a redeploy replaces, to put back when the new version fails.
struct Previous {
    image_name: Option<String>,
    image_tag: Option<String>,
    description: Option<String>,
    spec: Option<String>,
}

impl CoolifyDeployer {
    /// A deployer with this configuration. Nothing is sent yet.
    pub fn new(config: CoolifyConfig) -> Result<Self> {
        let client = CoolifyClient::new(&config.url, config.token.clone(), config.client.clone())
            .map_err(|e| DeployError::InvalidConfig {
            reason: e.to_string(),
        })?;
        Ok(Self { client, config })
    }

    /// The API client, for calls this deployer does not make.
    pub fn client(&self) -> &CoolifyClient {
        &self.client
    }

    /// The application of the server `slug`, if bmm made one.
    async fn find(&self, slug: &str) -> Result<Option<Application>> {
        let name = app_name(slug);
        let apps = self
            .client
            .list_applications(Some(&name))
            .await
            .map_err(|e| self.error(e, &[]))?;
        Ok(apps
            .into_iter()
            .find(|app| app.name.as_deref() == Some(name.as_str())))
    }

    async fn find_or_unknown(&self, slug: &str) -> Result<Application> {
        self.find(slug)
            .await?
            .ok_or_else(|| DeployError::UnknownServer {
                server: slug.to_owned(),
            })
    }

    /// The deployment an application stands for.
    fn deployment(&self, app: &Application, slug: &str) -> Result<Deployment> {
        let version = app
            .description
            .as_deref()
            .and_then(parse_marker)
            .map(|(_, version)| version)
            .unwrap_or_default();
        Ok(Deployment {
            id: app.uuid.clone(),
            server: slug.to_owned(),
            version,
            target: Target::Coolify,
            url: mcp_url(app, slug)?,
            status: status_of(app.status.as_deref()),
        })
    }

    /// Maps a client error, hiding any of `secrets` a message might echo.
    fn error(&self, error: ApiError, secrets: &[SecretValue]) -> DeployError {
        let text = redact(&error.to_string(), secrets);
        match error {
            ApiError::Unauthorized { .. } | ApiError::Forbidden { .. } => {
                DeployError::Unauthorized { message: text }
            }
            ApiError::Transport { .. } => DeployError::DaemonUnavailable {
                what: format!("Coolify at {}", self.client.api_url()),
                reason: text,
                fix: "check COOLIFY_URL and that the instance is up".into(),
            },
            ApiError::Config(_) => DeployError::InvalidConfig { reason: text },
            other => DeployError::Api {
                status: other.status().unwrap_or(0),
                message: text,
            },
        }
    }

    /// Creates the application, or points the existing one at the new
    /// version; answers its UUID and what to put back on failure.
    async fn prepare(
        &self,
        bundle: &Bundle,
        image: &ImageRef,
        secrets: &[SecretValue],
    ) -> Result<(String, Option<Previous>)> {
        let slug = bundle.slug();
        let description = marker(slug, bundle.version());
        match self.find(slug).await? {
            Some(app) => {
                bundle.progress(
                    BuildStep::Deploy,
                    format!("updating Coolify application {} to {image}", app.uuid),
                );
                let previous = Previous {
                    image_name: app.docker_registry_image_name.clone(),
                    image_tag: app.docker_registry_image_tag.clone(),
                    description: app.description.clone(),
                    spec: None,
                };
                let update = UpdateApplication {
                    description: Some(description),
                    docker_registry_image_name: Some(image.name.clone()),
                    docker_registry_image_tag: Some(image.tag.clone()),
                    ..UpdateApplication::default()
                };
                self.client
                    .update_application(&app.uuid, &update)
                    .await
                    .map_err(|e| self.error(e, secrets))?;
                Ok((app.uuid, Some(previous)))
            }
            None => {
                bundle.progress(
                    BuildStep::Deploy,
                    format!(
                        "creating Coolify application {} from {image}",
                        app_name(slug)
                    ),
                );
                let mut request = CreateDockerImageApplication::new(
                    &self.config.project_uuid,
                    &self.config.server_uuid,
                    &self.config.environment_name,
                    image,
                );
                request.environment_uuid = self.config.environment_uuid.clone().unwrap_or_default();
                request.name = app_name(slug);
                request.description = description;
                request.tags = vec![BMM_TAG.to_owned(), app_name(slug)];
                request.ports_exposes = self.config.port.to_string();
                request.domains = self
                    .config
                    .domain
                    .as_ref()
                    .map(|d| d.replace("{slug}", slug));
                request.health_check_enabled = true;
                request.health_check_path = "/healthz".into();
                request.instant_deploy = false;
                let uuid = self
                    .client
                    .create_dockerimage_application(&request)
                    .await
                    .map_err(|e| match e {
                        ApiError::NotFound { message, .. } => DeployError::InvalidConfig {
                            reason: format!(
                                "Coolify: {message} Check COOLIFY_PROJECT_UUID, COOLIFY_SERVER_UUID and \
                                 COOLIFY_ENVIRONMENT_NAME"
                            ),
                        },
                        other => self.error(other, secrets),
                    })?;
                Ok((uuid, None))
            }
        }
    }

    /// Writes the spec file; answers what it held before.
    async fn put_spec(
        &self,
        uuid: &str,
        spec: &str,
        secrets: &[SecretValue],
    ) -> Result<Option<String>> {
        let files = self
            .client
            .file_storages(uuid)
            .await
            .map_err(|e| self.error(e, secrets))?;
        let existing = files
            .into_iter()
            .find(|f| f.mount_path.as_deref() == Some(self.config.spec_path.as_str()));
        let (storage, before) = match existing {
            Some(file) => (file.uuid, file.content),
            None => (None, None),
        };
        self.client
            .put_file(uuid, storage.as_deref(), &self.config.spec_path, spec)
            .await
            .map_err(|e| self.error(e, secrets))?;
        Ok(before)
    }

    /// Queues a deployment and waits until the application serves, or says why not.
    async fn run_deployment(
        &self,
        bundle: &Bundle,
        uuid: &str,
        secrets: &[SecretValue],
    ) -> Result<std::result::Result<Application, String>> {
        let queued = self
            .client
            .deploy(uuid, false)
            .await
            .map_err(|e| self.error(e, secrets))?;
        let deployment = queued.into_iter().find_map(|q| q.deployment_uuid);
        let deadline = Instant::now() + self.config.deploy_timeout;
        if let Some(deployment) = &deployment {
            bundle.progress(
                BuildStep::Deploy,
                format!("Coolify queued deployment {deployment}"),
            );
            loop {
                let state = self
                    .client
                    .deployment(deployment)
                    .await
                    .map_err(|e| self.error(e, secrets))?;
                match state.status.as_deref().unwrap_or_default() {
                    "finished" => break,
                    status @ ("failed" | "cancelled-by-user" | "cancelled") => {
                        let mut reason = format!("Coolify's deployment {deployment} {status}");
                        let lines = state.last_log_lines(5);
                        if !lines.is_empty() {
                            reason.push_str(": ");
                            reason.push_str(&redact(&lines.join(" | "), secrets));
                        }
                        return Ok(Err(reason));
                    }
                    _ => {}
                }
                if Instant::now() >= deadline {
                    return Ok(Err(format!(
                        "Coolify's deployment {deployment} did not finish within {:?}",
                        self.config.deploy_timeout
                    )));
                }
                tokio::time::sleep(self.config.poll_interval).await;
            }
        }
        bundle.progress(
            BuildStep::HealthCheck,
            "waiting for Coolify to report the container healthy",
        );
        // Once Coolify has finished, the container has the deploy's health timeout to become healthy.
        let deadline =
            Instant::now() + bundle.options.health_timeout.max(self.config.poll_interval);
        loop {
            let app = self
                .client
                .application(uuid)
                .await
                .map_err(|e| self.error(e, secrets))?;
            match status_of(app.status.as_deref()) {
                Status::Running => return Ok(Ok(app)),
                // Without a deployment to follow, a container not started yet is not a failure.
                Status::Stopped if deployment.is_some() => {
                    return Ok(Err(format!(
                        "the container is not running (Coolify reports {})",
                        app.status.as_deref().unwrap_or("no status")
                    )));
                }
                Status::Failed { reason } => return Ok(Err(reason)),
                _ => {}
            }
            if Instant::now() >= deadline {
                return Ok(Err(format!(
                    "not healthy in time (Coolify still reports {})",
                    app.status.as_deref().unwrap_or("no status")
                )));
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    /// Puts the previous version's image, description and spec back.
    async fn restore(
        &self,
        uuid: &str,
        previous: Previous,
        secrets: &[SecretValue],
    ) -> std::result::Result<(), String> {
        let update = UpdateApplication {
            description: previous.description,
            docker_registry_image_name: previous.image_name,
            docker_registry_image_tag: previous.image_tag,
            ..UpdateApplication::default()
        };
        self.client
            .update_application(uuid, &update)
            .await
            .map_err(|e| redact(&e.to_string(), secrets))?;
        if let Some(spec) = previous.spec {
            self.put_spec(uuid, &spec, secrets)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Deletes `BMM_SECRET_*` variables the current version no longer has.
    async fn drop_stale_secrets(
        &self,
        uuid: &str,
        keep: &BTreeSet<String>,
        secrets: &[SecretValue],
    ) -> Result<()> {
        let envs = self
            .client
            .envs(uuid)
            .await
            .map_err(|e| self.error(e, secrets))?;
        for env in envs {
            if env.key.starts_with(SECRET_PREFIX) && !keep.contains(&env.key) {
                self.client
                    .delete_env(uuid, &env.uuid)
                    .await
                    .map_err(|e| self.error(e, secrets))?;
            }
        }
        Ok(())
    }

    /// The applications bmm made, with their slugs.
    async fn tagged(&self) -> Result<Vec<(Option<String>, Application)>> {
        let apps = self
            .client
            .list_applications(Some(BMM_TAG))
            .await
            .map_err(|e| self.error(e, &[]))?;
        Ok(apps
            .into_iter()
            .filter(|app| {
                app.name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(NAME_PREFIX))
            })
            .map(|app| {
                let slug = app
                    .description
                    .as_deref()
                    .and_then(parse_marker)
                    .map(|(slug, _)| slug)
                    .filter(|slug| app.name.as_deref() == Some(app_name(slug).as_str()));
                (slug, app)
            })
            .collect())
    }
}

#[async_trait]
impl Deployer for CoolifyDeployer {
    fn target(&self) -> Target {
        Target::Coolify
    }

    async fn deploy(&self, bundle: Bundle) -> Result<Deployment> {
        let slug = bundle.slug().to_owned();
        let version = bundle.version().to_owned();
        let missing: Vec<&str> = bundle
            .spec
            .spec()
            .secrets
            .iter()
            .filter(|s| s.required && bundle.secrets.get(s.name.as_str()).is_none())
            .map(|s| s.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(DeployError::InvalidBundle {
                reason: format!(
                    "{slug} needs the secret(s) {}; give their values",
                    missing.join(", ")
                ),
            });
        }
        let image = self.config.image_for(&slug, &version)?;
        let spec =
            String::from_utf8(bundle.spec_json()?).map_err(|e| DeployError::InvalidBundle {
                reason: format!("the spec is not UTF-8: {e}"),
            })?;
        let env: Vec<NewEnvVar> = bundle
            .secret_env()
            .into_iter()
            .map(|(key, value)| NewEnvVar::new(key, SecretValue::new(value)))
            .collect();
        let secrets: Vec<SecretValue> = bundle.secrets.iter().map(|(_, v)| v.clone()).collect();

        let (uuid, mut previous) = self.prepare(&bundle, &image, &secrets).await?;
        let spec_before = self.put_spec(&uuid, &spec, &secrets).await?;
        if let Some(previous) = &mut previous {
            previous.spec = spec_before;
        }
        if !env.is_empty() {
            bundle.progress(
                BuildStep::Deploy,
                format!(
                    "setting {}",
                    env.iter()
                        .map(NewEnvVar::key)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            self.client
                .upsert_envs(&uuid, &env)
                .await
                .map_err(|e| self.error(e, &secrets))?;
        }

        let mut outcome = self.run_deployment(&bundle, &uuid, &secrets).await?;
        // Coolify has moved traffic to the new container when its own check
        // passed, so a failed probe from here means redeploying the old one.
        let mut switched = false;
        if let Ok(app) = &outcome
            && self.config.probe
        {
            let url = mcp_url(app, &slug)?;
            bundle.progress(BuildStep::HealthCheck, format!("checking {url} from here"));
            if let Err(problem) =
                crate::check_health(&url, bundle.options.health_timeout, || None).await
            {
                outcome = Err(format!(
                    "Coolify reports it healthy, but from here {url} {problem}"
                ));
                switched = true;
            }
        }
        let app = match outcome {
            Ok(app) => app,
            Err(reason) => {
                let mut reason = reason;
                if let Some(previous) = previous {
                    match self.restore(&uuid, previous, &secrets).await {
                        Err(problem) => reason.push_str(&format!(
                            "; putting the previous version back failed too: {problem}"
                        )),
                        Ok(()) if switched => match self.client.deploy(&uuid, false).await {
                            Ok(_) => reason.push_str("; the previous version is being redeployed"),
                            Err(e) => reason.push_str(&format!(
                                "; redeploying the previous version failed: {}",
                                redact(&e.to_string(), &secrets)
                            )),
                        },
                        Ok(()) => {}
                    }
                }
                bundle
                    .options
                    .report(BuildStep::HealthCheck, Level::Error, reason.clone());
                return Err(DeployError::HealthCheckFailed {
                    server: slug,
                    version,
                    reason,
                });
            }
        };
        // Secrets the new version no longer declares go only once it serves,
        // so a failed deploy leaves the old version what it needs.
        let keep: BTreeSet<String> = env.iter().map(|e| e.key().to_owned()).collect();
        self.drop_stale_secrets(&uuid, &keep, &secrets).await?;
        let mut deployment = self.deployment(&app, &slug)?;
        deployment.version = version;
        bundle.progress(
            BuildStep::HealthCheck,
            format!("{slug} serves at {}", deployment.url),
        );
        Ok(deployment)
    }

    async fn status(&self, server: &str) -> Result<Deployment> {
        let app = self.find_or_unknown(server).await?;
        self.deployment(&app, server)
    }

    async fn logs(&self, server: &str, follow: bool) -> Result<LogStream> {
        let app = self.find_or_unknown(server).await?;
        let text = self
            .client
            .logs(&app.uuid, LOG_LINES)
            .await
            .map_err(|e| self.error(e, &[]))?;
        let first: Vec<String> = text.lines().map(str::to_owned).collect();
        let lines: VecDeque<LogLine> = first.iter().map(|t| stdout(t)).collect();
        if !follow {
            return Ok(futures_util::stream::iter(lines.into_iter().map(Ok)).boxed());
        }
        let follower = Follower {
            client: self.client.clone(),
            uuid: app.uuid,
            interval: self.config.log_poll_interval,
            seen: first,
            ready: lines,
            done: false,
        };
        Ok(futures_util::stream::unfold(follower, Follower::next).boxed())
    }

    async fn stop(&self, server: &str) -> Result<()> {
        let app = self.find_or_unknown(server).await?;
        self.client
            .stop(&app.uuid)
            .await
            .map_err(|e| self.error(e, &[]))
    }

    async fn remove(&self, server: &str) -> Result<()> {
        let app = self.find_or_unknown(server).await?;
        self.client
            .delete_application(&app.uuid)
            .await
            .map_err(|e| self.error(e, &[]))
    }

    async fn list(&self) -> Result<Vec<Deployment>> {
        let mut out = Vec::new();
        for (slug, app) in self.tagged().await? {
            if let Some(slug) = slug {
                out.push(self.deployment(&app, &slug)?);
            }
        }
        out.sort_by(|a, b| a.server.cmp(&b.server).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Adopts every running application bmm made; deletes those it cannot
    /// own (named `bmm-…` and tagged but without a readable marker) and
    /// duplicates of one server (keeping a running one).
    async fn reconcile(&self) -> Result<Reconciled> {
        let mut by_slug: BTreeMap<String, Vec<Application>> = BTreeMap::new();
        let mut doomed = Vec::new();
        for (slug, app) in self.tagged().await? {
            match slug {
                Some(slug) => by_slug.entry(slug).or_default().push(app),
                None => doomed.push(app),
            }
        }
        let mut reconciled = Reconciled::default();
        for (slug, mut apps) in by_slug {
            // Keep a running one when there is one, else the first.
            let keep = apps
                .iter()
                .position(|a| status_of(a.status.as_deref()) == Status::Running)
                .unwrap_or(0);
            let kept = apps.remove(keep);
            if status_of(kept.status.as_deref()) == Status::Running {
                reconciled.adopted.push(slug);
            }
            doomed.extend(apps);
        }
        for app in doomed {
            self.client
                .delete_application(&app.uuid)
                .await
                .map_err(|e| self.error(e, &[]))?;
            reconciled.cleaned.push(app.uuid);
        }
        Ok(reconciled)
    }
}

/// Reads a followed log: every `interval`, the last lines again, keeping those not seen yet.
struct Follower {
    client: CoolifyClient,
    uuid: String,
    interval: Duration,
    seen: Vec<String>,
    ready: VecDeque<LogLine>,
    done: bool,
}

impl Follower {
    async fn next(mut self) -> Option<(Result<LogLine>, Self)> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Some((Ok(line), self));
            }
            if self.done {
                return None;
            }
            tokio::time::sleep(self.interval).await;
            match self.client.logs(&self.uuid, LOG_LINES).await {
                Ok(text) => {
                    let now: Vec<String> = text.lines().map(str::to_owned).collect();
                    let fresh = new_lines(&self.seen, &now);
                    self.ready.extend(fresh.iter().map(|t| stdout(t)));
                    self.seen = now;
                }
                // The application is gone: the log ends.
                Err(ApiError::NotFound { .. }) => return None,
                Err(error) => {
                    self.done = true;
                    let error = DeployError::Api {
                        status: error.status().unwrap_or(0),
                        message: error.to_string(),
                    };
                    return Some((Err(error), self));
                }
            }
        }
    }
}

/// The lines of `now` after its overlap with the end of `before` (both are
/// the tail of one growing log).
fn new_lines(before: &[String], now: &[String]) -> Vec<String> {
    let longest = before.len().min(now.len());
    for overlap in (1..=longest).rev() {
        if before[before.len() - overlap..] == now[..overlap] {
            return now[overlap..].to_vec();
        }
    }
    if before.is_empty() || now.is_empty() {
        return now.to_vec();
    }
    // No overlap: more lines came than one read returns; everything is new.
    now.to_vec()
}

fn stdout(text: &str) -> LogLine {
    LogLine {
        source: LogSource::Stdout,
        text: text.to_owned(),
    }
}

fn app_name(slug: &str) -> String {
    format!("{NAME_PREFIX}{slug}")
}

fn marker(slug: &str, version: &str) -> String {
    format!(
        "{MARKER}{slug}@{version} (an MCP server deployed by bmm; bmm manages this application)"
    )
}

/// `bmm:{slug}@{version} …` → (slug, version).
fn parse_marker(description: &str) -> Option<(String, String)> {
    let rest = description.strip_prefix(MARKER)?;
    let token = rest.split_whitespace().next()?;
    let (slug, version) = token.split_once('@')?;
    if slug.is_empty() || version.is_empty() {
        return None;
    }
    Some((slug.to_owned(), version.to_owned()))
}

/// The MCP endpoint of an application: its first domain, path `/mcp/{slug}`
/// (which `bmm run` serves for a single spec as for a folder, like a `Host`).
fn mcp_url(app: &Application, slug: &str) -> Result<Url> {
    let first = app
        .fqdn
        .as_deref()
        .and_then(|f| f.split(',').map(str::trim).find(|d| !d.is_empty()));
    let Some(first) = first else {
        return Err(DeployError::Api {
            status: 0,
            message: format!(
                "Coolify gave application {} no domain; set COOLIFY_DOMAIN or a wildcard domain on the server",
                app.uuid
            ),
        });
    };
    let mut url = Url::parse(first).map_err(|e| DeployError::Api {
        status: 0,
        message: format!(
            "Coolify's domain {first:?} for {} is not a URL: {e}",
            app.uuid
        ),
    })?;
    url.set_path(&format!("/mcp/{slug}"));
    url.set_query(None);
    Ok(url)
}

/// Coolify's `state:health` status as a [`Status`].
fn status_of(status: Option<&str>) -> Status {
    let Some(status) = status else {
        return Status::Starting;
    };
    let (state, health) = status.split_once(':').unwrap_or((status, ""));
    match (state, health) {
        ("running", "unhealthy") => Status::Failed {
            reason: "the container runs but fails its health check".into(),
        },
        ("running", _) => Status::Running,
        ("starting", _) => Status::Starting,
        ("restarting", _) => Status::Restarting { attempt: 1 },
        ("exited" | "stopped", _) => Status::Stopped,
        (other, _) => Status::Failed {
            reason: format!("Coolify reports the application {other}"),
        },
    }
}

/// Replaces each secret value of four characters or more in `text`.
fn redact(text: &str, secrets: &[SecretValue]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        let value = secret.expose_secret();
        if value.len() >= 4 && out.contains(value) {
            out = out.replace(value, "[redacted]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        let text = marker("weather", "1.2.0");
        assert_eq!(
            parse_marker(&text),
            Some(("weather".into(), "1.2.0".into()))
        );
        assert_eq!(parse_marker("a hand-made app"), None);
        assert_eq!(parse_marker("bmm:@1"), None);
    }

    #[test]
    fn coolify_statuses_map() {
        assert_eq!(status_of(Some("running:healthy")), Status::Running);
        assert_eq!(status_of(Some("running:unknown")), Status::Running);
        assert!(matches!(
            status_of(Some("running:unhealthy")),
            Status::Failed { .. }
        ));
        assert_eq!(status_of(Some("starting:unknown")), Status::Starting);
        assert_eq!(
            status_of(Some("restarting:unhealthy")),
            Status::Restarting { attempt: 1 }
        );
        assert_eq!(status_of(Some("exited:unhealthy")), Status::Stopped);
        assert!(matches!(
            status_of(Some("degraded:unhealthy")),
            Status::Failed { .. }
        ));
    }

    #[test]
    fn followed_logs_keep_only_new_lines() {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(new_lines(&v(&["a", "b"]), &v(&["a", "b", "c"])), v(&["c"]));
        assert_eq!(
            new_lines(&v(&["a", "b", "c"]), &v(&["b", "c", "d", "e"])),
            v(&["d", "e"])
        );
        assert_eq!(new_lines(&v(&["a"]), &v(&["a"])), v(&[]));
        assert_eq!(new_lines(&v(&[]), &v(&["x"])), v(&["x"]));
        assert_eq!(new_lines(&v(&["a"]), &v(&["x", "y"])), v(&["x", "y"]));
    }

    #[test]
    fn configuration_from_variables() {
        let vars = |name: &str| {
            match name {
                "COOLIFY_URL" => Some("https://coolify.example.com"),
                "COOLIFY_TOKEN" => Some("1|secret-token-value"),
                "COOLIFY_PROJECT_UUID" => Some("p1"),
                "COOLIFY_SERVER_UUID" => Some("s1"),
                "COOLIFY_IMAGE" => Some("ghcr.io/acme/bmm-{slug}:{version}"),
                "COOLIFY_ENVIRONMENT_NAME" => Some("staging"),
                _ => None,
            }
            .map(str::to_owned)
        };
        let config = CoolifyConfig::from_vars(vars).unwrap();
        assert_eq!(config.environment_name, "staging");
        assert!(!format!("{config:?}").contains("secret-token-value"));
        let image = config.image_for("weather", "1.2.0").unwrap();
        assert_eq!(image.to_string(), "ghcr.io/acme/bmm-weather:1.2.0");
        let deployer = CoolifyDeployer::new(config).unwrap();
        assert!(!format!("{deployer:?}").contains("secret-token-value"));

        let error =
            CoolifyConfig::from_vars(|n| (n == "COOLIFY_URL").then(|| "https://x".to_owned()))
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("COOLIFY_TOKEN") && error.contains("COOLIFY_IMAGE"),
            "{error}"
        );
    }
}
