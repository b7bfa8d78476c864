//! The token verifier on its own, for every algorithm: signatures that must
//! not verify (tampered, truncated, by another key under the published `kid`,
//! under another algorithm) and claims it must read exactly (escapes, `aud`
//! arrays), each with the exact reason.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::encoding::AsDer as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bmm_oauth::clock::{Clock as _, ManualClock, SystemClock};
use bmm_oauth::keys::SigningKey;
use bmm_oauth::token::{AccessTokenClaims, sign_access_token, sign_jwt};
use bmm_oauth::{
    BearerError, JwksCache, KeyRing, ResourceServer, ResourceServerConfig, ResourceUri,
    SigningAlgorithm,
};
use serde_json::{Value, json};

use crate::common::{ISSUER, RES_A};

/// A fresh private key of `alg` as PKCS#8 PEM.
fn pem(alg: SigningAlgorithm) -> String {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let der: Vec<u8> = match alg {
        SigningAlgorithm::Rs256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair.as_der().unwrap();
            der.as_ref().to_vec()
        }
        SigningAlgorithm::Es256 => aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap()
        .as_ref()
        .to_vec(),
        _ => aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8v1(&rng)
            .unwrap()
            .as_ref()
            .to_vec(),
    };
    let body: String = STANDARD
        .encode(der)
        .as_bytes()
        .chunks(64)
        .map(|line| format!("{}\n", std::str::from_utf8(line).unwrap()))
        .collect();
    format!("-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\n")
}

/// A key of `alg` that is not in the JWKS but claims the published `kid`.
fn impostor(alg: SigningAlgorithm, kid: &str) -> SigningKey {
    SigningKey::from_pem(alg, pem(alg).as_bytes(), Some(kid.to_owned())).unwrap()
}

fn claims() -> Value {
    let now = SystemClock.now();
    json!({
        "iss": ISSUER, "sub": "alice", "aud": RES_A, "client_id": "c",
        "scope": "notes:read notes:write", "exp": now + 600, "iat": now, "nbf": now, "jti": "j",
    })
}

fn with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn encode(part: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(part)
}

/// `token` with part `index` replaced.
fn replace_part(token: &str, index: usize, part: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[index] = part;
    parts.join(".")
}

/// `token` with its signature changed by `f`.
fn resign(token: &str, f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut signature = URL_SAFE_NO_PAD
        .decode(token.rsplit('.').next().unwrap())
        .unwrap();
    f(&mut signature);
    replace_part(token, 2, &encode(&signature))
}

struct Setup {
    rs: ResourceServer,
    key: Arc<SigningKey>,
}

impl Setup {
    fn new(alg: SigningAlgorithm) -> Self {
        let keys = Arc::new(KeyRing::generate(alg).unwrap());
        let config = ResourceServerConfig::new(ResourceUri::parse(RES_A).unwrap(), ISSUER);
        let rs = ResourceServer::new(config, Arc::new(JwksCache::new(keys.clone())));
        Self {
            rs,
            key: keys.current(),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        sign_jwt(&self.key, Some("at+jwt"), claims).unwrap()
    }
}

/// Every case runs against a verifier trusting one key of each algorithm.
#[tokio::test]
async fn signatures_and_claims_for_every_algorithm() {
    let mut failures = Vec::new();
    for alg in SigningAlgorithm::ALL {
        let s = Setup::new(alg);
        let kid = s.key.kid().to_owned();
        let good = s.sign(&claims());
        let other_alg = SigningAlgorithm::ALL
            .into_iter()
            .find(|a| *a != alg)
            .unwrap();
        let cases: Vec<(&str, String, Result<&str, &str>)> =
            vec![
            ("valid", good.clone(), Ok("alice")),
            (
                "escaped strings in claims",
                s.sign(&with(json!({"sub": "al\"ice\u{e9}", "iss": ISSUER, "aud": [RES_A]}))),
                Ok("al\"ice\u{e9}"),
            ),
            (
                "aud array naming the resource",
                s.sign(&with(json!({"aud": ["https://x.example", RES_A]}))),
                Ok("alice"),
            ),
            (
                "aud array without the resource",
                s.sign(&with(json!({"aud": ["https://x.example"]}))),
                Err("token is for another resource"),
            ),
            (
                "aud of the wrong type",
                s.sign(&with(json!({"aud": [RES_A, 1]}))),
                Err("malformed claims"),
            ),
            (
                "last signature byte flipped",
                resign(&good, |s| *s.last_mut().unwrap() ^= 1),
                Err("signature verification failed"),
            ),
            (
                "first signature byte flipped",
                resign(&good, |s| s[0] ^= 0x80),
                Err("signature verification failed"),
            ),
            (
                "signature truncated",
                resign(&good, |s| {
                    s.pop();
                }),
                Err("signature verification failed"),
            ),
            (
                "signature doubled",
                resign(&good, |s| s.extend(s.clone())),
                Err("signature verification failed"),
            ),
            (
                "empty signature",
                replace_part(&good, 2, ""),
                Err("signature verification failed"),
            ),
            (
                "signature not base64url",
                replace_part(&good, 2, "c2ln+/"),
                Err("malformed token"),
            ),
            (
                "payload not base64url",
                replace_part(&good, 1, "e30="),
                Err("malformed token"),
            ),
            (
                "payload of another valid token",
                replace_part(
                    &good,
                    1,
                    s.sign(&with(json!({"sub": "mallory"})))
                        .split('.')
                        .nth(1)
                        .unwrap(),
                ),
                Err("signature verification failed"),
            ),
            (
                "another key under the published kid",
                sign_jwt(&impostor(alg, &kid), Some("at+jwt"), &claims()).unwrap(),
                Err("signature verification failed"),
            ),
            (
                "another algorithm under the published kid",
                sign_jwt(&impostor(other_alg, &kid), Some("at+jwt"), &claims()).unwrap(),
                Err("algorithm does not match the key"),
            ),
            (
                "crit header",
                replace_part(
                    &good,
                    0,
                    &encode(
                        json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": kid, "crit": ["exp"]})
                            .to_string()
                            .as_bytes(),
                    ),
                ),
                Err("unsupported critical header"),
            ),
            (
                "alg none",
                replace_part(
                    &replace_part(
                        &good,
                        0,
                        &encode(
                            json!({"alg": "none", "typ": "at+jwt", "kid": kid})
                                .to_string()
                                .as_bytes(),
                        ),
                    ),
                    2,
                    "",
                ),
                Err("signing algorithm not accepted"),
            ),
            (
                "duplicate alg member",
                replace_part(
                    &good,
                    0,
                    &encode(
                        format!(
                            r#"{{"alg":"{}","typ":"at+jwt","kid":"{kid}","alg":"none"}}"#,
                            alg.as_str()
                        )
                        .as_bytes(),
                    ),
                ),
                Err("malformed token"),
            ),
        ];
        for (name, token, expected) in cases {
            let got = s.rs.verify_uncached(&token).await;
            let ok = match (&got, expected) {
                (Ok(p), Ok(subject)) => p.subject() == subject,
                (Err(BearerError::InvalidToken(d)), Err(reason)) => d == reason,
                _ => false,
            };
            if !ok {
                failures.push(format!(
                    "{}: {name}: got {got:?}, want {expected:?}",
                    alg.as_str()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The claims and signature the issuer writes are what the verifier reads.
#[tokio::test]
async fn issued_tokens_round_trip() {
    for alg in SigningAlgorithm::ALL {
        let s = Setup::new(alg);
        let now = SystemClock.now();
        let issued = AccessTokenClaims {
            iss: ISSUER.into(),
            sub: "bob".into(),
            aud: RES_A.into(),
            client_id: "https://client.example/metadata.json".into(),
            scope: "notes:read  notes:write".into(),
            exp: now + 60,
            iat: now,
            nbf: now,
            jti: "id-1".into(),
        };
        let token = sign_access_token(&s.key, &issued).unwrap();
        let p = s.rs.verify_uncached(&token).await.unwrap();
        assert_eq!(p.subject(), "bob");
        assert_eq!(p.client_id(), issued.client_id);
        assert_eq!(
            p.scopes().collect::<Vec<_>>(),
            ["notes:read", "notes:write"]
        );
        assert_eq!(p.token_id(), "id-1");
        assert_eq!(p.expires_at(), now + 60);
        assert!(p.has_scope("notes:write") && !p.has_scope("notes"));
        let debug = format!("{p:?}");
        assert!(
            debug.contains("\"bob\"") && debug.contains("\"notes:write\""),
            "{debug}"
        );
    }
}

/// `exp` and `nbf` are honoured with the configured leeway (30 s by
/// default) and not a second more, whether or not the token is cached.
#[tokio::test]
async fn expiry_and_not_before_allow_exactly_the_leeway() {
    const T0: i64 = 1_000_000;
    let keys = Arc::new(KeyRing::generate(SigningAlgorithm::Es256).unwrap());
    let token = sign_jwt(
        &keys.current(),
        Some("at+jwt"),
        &with(json!({"iat": T0, "nbf": T0, "exp": T0 + 600})),
    )
    .unwrap();
    let expired = Err(BearerError::InvalidToken("token expired".into()));
    let early = Err(BearerError::InvalidToken("token not yet valid".into()));
    let default_leeway = ResourceServerConfig::new(ResourceUri::parse(RES_A).unwrap(), ISSUER)
        .leeway
        .as_secs() as i64;
    assert_eq!(default_leeway, 30);
    for leeway in [default_leeway, 5, 0] {
        let clock = Arc::new(ManualClock::new(T0));
        let mut config = ResourceServerConfig::new(ResourceUri::parse(RES_A).unwrap(), ISSUER);
        config.leeway = Duration::from_secs(leeway as u64);
        let rs = ResourceServer::with_clock(
            config,
            Arc::new(JwksCache::new(keys.clone())),
            clock.clone(),
        );
        let at = |now: i64| {
            clock.set(now);
            let rs = rs.clone();
            let token = token.clone();
            async move {
                let uncached = rs
                    .verify_uncached(&token)
                    .await
                    .map(|p| p.subject().to_owned());
                let cached = rs.verify(&token).await.map(|p| p.subject().to_owned());
                assert_eq!(uncached, cached, "leeway {leeway} at {now}");
                uncached
            }
        };
        let alice = Ok("alice".to_owned());
        assert_eq!(at(T0 - leeway - 1).await, early, "leeway {leeway}");
        assert_eq!(at(T0 - leeway).await, alice, "leeway {leeway}");
        assert_eq!(at(T0 + 600 + leeway - 1).await, alice, "leeway {leeway}");
        assert_eq!(at(T0 + 600 + leeway).await, expired, "leeway {leeway}");
    }
}
