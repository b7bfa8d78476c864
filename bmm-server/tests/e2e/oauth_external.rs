//! `bmm run --issuer URL --jwks-uri URL`: the served MCP endpoints trust an
//! external authorization server. The authorization server here is bmm-oauth's
//! own, run in-process on loopback with an RS256 key ring, so that the test can
//! both go through its code flow and mint tokens directly with its keys.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bmm_oauth::keys::SigningKey;
use bmm_oauth::token::{AccessTokenClaims, sign_access_token};
use bmm_oauth::{
    AuthorizationServer, AuthorizationServerConfig, KeyRing, MemoryStore, ResourceRecord,
    ResourceUri, SigningAlgorithm, StaticUser,
};
use serde_json::{Value, json};

use crate::harness::{Runner, block_on, get_json, workspace};
use crate::oauth::{mcp, token_for};

/// An authorization server serving on 127.0.0.1 in a background thread.
struct ExternalAs {
    issuer: String,
    jwks_uri: String,
    keys: Arc<KeyRing>,
    store: Arc<MemoryStore>,
}

impl ExternalAs {
    fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let issuer = format!("http://{}", listener.local_addr().unwrap());
                let store = Arc::new(MemoryStore::new());
                let keys = Arc::new(KeyRing::generate(SigningAlgorithm::Rs256).unwrap());
                let mut config = AuthorizationServerConfig::new(&issuer);
                config.scopes_supported = vec!["mcp:tools".to_owned()];
                let server = AuthorizationServer::new(
                    config,
                    store.clone(),
                    Arc::new(StaticUser::auto_approving("external-user")),
                    keys.clone(),
                )
                .unwrap();
                let jwks_uri = server.metadata().jwks_uri;
                tx.send(Self {
                    issuer,
                    jwks_uri,
                    keys,
                    store,
                })
                .unwrap();
                axum::serve(listener, server.router()).await.unwrap();
            });
        });
        rx.recv_timeout(Duration::from_secs(10)).unwrap()
    }

    /// Claims as this server would issue them for `audience`.
    fn claims(&self, audience: &str) -> AccessTokenClaims {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        AccessTokenClaims {
            iss: self.issuer.clone(),
            sub: "external-user".into(),
            aud: audience.into(),
            client_id: "https://client.example/metadata.json".into(),
            scope: "mcp:tools".into(),
            exp: now + 300,
            iat: now,
            nbf: now,
            jti: format!("jti-{audience}-{now}"),
        }
    }

    /// A token for `audience` signed with the current, published key.
    fn mint(&self, audience: &str) -> String {
        sign_access_token(&self.keys.current(), &self.claims(audience)).unwrap()
    }
}

fn unit_converter() -> Value {
    serde_json::from_slice(
        &std::fs::read(workspace().join("examples/specs/unit-converter.json")).unwrap(),
    )
    .unwrap()
}

fn start_runner(auth: &ExternalAs, public_url: Option<&str>) -> Runner {
    let mut args = vec!["--issuer", &auth.issuer, "--jwks-uri", &auth.jwks_uri];
    if let Some(public_url) = public_url {
        args.extend(["--public-url", public_url]);
    }
    Runner::start(&unit_converter(), &args)
}

/// The JSON-RPC message of an MCP answer, sent as JSON or as one SSE event.
async fn message(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap_or(&text);
    serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A successful `convert_length` answer in metres.
async fn converted(response: reqwest::Response, metres: f64) {
    assert_eq!(response.status(), 200);
    let answer = message(response).await;
    let result = &answer["result"]["structuredContent"];
    assert_eq!(result["value"].as_f64(), Some(metres), "{answer}");
    assert_eq!(result["unit"], "m", "{answer}");
    assert_ne!(answer["result"]["isError"], true, "{answer}");
}

fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("no WWW-Authenticate on {}", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The RFC 9728 metadata of `resource_path`, checked to name the external issuer.
async fn check_metadata(client: &reqwest::Client, base: &str, resource: &str, issuer: &str) {
    let path = url::Url::parse(resource).unwrap().path().to_owned();
    let metadata = get_json(
        client,
        &format!("{base}/.well-known/oauth-protected-resource{path}"),
    )
    .await;
    assert_eq!(metadata["resource"], resource, "{metadata}");
    assert_eq!(
        metadata["authorization_servers"],
        json!([issuer]),
        "{metadata}"
    );
}

fn convert(value: f64) -> Value {
    json!({"name": "convert_length", "arguments": {"value": value, "from": "km", "to": "m"}})
}

#[test]
fn external_issuer_tokens_are_checked_against_its_jwks() {
    let auth = ExternalAs::start();
    let runner = start_runner(&auth, None);
    let base = format!("http://{}", runner.addr);
    let resource = format!("{base}/mcp/unit-converter");
    auth.store.add_resource(ResourceRecord {
        uri: ResourceUri::parse(&resource).unwrap(),
        scopes_supported: vec!["mcp:tools".to_owned()],
    });
    block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();

        // The metadata sends clients to the external issuer, not to bmm.
        check_metadata(&client, &base, &resource, &auth.issuer).await;
        check_metadata(&client, &base, &format!("{base}/mcp"), &auth.issuer).await;

        // No token: 401 with a challenge pointing at that metadata.
        let response = mcp(&client, &resource, None, "tools/call", convert(1.0)).await;
        assert_eq!(response.status(), 401);
        let www = challenge(&response);
        assert!(www.starts_with("Bearer "), "{www}");
        assert!(
            www.contains(&format!(
                "resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp/unit-converter\""
            )),
            "{www}"
        );
        assert!(!www.contains("error="), "{www}");

        // A token from the external server's own code flow works…
        let token = token_for(&client, &auth.issuer, &resource).await;
        let response = mcp(&client, &resource, Some(&token), "tools/call", convert(1.5)).await;
        converted(response, 1500.0).await;

        // …and so does one minted with its published key, every time.
        let minted = auth.mint(&resource);
        for value in [2.0, 3.0] {
            let response = mcp(
                &client,
                &resource,
                Some(&minted),
                "tools/call",
                convert(value),
            )
            .await;
            converted(response, value * 1000.0).await;
        }

        let refused = |token: String, why: &'static str| {
            let client = client.clone();
            let resource = resource.clone();
            async move {
                let response =
                    mcp(&client, &resource, Some(&token), "tools/call", convert(1.0)).await;
                assert_eq!(response.status(), 401, "{why}");
                let www = challenge(&response);
                assert!(www.contains("error=\"invalid_token\""), "{why}: {www}");
                assert!(www.contains("resource_metadata=\""), "{why}: {www}");
            }
        };

        // A token for another audience: the other endpoint this server serves,
        // and a server elsewhere.
        refused(auth.mint(&format!("{base}/mcp")), "audience /mcp").await;
        refused(
            auth.mint("https://elsewhere.example/mcp/unit-converter"),
            "audience elsewhere",
        )
        .await;
        // The /mcp token is good on /mcp itself.
        let response = mcp(
            &client,
            &format!("{base}/mcp"),
            Some(&auth.mint(&format!("{base}/mcp"))),
            "tools/call",
            convert(1.0),
        )
        .await;
        converted(response, 1000.0).await;

        // A token signed by a key that is not in the JWKS, under its own kid…
        let stranger = SigningKey::generate(SigningAlgorithm::Rs256).unwrap();
        refused(
            sign_access_token(&stranger, &auth.claims(&resource)).unwrap(),
            "unknown key",
        )
        .await;
        // …and under the kid of the published key.
        refused(forged_with_published_kid(&auth, &resource), "forged kid").await;

        // A token from another issuer, signed with the right key.
        let mut claims = auth.claims(&resource);
        claims.iss = "https://other-issuer.example".into();
        refused(
            sign_access_token(&auth.keys.current(), &claims).unwrap(),
            "another issuer",
        )
        .await;

        // The probes stay open.
        let health = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
    });
}

/// `--public-url` names the resource: tokens must carry the public URI, and the
/// metadata and challenges say so.
#[test]
fn external_issuer_with_a_public_url() {
    let auth = ExternalAs::start();
    let public = "https://mcp.example.test";
    let runner = start_runner(&auth, Some(public));
    let base = format!("http://{}", runner.addr);
    let local_url = format!("{base}/mcp/unit-converter");
    let resource = format!("{public}/mcp/unit-converter");
    block_on(async {
        let client = reqwest::Client::new();
        check_metadata(&client, &base, &resource, &auth.issuer).await;

        let response = mcp(&client, &local_url, None, "tools/call", convert(1.0)).await;
        assert_eq!(response.status(), 401);
        let www = challenge(&response);
        assert!(
            www.contains(&format!(
                "resource_metadata=\"{public}/.well-known/oauth-protected-resource/mcp/unit-converter\""
            )),
            "{www}"
        );

        let response = mcp(
            &client,
            &local_url,
            Some(&auth.mint(&resource)),
            "tools/call",
            convert(4.0),
        )
        .await;
        converted(response, 4000.0).await;

        // The address it happens to listen on is not its name.
        let response = mcp(
            &client,
            &local_url,
            Some(&auth.mint(&local_url)),
            "tools/call",
            convert(1.0),
        )
        .await;
        assert_eq!(response.status(), 401);
        assert!(challenge(&response).contains("error=\"invalid_token\""));
    });
}

/// A token naming the published key's `kid` but signed with another RSA key.
fn forged_with_published_kid(auth: &ExternalAs, resource: &str) -> String {
    use aws_lc_rs::encoding::AsDer as _;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair.as_der().unwrap();
    let body = STANDARD
        .encode(der.as_ref())
        .as_bytes()
        .chunks(64)
        .map(|line| format!("{}\n", std::str::from_utf8(line).unwrap()))
        .collect::<String>();
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\n");
    let published_kid = auth.keys.current().kid().to_owned();
    let forger =
        SigningKey::from_pem(SigningAlgorithm::Rs256, pem.as_bytes(), Some(published_kid)).unwrap();
    sign_access_token(&forger, &auth.claims(resource)).unwrap()
}

#[test]
fn external_issuer_keys_are_found_from_its_metadata() {
    let auth = ExternalAs::start();
    // No --jwks-uri: bmm run reads it from the issuer's RFC 8414 metadata.
    let runner = Runner::start(&unit_converter(), &["--issuer", &auth.issuer]);
    let resource = format!("http://{}/mcp/unit-converter", runner.addr);
    block_on(async {
        let client = reqwest::Client::new();
        let response = mcp(
            &client,
            &resource,
            Some(&auth.mint(&resource)),
            "tools/call",
            convert(2.5),
        )
        .await;
        converted(response, 2500.0).await;
        let response = mcp(
            &client,
            &resource,
            Some(&forged_with_published_kid(&auth, &resource)),
            "tools/call",
            convert(1.0),
        )
        .await;
        assert_eq!(response.status(), 401);
    });
}

#[test]
fn an_issuer_whose_keys_cannot_be_found_stops_bmm_run() {
    let auth = ExternalAs::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let spec = workspace().join("examples/specs/unit-converter.json");
    for (issuer, words) in [
        // Issuers are compared exactly: the metadata names it without the slash.
        (format!("{}/", auth.issuer), "names the issuer"),
        // Nothing answers there.
        (format!("http://{closed}"), "no metadata found"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_bmm"))
            .arg("run")
            .arg("--spec")
            .arg(&spec)
            .args(["--port", "0", "--issuer", &issuer])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{issuer}: {stderr}");
        assert!(stderr.contains(words), "{issuer}: {stderr}");
        assert!(stderr.contains("--jwks-uri"), "{issuer}: {stderr}");
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("listening"),
            "{issuer}: it listened before failing"
        );
    }
}
