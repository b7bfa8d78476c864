//! A local fake of Coolify's API that holds every request to its published
//! OpenAPI document (feature `coolify-fake`).
//!
//! [`FakeCoolify::start`] serves on `127.0.0.1:0`. Each request is checked
//! first: its path must match a templated path of the document, its method
//! an operation of that path, it must carry a bearer token, its query
//! parameters must be declared with values of their type, and its JSON body
//! must satisfy the operation's request schema (see [`document`] for the two
//! adjustments made to the document). A request that fails is answered 400
//! and recorded as a [`Violation`]; a test asserts [`FakeCoolify::violations`]
//! is empty. The fake's own answers are checked against the documented
//! response schemas too, and a mismatch is recorded the same way.
//!
//! A valid request is answered as Coolify would, from state the fake keeps:
//! applications created from docker images, their environment variables,
//! status (`starting:unknown` after a deployment, then `running:healthy` a
//! few reads later, or `exited:unhealthy` when told to fail) and logs.
//! [`FakeCoolify::inject`] makes it answer a chosen operation with 401, 422,
//! 500 (or any status) instead.

pub mod document;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bmm_core::SecretValue;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use url::Url;

pub use document::DocumentError;
use document::{Document, Request};

/// The fake cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeError {
    /// The document cannot be used as a checker.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// It cannot listen on loopback.
    #[error("the fake cannot listen on 127.0.0.1: {0}")]
    Io(#[from] std::io::Error),
    /// Its own URL does not parse.
    #[error("the fake's URL does not parse: {0}")]
    Url(#[from] url::ParseError),
}

/// The project, server and environment the fake knows.
pub const PROJECT_UUID: &str = "p0ject0000000000000000a1";
/// See [`PROJECT_UUID`].
pub const SERVER_UUID: &str = "s0rver0000000000000000b2";
/// See [`PROJECT_UUID`].
pub const ENVIRONMENT_NAME: &str = "production";
/// See [`PROJECT_UUID`].
pub const ENVIRONMENT_UUID: &str = "env0000000000000000000c3";

/// A request the document does not allow, or an answer it does not promise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// What was wrong.
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.method, self.path, self.problem)
    }
}

/// A request the fake received: which operation, with which query. Bodies are
/// not kept, as they may hold secret values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// The document's `operationId`, when the request matched one.
    pub operation: Option<String>,
    /// The query parameters.
    pub query: Vec<(String, String)>,
}

/// A scripted answer: the next `times` valid requests for `operation` get
/// `status` and `body` instead of the real answer.
#[derive(Clone, Debug)]
pub struct Failure {
    operation: String,
    status: u16,
    body: Option<Value>,
    times: u32,
}

impl Failure {
    /// Answer the next request for the operation `operation_id` (the
    /// document's `operationId`, e.g. `create-dockerimage-application`) with `status`.
    pub fn new(operation_id: impl Into<String>, status: u16) -> Self {
        Self {
            operation: operation_id.into(),
            status,
            body: None,
            times: 1,
        }
    }

    /// Answer this many requests so (default 1).
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// Answer this body instead of Coolify's usual one for the status.
    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn default_body(&self) -> Value {
        match self.status {
            401 => json!({"message": "Unauthenticated."}),
            404 => json!({"message": "Resource not found."}),
            422 => json!({
                "message": "Validation failed.",
                "errors": {"docker_registry_image_name": ["The docker registry image name field is required."]}
            }),
            429 => json!({"message": "Rate limit exceeded. Please try again later."}),
            _ => json!({"message": "Server Error"}),
        }
    }
}

/// An application the fake holds. `Debug` leaves out the variables' values.
#[derive(Clone)]
pub struct FakeApp {
    /// Its UUID.
    pub uuid: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The image, without its tag.
    pub image_name: String,
    /// The image's tag.
    pub image_tag: String,
    /// The exposed port(s).
    pub ports_exposes: String,
    /// The health check path.
    pub health_check_path: String,
    /// Coolify's status string.
    pub status: String,
    /// Its URL.
    pub fqdn: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its environment variables.
    pub envs: BTreeMap<String, SecretValue>,
    /// Its log lines, oldest first.
    pub logs: Vec<String>,
    /// How many deployments were queued for it.
    pub deployments: u32,
    /// The image the running container was started from, if one runs.
    pub serving: Option<String>,
    /// Files mounted into the container, by mount path.
    pub files: BTreeMap<String, String>,
    env_uuids: BTreeMap<String, String>,
    file_uuids: BTreeMap<String, String>,
    pending: Option<Pending>,
}

/// A deployment on its way: how many more reads until it settles.
#[derive(Clone, Debug)]
struct Pending {
    deployment: String,
    reads_left: u32,
}

impl fmt::Debug for FakeApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeApp")
            .field("uuid", &self.uuid)
            .field("name", &self.name)
            .field("image", &format!("{}:{}", self.image_name, self.image_tag))
            .field("status", &self.status)
            .field("serving", &self.serving)
            .field("envs", &self.envs.keys().collect::<Vec<_>>())
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .field("deployments", &self.deployments)
            .finish_non_exhaustive()
    }
}

/// The running fake. It stops when dropped.
pub struct FakeCoolify {
    addr: SocketAddr,
    url: Url,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl fmt::Debug for FakeCoolify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeCoolify")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeCoolify {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    document: Document,
    token: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    apps: BTreeMap<String, FakeApp>,
    /// Deployment UUID → (application UUID, status).
    deployments: BTreeMap<String, (String, String)>,
    violations: Vec<Violation>,
    received: Vec<Received>,
    failures: Vec<Failure>,
    counter: u64,
    reads_to_settle: u32,
    fail_deployments: bool,
}

impl FakeCoolify {
    /// Starts a fake of the API `document` describes (Coolify's OpenAPI
    /// document, as JSON), accepting the API token `token`.
    pub async fn start(document: &Value, token: &str) -> Result<Self, FakeError> {
        let document = Document::new(document)?;
        let shared = Arc::new(Shared {
            document,
            token: token.to_owned(),
            state: Mutex::new(State {
                reads_to_settle: 2,
                ..State::default()
            }),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let url = Url::parse(&format!("http://{addr}/"))?;
        let handler_shared = Arc::clone(&shared);
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let shared = Arc::clone(&handler_shared);
                async move { shared.handle(&method, &uri, &headers, &body) }
            },
        );
        let task = tokio::spawn(async move {
            // The fake lives as long as its owner; a failing accept loop ends it.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            url,
            shared,
            task,
        })
    }

    /// The instance's URL, to give a client as `COOLIFY_URL` (the API is under `/api/v1`).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// How many templated paths the document has.
    pub fn document_paths(&self) -> usize {
        self.shared.document.path_count()
    }

    /// Every violation recorded so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.state().violations.clone()
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state().received.clone()
    }

    /// A snapshot of the applications.
    pub fn apps(&self) -> Vec<FakeApp> {
        self.state().apps.values().cloned().collect()
    }

    /// Scripts an answer (see [`Failure`]).
    pub fn inject(&self, failure: Failure) {
        self.state().failures.push(failure);
    }

    /// Deployments from now on fail (true) or succeed (false). A failed
    /// deployment leaves a running container serving (Coolify's rolling
    /// update with a health check); with none running, the application ends
    /// `exited:unhealthy`.
    pub fn fail_deployments(&self, fail: bool) {
        self.state().fail_deployments = fail;
    }

    /// How many reads of an application or deployment a deployment stays
    /// in progress for (default 2).
    pub fn reads_to_settle(&self, reads: u32) {
        self.state().reads_to_settle = reads;
    }

    /// Sets an application's status, as if its container changed.
    pub fn set_status(&self, uuid: &str, status: &str) {
        if let Some(app) = self.state().apps.get_mut(uuid) {
            app.status = status.to_owned();
        }
    }

    /// Appends a line to an application's logs.
    pub fn push_log(&self, uuid: &str, line: &str) {
        if let Some(app) = self.state().apps.get_mut(uuid) {
            app.logs.push(line.to_owned());
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }
}

type Answer = (u16, Value);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent enough state for a fake.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn handle(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
        let query: Vec<(String, String)> = uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &header::HeaderValue| v.to_str().ok())
        };
        let request = Request {
            method: method.as_str(),
            path: uri.path(),
            query: &query,
            authorization: text(header::AUTHORIZATION),
            content_type: text(header::CONTENT_TYPE),
            body,
        };
        let checked = self.document.check(&request);
        let mut state = self.lock();
        state.received.push(Received {
            method: method.to_string(),
            path: uri.path().to_owned(),
            operation: checked.as_ref().ok().map(|m| m.operation.id.clone()),
            query: query.clone(),
        });
        let matched = match checked {
            Ok(matched) => matched,
            Err(problems) => {
                for problem in &problems {
                    state.violations.push(Violation {
                        method: method.to_string(),
                        path: uri.path().to_owned(),
                        problem: problem.clone(),
                    });
                }
                return reply(
                    400,
                    &json!({"message": format!("Bad request: {}", problems.join("; "))}),
                );
            }
        };
        let operation = matched.operation;
        // The document is satisfied; now the token itself, as Coolify checks it.
        let token_ok = request
            .authorization
            .and_then(|h| h.split_once(' '))
            .is_some_and(|(_, token)| token.trim() == self.token);
        if !token_ok {
            return reply(401, &json!({"message": "Unauthenticated."}));
        }
        if let Some(i) = state
            .failures
            .iter()
            .position(|f| f.operation == operation.id && f.times > 0)
        {
            let failure = &mut state.failures[i];
            failure.times -= 1;
            let answer = failure
                .body
                .clone()
                .unwrap_or_else(|| failure.default_body());
            return reply(failure.status, &answer);
        }
        let (status, answer) = state.answer(
            &operation.id,
            &matched.path_params,
            &query,
            matched.body.as_ref(),
        );
        for problem in self.document.check_answer(operation, status, &answer) {
            state.violations.push(Violation {
                method: method.to_string(),
                path: uri.path().to_owned(),
                problem,
            });
        }
        reply(status, &answer)
    }
}

fn reply(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body.clone())).into_response()
}

fn not_found(what: &str) -> Answer {
    (404, json!({"message": format!("{what} not found.")}))
}

fn text(body: Option<&Value>, field: &str) -> Option<String> {
    body.and_then(|b| b.get(field))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

impl State {
    fn next_uuid(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!(
            "{prefix}{:0>width$}",
            self.counter,
            width = 24 - prefix.len()
        )
    }

    /// Answers one request the document allows.
    fn answer(
        &mut self,
        operation: &str,
        path: &BTreeMap<String, String>,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Answer {
        let uuid = path.get("uuid").cloned().unwrap_or_default();
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        match operation {
            "list-applications" => {
                let tag = param("tag");
                let all: Vec<String> = self.apps.keys().cloned().collect();
                for app in all {
                    self.advance(&app);
                }
                let uuids: Vec<String> = self
                    .apps
                    .values()
                    .filter(|app| tag.as_ref().is_none_or(|t| app.tags.contains(t)))
                    .map(|app| app.uuid.clone())
                    .collect();
                let list: Vec<Value> = uuids.iter().filter_map(|u| self.view(u)).collect();
                (200, Value::Array(list))
            }
            "get-application-by-uuid" => match self.read(&uuid) {
                Some(app) => (200, app),
                None => not_found("Application"),
            },
            "create-dockerimage-application" => self.create(body),
            "update-application-by-uuid" => {
                let Some(app) = self.apps.get_mut(&uuid) else {
                    return not_found("Application");
                };
                if let Some(name) = text(body, "name") {
                    app.name = name;
                }
                if let Some(description) = text(body, "description") {
                    app.description = description;
                }
                if let Some(image) = text(body, "docker_registry_image_name") {
                    app.image_name = image;
                }
                if let Some(tag) = text(body, "docker_registry_image_tag") {
                    app.image_tag = tag;
                }
                (200, json!({"uuid": uuid}))
            }
            "delete-application-by-uuid" => match self.apps.remove(&uuid) {
                Some(_) => (
                    200,
                    json!({"message": "Application deletion request queued."}),
                ),
                None => not_found("Application"),
            },
            "list-envs-by-application-uuid" => {
                let Some(app) = self.apps.get(&uuid) else {
                    return not_found("Application");
                };
                let list = app
                    .envs
                    .iter()
                    .map(|(key, value)| env_json(app, key, value))
                    .collect();
                (200, Value::Array(list))
            }
            "update-envs-by-application-uuid" => {
                let items: Vec<Value> = body
                    .and_then(|b| b.get("data"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !self.apps.contains_key(&uuid) {
                    return not_found("Application");
                }
                let mut answers = Vec::new();
                for item in items {
                    let (Some(key), Some(value)) =
                        (text(Some(&item), "key"), text(Some(&item), "value"))
                    else {
                        return (
                            422,
                            json!({"message": "Validation failed.", "errors": {"data": ["Each item needs a key and a value."]}}),
                        );
                    };
                    let env_uuid = self.next_uuid("env");
                    let Some(app) = self.apps.get_mut(&uuid) else {
                        return not_found("Application");
                    };
                    app.env_uuids.entry(key.clone()).or_insert(env_uuid);
                    let value = SecretValue::new(value);
                    answers.push(env_json(app, &key, &value));
                    app.envs.insert(key, value);
                }
                (201, Value::Array(answers))
            }
            "delete-env-by-application-uuid" => {
                let Some(app) = self.apps.get_mut(&uuid) else {
                    return not_found("Application");
                };
                let env_uuid = path.get("env_uuid").cloned().unwrap_or_default();
                let key = app
                    .env_uuids
                    .iter()
                    .find(|(_, u)| **u == env_uuid)
                    .map(|(k, _)| k.clone());
                let Some(key) = key else {
                    return not_found("Environment variable");
                };
                app.env_uuids.remove(&key);
                app.envs.remove(&key);
                (200, json!({"message": "Environment variable deleted."}))
            }
            "deploy-by-tag-or-uuid" => {
                let mut targets: Vec<String> = param("uuid")
                    .map(|u| u.split(',').map(|s| s.trim().to_owned()).collect())
                    .unwrap_or_default();
                if let Some(tags) = param("tag") {
                    for tag in tags.split(',') {
                        let tagged = self
                            .apps
                            .values()
                            .filter(|a| a.tags.iter().any(|t| t == tag.trim()));
                        targets.extend(tagged.map(|a| a.uuid.clone()).collect::<Vec<_>>());
                    }
                }
                let mut deployments = Vec::new();
                for target in targets {
                    if !self.apps.contains_key(&target) {
                        continue;
                    }
                    let deployment = self.start_deployment(&target);
                    deployments.push(json!({
                        "message": format!("Application {target} deployment queued."),
                        "resource_uuid": target,
                        "deployment_uuid": deployment,
                    }));
                }
                if deployments.is_empty() {
                    return (400, json!({"message": "No resources found."}));
                }
                (200, json!({"deployments": deployments}))
            }
            "start-application-by-uuid" => {
                if !self.apps.contains_key(&uuid) {
                    return not_found("Application");
                }
                let deployment = self.start_deployment(&uuid);
                (
                    200,
                    json!({"message": "Deployment request queued.", "deployment_uuid": deployment}),
                )
            }
            "stop-application-by-uuid" => {
                let Some(app) = self.apps.get_mut(&uuid) else {
                    return not_found("Application");
                };
                app.status = "exited:unhealthy".into();
                app.serving = None;
                app.pending = None;
                app.logs.push("bmm: shutting down".into());
                (
                    200,
                    json!({"message": "Application stopping request queued."}),
                )
            }
            "get-deployment-by-uuid" => {
                let Some((app_uuid, _)) = self.deployments.get(&uuid).cloned() else {
                    return not_found("Deployment");
                };
                self.advance(&app_uuid);
                let status = self
                    .deployments
                    .get(&uuid)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_default();
                let logs = json!([{"output": format!("Deployment {uuid}: {status}."), "type": "stdout", "hidden": false}]);
                (
                    200,
                    json!({
                        "id": 1,
                        "application_id": app_uuid,
                        "deployment_uuid": uuid,
                        "status": status,
                        "logs": logs.to_string(),
                        "created_at": "2026-01-01T00:00:00.000000Z",
                        "updated_at": "2026-01-01T00:00:00.000000Z",
                    }),
                )
            }
            "list-storages-by-application-uuid" => {
                let Some(app) = self.apps.get(&uuid) else {
                    return not_found("Application");
                };
                let files: Vec<Value> = app
                    .files
                    .iter()
                    .map(|(path, content)| {
                        json!({
                            "uuid": app.file_uuids.get(path).cloned().unwrap_or_default(),
                            "mount_path": path,
                            "content": content,
                            "is_directory": false,
                        })
                    })
                    .collect();
                (
                    200,
                    json!({"persistent_storages": [], "file_storages": files}),
                )
            }
            "create-storage-by-application-uuid" | "update-storage-by-application-uuid" => {
                let creating = operation == "create-storage-by-application-uuid";
                let kind = text(body, "type").unwrap_or_default();
                let mount_path = text(body, "mount_path");
                let content = text(body, "content").unwrap_or_default();
                let storage_uuid = text(body, "uuid");
                let new_uuid = self.next_uuid("sto");
                let Some(app) = self.apps.get_mut(&uuid) else {
                    return not_found("Application");
                };
                if kind != "file" {
                    return (
                        422,
                        json!({"message": "Validation failed.", "errors": {"type": ["The fake keeps file storages only."]}}),
                    );
                }
                let path = if creating {
                    let Some(path) = mount_path else {
                        return (
                            422,
                            json!({"message": "Validation failed.", "errors": {"mount_path": ["The mount path field is required."]}}),
                        );
                    };
                    if app.files.contains_key(&path) {
                        return (
                            422,
                            json!({"message": "Validation failed.", "errors": {"mount_path": ["A storage with this mount path already exists."]}}),
                        );
                    }
                    app.file_uuids.insert(path.clone(), new_uuid);
                    path
                } else {
                    let found = app
                        .file_uuids
                        .iter()
                        .find(|(_, u)| Some(*u) == storage_uuid.as_ref());
                    let Some((path, _)) = found.map(|(p, u)| (p.clone(), u.clone())) else {
                        return not_found("Storage");
                    };
                    path
                };
                app.files.insert(path.clone(), content);
                let answer = json!({"uuid": app.file_uuids.get(&path), "mount_path": path});
                (if creating { 201 } else { 200 }, answer)
            }
            "get-application-logs-by-uuid" => {
                let Some(app) = self.apps.get(&uuid) else {
                    return not_found("Application");
                };
                let lines = param("lines")
                    .and_then(|l| l.parse::<usize>().ok())
                    .unwrap_or(100);
                let start = app.logs.len().saturating_sub(lines);
                (200, json!({"logs": app.logs[start..].join("\n")}))
            }
            other => (
                501,
                json!({"message": format!("the fake does not implement {other}")}),
            ),
        }
    }

    fn create(&mut self, body: Option<&Value>) -> Answer {
        let project = text(body, "project_uuid").unwrap_or_default();
        let server = text(body, "server_uuid").unwrap_or_default();
        let env_name = text(body, "environment_name").unwrap_or_default();
        let env_uuid = text(body, "environment_uuid").unwrap_or_default();
        if project != PROJECT_UUID {
            return not_found("Project");
        }
        if server != SERVER_UUID {
            return not_found("Server");
        }
        // Coolify needs one of the two and reads an empty string as absent.
        let env_known = (env_name.is_empty() || env_name == ENVIRONMENT_NAME)
            && (env_uuid.is_empty() || env_uuid == ENVIRONMENT_UUID)
            && !(env_name.is_empty() && env_uuid.is_empty());
        if !env_known {
            return not_found("Environment");
        }
        let uuid = self.next_uuid("app");
        let fqdn = text(body, "domains")
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| format!("http://{uuid}.127.0.0.1.sslip.io"));
        let tags = body
            .and_then(|b| b.get("tags"))
            .and_then(Value::as_array)
            .map(|t| {
                t.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let app = FakeApp {
            uuid: uuid.clone(),
            name: text(body, "name").unwrap_or_else(|| format!("docker-image-{uuid}")),
            description: text(body, "description").unwrap_or_default(),
            image_name: text(body, "docker_registry_image_name").unwrap_or_default(),
            image_tag: text(body, "docker_registry_image_tag").unwrap_or_else(|| "latest".into()),
            ports_exposes: text(body, "ports_exposes").unwrap_or_else(|| "80".into()),
            health_check_path: text(body, "health_check_path").unwrap_or_else(|| "/".into()),
            status: "exited:unhealthy".into(),
            fqdn,
            tags,
            envs: BTreeMap::new(),
            logs: Vec::new(),
            deployments: 0,
            serving: None,
            files: BTreeMap::new(),
            env_uuids: BTreeMap::new(),
            file_uuids: BTreeMap::new(),
            pending: None,
        };
        self.apps.insert(uuid.clone(), app);
        if body
            .and_then(|b| b.get("instant_deploy"))
            .and_then(Value::as_bool)
            == Some(true)
        {
            self.start_deployment(&uuid);
        }
        (201, json!({"uuid": uuid}))
    }

    fn start_deployment(&mut self, uuid: &str) -> String {
        let deployment = self.next_uuid("dep");
        let reads = self.reads_to_settle;
        if let Some(app) = self.apps.get_mut(uuid) {
            app.deployments += 1;
            if app.serving.is_none() {
                app.status = "starting:unknown".into();
            }
            app.pending = Some(Pending {
                deployment: deployment.clone(),
                reads_left: reads.max(1),
            });
            app.logs.push(format!(
                "Pulling image {}:{} (deployment {deployment})",
                app.image_name, app.image_tag
            ));
            self.deployments
                .insert(deployment.clone(), (uuid.to_owned(), "in_progress".into()));
        }
        deployment
    }

    /// Moves the application's pending deployment one read closer to its end.
    fn advance(&mut self, uuid: &str) {
        let fail = self.fail_deployments;
        let Some(app) = self.apps.get_mut(uuid) else {
            return;
        };
        let Some(pending) = &mut app.pending else {
            return;
        };
        pending.reads_left = pending.reads_left.saturating_sub(1);
        if pending.reads_left > 0 {
            return;
        }
        let deployment = pending.deployment.clone();
        app.pending = None;
        let outcome = if fail {
            app.logs
                .push("Error: the new container failed its health check".into());
            app.status = if app.serving.is_some() {
                "running:healthy"
            } else {
                "exited:unhealthy"
            }
            .into();
            "failed"
        } else {
            app.serving = Some(format!("{}:{}", app.image_name, app.image_tag));
            app.status = "running:healthy".into();
            let names: Vec<&str> = app
                .envs
                .keys()
                .filter_map(|k| k.strip_prefix("BMM_SECRET_"))
                .collect();
            app.logs.push(format!(
                "bmm: secrets from the environment: {}",
                names.join(", ")
            ));
            app.logs
                .push(format!("bmm: serving on 0.0.0.0:{}", app.ports_exposes));
            "finished"
        };
        if let Some(record) = self.deployments.get_mut(&deployment) {
            record.1 = outcome.into();
        }
    }

    /// An application as `GET` answers it, moving a deployment along first.
    fn read(&mut self, uuid: &str) -> Option<Value> {
        self.advance(uuid);
        self.view(uuid)
    }

    /// An application as `GET` answers it.
    fn view(&self, uuid: &str) -> Option<Value> {
        let app = self.apps.get(uuid)?;
        Some(json!({
            "id": app.uuid.len(),
            "uuid": app.uuid,
            "name": app.name,
            "description": app.description,
            "fqdn": app.fqdn,
            "docker_registry_image_name": app.image_name,
            "docker_registry_image_tag": app.image_tag,
            "ports_exposes": app.ports_exposes,
            "health_check_enabled": true,
            "health_check_path": app.health_check_path,
            "status": app.status,
            "created_at": "2026-01-01T00:00:00.000000Z",
            "updated_at": "2026-01-01T00:00:00.000000Z",
        }))
    }
}

fn env_json(app: &FakeApp, key: &str, value: &SecretValue) -> Value {
    json!({
        "uuid": app.env_uuids.get(key).cloned().unwrap_or_default(),
        "key": key,
        "value": value.expose_secret(),
        "real_value": value.expose_secret(),
        "is_literal": true,
        "is_shown_once": true,
        "is_preview": false,
        "is_runtime": true,
        "is_buildtime": false,
        "resourceable_type": "App\\Models\\Application",
    })
}
