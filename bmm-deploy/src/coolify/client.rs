//! A typed client for the part of Coolify's REST API (`/api/v1`) that bmm uses.
//!
//! Every call carries the API token as a bearer token. The token is a
//! [`SecretValue`]: it is not in [`CoolifyClient`]'s `Debug`, in an
//! [`ApiError`] or in a log line, and the `Authorization` header is marked
//! sensitive. Only `GET` requests are retried (on 5xx, 429, timeouts and
//! refused connections); a `POST`, `PATCH` or `DELETE` is sent once, since
//! Coolify may have acted on it before the answer was lost.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use bmm_core::SecretValue;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// The longest message from Coolify kept in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 500;

/// An error from Coolify's API or from reaching it.
///
/// None of the variants holds the API token or a request body, so they can be
/// shown to a user and logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Coolify answered 401: the token is missing, wrong, expired or revoked.
    #[error(
        "Coolify rejected the API token (401 Unauthenticated) on {operation}; check COOLIFY_TOKEN: \
         create a token under `Keys & Tokens` / `API tokens` with read and write permissions"
    )]
    Unauthorized {
        /// The call that was refused, e.g. `GET /applications`.
        operation: String,
    },
    /// Coolify answered 403: the token is valid but may not do this.
    #[error("Coolify forbids {operation} for this token (403): {message}")]
    Forbidden {
        /// The call that was refused.
        operation: String,
        /// Coolify's message.
        message: String,
    },
    /// Coolify answered 422: the request was refused field by field.
    #[error("Coolify refused {operation} (422): {message}{}", fields_text(.fields))]
    Validation {
        /// The call that was refused.
        operation: String,
        /// Coolify's summary message.
        message: String,
        /// Coolify's messages per field, e.g. `"name": ["The name field is required."]`.
        fields: BTreeMap<String, Vec<String>>,
    },
    /// Coolify answered 404: the application (or project, server, environment) does not exist.
    #[error("Coolify has no such resource for {operation} (404): {message}")]
    NotFound {
        /// The call that was answered 404.
        operation: String,
        /// Coolify's message.
        message: String,
    },
    /// Coolify answered with another error status.
    #[error("Coolify answered {status} to {operation}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The call that failed.
        operation: String,
        /// Coolify's message, or the start of its body.
        message: String,
    },
    /// No answer within the request timeout (after the retries a `GET` gets).
    #[error("Coolify did not answer {operation} within {timeout:?}")]
    Timeout {
        /// The call that timed out.
        operation: String,
        /// The per-request timeout.
        timeout: Duration,
    },
    /// Coolify could not be reached (connection refused, TLS, DNS).
    #[error("cannot reach Coolify for {operation}: {source}")]
    Transport {
        /// The call that failed.
        operation: String,
        /// The cause, without the request URL.
        #[source]
        source: reqwest::Error,
    },
    /// Coolify's answer did not have the documented shape.
    #[error("unexpected answer from Coolify to {operation}: {message}")]
    Decode {
        /// The call whose answer could not be read.
        operation: String,
        /// What was wrong with it.
        message: String,
    },
    /// The client's configuration is unusable (a base URL that cannot be a base).
    #[error("invalid Coolify configuration: {0}")]
    Config(String),
}

impl ApiError {
    /// The HTTP status Coolify answered, if it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { .. } => Some(401),
            Self::Forbidden { .. } => Some(403),
            Self::NotFound { .. } => Some(404),
            Self::Validation { .. } => Some(422),
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether a retry of an idempotent request might succeed.
    fn is_transient(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status >= 500 || *status == 429,
            Self::Timeout { .. } => true,
            Self::Transport { source, .. } => source.is_connect() || source.is_request(),
            _ => false,
        }
    }
}

fn fields_text(fields: &BTreeMap<String, Vec<String>>) -> String {
    let mut out = String::new();
    for (field, messages) in fields {
        out.push_str(&format!("; {field}: {}", messages.join(" ")));
    }
    out
}

/// How a [`CoolifyClient`] talks to Coolify.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Timeout of one request, connection included.
    pub request_timeout: Duration,
    /// How many times a `GET` is tried in all (1 = no retry).
    pub get_attempts: u32,
    /// The wait before the first retry; it doubles with each further one.
    pub retry_backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            get_attempts: 3,
            retry_backoff: Duration::from_millis(250),
        }
    }
}

/// A client of one Coolify instance's API, authenticated with one token.
///
/// Cheap to clone. `Debug` shows the API URL, never the token.
#[derive(Clone)]
pub struct CoolifyClient {
    http: reqwest::Client,
    api: Url,
    token: SecretValue,
    options: ClientOptions,
}

impl fmt::Debug for CoolifyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoolifyClient")
            .field("api", &self.api.as_str())
            .field("token", &"[redacted]")
            .field("options", &self.options)
            .finish()
    }
}

impl CoolifyClient {
    /// A client of the instance at `base_url` (e.g. `https://coolify.example.com`;
    /// `/api/v1` is added unless the URL already ends with it) using `token`.
    pub fn new(
        base_url: &Url,
        token: SecretValue,
        options: ClientOptions,
    ) -> Result<Self, ApiError> {
        if base_url.cannot_be_a_base() || !matches!(base_url.scheme(), "http" | "https") {
            return Err(ApiError::Config(format!(
                "the Coolify URL must be an http(s) URL, not {base_url}"
            )));
        }
        if !base_url.username().is_empty() || base_url.password().is_some() {
            return Err(ApiError::Config(
                "the Coolify URL must not carry credentials; give the token as COOLIFY_TOKEN"
                    .into(),
            ));
        }
        let mut api = base_url.clone();
        api.set_query(None);
        api.set_fragment(None);
        let path = api.path().trim_end_matches('/').to_owned();
        if path.ends_with("/api/v1") {
            api.set_path(&format!("{path}/"));
        } else {
            api.set_path(&format!("{path}/api/v1/"));
        }
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("bmm-deploy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            api,
            token,
            options,
        })
    }

    /// The API's base URL, ending in `/api/v1/`.
    pub fn api_url(&self) -> &Url {
        &self.api
    }

    /// `GET /applications`, optionally only those with the tag `tag`.
    pub async fn list_applications(&self, tag: Option<&str>) -> Result<Vec<Application>, ApiError> {
        let query: Vec<(&str, String)> = tag.map(|t| ("tag", t.to_owned())).into_iter().collect();
        self.call(Method::GET, &["applications"], &query, None)
            .await
    }

    /// `GET /applications/{uuid}`.
    pub async fn application(&self, uuid: &str) -> Result<Application, ApiError> {
        self.call(Method::GET, &["applications", uuid], &[], None)
            .await
    }

    /// `POST /applications/dockerimage`: creates an application from a pushed
    /// image; answers its UUID.
    pub async fn create_dockerimage_application(
        &self,
        request: &CreateDockerImageApplication,
    ) -> Result<String, ApiError> {
        let body = to_body(request)?;
        let created: Created = self
            .call(
                Method::POST,
                &["applications", "dockerimage"],
                &[],
                Some(body),
            )
            .await?;
        Ok(created.uuid)
    }

    /// `PATCH /applications/{uuid}`: changes the given fields.
    pub async fn update_application(
        &self,
        uuid: &str,
        request: &UpdateApplication,
    ) -> Result<(), ApiError> {
        let body = to_body(request)?;
        let _: Value = self
            .call(Method::PATCH, &["applications", uuid], &[], Some(body))
            .await?;
        Ok(())
    }

    /// `DELETE /applications/{uuid}`, removing its configuration, volumes and
    /// networks too.
    pub async fn delete_application(&self, uuid: &str) -> Result<(), ApiError> {
        let query = [
            ("delete_configurations", "true".to_owned()),
            ("delete_volumes", "true".to_owned()),
            ("docker_cleanup", "true".to_owned()),
            ("delete_connected_networks", "true".to_owned()),
        ];
        let _: Value = self
            .call(Method::DELETE, &["applications", uuid], &query, None)
            .await?;
        Ok(())
    }

    /// `GET /applications/{uuid}/envs`: the names of the application's
    /// environment variables. Their values, which Coolify also answers, are
    /// dropped unread.
    pub async fn envs(&self, uuid: &str) -> Result<Vec<EnvVar>, ApiError> {
        self.call(Method::GET, &["applications", uuid, "envs"], &[], None)
            .await
    }

    /// `PATCH /applications/{uuid}/envs/bulk`: creates or updates these variables.
    pub async fn upsert_envs(&self, uuid: &str, envs: &[NewEnvVar]) -> Result<(), ApiError> {
        let body =
            serde_json::json!({ "data": envs.iter().map(NewEnvVar::to_json).collect::<Vec<_>>() });
        let _: Value = self
            .call(
                Method::PATCH,
                &["applications", uuid, "envs", "bulk"],
                &[],
                Some(body),
            )
            .await?;
        Ok(())
    }

    /// `DELETE /applications/{uuid}/envs/{env_uuid}`.
    pub async fn delete_env(&self, uuid: &str, env_uuid: &str) -> Result<(), ApiError> {
        let _: Value = self
            .call(
                Method::DELETE,
                &["applications", uuid, "envs", env_uuid],
                &[],
                None,
            )
            .await?;
        Ok(())
    }

    /// `POST /deploy?uuid=…`: queues a deployment of the application; answers
    /// what Coolify queued.
    pub async fn deploy(&self, uuid: &str, force: bool) -> Result<Vec<QueuedDeployment>, ApiError> {
        let query = [("uuid", uuid.to_owned()), ("force", force.to_string())];
        let answer: DeployAnswer = self.call(Method::POST, &["deploy"], &query, None).await?;
        Ok(answer.deployments)
    }

    /// `GET /deployments/{uuid}`: a deployment's state (`queued`,
    /// `in_progress`, `finished`, `failed`, `cancelled-by-user`).
    pub async fn deployment(&self, deployment_uuid: &str) -> Result<DeploymentState, ApiError> {
        self.call(Method::GET, &["deployments", deployment_uuid], &[], None)
            .await
    }

    /// `GET /applications/{uuid}/storages`: the application's file mounts.
    pub async fn file_storages(&self, uuid: &str) -> Result<Vec<FileStorage>, ApiError> {
        #[derive(Deserialize)]
        struct Storages {
            #[serde(default)]
            file_storages: Vec<FileStorage>,
        }
        let storages: Storages = self
            .call(Method::GET, &["applications", uuid, "storages"], &[], None)
            .await?;
        Ok(storages.file_storages)
    }

    /// `POST /applications/{uuid}/storages` for a file mounted at `mount_path`
    /// holding `content`; `PATCH` of the existing one (`storage_uuid`) instead
    /// when given.
    pub async fn put_file(
        &self,
        uuid: &str,
        storage_uuid: Option<&str>,
        mount_path: &str,
        content: &str,
    ) -> Result<(), ApiError> {
        let (method, body) = match storage_uuid {
            Some(storage) => (
                Method::PATCH,
                serde_json::json!({"uuid": storage, "type": "file", "mount_path": mount_path, "content": content}),
            ),
            None => (
                Method::POST,
                serde_json::json!({"type": "file", "mount_path": mount_path, "content": content}),
            ),
        };
        let _: Value = self
            .call(method, &["applications", uuid, "storages"], &[], Some(body))
            .await?;
        Ok(())
    }

    /// `POST /applications/{uuid}/stop`.
    pub async fn stop(&self, uuid: &str) -> Result<(), ApiError> {
        let _: Value = self
            .call(Method::POST, &["applications", uuid, "stop"], &[], None)
            .await?;
        Ok(())
    }

    /// `GET /applications/{uuid}/logs?lines=…`: the last `lines` lines of the
    /// running container's output.
    pub async fn logs(&self, uuid: &str, lines: u32) -> Result<String, ApiError> {
        let query = [("lines", lines.to_string())];
        let answer: LogsAnswer = self
            .call(Method::GET, &["applications", uuid, "logs"], &query, None)
            .await?;
        Ok(answer.logs.unwrap_or_default())
    }

    /// Sends one call, retrying a `GET` on transient failures, and decodes the answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<T, ApiError> {
        let operation = operation_name(&method, segments);
        let mut url = self.api.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| ApiError::Config("the Coolify URL cannot be a base".into()))?;
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let attempts = if method == Method::GET {
            self.options.get_attempts.max(1)
        } else {
            1
        };
        let mut backoff = self.options.retry_backoff;
        let mut attempt = 1;
        loop {
            let result = self
                .once(method.clone(), url.clone(), body.as_ref(), &operation)
                .await;
            match result {
                Err(error) if attempt < attempts && error.is_transient() => {
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
                Err(error) => return Err(error),
                Ok(bytes) => {
                    // An empty success body reads as `null`, for calls whose answer is unused.
                    let value: Value = if bytes.is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
                            operation: operation.clone(),
                            message: format!("not JSON: {e}"),
                        })?
                    };
                    return serde_json::from_value(value).map_err(|e| ApiError::Decode {
                        operation,
                        message: e.to_string(),
                    });
                }
            }
        }
    }

    async fn once(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        operation: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                ApiError::Timeout {
                    operation: operation.to_owned(),
                    timeout: self.options.request_timeout,
                }
            } else {
                ApiError::Transport {
                    operation: operation.to_owned(),
                    source: e.without_url(),
                }
            }
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        Err(error_from(status, &bytes, operation))
    }
}

/// A call's name for errors, e.g. `GET /applications/abc123`: UUIDs are not
/// secrets, and they help the reader find the resource.
fn operation_name(method: &Method, segments: &[&str]) -> String {
    format!("{method} /{}", segments.join("/"))
}

fn to_body<T: Serialize>(request: &T) -> Result<Value, ApiError> {
    serde_json::to_value(request)
        .map_err(|e| ApiError::Config(format!("cannot encode a request: {e}")))
}

/// The error for a non-success answer, from Coolify's `{"message", "errors"}` body.
fn error_from(status: StatusCode, body: &[u8], operation: &str) -> ApiError {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Option<String>,
        errors: Option<BTreeMap<String, Value>>,
    }
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|b| b.message.clone())
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let message = clip(message.trim());
    let operation = operation.to_owned();
    match status.as_u16() {
        401 => ApiError::Unauthorized { operation },
        403 => ApiError::Forbidden { operation, message },
        404 => ApiError::NotFound { operation, message },
        422 => {
            let fields = parsed
                .and_then(|b| b.errors)
                .unwrap_or_default()
                .into_iter()
                .map(|(field, messages)| {
                    let messages = match messages {
                        Value::Array(items) => items
                            .iter()
                            .map(|m| clip(m.as_str().unwrap_or_default()))
                            .collect(),
                        Value::String(one) => vec![clip(&one)],
                        other => vec![clip(&other.to_string())],
                    };
                    (field, messages)
                })
                .collect();
            ApiError::Validation {
                operation,
                message,
                fields,
            }
        }
        status => ApiError::Api {
            status,
            operation,
            message,
        },
    }
}

fn clip(text: &str) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
    out.push('…');
    out
}

/// An application as `GET /applications` answers it: the fields bmm reads.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Application {
    /// Its UUID.
    pub uuid: String,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// Its URLs, comma-separated.
    #[serde(default)]
    pub fqdn: Option<String>,
    /// The image it runs, without the tag.
    #[serde(default)]
    pub docker_registry_image_name: Option<String>,
    /// The image's tag.
    #[serde(default)]
    pub docker_registry_image_tag: Option<String>,
    /// Coolify's status, e.g. `running:healthy`, `exited:unhealthy`, `restarting:unknown`.
    #[serde(default)]
    pub status: Option<String>,
}

/// The body of `POST /applications/dockerimage`.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct CreateDockerImageApplication {
    /// The project to create it in.
    pub project_uuid: String,
    /// The server to run it on.
    pub server_uuid: String,
    /// The environment's name.
    pub environment_name: String,
    /// The environment's UUID. The document requires the field; Coolify needs
    /// one of name and UUID, and reads an empty string as absent.
    pub environment_uuid: String,
    /// The image without its tag, e.g. `ghcr.io/acme/bmm-weather`.
    pub docker_registry_image_name: String,
    /// The image's tag.
    pub docker_registry_image_tag: String,
    /// The container port(s) to expose, e.g. `8080`.
    pub ports_exposes: String,
    /// The application's name.
    pub name: String,
    /// The application's description.
    pub description: String,
    /// Tags to find it by.
    pub tags: Vec<String>,
    /// Public URLs, comma-separated; empty lets Coolify generate one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domains: Option<String>,
    /// Whether Coolify checks the container's health.
    pub health_check_enabled: bool,
    /// The path of the health check, e.g. `/healthz`.
    pub health_check_path: String,
    /// Whether to deploy right away (bmm sets the environment first, then deploys).
    pub instant_deploy: bool,
}

impl CreateDockerImageApplication {
    /// A request with the required fields set and Coolify's defaults for the rest.
    pub fn new(
        project_uuid: impl Into<String>,
        server_uuid: impl Into<String>,
        environment_name: impl Into<String>,
        image: &ImageRef,
    ) -> Self {
        Self {
            project_uuid: project_uuid.into(),
            server_uuid: server_uuid.into(),
            environment_name: environment_name.into(),
            docker_registry_image_name: image.name.clone(),
            docker_registry_image_tag: image.tag.clone(),
            ..Self::default()
        }
    }
}

/// The body of `PATCH /applications/{uuid}`: only the fields that are `Some` change.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct UpdateApplication {
    /// A new name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A new image (without the tag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_registry_image_name: Option<String>,
    /// A new image tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_registry_image_tag: Option<String>,
}

/// An environment variable of an application, by name; its value is not kept.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnvVar {
    /// Its UUID, for deleting it.
    pub uuid: String,
    /// Its name.
    pub key: String,
}

/// An environment variable to set. `Debug` shows the name only.
#[derive(Clone)]
pub struct NewEnvVar {
    key: String,
    value: SecretValue,
}

impl NewEnvVar {
    /// A variable `key` with the value `value`, set literally (no `$` interpolation)
    /// and shown only once in Coolify's interface.
    pub fn new(key: impl Into<String>, value: SecretValue) -> Self {
        Self {
            key: key.into(),
            value,
        }
    }

    /// Its name.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The JSON Coolify takes; the value leaves here, for the request body only.
    fn to_json(&self) -> Value {
        serde_json::json!({
            "key": self.key,
            "value": self.value.expose_secret(),
            "is_literal": true,
            "is_shown_once": true,
            "is_preview": false,
        })
    }
}

impl fmt::Debug for NewEnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewEnvVar")
            .field("key", &self.key)
            .field("value", &"[redacted]")
            .finish()
    }
}

/// One deployment Coolify queued.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueuedDeployment {
    /// Coolify's message, e.g. `Application … deployment queued.`
    #[serde(default)]
    pub message: Option<String>,
    /// The application's UUID.
    #[serde(default)]
    pub resource_uuid: Option<String>,
    /// The deployment's UUID.
    #[serde(default)]
    pub deployment_uuid: Option<String>,
}

/// A deployment as `GET /deployments/{uuid}` answers it: the fields bmm reads.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeploymentState {
    /// Its UUID.
    #[serde(default)]
    pub deployment_uuid: Option<String>,
    /// `queued`, `in_progress`, `finished`, `failed` or `cancelled-by-user`.
    #[serde(default)]
    pub status: Option<String>,
    /// Coolify's deployment log: a JSON array of `{output, hidden, …}` entries, as a string.
    #[serde(default)]
    pub logs: Option<String>,
}

impl DeploymentState {
    /// The last `n` visible lines of the deployment log.
    pub fn last_log_lines(&self, n: usize) -> Vec<String> {
        #[derive(Deserialize)]
        struct Entry {
            #[serde(default)]
            output: String,
            #[serde(default)]
            hidden: bool,
        }
        let entries: Vec<Entry> = self
            .logs
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        let lines: Vec<String> = entries
            .into_iter()
            .filter(|e| !e.hidden)
            .flat_map(|e| e.output.lines().map(str::to_owned).collect::<Vec<_>>())
            .filter(|line| !line.trim().is_empty())
            .collect();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }
}

/// A file Coolify mounts into an application's container.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileStorage {
    /// Its UUID.
    #[serde(default)]
    pub uuid: Option<String>,
    /// Where it is mounted in the container.
    #[serde(default)]
    pub mount_path: Option<String>,
    /// Its content.
    #[serde(default)]
    pub content: Option<String>,
}

impl fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStorage")
            .field("uuid", &self.uuid)
            .field("mount_path", &self.mount_path)
            .field("content_bytes", &self.content.as_ref().map(String::len))
            .finish()
    }
}

/// A docker image reference split as Coolify wants it: name and tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// The repository, with its registry, e.g. `ghcr.io/acme/bmm`.
    pub name: String,
    /// The tag, e.g. `0.1.0` (`latest` when the reference has none).
    pub tag: String,
}

impl ImageRef {
    /// Parses `registry/name:tag` (a registry port is not taken for a tag;
    /// digests, `name@sha256:…`, are refused since Coolify takes a tag).
    pub fn parse(reference: &str) -> Result<Self, ApiError> {
        let reference = reference.trim();
        if reference.is_empty()
            || reference.contains('@')
            || reference.contains(char::is_whitespace)
        {
            return Err(ApiError::Config(format!(
                "`{reference}` is not a docker image reference of the form name:tag"
            )));
        }
        let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match reference[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&reference[..at], &reference[at + 1..])
            }
            None => (reference, "latest"),
        };
        if name.is_empty() || tag.is_empty() {
            return Err(ApiError::Config(format!(
                "`{reference}` is not a docker image reference of the form name:tag"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

#[derive(Deserialize)]
struct Created {
    uuid: String,
}

#[derive(Deserialize)]
struct DeployAnswer {
    #[serde(default)]
    deployments: Vec<QueuedDeployment>,
}

#[derive(Deserialize)]
struct LogsAnswer {
    logs: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_at_the_tag() {
        let check = |text: &str, name: &str, tag: &str| {
            let image = ImageRef::parse(text).unwrap();
            assert_eq!(
                (image.name.as_str(), image.tag.as_str()),
                (name, tag),
                "{text}"
            );
        };
        check("ghcr.io/acme/bmm:1.2.0", "ghcr.io/acme/bmm", "1.2.0");
        check("localhost:5000/bmm", "localhost:5000/bmm", "latest");
        check("localhost:5000/bmm:dev", "localhost:5000/bmm", "dev");
        check("bmm", "bmm", "latest");
        for bad in ["", "bmm:", ":tag", "bmm@sha256:abc", "a b:c"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_api_url_gets_its_prefix_once() {
        let token = || SecretValue::new("t0ken-value");
        let options = ClientOptions::default;
        for (given, api) in [
            ("https://c.example.com", "https://c.example.com/api/v1/"),
            ("https://c.example.com/", "https://c.example.com/api/v1/"),
            (
                "https://c.example.com/api/v1",
                "https://c.example.com/api/v1/",
            ),
            (
                "https://x.example/coolify/",
                "https://x.example/coolify/api/v1/",
            ),
        ] {
            let client =
                CoolifyClient::new(&Url::parse(given).unwrap(), token(), options()).unwrap();
            assert_eq!(client.api_url().as_str(), api);
            assert!(!format!("{client:?}").contains("t0ken-value"));
        }
        let with_password = Url::parse("https://u:p@c.example.com").unwrap();
        assert!(CoolifyClient::new(&with_password, token(), options()).is_err());
    }

    #[test]
    fn error_bodies_become_typed_errors() {
        let body = br#"{"message":"Validation failed.","errors":{"name":["The name field is required."],"ports_exposes":"bad"}}"#;
        match error_from(StatusCode::UNPROCESSABLE_ENTITY, body, "POST /x") {
            ApiError::Validation {
                fields, message, ..
            } => {
                assert_eq!(message, "Validation failed.");
                assert_eq!(fields["name"], vec!["The name field is required."]);
                assert_eq!(fields["ports_exposes"], vec!["bad"]);
            }
            other => panic!("{other:?}"),
        }
        let unauthorized = error_from(StatusCode::UNAUTHORIZED, b"{}", "GET /applications");
        assert!(unauthorized.to_string().contains("COOLIFY_TOKEN"));
        match error_from(
            StatusCode::BAD_GATEWAY,
            b"<html>bad gateway</html>",
            "GET /x",
        ) {
            ApiError::Api {
                status, message, ..
            } => {
                assert_eq!(status, 502);
                assert_eq!(message, "<html>bad gateway</html>");
            }
            other => panic!("{other:?}"),
        }
        let long = "x".repeat(2000);
        let clipped = error_from(StatusCode::INTERNAL_SERVER_ERROR, long.as_bytes(), "GET /x");
        assert!(clipped.to_string().len() < 700);
    }

    #[test]
    fn env_vars_do_not_print_their_values() {
        let env = NewEnvVar::new("BMM_SECRET_API_KEY", SecretValue::new("sk-very-secret"));
        assert!(!format!("{env:?}").contains("sk-very-secret"));
        assert_eq!(env.to_json()["value"], "sk-very-secret");
    }
}
