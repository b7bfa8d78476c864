//! The health check a new version must pass before it serves: the runner's
//! `/healthz`, then a real MCP session that lists the tools.

use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use url::Url;

/// The protocol version the check speaks (the session lane every runner serves).
const PROTOCOL_VERSION: &str = "2025-11-25";

/// Waits until the server whose MCP endpoint is `mcp` answers `/healthz` on
/// the same origin and lists its tools over MCP; returns the number of tools.
///
/// `gone` is asked between attempts: when it returns a reason (the process
/// died, the container exited), the check fails at once with it. Fails with
/// the last problem seen when `timeout` passes.
pub async fn check_health(
    mcp: &Url,
    timeout: Duration,
    mut gone: impl FnMut() -> Option<String> + Send,
) -> Result<usize, String> {
    let deadline = Instant::now() + timeout;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let mut healthz = mcp.clone();
    healthz.set_path("/healthz");
    healthz.set_query(None);
    let mut delay = Duration::from_millis(2);
    loop {
        if let Some(reason) = gone() {
            return Err(reason);
        }
        let last = match probe(&client, &healthz, mcp).await {
            Ok(tools) => return Ok(tools),
            Err(problem) => problem,
        };
        if Instant::now() + delay > deadline {
            return Err(format!("not healthy after {timeout:?}: {last}"));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

async fn probe(client: &reqwest::Client, healthz: &Url, mcp: &Url) -> Result<usize, String> {
    let response = client
        .get(healthz.clone())
        .send()
        .await
        .map_err(|e| format!("GET {healthz}: {}", plain(e)))?;
    if !response.status().is_success() {
        return Err(format!("GET {healthz} answered {}", response.status()));
    }
    tools_list(client, mcp).await
}

/// Initializes an MCP session, lists the tools, and ends the session.
async fn tools_list(client: &reqwest::Client, mcp: &Url) -> Result<usize, String> {
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "bmm-deploy-health", "version": env!("CARGO_PKG_VERSION")}
        }
    });
    let (session, _) = rpc(client, mcp, None, &init).await?;
    let session = session.ok_or("initialize answered without a session id")?;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    rpc(client, mcp, Some(&session), &initialized).await?;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
    let (_, result) = rpc(client, mcp, Some(&session), &list).await?;
    let _ = client
        .delete(mcp.clone())
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", PROTOCOL_VERSION)
        .send()
        .await;
    let result = result.ok_or("tools/list answered nothing")?;
    if let Some(error) = result.get("error") {
        return Err(format!("tools/list failed: {error}"));
    }
    result
        .pointer("/result/tools")
        .and_then(Value::as_array)
        .map(Vec::len)
        .ok_or_else(|| "tools/list answered without a tool list".to_owned())
}

/// Posts one JSON-RPC message; returns the session id header and, for a
/// request, the JSON-RPC response (from a JSON body or an SSE stream).
async fn rpc(
    client: &reqwest::Client,
    mcp: &Url,
    session: Option<&str>,
    message: &Value,
) -> Result<(Option<String>, Option<Value>), String> {
    let mut headers = HeaderMap::new();
    headers.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut request = client.post(mcp.clone()).headers(headers).json(message);
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", PROTOCOL_VERSION);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("POST {mcp}: {}", plain(e)))?;
    let status = response.status();
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let event_stream = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let body = response
        .text()
        .await
        .map_err(|e| format!("POST {mcp}: {}", plain(e)))?;
    if !status.is_success() {
        let method = message.get("method").and_then(Value::as_str).unwrap_or("?");
        return Err(format!("MCP {method} answered {status}: {}", clip(&body)));
    }
    let Some(id) = message.get("id") else {
        return Ok((session, None));
    };
    let found = if event_stream {
        body.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|value| value.get("id") == Some(id))
    } else {
        serde_json::from_str::<Value>(&body).ok()
    };
    Ok((session, found))
}

/// A reqwest error's message with its causes, without the URL's query.
fn plain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn clip(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
