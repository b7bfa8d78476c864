//! Many servers, one process: a [`Host`] serves every deployed spec at
//! `/mcp/{slug}` and adds, replaces and removes them while it runs.
//!
//! Replacing a spec is atomic: the map entry is swapped in one step, requests
//! that already hold the old server finish on it, and new requests reach the
//! new one. Sessions opened on the old version (2025-11-25 lane) end with the
//! swap; their clients get `404` and initialize again, as the transport
//! specifies for an expired session.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bmm_core::ValidatedSpec;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;

use crate::Result;
use crate::direct::{self, AllowedHosts};
use crate::egress::EgressClient;
use crate::mcp::{ServeOptions, SpecServer, base_egress};
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::secret::Secrets;

/// How a [`Host`] serves its specs. A `Config` struct with public fields.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Per-server limits and egress allowances.
    pub serve: ServeOptions,
    /// The script sandbox's limits and size.
    pub sandbox: SandboxConfig,
    /// Accepted `Host` header names (with or without a port). The default —
    /// `localhost`, `127.0.0.1`, `::1` — accepts loopback on any port, which
    /// includes a Docker-mapped port on the same machine; behind a reverse
    /// proxy, add the public host name. Empty accepts any host.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to call (`scheme://host[:port]`, `:*` for any
    /// port). A request with any other `Origin` gets `403`; requests without
    /// `Origin` (non-browser clients) pass. Default: loopback origins.
    pub allowed_origins: Vec<String>,
    /// Answer plain stateless `tools/call` and `tools/list` requests of the
    /// 2026-07-28 revision directly rather than through rmcp's per-request
    /// service (default true). The answers are the same; only the cost
    /// differs. See the `direct` module docs for what counts as plain.
    pub direct_lane: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            serve: ServeOptions::default(),
            sandbox: SandboxConfig::default(),
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: vec![
                "http://localhost:*".into(),
                "http://127.0.0.1:*".into(),
                "http://[::1]:*".into(),
            ],
            direct_lane: true,
        }
    }
}

/// What [`Host::deploy`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deployed {
    /// The slug was new.
    Added,
    /// A server with this slug was serving; it was replaced. Holds its version.
    Replaced {
        /// The version that was replaced.
        previous: String,
    },
}

/// A set of MCP servers served from one process. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Host {
    inner: Arc<HostInner>,
}

#[derive(Debug)]
struct HostInner {
    config: HostConfig,
    sandbox: Sandbox,
    egress: EgressClient,
    servers: RwLock<HashMap<String, Arc<Mounted>>>,
    /// `config.allowed_hosts`, parsed once for the direct lane.
    hosts: AllowedHosts,
    /// Requests the direct lane answered.
    direct_answers: AtomicU64,
}

struct Mounted {
    version: String,
    server: SpecServer,
    service: StreamableHttpService<SpecServer, LocalSessionManager>,
}

impl std::fmt::Debug for Mounted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mounted")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A host with no servers. Must be called inside a tokio runtime (the
    /// script sandbox starts its workers).
    pub fn new(config: HostConfig) -> Result<Self> {
        let sandbox = Sandbox::new(config.sandbox.clone())?;
        let egress = base_egress(&config.serve)?;
        Ok(Self {
            inner: Arc::new(HostInner {
                hosts: AllowedHosts::new(&config.allowed_hosts),
                config,
                sandbox,
                egress,
                servers: RwLock::default(),
                direct_answers: AtomicU64::new(0),
            }),
        })
    }

    /// Serves `spec` at `/mcp/{slug}` with `secrets`, replacing any server
    /// with the same slug atomically. On error nothing changes: the previous
    /// version, if any, keeps serving.
    pub fn deploy(&self, spec: &ValidatedSpec, secrets: Secrets) -> Result<Deployed> {
        let inner = &self.inner;
        let server = SpecServer::with_egress(
            spec,
            secrets,
            inner.sandbox.clone(),
            &inner.egress,
            &inner.config.serve,
        )?;
        let factory = server.clone();
        // JSON for a request whose whole answer is one message (the
        // 2026-07-28 lane; a call that logs first still streams as SSE):
        // no event framing or priming for the client to parse.
        let mut transport = StreamableHttpServerConfig::default()
            .with_json_response(true)
            .with_allowed_hosts(inner.config.allowed_hosts.iter().cloned())
            .with_allowed_origins(inner.config.allowed_origins.iter().cloned())
            .enforce_origin_validation();
        if inner.config.allowed_hosts.is_empty() {
            transport = transport.disable_allowed_hosts();
        }
        let service = StreamableHttpService::new(
            move || Ok(factory.for_session()),
            Arc::new(LocalSessionManager::default()),
            transport,
        );
        let slug = spec.spec().slug.as_str().to_owned();
        let mounted = Arc::new(Mounted {
            version: spec.spec().version.clone(),
            server,
            service,
        });
        let previous = inner
            .servers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(slug, mounted);
        Ok(match previous {
            Some(old) => Deployed::Replaced {
                previous: old.version.clone(),
            },
            None => Deployed::Added,
        })
    }

    /// Stops serving `slug`. Returns whether it was served.
    pub fn remove(&self, slug: &str) -> bool {
        self.inner
            .servers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(slug)
            .is_some()
    }

    /// The served slugs and their versions, sorted by slug.
    pub fn list(&self) -> Vec<(String, String)> {
        let servers = self
            .inner
            .servers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<_> = servers
            .iter()
            .map(|(slug, m)| (slug.clone(), m.version.clone()))
            .collect();
        out.sort();
        out
    }

    /// How many requests the direct lane has answered (see
    /// [`HostConfig::direct_lane`]); the rest went through rmcp.
    pub fn direct_answers(&self) -> u64 {
        self.inner.direct_answers.load(Ordering::Relaxed)
    }

    /// The server for `slug`, to call its tools directly.
    pub fn server(&self, slug: &str) -> Option<SpecServer> {
        self.mounted(slug).map(|m| m.server.clone())
    }

    fn mounted(&self, slug: &str) -> Option<Arc<Mounted>> {
        self.inner
            .servers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(slug)
            .cloned()
    }

    /// An axum router serving every spec at `/mcp/{slug}`, with `/healthz`
    /// (the process is up) and `/readyz` (`200` once at least one server is
    /// served, with the list; `503` before).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/mcp/{slug}", any(serve_mcp))
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(ready))
            .with_state(self.clone())
    }

    /// An axum router serving the one spec `slug` at `/mcp`, as a runner for a
    /// single server does, beside `/mcp/{slug}`, `/healthz` and `/readyz`.
    pub fn single_router(&self, slug: &str) -> Router {
        let slug = slug.to_owned();
        let host = self.clone();
        self.router().route(
            "/mcp",
            any(move |request: Request| {
                let host = host.clone();
                let slug = slug.clone();
                async move { forward(&host, &slug, request).await }
            }),
        )
    }
}

/// `/mcp/{slug}`, with the slug as sent, not percent-decoded: a server has
/// one path, its canonical resource URI, and `/mcp/unit%2Dconverter` is not
/// it (an authentication layer routed by path would not protect it).
/// The `404` for a request to `path`, where no MCP server is served: what
/// the Host answers for an unknown slug, for routers in front of it to give
/// the same answer.
pub fn not_served(path: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": "not_found", "message": format!("no MCP server is served at {path}")})
            .to_string(),
    )
        .into_response()
}

async fn serve_mcp(State(host): State<Host>, request: Request) -> Response {
    // The route's last segment is the request path's last, even when nested;
    // axum's `Path` would percent-decode it.
    let slug = request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    forward(&host, &slug, request).await
}

async fn forward(host: &Host, slug: &str, request: Request) -> Response {
    // Clone the entry out of the map so the lock is not held across the call;
    // a replacement meanwhile does not disturb this request.
    let Some(mounted) = host.mounted(slug) else {
        return not_served(&format!("/mcp/{slug}"));
    };
    let inner = &host.inner;
    let request = if inner.config.direct_lane && direct::eligible(&request, &inner.hosts) {
        let (parts, body) = request.into_parts();
        let Ok(body) = axum::body::to_bytes(body, direct::MAX_BODY).await else {
            return (StatusCode::BAD_REQUEST, "could not read the request body").into_response();
        };
        if let Some(response) = direct::answer(&mounted.server, &parts.headers, &body).await {
            inner.direct_answers.fetch_add(1, Ordering::Relaxed);
            return response;
        }
        Request::from_parts(parts, Body::from(body))
    } else {
        request
    };
    let deleting = request.method() == axum::http::Method::DELETE;
    let mut response = mounted
        .service
        .handle(request)
        .await
        .map(Body::new)
        .into_response();
    // A terminated session has nothing to say: clients expect 200 or 204 here.
    if deleting && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    if response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return unreadable_body(response).await;
    }
    response
}

/// rmcp answers a JSON body it cannot read as one JSON-RPC message with 415,
/// as if the media type were wrong. JSON-RPC and MCP's HTTP transport call
/// for 400 with a JSON-RPC error whose id is null: -32700 (parse error) when
/// the body is not JSON, -32600 (invalid request) when it is JSON but not one
/// message (a batch, a null id). A wrong Content-Type keeps its 415.
async fn unreadable_body(response: Response) -> Response {
    const PREFIX: &str = "fail to deserialize request body";
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 10).await else {
        return parts.status.into_response();
    };
    let text = String::from_utf8_lossy(&bytes);
    let Some(reason) = text.strip_prefix(PREFIX).map(str::trim) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let (code, kind) = if reason.contains("unrecognized JSON-RPC message") {
        (
            -32600,
            "Invalid Request: the body is not one JSON-RPC request or notification",
        )
    } else {
        (-32700, "Parse error: the body is not JSON")
    };
    let error = json!({"jsonrpc": "2.0", "id": null,
        "error": {"code": code, "message": format!("{kind} ({reason})")}});
    (StatusCode::BAD_REQUEST, axum::Json(error)).into_response()
}

async fn ready(State(host): State<Host>) -> Response {
    let servers: Vec<_> = host
        .list()
        .into_iter()
        .map(|(slug, version)| json!({"slug": slug, "version": version}))
        .collect();
    let status = if servers.is_empty() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        status,
        axum::Json(json!({"ready": !servers.is_empty(), "servers": servers})),
    )
        .into_response()
}

/// Serves `router` on `listener` until `shutdown` completes, with
/// `TCP_NODELAY` on every accepted socket (small SSE writes otherwise wait
/// for Nagle's algorithm, about 40 ms each).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        // A socket that refuses the option still works, only slower.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on Ctrl-C or, on Unix, `SIGTERM`: the `shutdown` future to give
/// [`serve`] for a graceful stop. A signal that cannot be watched never
/// completes (the process then runs until it is killed, which is still correct).
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
