//! `bmm run` accepts requests for loopback names only, and browser requests
//! from loopback origins only, unless told otherwise (`--allow-host`,
//! `--any-host`, `--allow-origin`): the DNS-rebinding and cross-origin guards.

use serde_json::json;

use crate::harness::{Runner, block_on, workspace};

fn unit_converter() -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(workspace().join("examples/specs/unit-converter.json")).unwrap(),
    )
    .unwrap()
}

/// The status of a tools/list sent to `runner` with these extra headers.
fn status(runner: &Runner, headers: &[(&str, &str)]) -> u16 {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}}});
    block_on(async {
        let mut request = reqwest::Client::new()
            .post(runner.url())
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list")
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap().status().as_u16()
    })
}

#[test]
fn foreign_hosts_and_origins_are_refused_unless_allowed() {
    let runner = Runner::start(&unit_converter(), &[]);
    let own = runner.addr.to_string();
    assert_eq!(status(&runner, &[]), 200);
    assert_eq!(status(&runner, &[("host", &own)]), 200);
    assert_eq!(status(&runner, &[("host", "mcp.example.com")]), 403);
    assert_eq!(
        status(&runner, &[("origin", "https://app.example.com")]),
        403
    );
    assert_eq!(status(&runner, &[("origin", "http://localhost:5173")]), 200);
    drop(runner);

    let runner = Runner::start(
        &unit_converter(),
        &[
            "--allow-host",
            "mcp.example.com",
            "--allow-origin",
            "https://app.example.com",
        ],
    );
    assert_eq!(status(&runner, &[("host", "mcp.example.com")]), 200);
    assert_eq!(status(&runner, &[("host", "evil.example.com")]), 403);
    assert_eq!(
        status(&runner, &[("origin", "https://app.example.com")]),
        200
    );
    assert_eq!(
        status(&runner, &[("origin", "https://evil.example.com")]),
        403
    );
    // Still refused with a Host the list does not name.
    assert_eq!(
        status(
            &runner,
            &[
                ("host", "evil.example.com"),
                ("origin", "https://app.example.com")
            ]
        ),
        403
    );
    drop(runner);

    let runner = Runner::start(&unit_converter(), &["--any-host"]);
    assert_eq!(status(&runner, &[("host", "whatever.example.net")]), 200);
    assert_eq!(
        status(&runner, &[("origin", "https://app.example.com")]),
        403
    );
}
