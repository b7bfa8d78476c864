//! The direct lane answers plain stateless requests exactly as rmcp does, and
//! leaves everything else to rmcp.
//!
//! Every request goes to two hosts serving the same spec: one with the direct
//! lane (the default) and one without, where rmcp answers everything. Their
//! answers must be the same — status, content type and body, byte for byte —
//! and the direct host's counter shows which lane answered. Refusals and a
//! result against its output schema are then checked for what they must be,
//! not only for agreement: HTTP status and JSON-RPC code (-32020 for a header
//! that disagrees with the body, -32022 for an unsupported version).

// A panic in a test is a failed test, not a crash on input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Request, header};
use bmm_core::{CheckOptions, check};
use bmm_runtime::{Host, HostConfig, Secrets};
use serde_json::{Value, json};
use tower::ServiceExt;

fn spec() -> Value {
    json!({
        "bmm": "1", "name": "Lanes", "slug": "lanes", "description": "Tools for both lanes.",
        "tools": [
            {"name": "add", "description": "Adds two numbers.",
             "input_schema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]},
             "implementation": {"kind": "script", "source": "export default (args) => ({ sum: args.a + args.b })"}},
            {"name": "shout", "description": "Shouts a word.",
             "input_schema": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
             "output_schema": {"type": "object", "properties": {"loud": {"type": "string"}}, "required": ["loud"]},
             "implementation": {"kind": "script", "source": "export default ({ word }) => ({ loud: word.toUpperCase() + '!' })"}},
            {"name": "misshapen", "description": "Answers against its own output schema.",
             "input_schema": {"type": "object"},
             "output_schema": {"type": "object", "properties": {"loud": {"type": "string"}}, "required": ["loud"]},
             "implementation": {"kind": "script", "source": "export default () => ({ loud: 1 })"}},
            {"name": "fail", "description": "Always fails.",
             "input_schema": {"type": "object"},
             "implementation": {"kind": "script", "source": "export default () => { throw new Error('no luck'); }"}},
            {"name": "chatty", "description": "Logs, then answers.",
             "input_schema": {"type": "object"},
             "implementation": {"kind": "script", "source": "export default () => { console.log('working'); return 'done'; }"}},
            {"name": "regional", "description": "Takes its region from a header.",
             "input_schema": {"type": "object", "properties": {"region": {"type": "string", "x-mcp-header": "Region"}}},
             "implementation": {"kind": "script", "source": "export default ({ region }) => `region ${region}`"}}
        ]
    })
}

fn host(direct_lane: bool) -> Host {
    let config = HostConfig {
        direct_lane,
        ..HostConfig::default()
    };
    let host = Host::new(config).unwrap();
    let spec = check(&spec(), &CheckOptions::default()).unwrap();
    host.deploy(&spec, Secrets::new()).unwrap();
    host
}

const META: &str = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

/// A plain request: the headers a 2026-07-28 client sends, which the test then varies.
struct Case {
    what: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
    direct: bool,
}

fn call(id: &str, name: &str, arguments: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}","arguments":{arguments},"_meta":{META}}}}}"#
    )
}

fn plain_headers(method: &str, name: Option<&str>) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("host", "127.0.0.1:8080".to_owned()),
        ("content-type", "application/json".to_owned()),
        ("accept", "application/json, text/event-stream".to_owned()),
        ("mcp-protocol-version", "2026-07-28".to_owned()),
        ("mcp-method", method.to_owned()),
    ];
    if let Some(name) = name {
        headers.push(("mcp-name", name.to_owned()));
    }
    headers
}

fn with(
    mut headers: Vec<(&'static str, String)>,
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    headers.retain(|(n, _)| *n != name);
    headers.push((name, value.to_owned()));
    headers
}

fn without(
    mut headers: Vec<(&'static str, String)>,
    name: &'static str,
) -> Vec<(&'static str, String)> {
    headers.retain(|(n, _)| *n != name);
    headers
}

fn cases() -> Vec<Case> {
    let list_body =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"_meta":{META}}}}}"#);
    let add = call("2", "add", r#"{"a":1,"b":2}"#);
    let call_headers = |name| plain_headers("tools/call", Some(name));
    let case = |what, headers, body: &str, direct| Case {
        what,
        headers,
        body: body.to_owned(),
        direct,
    };
    vec![
        // Answered directly.
        case(
            "tools/list",
            plain_headers("tools/list", None),
            &list_body,
            true,
        ),
        case("tools/call of a script", call_headers("add"), &add, true),
        case(
            "a string id",
            call_headers("add"),
            &call(r#""abc-1""#, "add", r#"{"a":1,"b":2}"#),
            true,
        ),
        case(
            "arguments that break the schema",
            call_headers("add"),
            &call("3", "add", r#"{"a":1}"#),
            true,
        ),
        case(
            "no arguments at all",
            call_headers("add"),
            &format!(
                r#"{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"add","_meta":{META}}}}}"#
            ),
            true,
        ),
        case(
            "a script that throws",
            call_headers("fail"),
            &call("5", "fail", "{}"),
            true,
        ),
        case(
            "structured content",
            call_headers("shout"),
            &call("6", "shout", r#"{"word":"hey"}"#),
            true,
        ),
        case(
            "output that breaks the output schema",
            call_headers("misshapen"),
            &call("7", "misshapen", "{}"),
            true,
        ),
        case(
            "a tool that logs, not asked for logs",
            call_headers("chatty"),
            &call("8", "chatty", "{}"),
            true,
        ),
        case(
            "clientInfo in _meta",
            call_headers("add"),
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":2},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":{}},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"}}}}"#,
            true,
        ),
        case(
            "Accept with a third type",
            with(
                call_headers("add"),
                "accept",
                "text/event-stream, application/json, */*",
            ),
            &add,
            true,
        ),
        case(
            "Content-Type with a charset",
            with(
                call_headers("add"),
                "content-type",
                "application/json; charset=utf-8",
            ),
            &add,
            true,
        ),
        case(
            "a port-less Host",
            with(call_headers("add"), "host", "localhost"),
            &add,
            true,
        ),
        // Left to rmcp.
        case(
            "an allowed Origin",
            with(call_headers("add"), "origin", "http://localhost:3000"),
            &add,
            false,
        ),
        case(
            "a refused Origin",
            with(call_headers("add"), "origin", "https://evil.example"),
            &add,
            false,
        ),
        case(
            "a refused Host",
            with(call_headers("add"), "host", "evil.example"),
            &add,
            false,
        ),
        case(
            "Mcp-Name differs from the body",
            with(call_headers("add"), "mcp-name", "fail"),
            &add,
            false,
        ),
        case(
            "no Mcp-Name",
            without(call_headers("add"), "mcp-name"),
            &add,
            false,
        ),
        case(
            "Mcp-Method differs from the body",
            with(call_headers("add"), "mcp-method", "tools/list"),
            &add,
            false,
        ),
        case(
            "header version differs from _meta",
            with(call_headers("add"), "mcp-protocol-version", "2025-11-25"),
            &add,
            false,
        ),
        case(
            "an unknown header version with another in _meta",
            with(call_headers("add"), "mcp-protocol-version", "2099-01-01"),
            &add,
            false,
        ),
        case(
            "an unsupported version",
            with(call_headers("add"), "mcp-protocol-version", "2099-01-01"),
            &add.replace("2026-07-28", "2099-01-01"),
            false,
        ),
        case(
            "_meta without capabilities",
            call_headers("add"),
            r#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
            false,
        ),
        case(
            "logs asked for",
            call_headers("chatty"),
            r#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"chatty","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/logLevel":"info"}}}"#,
            false,
        ),
        case(
            "an unknown tool",
            call_headers("nope"),
            &call("12", "nope", "{}"),
            false,
        ),
        case(
            "an Mcp-Param tool",
            with(call_headers("regional"), "mcp-param-region", "eu"),
            &call("13", "regional", r#"{"region":"eu"}"#),
            false,
        ),
        case(
            "an Mcp-Param tool without its header",
            call_headers("regional"),
            &call("14", "regional", r#"{"region":"eu"}"#),
            false,
        ),
        case(
            "a cursor",
            plain_headers("tools/list", None),
            &format!(
                r#"{{"jsonrpc":"2.0","id":15,"method":"tools/list","params":{{"cursor":"x","_meta":{META}}}}}"#
            ),
            false,
        ),
        case("a batch", call_headers("add"), &format!("[{add}]"), false),
        case("not JSON", call_headers("add"), "{\"jsonrpc\":", false),
        case(
            "an extra member",
            call_headers("add"),
            &format!(
                r#"{{"jsonrpc":"2.0","id":16,"method":"tools/call","extra":1,"params":{{"name":"add","arguments":{{"a":1,"b":2}},"_meta":{META}}}}}"#
            ),
            false,
        ),
        case(
            "a session id",
            with(call_headers("add"), "mcp-session-id", "abc"),
            &add,
            false,
        ),
        case(
            "Accept without SSE",
            with(call_headers("add"), "accept", "application/json"),
            &add,
            false,
        ),
        case(
            "Accept with weights",
            with(
                call_headers("add"),
                "accept",
                "application/json;q=1, text/event-stream",
            ),
            &add,
            false,
        ),
        case(
            "another Content-Type",
            with(call_headers("add"), "content-type", "text/plain"),
            &add,
            false,
        ),
        case(
            "a null id",
            call_headers("add"),
            &call("null", "add", r#"{"a":1,"b":2}"#),
            false,
        ),
        case(
            "ping",
            plain_headers("ping", None),
            &format!(r#"{{"jsonrpc":"2.0","id":17,"method":"ping","params":{{"_meta":{META}}}}}"#),
            false,
        ),
    ]
}

async fn send(host: &Host, case: &Case) -> (u16, String, String) {
    let mut request = Request::post("/mcp/lanes");
    for (name, value) in &case.headers {
        request = request.header(*name, value);
    }
    let request = request
        .header(header::CONTENT_LENGTH, case.body.len())
        .body(Body::from(case.body.clone()))
        .unwrap();
    let response = host.router().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_lanes_give_the_same_answers() {
    let direct = host(true);
    let rmcp_only = host(false);
    let mut answered_directly = 0;
    for case in cases() {
        let before = direct.direct_answers();
        let got = send(&direct, &case).await;
        let taken = direct.direct_answers() - before;
        let expected = send(&rmcp_only, &case).await;
        assert_eq!(got, expected, "{}: the lanes differ", case.what);
        assert_eq!(
            taken,
            u64::from(case.direct),
            "{}: answered by the wrong lane ({got:?})",
            case.what
        );
        answered_directly += taken;
    }
    assert_eq!(rmcp_only.direct_answers(), 0);
    assert_eq!(answered_directly, 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_answers_are_complete_results() {
    let direct = host(true);
    let case = cases()
        .into_iter()
        .find(|c| c.what == "structured content")
        .unwrap();
    let (status, content_type, body) = send(&direct, &case).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["id"], 6);
    assert_eq!(body["result"]["resultType"], "complete");
    assert_eq!(body["result"]["structuredContent"], json!({"loud": "HEY!"}));
    assert_eq!(body["result"]["isError"], false);
    assert_eq!(direct.direct_answers(), 1);
}

/// What each protocol refusal must be, whichever lane answers: the HTTP
/// status and, for a JSON-RPC error, its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_their_exact_status_and_code() {
    let expected: &[(&str, u16, Option<i64>)] = &[
        ("Mcp-Name differs from the body", 400, Some(-32020)),
        ("no Mcp-Name", 400, Some(-32020)),
        ("Mcp-Method differs from the body", 400, Some(-32020)),
        ("header version differs from _meta", 400, Some(-32020)),
        (
            "an unknown header version with another in _meta",
            400,
            Some(-32020),
        ),
        ("an Mcp-Param tool without its header", 400, Some(-32020)),
        ("an unsupported version", 400, Some(-32022)),
        ("_meta without capabilities", 400, Some(-32602)),
        ("an unknown tool", 200, Some(-32602)),
        ("a refused Origin", 403, None),
        ("a refused Host", 403, None),
        ("Accept without SSE", 406, None),
        ("not JSON", 400, Some(-32700)),
        ("a batch", 400, Some(-32600)),
        ("a null id", 400, Some(-32600)),
        ("another Content-Type", 415, None),
    ];
    let cases = cases();
    for direct_lane in [true, false] {
        let host = host(direct_lane);
        for (what, status, code) in expected {
            let case = cases.iter().find(|c| c.what == *what).unwrap();
            let (got, _, body) = send(&host, case).await;
            assert_eq!(got, *status, "{what}: {body}");
            if let Some(code) = code {
                let body: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(body["error"]["code"], *code, "{what}: {body}");
                // The request's id, or null when it could not be read.
                let id = serde_json::from_str::<Value>(&case.body)
                    .ok()
                    .and_then(|request| request.get("id").cloned())
                    .unwrap_or(Value::Null);
                assert_eq!(body["id"], id, "{what}: {body}");
            }
        }
        // The unsupported version names the ones that are.
        let case = cases
            .iter()
            .find(|c| c.what == "an unsupported version")
            .unwrap();
        let body: Value = serde_json::from_str(&send(&host, case).await.2).unwrap();
        let supported = body["error"]["data"]["supported"].as_array().unwrap();
        assert!(supported.contains(&json!("2026-07-28")), "{body}");
        assert!(supported.contains(&json!("2025-11-25")), "{body}");
    }
}

/// A result that breaks the tool's output schema is a tool error the user
/// can read, with no structured content, on both lanes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_against_the_output_schema_is_a_tool_error() {
    let case = cases()
        .into_iter()
        .find(|c| c.what == "output that breaks the output schema")
        .unwrap();
    for direct_lane in [true, false] {
        let (status, _, body) = send(&host(direct_lane), &case).await;
        assert_eq!(status, 200, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        let result = &body["result"];
        assert_eq!(result["isError"], true, "{body}");
        assert!(result.get("structuredContent").is_none(), "{body}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("does not match its output_schema"), "{text}");
        assert!(text.contains("loud"), "{text}");
    }
}
