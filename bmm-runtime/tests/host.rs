//! The multi-tenant `Host`: atomic replacement, removal, per-server limits and
//! the HTTP surface (`/mcp/{slug}`, `/healthz`, `/readyz`).

// A panic in a test is a failed test, not a crash on input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bmm_core::{CheckOptions, ValidatedSpec, check};
use bmm_runtime::{Deployed, Host, HostConfig, Secrets};
use serde_json::{Value, json};
use tower::ServiceExt;

/// A spec whose `which` tool answers `version` after spinning for `spin_ms`.
fn spec(slug: &str, version: &str, spin_ms: u64) -> ValidatedSpec {
    let source = format!(
        "export default () => {{ const end = Date.now() + {spin_ms}; while (Date.now() < end) {{}} return \"{version}\"; }}"
    );
    check(
        &json!({
            "bmm": "1", "name": "Versioned", "slug": slug, "description": "Says its version.",
            "version": version,
            "tools": [{"name": "which", "description": "Returns the version.",
                       "input_schema": {"type": "object"},
                       "implementation": {"kind": "script", "source": source}}]
        }),
        &CheckOptions::default(),
    )
    .unwrap()
}

fn text(result: &rmcp::model::CallToolResult) -> String {
    serde_json::to_value(&result.content).unwrap()[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacement_is_atomic_and_calls_in_flight_finish_on_the_old_version() {
    let host = Host::new(HostConfig::default()).unwrap();
    assert_eq!(
        host.deploy(&spec("svc", "1.0.0", 400), Secrets::new())
            .unwrap(),
        Deployed::Added
    );

    let old = host.server("svc").unwrap();
    let in_flight = tokio::spawn(async move { old.call("which", None).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let replaced = host
        .deploy(&spec("svc", "2.0.0", 0), Secrets::new())
        .unwrap();
    assert_eq!(
        replaced,
        Deployed::Replaced {
            previous: "1.0.0".into()
        }
    );
    let new = host
        .server("svc")
        .unwrap()
        .call("which", None)
        .await
        .unwrap();
    assert_eq!(text(&new), "2.0.0");
    assert_eq!(text(&in_flight.await.unwrap()), "1.0.0");
    assert_eq!(host.list(), vec![("svc".to_owned(), "2.0.0".to_owned())]);
}

/// A tools/call of `which` through `router`, as a 2026-07-28 client sends it;
/// the text of its result.
async fn call_which(router: axum::Router, slug: &str) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "which", "arguments": {}, "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}}});
    let request = Request::post(format!("/mcp/{slug}"))
        .header("host", "127.0.0.1")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "which")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {answer}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_over_http_lets_calls_in_flight_finish_on_the_old_version() {
    let host = Host::new(HostConfig::default()).unwrap();
    host.deploy(&spec("svc", "1.0.0", 400), Secrets::new())
        .unwrap();
    let in_flight = tokio::spawn(call_which(host.router(), "svc"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    host.deploy(&spec("svc", "2.0.0", 0), Secrets::new())
        .unwrap();
    // The next request reaches the new version at once…
    assert_eq!(call_which(host.router(), "svc").await, "2.0.0");
    // …while the one already running answers from the old one.
    assert_eq!(in_flight.await.unwrap(), "1.0.0");
}

#[test]
fn script_limits_default_to_two_seconds_and_32_mib() {
    let config = bmm_runtime::SandboxConfig::default();
    // Two seconds of running JavaScript; waits on `fetch` count only toward
    // the overall bound.
    assert_eq!(config.cpu_time_limit, Duration::from_secs(2));
    assert_eq!(config.wall_time_limit, Duration::from_secs(10));
    assert_eq!(config.memory_limit, 32 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_hit_is_a_tool_error_and_ends_that_call_only() {
    let mut config = HostConfig::default();
    config.sandbox.cpu_time_limit = Duration::from_millis(200);
    config.sandbox.memory_limit = 8 << 20;
    let host = Host::new(config).unwrap();
    let spec = check(
        &json!({
            "bmm": "1", "name": "Limits", "slug": "limits", "description": "Hits its limits.",
            "tools": [
                {"name": "spin", "description": "Spins.", "input_schema": {"type": "object"},
                 "implementation": {"kind": "script", "source": "export default () => { for (;;) {} }"}},
                {"name": "hoard", "description": "Hoards memory.", "input_schema": {"type": "object"},
                 "implementation": {"kind": "script", "source": "export default () => { const a = []; for (;;) a.push('x'.repeat(1024)); }"}},
                {"name": "fine", "description": "Answers.", "input_schema": {"type": "object"},
                 "implementation": {"kind": "script", "source": "export default () => 'fine'"}}
            ]
        }),
        &CheckOptions::default(),
    )
    .unwrap();
    host.deploy(&spec, Secrets::new()).unwrap();
    let server = host.server("limits").unwrap();
    for (tool, words) in [("spin", "CPU time"), ("hoard", "memory")] {
        let result = server.call(tool, None).await.unwrap();
        assert_eq!(result.is_error, Some(true), "{tool}: {result:?}");
        assert!(text(&result).contains(words), "{tool}: {}", text(&result));
    }
    let result = server.call("fine", None).await.unwrap();
    assert_eq!(result.is_error, Some(false));
    assert_eq!(text(&result), "fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deploy_leaves_the_serving_version_alone() {
    let host = Host::new(HostConfig::default()).unwrap();
    host.deploy(&spec("svc", "1.0.0", 0), Secrets::new())
        .unwrap();
    // A required secret without a value is refused at deploy time.
    let needs_secret = check(
        &json!({
            "bmm": "1", "name": "S", "slug": "svc", "description": "d", "version": "2.0.0",
            "secrets": [{"name": "KEY", "description": "k"}],
            "tools": [{"name": "t", "description": "d", "input_schema": {"type": "object"},
                       "implementation": {"kind": "script",
                         "source": "export default async () => (await fetch('https://a.example/', {headers: {k: {secret: 'KEY'}}})).status"}}],
            "egress": ["a.example"]
        }),
        &CheckOptions::default(),
    )
    .unwrap();
    let error = host.deploy(&needs_secret, Secrets::new()).unwrap_err();
    assert!(error.to_string().contains("KEY"), "{error}");
    let still = host
        .server("svc")
        .unwrap()
        .call("which", None)
        .await
        .unwrap();
    assert_eq!(text(&still), "1.0.0");
}

async fn request(
    router: axum::Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    if body.is_some() {
        builder = builder
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response = router.oneshot(builder.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_surface_follows_deploys_and_removals() {
    let host = Host::new(HostConfig::default()).unwrap();
    let (status, body) = request(host.router(), "GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        request(host.router(), "GET", "/healthz", None).await.0,
        StatusCode::OK
    );

    host.deploy(&spec("one", "1.0.0", 0), Secrets::new())
        .unwrap();
    host.deploy(&spec("two", "1.0.0", 0), Secrets::new())
        .unwrap();
    let (status, body) = request(host.router(), "GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["servers"].as_array().unwrap().len(), 2);

    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}}});
    let (status, body) = request(host.router(), "POST", "/mcp/two", Some(list.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"which\""), "{body}");

    assert!(host.remove("two"));
    assert!(!host.remove("two"));
    let (status, body) = request(host.router(), "POST", "/mcp/two", Some(list.clone())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body.contains("no MCP server is served at /mcp/two"),
        "{body}"
    );
    // A server has one path: percent-encoded spellings of it are not served
    // (an authentication layer in front, routed by path, would miss them).
    for alias in ["/mcp/%6Fne", "/mcp/o%6Ee", "/mcp/ON%45", "/mcp/one%2F"] {
        let (status, body) = request(host.router(), "POST", alias, Some(list.clone())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{alias}: {body}");
    }
    assert_eq!(
        request(host.router(), "POST", "/mcp/one", Some(list))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_busy_server_does_not_starve_another() {
    let mut config = HostConfig::default();
    config.serve.max_concurrent_calls = 1;
    config.serve.queue_timeout = Duration::from_millis(200);
    let host = Host::new(config).unwrap();
    host.deploy(&spec("busy", "1.0.0", 800), Secrets::new())
        .unwrap();
    host.deploy(&spec("calm", "1.0.0", 0), Secrets::new())
        .unwrap();

    let busy = host.server("busy").unwrap();
    let first = tokio::spawn({
        let busy = busy.clone();
        async move { busy.call("which", None).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The busy server's only slot is taken: a second call there is refused as busy…
    let refused = busy.call("which", None).await.unwrap();
    assert_eq!(refused.is_error, Some(true));
    assert!(text(&refused).contains("busy"), "{}", text(&refused));
    // …while the other server answers at once.
    let calm = host
        .server("calm")
        .unwrap()
        .call("which", None)
        .await
        .unwrap();
    assert_eq!(text(&calm), "1.0.0");
    assert_eq!(text(&first.await.unwrap()), "1.0.0");
}
