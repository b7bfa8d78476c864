//! Token verification and issuance throughput, and the latency the bearer layer adds.
//!
//! Run with `cargo bench -p bmm-oauth --bench tokens`; criterion prints
//! `thrpt` in elements (tokens) per second for each benchmark.
//! `signature_only/RS256` is the floor under `verify/RS256`: the RSA check
//! alone, which is most of a full verification.
//!
//! The `verify` group polls each verification once instead of driving it with
//! `Runtime::block_on`: with a warm JWKS the future completes on its first
//! poll, and in production it is awaited inside a request task that already
//! runs on the runtime, so entering the runtime is no part of a verification.
//! A verification that did not complete on that poll panics rather than being
//! counted.

// A benchmark that cannot set up has nothing to measure: panicking is the answer.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bmm_oauth::token::{AccessTokenClaims, sign_access_token};
use bmm_oauth::{
    JwksCache, KeyRing, ResourceServer, ResourceServerConfig, ResourceUri, SigningAlgorithm,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt as _;
use tower::ServiceExt as _;

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp/notes";

fn claims() -> AccessTokenClaims {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    AccessTokenClaims {
        iss: ISSUER.into(),
        sub: "alice".into(),
        aud: RESOURCE.into(),
        client_id: "https://client.example/metadata.json".into(),
        scope: "notes:read notes:write".into(),
        exp: now + 3600,
        iat: now,
        nbf: now,
        jti: "4n1d2b0oFhP9Xy7q2n3m4k5j6h7g8f9e0d1c2b3a4z5".into(),
    }
}

struct Setup {
    rs: ResourceServer,
    keys: Arc<KeyRing>,
    token: String,
}

fn setup(rt: &tokio::runtime::Runtime, alg: SigningAlgorithm) -> Setup {
    setup_with_cache(rt, alg, 10_000)
}

fn setup_with_cache(rt: &tokio::runtime::Runtime, alg: SigningAlgorithm, cache: usize) -> Setup {
    let keys = Arc::new(KeyRing::generate(alg).unwrap());
    let jwks = Arc::new(JwksCache::new(keys.clone()));
    let mut config = ResourceServerConfig::new(ResourceUri::parse(RESOURCE).unwrap(), ISSUER);
    config.required_scopes = vec!["notes:read".into()];
    config.verified_token_cache = cache;
    let rs = ResourceServer::new(config, jwks);
    let token = sign_access_token(&keys.current(), &claims()).unwrap();
    // Warm the JWKS cache.
    rt.block_on(rs.verify(&token)).unwrap();
    Setup { rs, keys, token }
}

fn verification(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Every check on every call: parse, key lookup (warm JWKS), signature, claims.
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    let mut rs256 = None;
    for alg in SigningAlgorithm::ALL {
        let s = setup(&rt, alg);
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| {
                s.rs.verify_uncached(black_box(&s.token))
                    .now_or_never()
                    .expect("a warm JWKS answers on the first poll")
                    .unwrap()
            })
        });
        if alg == SigningAlgorithm::Rs256 {
            rs256 = Some(s);
        }
    }
    group.finish();
    // The floor under `verify/RS256`: aws-lc's check of the same signature
    // alone, with the key parsed once.
    let s = rs256.unwrap();
    let jwk = serde_json::to_value(s.keys.current().public_jwk()).unwrap();
    let component = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    let key = RsaPublicKeyComponents {
        n: component("n"),
        e: component("e"),
    }
    .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
    .unwrap();
    let (signing_input, signature) = s.token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let mut group = c.benchmark_group("signature_only");
    group.throughput(Throughput::Elements(1));
    group.bench_function("RS256", |b| {
        b.iter(|| {
            key.verify_sig(black_box(signing_input.as_bytes()), black_box(&signature))
                .unwrap()
        })
    });
    group.finish();
    // The same token again, as every message of an MCP session sends it.
    let mut group = c.benchmark_group("verify_repeat_token");
    group.throughput(Throughput::Elements(1));
    let s = setup(&rt, SigningAlgorithm::Rs256);
    group.bench_function("RS256", |b| {
        b.iter(|| {
            s.rs.verify(black_box(&s.token))
                .now_or_never()
                .expect("a remembered token answers on the first poll")
                .unwrap()
        })
    });
    group.finish();
}

fn issuance(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("issue");
    group.throughput(Throughput::Elements(1));
    for alg in SigningAlgorithm::ALL {
        let s = setup(&rt, alg);
        let claims = claims();
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| sign_access_token(&s.keys.current(), black_box(&claims)).unwrap())
        });
    }
    group.finish();
}

/// A `tools/call`-sized POST through a router with and without the bearer layer.
fn layer_latency(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = setup(&rt, SigningAlgorithm::Rs256);
    async fn tool(body: String) -> String {
        body
    }
    let open = Router::new().route("/mcp/notes", post(tool));
    let guarded = Router::new().route("/mcp/notes", post(tool).layer(s.rs.layer()));
    let uncached = setup_with_cache(&rt, SigningAlgorithm::Rs256, 0);
    let guarded_uncached = Router::new().route("/mcp/notes", post(tool).layer(uncached.rs.layer()));
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_notes","arguments":{}}}"#;
    let request = |auth: bool| {
        let mut r = Request::post("/mcp/notes").header(header::CONTENT_TYPE, "application/json");
        if auth {
            r = r.header(header::AUTHORIZATION, format!("Bearer {}", s.token));
        }
        r.body(Body::from(body)).unwrap()
    };
    let mut group = c.benchmark_group("tools_call");
    group.throughput(Throughput::Elements(1));
    group.bench_function("without_auth", |b| {
        b.iter(|| {
            let response = rt.block_on(open.clone().oneshot(request(false))).unwrap();
            assert!(response.status().is_success());
        })
    });
    group.bench_function("with_auth_rs256", |b| {
        b.iter(|| {
            let response = rt.block_on(guarded.clone().oneshot(request(true))).unwrap();
            assert!(response.status().is_success());
        })
    });
    let request_uncached = || {
        Request::post("/mcp/notes")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", uncached.token))
            .body(Body::from(body))
            .unwrap()
    };
    group.bench_function("with_auth_rs256_no_cache", |b| {
        b.iter(|| {
            let response = rt
                .block_on(guarded_uncached.clone().oneshot(request_uncached()))
                .unwrap();
            assert!(response.status().is_success());
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = verification, issuance, layer_latency
}
criterion_main!(benches);
