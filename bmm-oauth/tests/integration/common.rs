//! The test fixture: an authorization server and two protected resources in one app.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::routing::post;
use axum::{Extension, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bmm_oauth::clock::{Clock, ManualClock, SystemClock};
use bmm_oauth::pkce::s256_challenge;
use bmm_oauth::server::Consent;
use bmm_oauth::{
    AuthorizationServer, AuthorizationServerConfig, JwksCache, KeyRing, MemoryStore, Principal,
    ResourceRecord, ResourceServer, ResourceServerConfig, ResourceUri, SigningAlgorithm,
    StaticUser, Store,
};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

pub(crate) const ISSUER: &str = "https://auth.example.com";
pub(crate) const RES_A: &str = "https://mcp.example.com/mcp/a";
pub(crate) const RES_B: &str = "https://mcp.example.com/mcp/b";
pub(crate) const REDIRECT: &str = "https://app.example/cb";
pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub(crate) struct Fixture {
    pub(crate) app: Router,
    pub(crate) server: AuthorizationServer,
    pub(crate) store: Arc<MemoryStore>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) rs_a: ResourceServer,
}

/// What a request came back with.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub(crate) fn location(&self) -> Option<url::Url> {
        let loc = self.headers.get(header::LOCATION)?.to_str().ok()?;
        url::Url::parse(loc).ok()
    }

    pub(crate) fn location_param(&self, name: &str) -> Option<String> {
        self.location()?
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub(crate) fn www_authenticate(&self) -> String {
        self.headers
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The OAuth error wherever this kind of answer carries it: a redirect's
    /// query, a JSON body, or a bearer challenge.
    pub(crate) fn error(&self) -> Option<String> {
        if let Some(e) = self.location_param("error") {
            return Some(e);
        }
        if let Some(e) = self.json().get("error").and_then(Value::as_str) {
            return Some(e.to_owned());
        }
        let challenge = self.www_authenticate();
        challenge
            .split("error=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned)
    }
}

pub(crate) fn resource_a() -> ResourceUri {
    ResourceUri::parse(RES_A).unwrap()
}

pub(crate) struct Options {
    pub(crate) consent: Arc<dyn Consent>,
    pub(crate) alg: SigningAlgorithm,
    pub(crate) config: Box<dyn FnOnce(&mut AuthorizationServerConfig)>,
    /// The store the authorization server uses, given the fixture's.
    pub(crate) store: Box<dyn FnOnce(Arc<MemoryStore>) -> Arc<dyn Store>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            consent: Arc::new(StaticUser::auto_approving("alice")),
            alg: SigningAlgorithm::Es256,
            config: Box::new(|_| {}),
            store: Box::new(|store| store),
        }
    }
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self::with(Options::default())
    }

    pub(crate) fn with(options: Options) -> Self {
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let store = Arc::new(MemoryStore::new());
        for (uri, scopes) in [
            (RES_A, vec!["notes:read", "notes:write"]),
            (RES_B, vec!["notes:read"]),
        ] {
            store.add_resource(ResourceRecord {
                uri: ResourceUri::parse(uri).unwrap(),
                scopes_supported: scopes.into_iter().map(str::to_owned).collect(),
            });
        }
        let keys = Arc::new(bmm_oauth::KeyRing::with_clock(
            bmm_oauth::SigningKey::generate(options.alg).unwrap(),
            clock.clone(),
        ));
        let mut config = AuthorizationServerConfig::new(ISSUER);
        (options.config)(&mut config);
        let server = AuthorizationServer::with_clock(
            config,
            (options.store)(store.clone()),
            options.consent,
            keys.clone(),
            clock.clone(),
        )
        .unwrap();
        // No refetch rate limit here, so a rotated-in key is picked up at once;
        // the rate limit has its own test.
        let jwks = Arc::new(JwksCache::with_limits(
            keys.clone(),
            std::time::Duration::ZERO,
            std::time::Duration::from_secs(300),
        ));
        let rs = |uri: &str, required: &[&str]| {
            let mut c = ResourceServerConfig::new(ResourceUri::parse(uri).unwrap(), ISSUER);
            c.scopes_supported = vec![
                "notes:read".into(),
                "notes:write".into(),
                "offline_access".into(),
            ];
            c.required_scopes = required.iter().map(|s| (*s).to_owned()).collect();
            ResourceServer::new(c, jwks.clone())
        };
        let rs_a = rs(RES_A, &["notes:read"]);
        let rs_b = rs(RES_B, &["notes:read"]);

        async fn whoami(Extension(p): Extension<Principal>, headers: HeaderMap) -> String {
            // Echo whether the token reached the handler: it must not.
            format!(
                "{} {} {}",
                p.subject(),
                p.client_id(),
                headers.contains_key(header::AUTHORIZATION)
            )
        }
        let app = Router::new()
            .route("/mcp/a", post(whoami).layer(rs_a.layer()))
            .route(
                "/mcp/a/write",
                post(whoami).layer(rs_a.layer_with_scopes(&["notes:write"])),
            )
            .route(
                "/mcp/a/both",
                post(whoami).layer(rs_a.layer_with_scopes(&["notes:read", "notes:write"])),
            )
            .route("/mcp/b", post(whoami).layer(rs_b.layer()))
            .merge(rs_a.metadata_router())
            .merge(server.router());
        Self {
            app,
            server,
            store,
            clock,
            keys,
            rs_a,
        }
    }

    pub(crate) async fn send(&self, req: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub(crate) async fn post_form(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Reply {
        let body = form(pairs);
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            req = req.header(header::AUTHORIZATION, basic_header(id, secret));
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(req).await
    }

    /// Register a client by RFC 7591; returns (client_id, client_secret).
    pub(crate) async fn register(&self, method: &str, redirect: &str) -> (String, Option<String>) {
        let reply = self
            .post_json(
                "/register",
                &serde_json::json!({
                    "redirect_uris": [redirect],
                    "token_endpoint_auth_method": method,
                    "grant_types": ["authorization_code", "refresh_token"],
                    "client_name": "test client",
                }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
        let json = reply.json();
        (
            json["client_id"].as_str().unwrap().to_owned(),
            json["client_secret"].as_str().map(str::to_owned),
        )
    }

    pub(crate) async fn public_client(&self) -> String {
        self.register("none", REDIRECT).await.0
    }

    /// `GET /authorize` with the standard parameters, `overrides` replacing or
    /// (with an empty value) dropping them.
    pub(crate) async fn authorize(&self, client_id: &str, overrides: &[(&str, &str)]) -> Reply {
        let challenge = s256_challenge(VERIFIER);
        let mut params: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("resource", RES_A),
            ("scope", "notes:read"),
            ("state", "xyz"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (k, v) in overrides {
            params.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                params.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.get(&format!("/authorize?{}", form(&pairs))).await
    }

    pub(crate) async fn code(&self, client_id: &str, overrides: &[(&str, &str)]) -> String {
        let reply = self.authorize(client_id, overrides).await;
        assert_eq!(reply.status, StatusCode::FOUND, "{reply:?}");
        reply
            .location_param("code")
            .unwrap_or_else(|| panic!("no code in {:?}", reply.location()))
    }

    pub(crate) async fn exchange(&self, client_id: &str, code: &str) -> Reply {
        self.post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await
    }

    /// Register, authorize and exchange: (client_id, access_token, refresh_token).
    pub(crate) async fn tokens(&self) -> (String, String, String) {
        let client = self.public_client().await;
        let code = self.code(&client, &[]).await;
        let reply = self.exchange(&client, &code).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
        let json = reply.json();
        (
            client,
            json["access_token"].as_str().unwrap().to_owned(),
            json["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    pub(crate) async fn refresh(&self, client_id: &str, refresh_token: &str) -> Reply {
        self.post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("refresh_token", refresh_token),
            ],
            None,
        )
        .await
    }

    /// POST to a protected route with an `Authorization` header.
    pub(crate) async fn call(&self, path: &str, authorization: Option<&str>) -> Reply {
        let mut req = Request::post(path);
        if let Some(value) = authorization {
            req = req.header(header::AUTHORIZATION, value);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }
}

pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub(crate) fn basic_header(id: &str, secret: &str) -> String {
    let enc = |s: &str| form(&[("x", s)])[2..].to_owned();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// Decode a JWT part without verifying anything.
pub(crate) fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
