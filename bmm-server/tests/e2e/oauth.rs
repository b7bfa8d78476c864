//! `bmm run --auth local`: the served MCP endpoints are OAuth 2.1 resource
//! servers with the built-in authorization server on the same origin.

use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{Runner, block_on, get_json, python, upstream, workspace};

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
pub(crate) async fn token_for(client: &reqwest::Client, base: &str, resource: &str) -> String {
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

pub(crate) async fn mcp(
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
    block_on(async {
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
        let metadata = get_json(
            &client,
            &format!("{base}/.well-known/oauth-protected-resource/mcp/headers"),
        )
        .await;
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

#[test]
fn no_spelling_of_a_path_reaches_a_server_without_a_token() {
    let runner = Runner::start(&unit_converter(), &["--auth", "local", "--auto-approve"]);
    let base = format!("http://{}", runner.addr);
    block_on(async {
        let client = reqwest::Client::new();
        for path in [
            "/mcp",
            "/mcp/unit-converter",
            "/mcp/unit-converter?x=1",
            "/mcp/unit%2Dconverter",
            "/mcp/%75nit-converter",
            "/mcp/unit-converter/",
            "//mcp/unit-converter",
            "/MCP/unit-converter",
            "/%6Dcp/unit-converter",
            "/mcp%2Funit-converter",
            "/mcp/unit-converter%00",
            "/mcp/other",
            "/elsewhere",
        ] {
            let response = mcp(
                &client,
                &format!("{base}{path}"),
                None,
                "tools/list",
                json!({}),
            )
            .await;
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            assert!(
                status == 401 || status == 404,
                "{path} answered {status} without a token: {body}"
            );
        }
        // The probes need no token.
        for probe in ["/healthz", "/readyz"] {
            let status = client
                .get(format!("{base}{probe}"))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200, "{probe}");
        }
    });
}

/// The header of a compact JWS, decoded.
fn jws_header(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn local_mode_signs_with_rs256_unless_told_otherwise() {
    for (extra, alg, kty) in [
        (None, "RS256", "RSA"),
        (Some("ES256"), "ES256", "EC"),
        (Some("eddsa"), "EdDSA", "OKP"),
    ] {
        let mut args = vec!["--auth", "local", "--auto-approve"];
        args.extend(
            extra
                .map(|alg| ["--signing-alg", alg])
                .into_iter()
                .flatten(),
        );
        let runner = Runner::start(&unit_converter(), &args);
        let base = format!("http://{}", runner.addr);
        let resource = format!("{base}/mcp/unit-converter");
        block_on(async {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let metadata = get_json(
                &client,
                &format!("{base}/.well-known/oauth-authorization-server"),
            )
            .await;
            let jwks = get_json(&client, metadata["jwks_uri"].as_str().unwrap()).await;
            assert_eq!(jwks["keys"][0]["kty"], kty, "{extra:?}: {jwks}");
            assert_eq!(jwks["keys"][0]["alg"], alg, "{extra:?}: {jwks}");

            let token = token_for(&client, &base, &resource).await;
            assert_eq!(jws_header(&token)["alg"], alg, "{extra:?}");
            let response = mcp(
                &client,
                &resource,
                Some(&token),
                "tools/call",
                json!({"name": "convert_length", "arguments": {"value": 1, "from": "km", "to": "m"}}),
            )
            .await;
            assert_eq!(response.status(), 200, "{extra:?}");
            let text = response.text().await.unwrap();
            assert!(text.contains("1000"), "{extra:?}: {text}");
        });
    }

    // A name outside the list, or the option without local auth, is a usage error.
    let spec = workspace().join("examples/specs/unit-converter.json");
    for args in [
        &["--auth", "local", "--signing-alg", "HS256"][..],
        &["--signing-alg", "ES256"][..],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_bmm"))
            .arg("run")
            .arg("--spec")
            .arg(&spec)
            .args(["--port", "0"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("--signing-alg"), "{args:?}: {stderr}");
    }
}

/// `@modelcontextprotocol/conformance authorization` against the built-in
/// authorization server of `bmm run --auth local`: the suite prints an
/// authorization URL and waits for its callback; following the URL (the local
/// server approves without a page) answers it.
#[test]
fn conformance_authorization_suite_passes() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let runner = Runner::start(&unit_converter(), &["--auth", "local", "--auto-approve"]);
    let issuer = format!("http://{}", runner.addr);
    let resource = format!("{issuer}/mcp/unit-converter");
    let callback_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let registered: Value = runtime.block_on(async {
        client
            .post(format!("{issuer}/register"))
            .json(
                &json!({"redirect_uris": [format!("http://127.0.0.1:{callback_port}/callback")],
                          "token_endpoint_auth_method": "none",
                          "grant_types": ["authorization_code", "refresh_token"],
                          "client_name": "conformance"}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let client_id = registered["client_id"].as_str().unwrap().to_owned();

    let bin = workspace().join("tools/node/node_modules/.bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let results = tempfile::tempdir().unwrap();
    let mut suite = Command::new(bin.join("conformance"))
        .args([
            "authorization",
            "--url",
            &issuer,
            "--client-id",
            &client_id,
            "--resource",
            &resource,
        ])
        .args(["--port", &callback_port.to_string(), "-o"])
        .arg(results.path())
        .env("PATH", path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the conformance suite ({e}); `bash scripts/test` installs tools/node"
            )
        });
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for stream in [
        Box::new(suite.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(suite.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let started = Instant::now();
    let mut log = Vec::new();
    let mut answered = false;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(120)) {
        if !answered && let Some(at) = line.find(&format!("{issuer}/authorize?")) {
            let url = line[at..].split_whitespace().next().unwrap().to_owned();
            // The suite prints the URL before its callback listener is up: retry briefly.
            runtime.block_on(async {
                for attempt in 0.. {
                    match client.get(&url).send().await {
                        Ok(_) => break,
                        Err(e) if attempt < 50 && e.is_connect() => {
                            tokio::time::sleep(Duration::from_millis(200)).await
                        }
                        Err(e) => panic!("cannot answer the authorization request: {e}"),
                    }
                }
            });
            answered = true;
        }
        log.push(line);
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the suite ran too long:\n{}",
            log.join("\n")
        );
    }
    let status = suite.wait().unwrap();
    let log = log.join("\n");
    assert!(
        answered,
        "the suite never printed an authorization URL:\n{log}"
    );
    assert!(status.success(), "conformance authorization failed:\n{log}");
    assert!(
        log.contains("passed") && log.contains(" 0 failed"),
        "no results in the suite output:\n{log}"
    );
    println!("{log}");
}
