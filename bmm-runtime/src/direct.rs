//! The direct lane: plain stateless `tools/call` and `tools/list` requests of
//! the 2026-07-28 revision, answered without rmcp's per-request service.
//!
//! rmcp serves every stateless request by starting a service instance for it
//! (a spawned task, channels, a peer, cancellation tokens) and by parsing the
//! body through its general message types. For the two requests that make up
//! nearly all traffic that is most of the cost of a call, so the host answers
//! them here, from the same [`SpecServer`], when they come in their one plain
//! form:
//!
//! - `POST` with exactly one `MCP-Protocol-Version: 2026-07-28`, an `Accept`
//!   naming both `application/json` and `text/event-stream` (no parameters),
//!   `Content-Type: application/json`, a `Content-Length` of at most
//!   [`MAX_BODY`], an allowed `Host` and no `Origin`, `Mcp-Session-Id`,
//!   `Mcp-Param-*` or `Last-Event-ID` header;
//! - `Mcp-Method` (and for `tools/call`, `Mcp-Name`) given once and equal to
//!   the body;
//! - a body that is one JSON-RPC request with an integer or string `id`,
//!   whose `params` hold only `name` and `arguments` (for `tools/call`) and a
//!   `_meta` of exactly the protocol version (the header's) and the client's
//!   capabilities (plus, optionally, its `clientInfo`): no `logLevel`, no
//!   progress token, no cursor;
//! - for `tools/call`, a tool of this server whose input schema names no
//!   `x-mcp-header` parameters.
//!
//! That is the form the official TypeScript SDK sends (its conformance suite
//! runs through this lane).
//!
//! Anything else — a browser's `Origin`, a session, a batch, a mismatch, an
//! unknown tool, a request that asks for logs — goes to rmcp untouched, which
//! answers it (errors included) as it always has. A request answered here gets
//! what rmcp would have sent: its own message types, serialised the same way,
//! as `200 application/json`. `tests/direct.rs` holds the two lanes to that.

use std::borrow::Cow;

use axum::body::{Body, Bytes};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{ClientCapabilities, NumberOrString, ServerJsonRpcMessage, ServerResult};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::mcp::SpecServer;

/// The one protocol revision this lane speaks.
const VERSION: &str = "2026-07-28";

/// The largest body answered here; larger ones go to rmcp.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// `Host` names (and optional ports) a request may carry, parsed once.
#[derive(Debug)]
pub(crate) struct AllowedHosts {
    /// `None`: every host is allowed (an empty allowlist).
    entries: Option<Vec<(String, Option<u16>)>>,
}

impl AllowedHosts {
    /// Parses the allowlist as rmcp does: an entry without a port allows every port.
    pub(crate) fn new(allowed: &[String]) -> Self {
        if allowed.is_empty() {
            return Self { entries: None };
        }
        let entries = allowed
            .iter()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty())
            .map(|a| match Authority::try_from(a) {
                Ok(authority) => host_and_port(&authority),
                Err(_) => (normalize(a), None),
            })
            .collect();
        Self {
            entries: Some(entries),
        }
    }

    fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(entries) = &self.entries else {
            return true;
        };
        let Some(authority) = single_str(headers, header::HOST.as_str())
            .and_then(|value| Authority::try_from(value).ok())
        else {
            return false;
        };
        let (host, port) = host_and_port(&authority);
        entries
            .iter()
            .any(|(h, p)| *h == host && p.is_none_or(|p| Some(p) == port))
    }
}

fn host_and_port(authority: &Authority) -> (String, Option<u16>) {
    (normalize(authority.host()), authority.port_u16())
}

fn normalize(host: &str) -> String {
    host.trim_matches('[')
        .trim_matches(']')
        .to_ascii_lowercase()
}

/// The header's value when it is given exactly once.
fn single(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&HeaderValue> {
    let mut values = headers.get_all(name).into_iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

fn single_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    single(headers, name).and_then(|v| v.to_str().ok())
}

/// Whether the request line and headers are in the plain form this lane
/// answers; the body is checked by [`answer`].
pub(crate) fn eligible(request: &Request<Body>, hosts: &AllowedHosts) -> bool {
    let headers = request.headers();
    request.method() == Method::POST
        && request.uri().authority().is_none()
        && single_str(headers, "mcp-protocol-version") == Some(VERSION)
        && matches!(
            single_str(headers, "mcp-method"),
            Some("tools/call" | "tools/list")
        )
        && single_str(headers, header::CONTENT_LENGTH.as_str())
            .and_then(|l| l.parse::<usize>().ok())
            .is_some_and(|l| l <= MAX_BODY)
        && single_str(headers, header::CONTENT_TYPE.as_str()).is_some_and(|t| {
            t.split_once(';')
                .map_or(t, |(essence, _)| essence)
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
        && single_str(headers, header::ACCEPT.as_str()).is_some_and(accepts_both)
        && !headers.contains_key(header::ORIGIN)
        && !headers.contains_key("mcp-session-id")
        && !headers.contains_key("last-event-id")
        && !headers
            .keys()
            .any(|name| name.as_str().starts_with("mcp-param-"))
        && hosts.allows(headers)
}

/// `Accept` lists both media types, with no parameters (weights) on any entry.
fn accepts_both(accept: &str) -> bool {
    let (mut json, mut sse) = (false, false);
    for entry in accept.split(',') {
        let entry = entry.trim();
        if entry.contains(';') || entry.contains('"') {
            return false;
        }
        json |= entry.eq_ignore_ascii_case("application/json");
        sse |= entry.eq_ignore_ascii_case("text/event-stream");
    }
    json && sse
}

/// One JSON-RPC request in the plain form; any other member sends it to rmcp.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Plain<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    id: NumberOrString,
    #[serde(borrow)]
    method: Cow<'a, str>,
    params: Params,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
    #[serde(rename = "_meta")]
    meta: Meta,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: String,
    /// Parsed, not kept: capabilities rmcp would refuse go to rmcp.
    #[serde(rename = "io.modelcontextprotocol/clientCapabilities")]
    _client_capabilities: ClientCapabilities,
    /// Accepted, not used.
    #[serde(default, rename = "io.modelcontextprotocol/clientInfo")]
    _client_info: Option<IgnoredObject>,
}

/// Any JSON object, not kept.
struct IgnoredObject;

impl<'de> Deserialize<'de> for IgnoredObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::<String, Value>::deserialize(deserializer).map(|_| Self)
    }
}

/// Answers the request whose `headers` passed [`eligible`] and whose body is
/// `body`, or returns `None` — before anything ran — when it is not in the
/// plain form, so that rmcp answers it.
pub(crate) async fn answer(
    server: &SpecServer,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response> {
    let request: Plain<'_> = serde_json::from_slice(body).ok()?;
    let method = single_str(headers, "mcp-method")?;
    if request.jsonrpc != "2.0"
        || request.method != method
        || request.params.meta.protocol_version != VERSION
    {
        return None;
    }
    let message = match method {
        "tools/list" => {
            if request.params.name.is_some()
                || request.params.arguments.is_some()
                || headers.contains_key("mcp-name")
            {
                return None;
            }
            return Some(json_answer(splice(&request.id, server.tools_list_json()?)?));
        }
        "tools/call" => {
            let name = request.params.name?;
            if single_str(headers, "mcp-name") != Some(name.as_str())
                || !server.answers_directly(&name)
            {
                return None;
            }
            match server.call(&name, request.params.arguments).await {
                Ok(result) => {
                    ServerJsonRpcMessage::response(ServerResult::CallToolResult(result), request.id)
                }
                Err(error) => ServerJsonRpcMessage::error(error, Some(request.id)),
            }
        }
        _ => return None,
    };
    serde_json::to_vec(&message).ok().map(json_answer)
}

/// `{"jsonrpc":"2.0","id":…,"result":…}` around an already serialised result,
/// byte for byte what serialising the whole message gives.
fn splice(id: &NumberOrString, result: &str) -> Option<Vec<u8>> {
    let id = serde_json::to_string(id).ok()?;
    let mut out = Vec::with_capacity(result.len() + id.len() + 32);
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(br#","result":"#);
    out.extend_from_slice(result.as_bytes());
    out.push(b'}');
    Some(out)
}

fn json_answer(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_needs_both_types_without_weights() {
        assert!(accepts_both("application/json, text/event-stream"));
        assert!(accepts_both("TEXT/EVENT-STREAM,application/json"));
        assert!(!accepts_both("application/json"));
        assert!(!accepts_both("application/json;q=0, text/event-stream"));
        assert!(!accepts_both("*/*"));
    }

    #[test]
    fn hosts_match_as_rmcp_matches_them() {
        let hosts = AllowedHosts::new(&["localhost".into(), "::1".into(), "a.example:8443".into()]);
        let allows = |host: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::HOST,
                HeaderValue::from_str(host).unwrap_or_else(|_| HeaderValue::from_static("")),
            );
            hosts.allows(&headers)
        };
        assert!(allows("localhost:8080"));
        assert!(allows("LOCALHOST"));
        assert!(allows("[::1]:3000"));
        assert!(allows("a.example:8443"));
        assert!(!allows("a.example:8444"));
        assert!(!allows("a.example"));
        assert!(!allows("evil.example"));
        assert!(!allows("local host"));
        assert!(AllowedHosts::new(&[]).allows(&HeaderMap::new()));
        assert!(!hosts.allows(&HeaderMap::new()));
    }

    #[test]
    fn splice_is_the_serialised_message() {
        let mut result =
            ServerResult::ListToolsResult(rmcp::model::ListToolsResult::with_all_items(Vec::new()));
        result.fill_missing_cache_hints();
        let text = serde_json::to_string(&result).unwrap_or_default();
        for id in [
            NumberOrString::Number(7),
            NumberOrString::String("a\"b".into()),
        ] {
            let whole = ServerJsonRpcMessage::response(result.clone(), id.clone());
            assert_eq!(
                splice(&id, &text),
                serde_json::to_vec(&whole).ok(),
                "{id:?}"
            );
        }
    }
}
