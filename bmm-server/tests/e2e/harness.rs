//! Test scaffolding: a local upstream API and a `bmm run` child process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};

/// The secret value the e2e spec is given.
pub(crate) const SECRET: &str = "s3cret-value";

/// The workspace root.
pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python interpreter of the venv `scripts/test` prepares.
pub(crate) fn python() -> PathBuf {
    std::env::var_os("BMM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"))
}

/// Runs `future` to completion on a new single-threaded runtime.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// GETs `url` and reads its body as JSON; any failure, or a status other
/// than 2xx, fails the test.
pub(crate) async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let response = client.get(url).send().await.unwrap();
    let status = response.status();
    assert!(status.is_success(), "GET {url}: {status}");
    response.json().await.unwrap()
}

/// Starts a local upstream API on 127.0.0.1 in a background thread; returns its address.
pub(crate) fn upstream() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, routes()).await.unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

fn routes() -> Router {
    Router::new()
        .route(
            "/weather/{city}",
            get(|UrlPath(city): UrlPath<String>, Query(q): Query<std::collections::HashMap<String, String>>| async move {
                axum::Json(json!({
                    "path_city": city,
                    "key_ok": q.get("appid").map(String::as_str) == Some(SECRET),
                    "noise": "trimmed by the response shape",
                }))
            }),
        )
        .route(
            "/header-city",
            get(|headers: HeaderMap, Query(q): Query<std::collections::HashMap<String, String>>| async move {
                let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
                axum::Json(json!({"city": q.get("city"), "key_ok": key == Some(SECRET)}))
            }),
        )
        .route("/fail", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance") }))
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                let names: Vec<String> = headers.keys().map(|k| k.as_str().to_owned()).collect();
                axum::Json(json!({"names": names}))
            }),
        )
        .route(
            "/echo",
            get(|headers: HeaderMap| async move {
                let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                axum::Json(json!({"you_sent": key}))
            }),
        )
}

/// The spec the e2e tests serve: script and http tools against `upstream`.
pub(crate) fn e2e_spec(upstream: SocketAddr) -> Value {
    let base = format!("http://{upstream}");
    json!({
        "bmm": "1", "name": "E2E", "slug": "e2e", "description": "End-to-end test server.",
        "egress": [upstream.to_string()],
        "secrets": [{"name": "API_KEY", "description": "The upstream's key."}],
        "tools": [
            {
                "name": "add", "description": "Adds two numbers.",
                "input_schema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]},
                "output_schema": {"type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]},
                "annotations": {"read_only": true},
                "implementation": {"kind": "script", "source": "export default (args) => ({ sum: args.a + args.b })"}
            },
            {
                "name": "city_weather", "description": "Weather for a city.",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                "implementation": {
                    "kind": "http", "method": "GET", "url": format!("{base}/weather/{{{{args.city}}}}"),
                    "query": {"appid": "{{secrets.API_KEY}}"},
                    "response": {"fields": ["path_city", "key_ok"]}
                }
            },
            {
                "name": "fetch_city", "description": "Fetches a city through a script.",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                "output_schema": {"type": "object"},
                "implementation": {"kind": "script", "source": format!(
                    "export default async function (args) {{\n  const res = await fetch(\"{base}/header-city\", {{ query: {{ city: args.city }}, headers: {{ \"X-Api-Key\": {{ secret: \"API_KEY\" }} }} }});\n  return await res.json();\n}}\n"
                )}
            },
            {
                "name": "upstream_fails", "description": "Calls an upstream that is down.",
                "input_schema": {"type": "object"},
                "implementation": {"kind": "http", "method": "GET", "url": format!("{base}/fail")}
            },
            {
                "name": "echo_secret", "description": "Calls an upstream that echoes its key.",
                "input_schema": {"type": "object"},
                "implementation": {"kind": "http", "method": "GET", "url": format!("{base}/echo"), "headers": {"X-Api-Key": "{{secrets.API_KEY}}"}}
            }
        ]
    })
}

/// A running `bmm run`; killed on drop.
pub(crate) struct Runner {
    child: Child,
    /// The address it listens on.
    pub(crate) addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Runner {
    /// Writes `spec` to a file and serves it with `bmm run` on a free port,
    /// with `extra` arguments and `BMM_SECRET_API_KEY` set.
    pub(crate) fn start(spec: &Value, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("spec.json");
        std::fs::write(&file, serde_json::to_vec_pretty(spec).unwrap()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_bmm"))
            .args(["run", "--spec", file.to_str().unwrap(), "--port", "0"])
            .args(extra)
            .env("BMM_SECRET_API_KEY", SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("bmm: listening on ") {
                    let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                }
            }
        });
        let started = Instant::now();
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("bmm run did not start within {:?}", started.elapsed())
            });
        Self {
            child,
            addr,
            _dir: dir,
        }
    }

    /// The MCP endpoint.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
