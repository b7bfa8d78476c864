//! Positive flows end to end through the real routers, plus the behaviours around them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use bmm_oauth::clock::Clock as _;
use bmm_oauth::resource_server::JwksSource;
use bmm_oauth::secret::SecretHash;
use bmm_oauth::server::StaticUser;
use bmm_oauth::store::{CodeLookup, CodeRecord, PendingAuthorization, RefreshRecord};
use bmm_oauth::token::sign_access_token;
use bmm_oauth::{
    ClientRecord, JwksCache, MemoryStore, ResourceRecord, ResourceServer, ResourceServerConfig,
    ResourceUri, SigningAlgorithm, SigningKey, Store,
};
use serde_json::{Value, json};

use crate::common::*;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn metadata_advertises_exactly_what_is_supported() {
    let fx = Fixture::new();
    let meta = fx.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(meta.status, StatusCode::OK);
    let m = meta.json();
    assert_eq!(m["issuer"], ISSUER);
    assert_eq!(m["authorization_endpoint"], format!("{ISSUER}/authorize"));
    assert_eq!(m["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(m["registration_endpoint"], format!("{ISSUER}/register"));
    assert_eq!(m["revocation_endpoint"], format!("{ISSUER}/revoke"));
    assert_eq!(m["jwks_uri"], format!("{ISSUER}/jwks.json"));
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["response_types_supported"], json!(["code"]));
    assert_eq!(
        m["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(m["client_id_metadata_document_supported"], true);
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    let oidc = fx.get("/.well-known/openid-configuration").await.json();
    assert_eq!(oidc, m);
    let jwks = fx.get("/jwks.json").await.json();
    assert_eq!(jwks["keys"][0]["kid"], fx.keys.current().kid());
    assert!(jwks["keys"][0].get("d").is_none());
}

#[tokio::test]
async fn metadata_never_advertises_offline_access() {
    let fx = Fixture::with(Options {
        config: Box::new(|c| {
            c.scopes_supported = vec![
                "notes:read".into(),
                "offline_access".into(),
                "notes:write".into(),
            ];
        }),
        ..Options::default()
    });
    let m = fx
        .get("/.well-known/oauth-authorization-server")
        .await
        .json();
    assert_eq!(m["scopes_supported"], json!(["notes:read", "notes:write"]));
    assert_eq!(
        fx.server.metadata().scopes_supported,
        ["notes:read", "notes:write"]
    );
    // With nothing else configured, no scopes are advertised at all.
    let fx = Fixture::with(Options {
        config: Box::new(|c| c.scopes_supported = vec!["offline_access".into()]),
        ..Options::default()
    });
    let m = fx.get("/.well-known/openid-configuration").await.json();
    assert!(m.get("scopes_supported").is_none(), "{m}");
}

#[tokio::test]
async fn issuer_with_a_path_serves_every_discovery_form() {
    let fx = Fixture::with(Options {
        config: Box::new(|c| c.issuer = "https://auth.example.com/tenant/one".into()),
        ..Options::default()
    });
    for path in [
        "/.well-known/oauth-authorization-server/tenant/one",
        "/.well-known/openid-configuration/tenant/one",
        "/tenant/one/.well-known/openid-configuration",
    ] {
        let reply = fx.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let m = reply.json();
        assert_eq!(m["issuer"], "https://auth.example.com/tenant/one", "{path}");
        assert_eq!(
            m["token_endpoint"],
            "https://auth.example.com/tenant/one/token"
        );
    }
    assert_eq!(
        fx.get("/.well-known/oauth-authorization-server")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn public_client_flow_reaches_the_protected_route() {
    let fx = Fixture::new();
    let client = fx.public_client().await;
    let code = fx.code(&client, &[]).await;
    let reply = fx.exchange(&client, &code).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    let json = reply.json();
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["expires_in"], 600);
    assert_eq!(json["scope"], "notes:read");
    let at = json["access_token"].as_str().unwrap();

    // RFC 9068 shape.
    let header = jwt_part(at, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], fx.keys.current().kid());
    let claims = jwt_part(at, 1);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], RES_A);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], client.as_str());
    assert_eq!(claims["scope"], "notes:read");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 32));

    let call = fx.call("/mcp/a", Some(&format!("Bearer {at}"))).await;
    assert_eq!(call.status, StatusCode::OK);
    // The handler sees the principal, and not the token.
    assert_eq!(
        String::from_utf8(call.body.to_vec()).unwrap(),
        format!("alice {client} false")
    );
    // Scheme names are case-insensitive.
    assert_eq!(
        fx.call("/mcp/a", Some(&format!("bearer {at}")))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn confidential_clients_authenticate_by_basic_and_post() {
    let fx = Fixture::new();
    for method in ["client_secret_basic", "client_secret_post"] {
        let (client, secret) = fx.register(method, REDIRECT).await;
        let secret = secret.expect("a confidential client gets a secret");
        let code = fx.code(&client, &[]).await;
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ];
        let basic = if method == "client_secret_basic" {
            Some((client.as_str(), secret.as_str()))
        } else {
            pairs.push(("client_id", &client));
            pairs.push(("client_secret", &secret));
            None
        };
        let reply = fx.post_form("/token", &pairs, basic).await;
        assert_eq!(reply.status, StatusCode::OK, "{method}: {:?}", reply.json());
    }
}

#[tokio::test]
async fn consent_page_flow_is_bound_to_the_browser() {
    let fx = Fixture::with(Options {
        consent: Arc::new(StaticUser::new("bob")),
        ..Options::default()
    });
    let client = fx.public_client().await;
    let page = fx.authorize(&client, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    let cookie = page.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Secure")
    );
    let html = String::from_utf8(page.body.to_vec()).unwrap();
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).unwrap() + marker.len();
        html[start..].split('"').next().unwrap().to_owned()
    };
    let cookie_pair = cookie.split(';').next().unwrap();
    let req = axum::http::Request::post("/authorize/decision")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie_pair)
        .body(axum::body::Body::from(form(&[
            ("request_id", &field("request_id")),
            ("csrf_token", &field("csrf_token")),
            ("decision", "approve"),
        ])))
        .unwrap();
    let reply = fx.send(req).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location_param("iss").as_deref(), Some(ISSUER));
    assert_eq!(reply.location_param("state").as_deref(), Some("xyz"));
    let code = reply.location_param("code").unwrap();
    let tokens = fx.exchange(&client, &code).await;
    assert_eq!(tokens.status, StatusCode::OK);
    assert_eq!(
        jwt_part(tokens.json()["access_token"].as_str().unwrap(), 1)["sub"],
        "bob"
    );
}

#[tokio::test]
async fn loopback_redirects_may_use_any_port() {
    let fx = Fixture::new();
    let (client, _) = fx.register("none", "http://127.0.0.1/callback").await;
    let redirect = "http://127.0.0.1:49152/callback";
    let reply = fx.authorize(&client, &[("redirect_uri", redirect)]).await;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert!(reply.location().unwrap().as_str().starts_with(redirect));
    let code = reply.location_param("code").unwrap();
    let tokens = fx
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(tokens.status, StatusCode::OK);
}

#[tokio::test]
async fn refresh_rotates_and_concurrent_refreshes_get_the_same_answer() {
    let fx = Arc::new(Fixture::new());
    let (client, _, rt) = fx.tokens().await;
    let (a, b) = tokio::join!(fx.refresh(&client, &rt), fx.refresh(&client, &rt));
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.json());
    assert_eq!(b.status, StatusCode::OK, "{:?}", b.json());
    let next = a.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(next, rt);
    assert_eq!(b.json()["refresh_token"], next.as_str());
    assert_eq!(b.headers[header::CACHE_CONTROL], "no-store");

    // Still inside the grace window: the same answer again.
    fx.clock.advance(5);
    assert_eq!(
        fx.refresh(&client, &rt).await.json()["refresh_token"],
        next.as_str()
    );

    // The successor works and rotates in turn.
    let third = fx.refresh(&client, &next).await;
    assert_eq!(third.status, StatusCode::OK);
    let at = third.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        fx.call("/mcp/a", Some(&format!("Bearer {at}")))
            .await
            .status,
        StatusCode::OK
    );
}

/// A store whose refresh-token lookups, once armed, wait until both of two
/// concurrent refreshes have made theirs: both then try to rotate the token.
struct LookupGate {
    inner: Arc<MemoryStore>,
    /// Lookups still to hold at the barrier.
    armed: AtomicUsize,
    barrier: tokio::sync::Barrier,
    /// Rotations refused because another request rotated the token first.
    lost_rotations: AtomicUsize,
}

impl LookupGate {
    fn new(inner: Arc<MemoryStore>) -> Self {
        Self {
            inner,
            armed: AtomicUsize::new(0),
            barrier: tokio::sync::Barrier::new(2),
            lost_rotations: AtomicUsize::new(0),
        }
    }
}

#[async_trait::async_trait]
impl Store for LookupGate {
    async fn resource(&self, uri: &ResourceUri) -> bmm_oauth::Result<Option<ResourceRecord>> {
        self.inner.resource(uri).await
    }
    async fn insert_client(&self, client: ClientRecord) -> bmm_oauth::Result<()> {
        self.inner.insert_client(client).await
    }
    async fn client(&self, client_id: &str) -> bmm_oauth::Result<Option<ClientRecord>> {
        self.inner.client(client_id).await
    }
    async fn touch_client(&self, client_id: &str, now: i64) -> bmm_oauth::Result<()> {
        self.inner.touch_client(client_id, now).await
    }
    async fn delete_stale_clients(&self, never: i64, unused: i64) -> bmm_oauth::Result<usize> {
        self.inner.delete_stale_clients(never, unused).await
    }
    async fn insert_pending(&self, pending: PendingAuthorization) -> bmm_oauth::Result<()> {
        self.inner.insert_pending(pending).await
    }
    async fn take_pending(&self, id: &str) -> bmm_oauth::Result<Option<PendingAuthorization>> {
        self.inner.take_pending(id).await
    }
    async fn insert_code(&self, code: CodeRecord) -> bmm_oauth::Result<()> {
        self.inner.insert_code(code).await
    }
    async fn consume_code(&self, hash: &SecretHash) -> bmm_oauth::Result<CodeLookup> {
        self.inner.consume_code(hash).await
    }
    async fn set_code_family(&self, hash: &SecretHash, family: &str) -> bmm_oauth::Result<()> {
        self.inner.set_code_family(hash, family).await
    }
    async fn insert_refresh(&self, token: RefreshRecord) -> bmm_oauth::Result<()> {
        self.inner.insert_refresh(token).await
    }
    async fn refresh(&self, hash: &SecretHash) -> bmm_oauth::Result<Option<RefreshRecord>> {
        let found = self.inner.refresh(hash).await?;
        if self
            .armed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            self.barrier.wait().await;
        }
        Ok(found)
    }
    async fn rotate_refresh(
        &self,
        old: &SecretHash,
        now: i64,
        successor: RefreshRecord,
    ) -> bmm_oauth::Result<bool> {
        let rotated = self.inner.rotate_refresh(old, now, successor).await?;
        if !rotated {
            self.lost_rotations.fetch_add(1, Ordering::SeqCst);
        }
        Ok(rotated)
    }
    async fn revoke_family(&self, family: &str) -> bmm_oauth::Result<()> {
        self.inner.revoke_family(family).await
    }
    async fn purge_expired(&self, now: i64) -> bmm_oauth::Result<()> {
        self.inner.purge_expired(now).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_refreshes_agree_and_a_later_replay_revokes_the_family() {
    let slot = Arc::new(std::sync::OnceLock::new());
    let keep = slot.clone();
    let fx = Arc::new(Fixture::with(Options {
        store: Box::new(move |memory| {
            let gate = Arc::new(LookupGate::new(memory));
            keep.set(gate.clone()).ok();
            gate
        }),
        ..Options::default()
    }));
    let gate: Arc<LookupGate> = slot.get().unwrap().clone();
    let (client, _, rt) = fx.tokens().await;

    // Both requests look the token up before either rotates it.
    gate.armed.store(2, Ordering::SeqCst);
    let refresh = || {
        let (fx, client, rt) = (fx.clone(), client.clone(), rt.clone());
        tokio::spawn(async move { fx.refresh(&client, &rt).await })
    };
    let (a, b) = (refresh(), refresh());
    let (a, b) = tokio::time::timeout(Duration::from_secs(10), async {
        (a.await.unwrap(), b.await.unwrap())
    })
    .await
    .expect("both refreshes reach the barrier");
    assert_eq!(gate.armed.load(Ordering::SeqCst), 0);
    assert_eq!(gate.lost_rotations.load(Ordering::SeqCst), 1);
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.json());
    assert_eq!(b.status, StatusCode::OK, "{:?}", b.json());
    let next = a.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(next, rt);
    assert_eq!(b.json()["refresh_token"], next.as_str());

    // The successor is rotated in turn; then, still inside the grace window,
    // the original token comes back: a replay, and the family is revoked.
    let third = fx.refresh(&client, &next).await;
    assert_eq!(third.status, StatusCode::OK);
    let newest = third.json()["refresh_token"].as_str().unwrap().to_owned();
    let replay = fx.refresh(&client, &rt).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.json()["error"], "invalid_grant");
    assert_eq!(
        replay.json()["error_description"],
        "refresh token reuse detected; the grant is revoked"
    );
    let revoked = fx.refresh(&client, &newest).await;
    assert_eq!(revoked.status, StatusCode::BAD_REQUEST);
    assert_eq!(revoked.json()["error"], "invalid_grant");
    assert_eq!(revoked.json()["error_description"], "refresh token revoked");
}

#[tokio::test]
async fn revocation_answers_success_for_unknown_tokens() {
    let fx = Fixture::new();
    let (client, at, _) = fx.tokens().await;
    let reply = fx
        .post_form(
            "/revoke",
            &[("client_id", &client), ("token", "nonsense")],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = fx
        .post_form(
            "/revoke",
            &[
                ("client_id", &client),
                ("token", &at),
                ("token_type_hint", "access_token"),
            ],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn every_algorithm_issues_verifiable_tokens() {
    for alg in SigningAlgorithm::ALL {
        let fx = Fixture::with(Options {
            alg,
            ..Options::default()
        });
        let (_, at, _) = fx.tokens().await;
        assert_eq!(jwt_part(&at, 0)["alg"], alg.as_str());
        let reply = fx.call("/mcp/a", Some(&format!("Bearer {at}"))).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{alg:?}: {}",
            reply.www_authenticate()
        );
    }
}

/// An independent JWT library verifies the issued tokens against the published JWKS.
#[tokio::test]
async fn jsonwebtoken_verifies_issued_tokens_with_the_published_jwks() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    for (alg, expected) in [
        (SigningAlgorithm::Rs256, Algorithm::RS256),
        (SigningAlgorithm::Es256, Algorithm::ES256),
        (SigningAlgorithm::EdDsa, Algorithm::EdDSA),
    ] {
        let fx = Fixture::with(Options {
            alg,
            ..Options::default()
        });
        let (client, at, _) = fx.tokens().await;
        let jwks: jsonwebtoken::jwk::JwkSet =
            serde_json::from_slice(&fx.get("/jwks.json").await.body).unwrap();
        let header = decode_header(&at).unwrap();
        assert_eq!(header.alg, expected);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = Validation::new(expected);
        validation.set_audience(&[RES_A]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub", "aud"]);
        validation.validate_nbf = true;
        let claims = decode::<Value>(&at, &key, &validation)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"))
            .claims;
        assert_eq!(claims["iss"], ISSUER, "{alg:?}");
        assert_eq!(claims["sub"], "alice", "{alg:?}");
        assert_eq!(claims["aud"], RES_A, "{alg:?}");
        assert_eq!(claims["client_id"], client.as_str(), "{alg:?}");
        assert_eq!(claims["scope"], "notes:read", "{alg:?}");
        let (exp, iat) = (claims["exp"].as_i64(), claims["iat"].as_i64());
        assert_eq!(iat, Some(fx.clock.now()), "{alg:?}");
        assert_eq!(exp, Some(fx.clock.now() + 600), "{alg:?}");
        assert!(
            claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
            "{alg:?}"
        );

        // The same validation refuses the token for another audience or issuer,
        // and a token signed by a key outside the JWKS.
        let mut other = validation.clone();
        other.set_audience(&[RES_B]);
        let err = decode::<Value>(&at, &key, &other).unwrap_err();
        assert_eq!(
            *err.kind(),
            jsonwebtoken::errors::ErrorKind::InvalidAudience
        );
        let mut other = validation.clone();
        other.set_issuer(&["https://other.example"]);
        let err = decode::<Value>(&at, &key, &other).unwrap_err();
        assert_eq!(*err.kind(), jsonwebtoken::errors::ErrorKind::InvalidIssuer);
        let stranger = SigningKey::generate(alg).unwrap();
        let key = DecodingKey::from_jwk(stranger.public_jwk()).unwrap();
        let err = decode::<Value>(&at, &key, &validation).unwrap_err();
        assert_eq!(
            *err.kind(),
            jsonwebtoken::errors::ErrorKind::InvalidSignature,
            "{alg:?}"
        );
    }
}

#[tokio::test]
async fn rotated_keys_keep_verifying_during_the_overlap() {
    let fx = Fixture::new();
    let (_, old_token, _) = fx.tokens().await;
    // Warm the resource server's cache with the first key.
    assert_eq!(
        fx.call("/mcp/a", Some(&format!("Bearer {old_token}")))
            .await
            .status,
        StatusCode::OK
    );
    fx.keys
        .rotate(SigningKey::generate(SigningAlgorithm::Es256).unwrap(), 3600);
    let (_, new_token, _) = fx.tokens().await;
    assert_ne!(
        jwt_part(&old_token, 0)["kid"],
        jwt_part(&new_token, 0)["kid"]
    );
    // The new kid is unknown to the cache: it refetches once and accepts it.
    assert_eq!(
        fx.call("/mcp/a", Some(&format!("Bearer {new_token}")))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        fx.call("/mcp/a", Some(&format!("Bearer {old_token}")))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        fx.get("/jwks.json").await.json()["keys"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let fx = Fixture::new();
    let cache = Arc::new(JwksCache::with_limits(
        fx.keys.clone() as Arc<dyn JwksSource>,
        Duration::from_millis(300),
        Duration::from_secs(3600),
    ));
    let rs = ResourceServer::new(
        ResourceServerConfig::new(resource_a(), ISSUER),
        cache.clone(),
    );
    let (_, at, _) = fx.tokens().await;
    assert!(rs.verify(&at).await.is_ok());
    assert_eq!(cache.fetch_count(), 1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let now = fx.clock.now();
    for _ in 0..20 {
        let stranger = SigningKey::generate(SigningAlgorithm::Es256).unwrap();
        let claims = bmm_oauth::token::AccessTokenClaims {
            iss: ISSUER.into(),
            sub: "x".into(),
            aud: RES_A.into(),
            client_id: "c".into(),
            scope: String::new(),
            exp: now + 60,
            iat: now,
            nbf: now,
            jti: "j".into(),
        };
        let t = sign_access_token(&stranger, &claims).unwrap();
        assert!(rs.verify(&t).await.is_err());
    }
    // One refetch for the first unknown kid, then the rate limit holds.
    assert_eq!(cache.fetch_count(), 2);
    assert!(rs.verify(&at).await.is_ok());
}

#[tokio::test]
async fn resource_metadata_is_served_at_the_path_aware_location() {
    let fx = Fixture::new();
    let reply = fx.get("/.well-known/oauth-protected-resource/mcp/a").await;
    assert_eq!(reply.status, StatusCode::OK);
    let m = reply.json();
    assert_eq!(m["resource"], RES_A);
    assert_eq!(m["authorization_servers"], json!([ISSUER]));
    assert_eq!(m["bearer_methods_supported"], json!(["header"]));
    assert_eq!(m["scopes_supported"], json!(["notes:read", "notes:write"]));
    assert_eq!(
        fx.get("/.well-known/oauth-protected-resource/mcp/zzz")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fx.get("/.well-known/oauth-protected-resource").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn jwks_over_http_on_a_loopback_listener() {
    let fx = Fixture::new();
    let base = serve(fx.server.router()).await;
    let cache = Arc::new(JwksCache::http(format!("{base}/jwks.json")).unwrap());
    let rs = ResourceServer::new(
        ResourceServerConfig::new(resource_a(), ISSUER),
        cache.clone(),
    );
    let (client, at, _) = fx.tokens().await;
    let principal = rs.verify(&at).await.unwrap();
    assert_eq!(principal.subject(), "alice");
    assert_eq!(principal.client_id(), client);
    assert_eq!(principal.scopes().collect::<Vec<_>>(), ["notes:read"]);
    assert_eq!(cache.fetch_count(), 1);
}

fn document(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Metadata Client",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// Serve client metadata documents: `/good.json` valid, `/liar.json` naming
/// another client id, `/huge.json` oversize.
async fn document_host() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let good = document(&format!("{base}/good.json")).to_string();
    let liar = document("https://someone-else.example/client.json").to_string();
    let mut huge = document(&format!("{base}/huge.json"));
    huge["client_name"] = Value::String("x".repeat(40_000));
    let huge = huge.to_string();
    let router = Router::new()
        .route("/good.json", get(move || async move { good }))
        .route("/liar.json", get(move || async move { liar }))
        .route("/huge.json", get(move || async move { huge }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

#[tokio::test]
async fn client_id_metadata_documents_are_fetched_validated_and_cached() {
    let fx = Fixture::with(Options {
        config: Box::new(|c| c.metadata_documents.allow_loopback = true),
        ..Options::default()
    });
    let base = document_host().await;
    let client = format!("{base}/good.json");
    let code = fx.code(&client, &[]).await;
    let reply = fx.exchange(&client, &code).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    assert_eq!(
        jwt_part(reply.json()["access_token"].as_str().unwrap(), 1)["client_id"],
        client.as_str()
    );

    for bad in ["liar.json", "huge.json", "missing.json"] {
        let reply = fx.authorize(&format!("{base}/{bad}"), &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(reply.error().as_deref(), Some("invalid_client"), "{bad}");
        assert!(reply.location().is_none());
    }
}

#[tokio::test]
async fn a_cached_metadata_document_is_fetched_once_until_it_expires() {
    let fx = Fixture::with(Options {
        config: Box::new(|c| c.metadata_documents.allow_loopback = true),
        ..Options::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = format!("http://{}/client.json", listener.local_addr().unwrap());
    let fetches = Arc::new(AtomicUsize::new(0));
    let body = document(&client).to_string();
    let count = fetches.clone();
    let router = Router::new().route(
        "/client.json",
        get(move || async move {
            count.fetch_add(1, Ordering::SeqCst);
            body
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let first = fx.code(&client, &[]).await;
    let _second = fx.code(&client, &[]).await;
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // The token request finds the client in the cache too.
    let reply = fx.exchange(&client, &first).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // Past the cache lifetime (300 s by default) the document is fetched again.
    let ttl = bmm_oauth::server::MetadataDocumentPolicy::default().cache_ttl_secs;
    fx.clock.advance(ttl - 1);
    fx.code(&client, &[]).await;
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    fx.clock.advance(1);
    fx.code(&client, &[]).await;
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn metadata_documents_on_private_addresses_are_refused_by_default() {
    let fx = Fixture::new();
    let base = document_host().await;
    let reply = fx.authorize(&format!("{base}/good.json"), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error().as_deref(), Some("invalid_client"));
    // https to a loopback name is refused by the address guard, not by the scheme rule.
    let reply = fx.authorize("https://localhost:1/client.json", &[]).await;
    assert_eq!(reply.error().as_deref(), Some("invalid_client"));
}

#[tokio::test]
async fn cleanup_deletes_stale_registrations_and_keeps_used_ones() {
    let fx = Fixture::new();
    let (used, _, _) = fx.tokens().await;
    let _unused = fx.public_client().await;
    assert_eq!(fx.store.client_count(), 2);
    fx.clock.advance(2 * 24 * 3600);
    assert_eq!(fx.server.cleanup().await.unwrap(), 1);
    assert_eq!(fx.store.client_count(), 1);
    // The used client still works.
    let code = fx.code(&used, &[]).await;
    assert_eq!(fx.exchange(&used, &code).await.status, StatusCode::OK);
}

const DAY: i64 = 24 * 3600;

#[tokio::test]
async fn cleanup_deletes_clients_unused_for_the_configured_time() {
    let fx = Fixture::with(Options {
        config: Box::new(|c| c.unused_client_secs = 7 * DAY),
        ..Options::default()
    });
    let (idle, _, _) = fx.tokens().await;
    let (active, _, rt) = fx.tokens().await;
    // A refresh is a use too.
    fx.clock.advance(3 * DAY);
    assert_eq!(fx.refresh(&active, &rt).await.status, StatusCode::OK);
    // Seven days after its last token the idle client is still kept ...
    fx.clock.advance(4 * DAY);
    assert_eq!(fx.server.cleanup().await.unwrap(), 0);
    assert_eq!(fx.store.client_count(), 2);
    // ... and one second later it is deleted, while the one used since stays.
    fx.clock.advance(1);
    assert_eq!(fx.server.cleanup().await.unwrap(), 1);
    assert_eq!(fx.store.client_count(), 1);
    let reply = fx.authorize(&idle, &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error().as_deref(), Some("invalid_client"));
    let code = fx.code(&active, &[]).await;
    assert_eq!(fx.exchange(&active, &code).await.status, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn spawned_cleanup_runs_at_once_and_then_every_interval() {
    let fx = Fixture::new();
    fx.public_client().await;
    fx.clock.advance(2 * DAY);
    let task = fx.server.spawn_cleanup(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fx.store.client_count(), 0);
    fx.public_client().await;
    fx.clock.advance(2 * DAY);
    tokio::time::sleep(Duration::from_secs(3598)).await;
    assert_eq!(fx.store.client_count(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fx.store.client_count(), 0);
    task.abort();
}

#[tokio::test]
async fn canonical_resource_in_requests_matches_the_registered_one() {
    let fx = Fixture::new();
    let client = fx.public_client().await;
    // Upper-case host and a trailing slash name the same resource.
    let code = fx
        .code(&client, &[("resource", "https://MCP.example.com/mcp/a/")])
        .await;
    let reply = fx.exchange(&client, &code).await;
    assert_eq!(
        jwt_part(reply.json()["access_token"].as_str().unwrap(), 1)["aud"],
        RES_A
    );
    assert_eq!(
        ResourceUri::parse("https://MCP.example.com/mcp/a/")
            .unwrap()
            .as_str(),
        RES_A
    );
}

#[tokio::test]
async fn audience_arrays_naming_this_resource_are_accepted() {
    let fx = Fixture::new();
    let now = fx.clock.now();
    let claims = json!({
        "iss": ISSUER, "sub": "carol", "aud": [RES_B, RES_A], "client_id": "c",
        "scope": "notes:read", "exp": now + 60, "iat": now, "jti": "j",
    });
    let t = bmm_oauth::token::sign_jwt(&fx.keys.current(), Some("at+jwt"), &claims).unwrap();
    let reply = fx.call("/mcp/a", Some(&format!("Bearer {t}"))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.www_authenticate());
    // Without `client_id` (required by RFC 9068) the same token is refused.
    let mut partial = claims.clone();
    partial.as_object_mut().unwrap().remove("client_id");
    let t = bmm_oauth::token::sign_jwt(&fx.keys.current(), Some("at+jwt"), &partial).unwrap();
    let reply = fx.call("/mcp/a", Some(&format!("Bearer {t}"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.www_authenticate().contains("required claim"));
}

#[tokio::test]
async fn staged_keys_verify_without_waiting_for_a_refetch() {
    let fx = Fixture::new();
    // A resource server whose cache may not refetch for an hour.
    let cache = Arc::new(JwksCache::with_limits(
        fx.keys.clone() as Arc<dyn JwksSource>,
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    ));
    let rs = ResourceServer::new(
        ResourceServerConfig::new(resource_a(), ISSUER),
        cache.clone(),
    );
    fx.keys
        .stage(SigningKey::generate(SigningAlgorithm::Es256).unwrap());
    let (_, before, _) = fx.tokens().await;
    assert!(rs.verify(&before).await.is_ok());
    assert!(fx.keys.promote_staged(3600));
    let (_, after, _) = fx.tokens().await;
    assert_ne!(jwt_part(&before, 0)["kid"], jwt_part(&after, 0)["kid"]);
    assert!(rs.verify(&after).await.is_ok());
    assert!(rs.verify(&before).await.is_ok());
    assert_eq!(cache.fetch_count(), 1);
}

#[tokio::test]
async fn cached_verifications_still_expire() {
    let fx = Fixture::new();
    let clock = Arc::new(bmm_oauth::clock::ManualClock::new(fx.clock.now()));
    let rs = ResourceServer::with_clock(
        ResourceServerConfig::new(resource_a(), ISSUER),
        Arc::new(JwksCache::new(fx.keys.clone())),
        clock.clone(),
    );
    let (_, at, _) = fx.tokens().await;
    assert!(rs.verify(&at).await.is_ok());
    assert!(rs.verify(&at).await.is_ok());
    // Past exp (600 s) plus the 30 s leeway.
    clock.advance(631);
    assert_eq!(
        rs.verify(&at).await,
        Err(bmm_oauth::BearerError::InvalidToken("token expired".into()))
    );
}

#[tokio::test]
async fn instances_sharing_a_rotation_secret_answer_concurrent_refreshes_alike() {
    let secret = bmm_oauth::secret::RotationSecret::generate().unwrap();
    let s1 = secret.clone();
    let first = Fixture::with(Options {
        config: Box::new(move |c| c.rotation_secret = Some(s1)),
        ..Options::default()
    });
    // A second instance over the same store, keys and clock.
    let mut config = bmm_oauth::AuthorizationServerConfig::new(ISSUER);
    config.rotation_secret = Some(secret);
    let second = bmm_oauth::AuthorizationServer::with_clock(
        config,
        first.store.clone(),
        Arc::new(StaticUser::auto_approving("alice")),
        first.keys.clone(),
        first.clock.clone(),
    )
    .unwrap();
    let (client, _, rt) = first.tokens().await;
    let a = first.refresh(&client, &rt).await.json();
    let req = axum::http::Request::post("/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", &rt),
        ])))
        .unwrap();
    let b = tower::ServiceExt::oneshot(second.router(), req)
        .await
        .unwrap();
    assert_eq!(b.status(), StatusCode::OK);
    let b: Value = serde_json::from_slice(
        &http_body_util::BodyExt::collect(b.into_body())
            .await
            .unwrap()
            .to_bytes(),
    )
    .unwrap();
    assert_eq!(a["refresh_token"], b["refresh_token"]);
}

#[tokio::test]
async fn a_foreign_rotation_secret_refuses_without_revoking() {
    let first = Fixture::new();
    let second = bmm_oauth::AuthorizationServer::with_clock(
        bmm_oauth::AuthorizationServerConfig::new(ISSUER),
        first.store.clone(),
        Arc::new(StaticUser::auto_approving("alice")),
        first.keys.clone(),
        first.clock.clone(),
    )
    .unwrap();
    let (client, _, rt) = first.tokens().await;
    let next = first.refresh(&client, &rt).await.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let req = axum::http::Request::post("/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", &rt),
        ])))
        .unwrap();
    let b = tower::ServiceExt::oneshot(second.router(), req)
        .await
        .unwrap();
    assert_eq!(b.status(), StatusCode::BAD_REQUEST);
    // The grant survives: the successor still refreshes.
    assert_eq!(first.refresh(&client, &next).await.status, StatusCode::OK);
}

/// A host serving many MCP servers under `/mcp/{slug}`.
struct Tenants;

impl bmm_oauth::resource_server::ResourceDirectory for Tenants {
    fn metadata_for(&self, path: &str) -> Option<bmm_oauth::ProtectedResourceMetadata> {
        let slug = path.strip_prefix("/mcp/")?;
        (slug == "notes" || slug == "crm").then(|| bmm_oauth::ProtectedResourceMetadata {
            resource: format!("https://mcp.example.com/mcp/{slug}"),
            authorization_servers: vec![ISSUER.into()],
            scopes_supported: vec![],
            bearer_methods_supported: vec!["header".into()],
            resource_name: Some(slug.to_owned()),
        })
    }
}

#[tokio::test]
async fn a_multi_tenant_host_serves_path_aware_metadata_per_slug() {
    let router = bmm_oauth::resource_server::protected_resource_router(Arc::new(Tenants));
    let base = serve(router).await;
    let client = reqwest::Client::new();
    for slug in ["notes", "crm"] {
        let reply = client
            .get(format!(
                "{base}/.well-known/oauth-protected-resource/mcp/{slug}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        let m: Value = reply.json().await.unwrap();
        assert_eq!(m["resource"], format!("https://mcp.example.com/mcp/{slug}"));
    }
    let missing = client
        .get(format!(
            "{base}/.well-known/oauth-protected-resource/mcp/other"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn signing_keys_are_discovered_from_the_issuer_metadata() {
    use bmm_oauth::resource_server::discover_jwks_uri;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let metadata = |issuer: String, jwks: &str| {
        let body = json!({"issuer": issuer, "jwks_uri": jwks}).to_string();
        get(move || async move { body })
    };
    let router = Router::new()
        // RFC 8414, path inserted.
        .route(
            "/.well-known/oauth-authorization-server/one",
            metadata(format!("{base}/one"), "https://keys.example/one"),
        )
        // Only OpenID Connect Discovery, appended to the path.
        .route(
            "/two/.well-known/openid-configuration",
            metadata(format!("{base}/two"), "https://keys.example/two"),
        )
        // Metadata that names another issuer.
        .route(
            "/.well-known/oauth-authorization-server/three",
            metadata(
                "https://elsewhere.example".into(),
                "https://keys.example/three",
            ),
        )
        // No jwks_uri.
        .route(
            "/.well-known/oauth-authorization-server/four",
            get({
                let body = json!({"issuer": format!("{base}/four")}).to_string();
                move || async move { body }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    assert_eq!(
        discover_jwks_uri(&format!("{base}/one")).await.unwrap(),
        "https://keys.example/one"
    );
    assert_eq!(
        discover_jwks_uri(&format!("{base}/two")).await.unwrap(),
        "https://keys.example/two"
    );
    // Issuers are compared exactly: a trailing slash is another issuer.
    for (issuer, words) in [
        (format!("{base}/one/"), "names the issuer"),
        (format!("{base}/three"), "names the issuer"),
        (format!("{base}/four"), "names no jwks_uri"),
    ] {
        match discover_jwks_uri(&issuer).await {
            Err(bmm_oauth::Error::Config(message)) => {
                assert!(message.contains(words), "{issuer}: {message}")
            }
            other => panic!("{issuer}: {other:?}"),
        }
    }
    // Nothing at any of the three places: each is named in the error.
    match discover_jwks_uri(&format!("{base}/five")).await {
        Err(bmm_oauth::Error::Fetch { reason, .. }) => {
            assert_eq!(reason.matches("status 404").count(), 3, "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
