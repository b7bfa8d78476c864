//! `bmm run --auth local`: the served MCP endpoints are OAuth 2.1 resource
//! servers with the built-in authorization server on the same origin.

use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{Runner, python, upstream, workspace};

fn unit_converter() -> Value {
    serde_json::from_slice(
        &std::fs::read(workspace().join("examples/specs/unit-converter.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn python_oauth_client_provider_end_to_end() {
    let runner = Runner::start(&unit_converter(), &["--auth", "local", "--auto-approve"]);
    let output = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/oauth_client.py"
        ))
        .arg(format!("http://{}/mcp/unit-converter", runner.addr))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        10,
        "{stdout}"
    );
}

/// Registers a public client and runs the authorization code flow with PKCE
/// for `resource`; returns the access token.
async fn token_for(client: &reqwest::Client, base: &str, resource: &str) -> String {
    let redirect = "http://127.0.0.1:8765/callback";
    let registered: Value = client
        .post(format!("{base}/register"))
        .json(
            &json!({"redirect_uris": [redirect], "token_endpoint_auth_method": "none",
                      "grant_types": ["authorization_code", "refresh_token"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let verifier = "a-verifier-long-enough-for-rfc-7636-to-accept-it-0123456789";
    let challenge = bmm_oauth::pkce::s256_challenge(verifier);
    let authorize = url::Url::parse_with_params(
        &format!("{base}/authorize"),
        [
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", redirect),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("resource", resource),
            ("state", "s1"),
        ],
    )
    .unwrap();
    let answer = client.get(authorize).send().await.unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"));
    let token: Value = client
        .post(format!("{base}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("grant_type", "authorization_code"),
                    ("client_id", client_id.as_str()),
                    ("code", code.as_str()),
                    ("redirect_uri", redirect),
                    ("code_verifier", verifier),
                ])
                .finish(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_owned()
}

async fn mcp(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    method: &str,
    params: Value,
) -> reqwest::Response {
    let mut params = params;
    params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                             "io.modelcontextprotocol/clientCapabilities": {}});
    let mut request = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
    if method == "tools/call" {
        request = request.header("mcp-name", params["name"].as_str().unwrap_or_default());
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[test]
fn tokens_are_bound_to_one_server_and_never_reach_upstreams() {
    let upstream = upstream();
    let spec = json!({
        "bmm": "1", "name": "Headers", "slug": "headers", "description": "Shows what an upstream receives.",
        "egress": [upstream.to_string()],
        "tools": [{"name": "upstream_headers", "description": "Returns the header names the upstream saw.",
                   "input_schema": {"type": "object"},
                   "implementation": {"kind": "http", "method": "GET", "url": format!("http://{upstream}/headers")}}]
    });
    let runner = Runner::start(
        &spec,
        &[
            "--auth",
            "local",
            "--auto-approve",
            "--allow-http",
            "--allow-network",
            "127.0.0.1/32",
        ],
    );
    let base = format!("http://{}", runner.addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let slug_url = format!("{base}/mcp/headers");

        // No token: 401 pointing at the path-aware metadata, which is served.
        let response = mcp(&client, &slug_url, None, "tools/list", json!({})).await;
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = format!(
            "resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp/headers\""
        );
        assert!(challenge.contains(&expected), "{challenge}");
        let metadata: Value = client
            .get(format!(
                "{base}/.well-known/oauth-protected-resource/mcp/headers"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["resource"], slug_url.as_str());
        assert_eq!(metadata["authorization_servers"][0], base.as_str());
        assert_eq!(
            client
                .get(format!("{base}/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );

        // A token for /mcp/headers works there…
        let token = token_for(&client, &base, &slug_url).await;
        let response = mcp(
            &client,
            &slug_url,
            Some(&token),
            "tools/call",
            json!({"name": "upstream_headers", "arguments": {}}),
        )
        .await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(text.contains("names"), "{text}");
        // …and the upstream never saw it.
        assert!(
            !text.to_ascii_lowercase().contains("authorization"),
            "the token reached the upstream: {text}"
        );
        assert!(!text.contains(&token));

        // The same token is refused by the other resource this server serves (/mcp).
        let response = mcp(
            &client,
            &format!("{base}/mcp"),
            Some(&token),
            "tools/list",
            json!({}),
        )
        .await;
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

        // A token in the query string is never accepted.
        let response = client
            .post(format!("{slug_url}?access_token={token}"))
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .unwrap();
        assert_ne!(response.status(), 200);
    });
}
