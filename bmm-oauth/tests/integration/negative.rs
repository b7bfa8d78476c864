//! The negative suite: every case drives the real router and asserts the exact error.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bmm_oauth::clock::Clock as _;
use bmm_oauth::keys::SigningKey;
use bmm_oauth::pkce::s256_challenge;
use bmm_oauth::server::StaticUser;
use bmm_oauth::token::{AccessTokenClaims, sign_access_token, sign_jwt};
use bmm_oauth::{ResourceServer, SigningAlgorithm};
use serde_json::json;

use crate::common::*;

type Run = fn(Arc<Fixture>) -> Pin<Box<dyn Future<Output = Reply>>>;

struct Case {
    name: &'static str,
    status: StatusCode,
    /// The OAuth error code the answer must carry, `None` for none at all.
    error: Option<&'static str>,
    /// Built with the consent page instead of auto-approval.
    consent_page: bool,
    run: Run,
}

macro_rules! case {
    ($name:literal, $status:expr, $error:expr, |$fx:ident| $body:block) => {
        Case {
            name: $name,
            status: $status,
            error: $error,
            consent_page: false,
            run: |$fx| Box::pin(async move $body),
        }
    };
    (page $name:literal, $status:expr, $error:expr, |$fx:ident| $body:block) => {
        Case {
            name: $name,
            status: $status,
            error: $error,
            consent_page: true,
            run: |$fx| Box::pin(async move $body),
        }
    };
}

const BAD: StatusCode = StatusCode::BAD_REQUEST;
const FOUND: StatusCode = StatusCode::FOUND;
const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;

/// Claims as the fixture's server would issue them for resource A.
fn claims(fx: &Fixture) -> AccessTokenClaims {
    let now = fx.clock.now();
    AccessTokenClaims {
        iss: ISSUER.into(),
        sub: "alice".into(),
        aud: RES_A.into(),
        client_id: "c".into(),
        scope: "notes:read".into(),
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: "j".into(),
    }
}

fn signed(fx: &Fixture, claims: &AccessTokenClaims) -> String {
    sign_access_token(&fx.keys.current(), claims).unwrap()
}

/// A JWT with an arbitrary header, signed by nobody.
fn unsigned(header: serde_json::Value, claims: &AccessTokenClaims, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(serde_json::to_string(claims).unwrap()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// Start a consent-page flow: the pending request's id, CSRF token and cookie.
async fn pending(fx: &Fixture) -> (String, String, String) {
    let client = fx.public_client().await;
    let reply = fx.authorize(&client, &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let cookie = reply.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = String::from_utf8(reply.body.to_vec()).unwrap();
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).unwrap() + marker.len();
        html[start..].split('"').next().unwrap().to_owned()
    };
    (field("request_id"), field("csrf_token"), cookie)
}

async fn decide(fx: &Fixture, id: &str, csrf: &str, decision: &str, cookie: Option<&str>) -> Reply {
    let mut req = Request::post("/authorize/decision")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    let body = form(&[
        ("request_id", id),
        ("csrf_token", csrf),
        ("decision", decision),
    ]);
    fx.send(req.body(Body::from(body)).unwrap()).await
}

fn cases() -> Vec<Case> {
    vec![
        // Authorization endpoint, before the redirect URI is trusted: never redirect.
        case!(
            "authorize without client_id",
            BAD,
            Some("invalid_request"),
            |fx| { fx.authorize("", &[]).await }
        ),
        case!(
            "authorize with unknown client",
            BAD,
            Some("invalid_client"),
            |fx| { fx.authorize("nope", &[]).await }
        ),
        case!(
            "unregistered redirect_uri",
            BAD,
            Some("invalid_request"),
            |fx| {
                let c = fx.public_client().await;
                fx.authorize(&c, &[("redirect_uri", "https://app.example/other")])
                    .await
            }
        ),
        case!(
            "open redirect to another host",
            BAD,
            Some("invalid_request"),
            |fx| {
                let c = fx.public_client().await;
                fx.authorize(&c, &[("redirect_uri", "https://evil.example/cb")])
                    .await
            }
        ),
        case!(
            "open redirect by host suffix",
            BAD,
            Some("invalid_request"),
            |fx| {
                let c = fx.public_client().await;
                fx.authorize(
                    &c,
                    &[("redirect_uri", "https://app.example.evil.example/cb")],
                )
                .await
            }
        ),
        case!(
            "open redirect by path traversal",
            BAD,
            Some("invalid_request"),
            |fx| {
                let c = fx.public_client().await;
                fx.authorize(&c, &[("redirect_uri", "https://app.example/cb/../../evil")])
                    .await
            }
        ),
        case!(
            "open redirect by userinfo",
            BAD,
            Some("invalid_request"),
            |fx| {
                let c = fx.public_client().await;
                fx.authorize(
                    &c,
                    &[("redirect_uri", "https://app.example@evil.example/cb")],
                )
                .await
            }
        ),
        case!(
            "repeated authorization parameter",
            BAD,
            Some("invalid_request"),
            |fx| {
                let c = fx.public_client().await;
                let q = form(&[
                    ("client_id", &c),
                    ("client_id", &c),
                    ("response_type", "code"),
                ]);
                fx.get(&format!("/authorize?{q}")).await
            }
        ),
        // Authorization endpoint, answered at the redirect URI.
        case!(
            "response_type token",
            FOUND,
            Some("unsupported_response_type"),
            |fx| {
                let c = fx.public_client().await;
                fx.authorize(&c, &[("response_type", "token")]).await
            }
        ),
        case!(
            "missing code_challenge",
            FOUND,
            Some("invalid_request"),
            |fx| {
                let c = fx.public_client().await;
                fx.authorize(&c, &[("code_challenge", ""), ("code_challenge_method", "")])
                    .await
            }
        ),
        case!("plain PKCE", FOUND, Some("invalid_request"), |fx| {
            let c = fx.public_client().await;
            fx.authorize(
                &c,
                &[
                    ("code_challenge", VERIFIER),
                    ("code_challenge_method", "plain"),
                ],
            )
            .await
        }),
        case!(
            "challenge without method (plain by default)",
            FOUND,
            Some("invalid_request"),
            |fx| {
                let c = fx.public_client().await;
                fx.authorize(&c, &[("code_challenge_method", "")]).await
            }
        ),
        case!(
            "malformed code_challenge",
            FOUND,
            Some("invalid_request"),
            |fx| {
                let c = fx.public_client().await;
                fx.authorize(&c, &[("code_challenge", "short")]).await
            }
        ),
        case!("missing resource", FOUND, Some("invalid_request"), |fx| {
            let c = fx.public_client().await;
            fx.authorize(&c, &[("resource", "")]).await
        }),
        case!("unknown resource", FOUND, Some("invalid_target"), |fx| {
            let c = fx.public_client().await;
            fx.authorize(&c, &[("resource", "https://mcp.example.com/mcp/zzz")])
                .await
        }),
        case!(
            "resource with fragment",
            FOUND,
            Some("invalid_target"),
            |fx| {
                let c = fx.public_client().await;
                fx.authorize(&c, &[("resource", "https://mcp.example.com/mcp/a#x")])
                    .await
            }
        ),
        case!("unknown scope", FOUND, Some("invalid_scope"), |fx| {
            let c = fx.public_client().await;
            fx.authorize(&c, &[("scope", "notes:read admin")]).await
        }),
        // Consent decisions are bound to the browser that started the request.
        case!(page "decision without the browser cookie", BAD, Some("invalid_request"), |fx| {
            let (id, csrf, _) = pending(&fx).await;
            decide(&fx, &id, &csrf, "approve", None).await
        }),
        case!(page "decision from another browser", BAD, Some("invalid_request"), |fx| {
            let (id, csrf, _) = pending(&fx).await;
            let other = format!("bmm_oauth_browser={}", "A".repeat(43));
            decide(&fx, &id, &csrf, "approve", Some(&other)).await
        }),
        case!(page "decision with a forged csrf token", BAD, Some("invalid_request"), |fx| {
            let (id, _, cookie) = pending(&fx).await;
            decide(&fx, &id, &"B".repeat(43), "approve", Some(&cookie)).await
        }),
        case!(page "decision replayed", BAD, Some("invalid_request"), |fx| {
            let (id, csrf, cookie) = pending(&fx).await;
            let first = decide(&fx, &id, &csrf, "approve", Some(&cookie)).await;
            assert_eq!(first.status, StatusCode::SEE_OTHER);
            decide(&fx, &id, &csrf, "approve", Some(&cookie)).await
        }),
        case!(page "user denies", StatusCode::SEE_OTHER, Some("access_denied"), |fx| {
            let (id, csrf, cookie) = pending(&fx).await;
            decide(&fx, &id, &csrf, "deny", Some(&cookie)).await
        }),
        // Token endpoint: authorization code grant.
        case!("wrong PKCE verifier", BAD, Some("invalid_grant"), |fx| {
            let c = fx.public_client().await;
            let code = fx.code(&c, &[]).await;
            let wrong = "x".repeat(43);
            fx.post_form(
                "/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", &c),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &wrong),
                ],
                None,
            )
            .await
        }),
        case!(
            "missing PKCE verifier",
            BAD,
            Some("invalid_request"),
            |fx| {
                let c = fx.public_client().await;
                let code = fx.code(&c, &[]).await;
                fx.post_form(
                    "/token",
                    &[
                        ("grant_type", "authorization_code"),
                        ("client_id", &c),
                        ("code", &code),
                        ("redirect_uri", REDIRECT),
                    ],
                    None,
                )
                .await
            }
        ),
        case!(
            "challenge sent as verifier (plain downgrade)",
            BAD,
            Some("invalid_grant"),
            |fx| {
                let c = fx.public_client().await;
                let code = fx.code(&c, &[]).await;
                let challenge = s256_challenge(VERIFIER);
                fx.post_form(
                    "/token",
                    &[
                        ("grant_type", "authorization_code"),
                        ("client_id", &c),
                        ("code", &code),
                        ("redirect_uri", REDIRECT),
                        ("code_verifier", &challenge),
                    ],
                    None,
                )
                .await
            }
        ),
        case!("code replay", BAD, Some("invalid_grant"), |fx| {
            let c = fx.public_client().await;
            let code = fx.code(&c, &[]).await;
            assert_eq!(fx.exchange(&c, &code).await.status, StatusCode::OK);
            fx.exchange(&c, &code).await
        }),
        case!(
            "code replay revokes the refresh token it issued",
            BAD,
            Some("invalid_grant"),
            |fx| {
                let c = fx.public_client().await;
                let code = fx.code(&c, &[]).await;
                let first = fx.exchange(&c, &code).await.json();
                fx.exchange(&c, &code).await;
                fx.refresh(&c, first["refresh_token"].as_str().unwrap())
                    .await
            }
        ),
        case!(
            "code for another client",
            BAD,
            Some("invalid_grant"),
            |fx| {
                let c = fx.public_client().await;
                let other = fx.public_client().await;
                let code = fx.code(&c, &[]).await;
                fx.exchange(&other, &code).await
            }
        ),
        case!(
            "code with another redirect_uri",
            BAD,
            Some("invalid_grant"),
            |fx| {
                let c = fx.register("none", REDIRECT).await.0;
                let code = fx.code(&c, &[]).await;
                fx.post_form(
                    "/token",
                    &[
                        ("grant_type", "authorization_code"),
                        ("client_id", &c),
                        ("code", &code),
                        ("redirect_uri", "https://app.example/other"),
                        ("code_verifier", VERIFIER),
                    ],
                    None,
                )
                .await
            }
        ),
        case!(
            "code without the redirect_uri it was issued with",
            BAD,
            Some("invalid_grant"),
            |fx| {
                let c = fx.public_client().await;
                let code = fx.code(&c, &[]).await;
                fx.post_form(
                    "/token",
                    &[
                        ("grant_type", "authorization_code"),
                        ("client_id", &c),
                        ("code", &code),
                        ("code_verifier", VERIFIER),
                    ],
                    None,
                )
                .await
            }
        ),
        case!("expired code", BAD, Some("invalid_grant"), |fx| {
            let c = fx.public_client().await;
            let code = fx.code(&c, &[]).await;
            fx.clock.advance(61);
            fx.exchange(&c, &code).await
        }),
        case!("unknown code", BAD, Some("invalid_grant"), |fx| {
            let c = fx.public_client().await;
            fx.exchange(&c, "not-a-code").await
        }),
        case!(
            "resource mismatch at the token endpoint",
            BAD,
            Some("invalid_target"),
            |fx| {
                let c = fx.public_client().await;
                let code = fx.code(&c, &[]).await;
                fx.post_form(
                    "/token",
                    &[
                        ("grant_type", "authorization_code"),
                        ("client_id", &c),
                        ("code", &code),
                        ("redirect_uri", REDIRECT),
                        ("code_verifier", VERIFIER),
                        ("resource", RES_B),
                    ],
                    None,
                )
                .await
            }
        ),
        case!(
            "unsupported grant type",
            BAD,
            Some("unsupported_grant_type"),
            |fx| {
                let c = fx.public_client().await;
                fx.post_form(
                    "/token",
                    &[("grant_type", "password"), ("client_id", &c)],
                    None,
                )
                .await
            }
        ),
        case!("missing grant_type", BAD, Some("invalid_request"), |fx| {
            let c = fx.public_client().await;
            fx.post_form("/token", &[("client_id", &c)], None).await
        }),
        case!(
            "token request as JSON",
            BAD,
            Some("invalid_request"),
            |fx| {
                fx.post_json("/token", &json!({"grant_type": "authorization_code"}))
                    .await
            }
        ),
        case!(
            "malformed form: repeated parameter",
            BAD,
            Some("invalid_request"),
            |fx| {
                let c = fx.public_client().await;
                fx.post_form(
                    "/token",
                    &[
                        ("grant_type", "authorization_code"),
                        ("grant_type", "refresh_token"),
                        ("client_id", &c),
                    ],
                    None,
                )
                .await
            }
        ),
        case!("oversize body", StatusCode::PAYLOAD_TOO_LARGE, None, |fx| {
            let big = "a".repeat(64 * 1024);
            fx.post_form(
                "/token",
                &[("grant_type", "authorization_code"), ("pad", &big)],
                None,
            )
            .await
        }),
        // Client authentication.
        case!(
            "unknown client at the token endpoint",
            UNAUTHORIZED,
            Some("invalid_client"),
            |fx| {
                fx.post_form(
                    "/token",
                    &[
                        ("grant_type", "authorization_code"),
                        ("client_id", "ghost"),
                        ("code", "x"),
                        ("code_verifier", VERIFIER),
                    ],
                    None,
                )
                .await
            }
        ),
        case!(
            "no client authentication",
            UNAUTHORIZED,
            Some("invalid_client"),
            |fx| {
                fx.post_form(
                    "/token",
                    &[("grant_type", "authorization_code"), ("code", "x")],
                    None,
                )
                .await
            }
        ),
        case!(
            "confidential client with the wrong secret",
            UNAUTHORIZED,
            Some("invalid_client"),
            |fx| {
                let (c, _) = fx.register("client_secret_basic", REDIRECT).await;
                let reply = fx
                    .post_form(
                        "/token",
                        &[
                            ("grant_type", "authorization_code"),
                            ("code", "x"),
                            ("code_verifier", VERIFIER),
                        ],
                        Some((&c, "wrong")),
                    )
                    .await;
                assert!(reply.headers.contains_key(header::WWW_AUTHENTICATE));
                reply
            }
        ),
        case!(
            "confidential client without its secret",
            UNAUTHORIZED,
            Some("invalid_client"),
            |fx| {
                let (c, _) = fx.register("client_secret_post", REDIRECT).await;
                fx.post_form(
                    "/token",
                    &[
                        ("grant_type", "authorization_code"),
                        ("client_id", &c),
                        ("code", "x"),
                        ("code_verifier", VERIFIER),
                    ],
                    None,
                )
                .await
            }
        ),
        case!(
            "basic client authenticating by post",
            UNAUTHORIZED,
            Some("invalid_client"),
            |fx| {
                let (c, s) = fx.register("client_secret_basic", REDIRECT).await;
                let s = s.unwrap();
                fx.post_form(
                    "/token",
                    &[
                        ("grant_type", "authorization_code"),
                        ("client_id", &c),
                        ("client_secret", &s),
                        ("code", "x"),
                        ("code_verifier", VERIFIER),
                    ],
                    None,
                )
                .await
            }
        ),
        case!(
            "public client presenting a secret",
            UNAUTHORIZED,
            Some("invalid_client"),
            |fx| {
                let c = fx.public_client().await;
                fx.post_form(
                    "/token",
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", "x"),
                        ("code_verifier", VERIFIER),
                    ],
                    Some((&c, "guess")),
                )
                .await
            }
        ),
        case!(
            "two client authentication methods",
            BAD,
            Some("invalid_request"),
            |fx| {
                let (c, s) = fx.register("client_secret_basic", REDIRECT).await;
                let s = s.unwrap();
                fx.post_form(
                    "/token",
                    &[
                        ("grant_type", "authorization_code"),
                        ("client_secret", &s),
                        ("code", "x"),
                    ],
                    Some((&c, &s)),
                )
                .await
            }
        ),
        // Refresh tokens.
        case!(
            "refresh reuse after the grace window",
            BAD,
            Some("invalid_grant"),
            |fx| {
                let (c, _, rt) = fx.tokens().await;
                assert_eq!(fx.refresh(&c, &rt).await.status, StatusCode::OK);
                fx.clock.advance(11);
                fx.refresh(&c, &rt).await
            }
        ),
        case!(
            "refresh reuse revokes the whole family",
            BAD,
            Some("invalid_grant"),
            |fx| {
                let (c, _, rt) = fx.tokens().await;
                let next = fx.refresh(&c, &rt).await.json()["refresh_token"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                fx.clock.advance(11);
                fx.refresh(&c, &rt).await;
                fx.refresh(&c, &next).await
            }
        ),
        case!(
            "refresh token of another client",
            BAD,
            Some("invalid_grant"),
            |fx| {
                let (_, _, rt) = fx.tokens().await;
                let other = fx.public_client().await;
                fx.refresh(&other, &rt).await
            }
        ),
        case!(
            "refresh widening the scope",
            BAD,
            Some("invalid_scope"),
            |fx| {
                let (c, _, rt) = fx.tokens().await;
                fx.post_form(
                    "/token",
                    &[
                        ("grant_type", "refresh_token"),
                        ("client_id", &c),
                        ("refresh_token", &rt),
                        ("scope", "notes:read notes:write"),
                    ],
                    None,
                )
                .await
            }
        ),
        case!(
            "refresh for another resource",
            BAD,
            Some("invalid_target"),
            |fx| {
                let (c, _, rt) = fx.tokens().await;
                fx.post_form(
                    "/token",
                    &[
                        ("grant_type", "refresh_token"),
                        ("client_id", &c),
                        ("refresh_token", &rt),
                        ("resource", RES_B),
                    ],
                    None,
                )
                .await
            }
        ),
        case!("revoked refresh token", BAD, Some("invalid_grant"), |fx| {
            let (c, _, rt) = fx.tokens().await;
            let revoked = fx
                .post_form("/revoke", &[("client_id", &c), ("token", &rt)], None)
                .await;
            assert_eq!(revoked.status, StatusCode::OK);
            fx.refresh(&c, &rt).await
        }),
        case!("expired refresh token", BAD, Some("invalid_grant"), |fx| {
            let (c, _, rt) = fx.tokens().await;
            fx.clock.advance(31 * 24 * 3600);
            fx.refresh(&c, &rt).await
        }),
        case!(
            "revoking another client's token",
            BAD,
            Some("unauthorized_client"),
            |fx| {
                let (_, _, rt) = fx.tokens().await;
                let other = fx.public_client().await;
                fx.post_form("/revoke", &[("client_id", &other), ("token", &rt)], None)
                    .await
            }
        ),
        // Registration.
        case!(
            "register http redirect on a public host",
            BAD,
            Some("invalid_redirect_uri"),
            |fx| {
                fx.post_json("/register", &json!({"redirect_uris": ["http://app.example/cb"], "token_endpoint_auth_method": "none"})).await
            }
        ),
        case!(
            "register javascript: redirect",
            BAD,
            Some("invalid_redirect_uri"),
            |fx| {
                fx.post_json(
                    "/register",
                    &json!({"redirect_uris": ["javascript:alert(1)"]}),
                )
                .await
            }
        ),
        case!(
            "register without redirect_uris",
            BAD,
            Some("invalid_redirect_uri"),
            |fx| {
                fx.post_json("/register", &json!({"client_name": "x"}))
                    .await
            }
        ),
        case!(
            "register an unsupported auth method",
            BAD,
            Some("invalid_client_metadata"),
            |fx| {
                fx.post_json("/register", &json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"})).await
            }
        ),
        case!(
            "register the implicit grant",
            BAD,
            Some("invalid_client_metadata"),
            |fx| {
                fx.post_json(
                    "/register",
                    &json!({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}),
                )
                .await
            }
        ),
        case!(
            "register malformed JSON",
            BAD,
            Some("invalid_client_metadata"),
            |fx| {
                let req = Request::post("/register")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from("{not json"))
                    .unwrap();
                fx.send(req).await
            }
        ),
        // Resource server.
        case!("no token", UNAUTHORIZED, None, |fx| {
            let reply = fx.call("/mcp/a", None).await;
            assert!(reply.www_authenticate().contains("resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp/a\""));
            reply
        }),
        case!(
            "token in the query string",
            BAD,
            Some("invalid_request"),
            |fx| {
                let (_, at, _) = fx.tokens().await;
                fx.call(&format!("/mcp/a?access_token={at}"), None).await
            }
        ),
        case!(
            "token for server A used on server B",
            UNAUTHORIZED,
            Some("invalid_token"),
            |fx| {
                let (_, at, _) = fx.tokens().await;
                fx.call("/mcp/b", Some(&format!("Bearer {at}"))).await
            }
        ),
        case!("expired token", UNAUTHORIZED, Some("invalid_token"), |fx| {
            let mut c = claims(&fx);
            c.iat -= 7200;
            c.nbf -= 7200;
            c.exp = c.iat + 600;
            fx.call("/mcp/a", Some(&format!("Bearer {}", signed(&fx, &c))))
                .await
        }),
        case!(
            "token not yet valid",
            UNAUTHORIZED,
            Some("invalid_token"),
            |fx| {
                let mut c = claims(&fx);
                c.nbf += 3600;
                c.iat += 3600;
                c.exp += 3600;
                fx.call("/mcp/a", Some(&format!("Bearer {}", signed(&fx, &c))))
                    .await
            }
        ),
        case!("alg none", UNAUTHORIZED, Some("invalid_token"), |fx| {
            let t = unsigned(
                json!({"alg": "none", "typ": "at+jwt", "kid": fx.keys.current().kid()}),
                &claims(&fx),
                b"",
            );
            fx.call("/mcp/a", Some(&format!("Bearer {t}"))).await
        }),
        case!(
            "HS256 signed with the public key",
            UNAUTHORIZED,
            Some("invalid_token"),
            |fx| {
                let public = serde_json::to_vec(fx.keys.current().public_jwk()).unwrap();
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
                h.typ = Some("at+jwt".into());
                h.kid = Some(fx.keys.current().kid().to_owned());
                let t = jsonwebtoken::encode(
                    &h,
                    &claims(&fx),
                    &jsonwebtoken::EncodingKey::from_secret(&public),
                )
                .unwrap();
                fx.call("/mcp/a", Some(&format!("Bearer {t}"))).await
            }
        ),
        case!("unknown kid", UNAUTHORIZED, Some("invalid_token"), |fx| {
            let stranger = SigningKey::generate(SigningAlgorithm::Es256).unwrap();
            let t = sign_access_token(&stranger, &claims(&fx)).unwrap();
            fx.call("/mcp/a", Some(&format!("Bearer {t}"))).await
        }),
        case!(
            "tampered payload",
            UNAUTHORIZED,
            Some("invalid_token"),
            |fx| {
                let t = signed(&fx, &claims(&fx));
                let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
                let mut c = claims(&fx);
                c.scope = "notes:read notes:write".into();
                parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_string(&c).unwrap());
                fx.call("/mcp/a/write", Some(&format!("Bearer {}", parts.join("."))))
                    .await
            }
        ),
        case!(
            "token with typ JWT instead of at+jwt",
            UNAUTHORIZED,
            Some("invalid_token"),
            |fx| {
                let t = sign_jwt(&fx.keys.current(), Some("JWT"), &claims(&fx)).unwrap();
                fx.call("/mcp/a", Some(&format!("Bearer {t}"))).await
            }
        ),
        case!(
            "token without typ",
            UNAUTHORIZED,
            Some("invalid_token"),
            |fx| {
                let t = sign_jwt(&fx.keys.current(), None, &claims(&fx)).unwrap();
                fx.call("/mcp/a", Some(&format!("Bearer {t}"))).await
            }
        ),
        case!(
            "token from another issuer",
            UNAUTHORIZED,
            Some("invalid_token"),
            |fx| {
                let mut c = claims(&fx);
                c.iss = "https://evil.example".into();
                fx.call("/mcp/a", Some(&format!("Bearer {}", signed(&fx, &c))))
                    .await
            }
        ),
        case!(
            "missing scope",
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            |fx| {
                let (_, at, _) = fx.tokens().await;
                let reply = fx.call("/mcp/a/write", Some(&format!("Bearer {at}"))).await;
                assert!(reply.www_authenticate().contains("scope=\"notes:write\""));
                reply
            }
        ),
        case!(
            "two Authorization headers",
            BAD,
            Some("invalid_request"),
            |fx| {
                let (_, at, _) = fx.tokens().await;
                let req = Request::post("/mcp/a")
                    .header(header::AUTHORIZATION, format!("Bearer {at}"))
                    .header(header::AUTHORIZATION, format!("Bearer {at}"))
                    .body(Body::empty())
                    .unwrap();
                fx.send(req).await
            }
        ),
        case!(
            "token in the query string beside a valid header",
            BAD,
            Some("invalid_request"),
            |fx| {
                let (_, at, _) = fx.tokens().await;
                fx.call(
                    &format!("/mcp/a?access_token={at}"),
                    Some(&format!("Bearer {at}")),
                )
                .await
            }
        ),
        case!(
            "malformed bearer token",
            BAD,
            Some("invalid_request"),
            |fx| { fx.call("/mcp/a", Some("Bearer a b\"c")).await }
        ),
    ]
}

fn fixture_for(case: &Case) -> Fixture {
    if case.consent_page {
        Fixture::with(Options {
            consent: Arc::new(StaticUser::new("alice")),
            ..Options::default()
        })
    } else {
        Fixture::new()
    }
}

#[tokio::test]
async fn negative_suite() {
    let cases = cases();
    assert!(cases.len() >= 40, "the suite has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let fx = Arc::new(fixture_for(case));
        let reply = (case.run)(fx).await;
        let error = reply.error();
        let mut problems = Vec::new();
        if reply.status != case.status {
            problems.push(format!("status {} (want {})", reply.status, case.status));
        }
        if error.as_deref() != case.error {
            problems.push(format!("error {error:?} (want {:?})", case.error));
        }
        if let Some(location) = reply.location() {
            // RFC 9207: every authorization response carries iss; state comes back.
            if reply.location_param("iss").as_deref() != Some(ISSUER) {
                problems.push(format!("redirect without iss: {location}"));
            }
            if reply.location_param("state").as_deref() != Some("xyz") {
                problems.push(format!("redirect without state: {location}"));
            }
            if !location.as_str().starts_with(REDIRECT) {
                problems.push(format!("redirected off the registered URI: {location}"));
            }
        } else if case.status == BAD && reply.headers.contains_key(header::LOCATION) {
            problems.push("unexpected redirect".into());
        }
        if case.status == BAD || case.status == UNAUTHORIZED {
            let is_rs = reply.headers.contains_key(header::WWW_AUTHENTICATE)
                && reply.www_authenticate().starts_with("Bearer");
            if !is_rs && reply.json().is_object() {
                let cc = reply
                    .headers
                    .get(header::CACHE_CONTROL)
                    .and_then(|v| v.to_str().ok());
                if cc != Some("no-store") {
                    problems.push(format!("error without Cache-Control: no-store ({cc:?})"));
                }
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn challenges_never_name_offline_access() {
    let fx = Fixture::new();
    let reply = fx.call("/mcp/a", None).await;
    let challenge = reply.www_authenticate();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(!challenge.contains("offline_access"));
    assert!(
        !challenge.contains("error="),
        "no error without a token: {challenge}"
    );
    let meta = fx
        .get("/.well-known/oauth-protected-resource/mcp/a")
        .await
        .json();
    assert!(
        !meta["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "offline_access")
    );
    let rs: &ResourceServer = &fx.rs_a;
    assert!(
        !rs.www_authenticate(&bmm_oauth::BearerError::InsufficientScope(vec![
            "offline_access".into(),
            "x".into()
        ]))
        .contains("offline_access")
    );
}

/// The auth-params of a `Bearer` challenge, quoted strings unescaped; each
/// name at most once.
fn challenge_params(challenge: &str) -> BTreeMap<String, String> {
    let rest = challenge
        .strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("not a Bearer challenge: {challenge}"));
    let mut chars = rest.chars().peekable();
    let mut params = BTreeMap::new();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == ',').is_some() {}
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() {
            return params;
        }
        assert_eq!(chars.next(), Some('"'), "{challenge}");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => value.extend(chars.next()),
                Some('"') => break,
                Some(c) => value.push(c),
                None => panic!("unterminated value in {challenge}"),
            }
        }
        assert!(
            params.insert(name.clone(), value).is_none(),
            "{name} repeated in {challenge}"
        );
    }
}

/// Every challenge names the metadata and the scopes the operation needs;
/// refusals of a token also say why (RFC 6750 §3, RFC 9728 §5.1).
#[tokio::test]
async fn challenges_name_the_needed_scopes_the_metadata_and_the_error() {
    let fx = Fixture::new();
    let (_, read_only, _) = fx.tokens().await;
    let mut expired = claims(&fx);
    expired.iat -= 7200;
    expired.nbf -= 7200;
    expired.exp = expired.iat + 600;
    let expired = signed(&fx, &expired);
    let metadata = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp/a";
    // Path, Authorization header, status and the challenge's parameters.
    type Params<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Option<String>, StatusCode, Params<'_>); 6] = [
        (
            "/mcp/a",
            None,
            UNAUTHORIZED,
            &[("resource_metadata", metadata), ("scope", "notes:read")],
        ),
        (
            "/mcp/a/both",
            None,
            UNAUTHORIZED,
            &[
                ("resource_metadata", metadata),
                ("scope", "notes:read notes:write"),
            ],
        ),
        (
            "/mcp/a",
            Some("Bearer not.a.token".into()),
            UNAUTHORIZED,
            &[
                ("resource_metadata", metadata),
                ("scope", "notes:read"),
                ("error", "invalid_token"),
                ("error_description", "malformed token"),
            ],
        ),
        (
            "/mcp/a",
            Some(format!("Bearer {expired}")),
            UNAUTHORIZED,
            &[
                ("resource_metadata", metadata),
                ("scope", "notes:read"),
                ("error", "invalid_token"),
                ("error_description", "token expired"),
            ],
        ),
        (
            "/mcp/a/both",
            Some(format!("Bearer {expired}")),
            UNAUTHORIZED,
            &[
                ("resource_metadata", metadata),
                ("scope", "notes:read notes:write"),
                ("error", "invalid_token"),
                ("error_description", "token expired"),
            ],
        ),
        (
            "/mcp/a/both",
            Some(format!("Bearer {read_only}")),
            StatusCode::FORBIDDEN,
            &[
                ("resource_metadata", metadata),
                ("scope", "notes:read notes:write"),
                ("error", "insufficient_scope"),
                ("error_description", "the token lacks a required scope"),
            ],
        ),
    ];
    for (path, authorization, status, expected) in cases {
        let reply = fx.call(path, authorization.as_deref()).await;
        let what = format!("{path} with {authorization:?}");
        assert_eq!(reply.status, status, "{what}");
        let expected: BTreeMap<String, String> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(
            challenge_params(&reply.www_authenticate()),
            expected,
            "{what}"
        );
    }
}
