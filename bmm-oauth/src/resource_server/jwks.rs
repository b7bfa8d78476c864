//! The resource server's cache of the authorization server's public keys.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::error::{Error, Result};
use crate::keys::{KeyRing, SigningAlgorithm};

/// Where a [`JwksCache`] gets the key set from.
#[async_trait]
pub trait JwksSource: Send + Sync + 'static {
    /// The current key set.
    async fn fetch(&self) -> Result<JwkSet>;
}

/// In-process: the authorization server's own key ring.
#[async_trait]
impl JwksSource for KeyRing {
    async fn fetch(&self) -> Result<JwkSet> {
        Ok(self.jwks())
    }
}

/// A fixed key set (tests, or keys distributed out of band).
#[async_trait]
impl JwksSource for JwkSet {
    async fn fetch(&self) -> Result<JwkSet> {
        Ok(self.clone())
    }
}

/// A JWKS fetched over HTTP(S) from the authorization server's `jwks_uri`.
#[derive(Debug, Clone)]
pub struct HttpJwks {
    url: String,
    client: reqwest::Client,
    max_bytes: usize,
}

impl HttpJwks {
    /// Fetch from `url` with a 5 s timeout and a 64 KiB size limit.
    pub fn new(url: impl Into<String>) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("building the JWKS client: {e}")))?;
        Ok(Self {
            url: url.into(),
            client,
            max_bytes: 64 * 1024,
        })
    }
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<JwkSet> {
        let err = |reason: String| Error::Fetch {
            url: self.url.clone(),
            reason,
        };
        let mut response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| err(e.to_string()))?;
        if !response.status().is_success() {
            return Err(err(format!("status {}", response.status().as_u16())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| err(e.to_string()))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(err("JWKS too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| err(format!("not a JWKS: {e}")))
    }
}

/// A verification key taken from the JWKS, with the one algorithm it may verify.
#[derive(Clone)]
pub struct VerificationKey {
    pub(crate) key: Arc<DecodingKey>,
    pub(crate) alg: Algorithm,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Snapshot {
    keys: HashMap<String, VerificationKey>,
    fetched_at: Option<Instant>,
}

/// Keys by `kid`, fetched on first use, refreshed when older than `max_age`,
/// and refetched when a token names an unknown `kid` — at most once per
/// `min_refetch_interval`, so a flood of tokens with made-up key ids cannot
/// turn into a flood of requests to the authorization server.
///
/// Only asymmetric keys (RSA, P-256, Ed25519) are ever loaded: a symmetric
/// (`oct`) key in the set is ignored, which is what rules out HS256-with-the-
/// public-key confusion.
pub struct JwksCache {
    source: Arc<dyn JwksSource>,
    snapshot: RwLock<Arc<Snapshot>>,
    refetch: tokio::sync::Mutex<Option<Instant>>,
    min_refetch_interval: Duration,
    max_age: Duration,
    fetches: AtomicU64,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("min_refetch_interval", &self.min_refetch_interval)
            .field("max_age", &self.max_age)
            .field("fetches", &self.fetches.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache over `source`: refetch on an unknown `kid` at most every 10 s,
    /// refresh keys older than 5 minutes.
    pub fn new(source: Arc<dyn JwksSource>) -> Self {
        Self::with_limits(source, Duration::from_secs(10), Duration::from_secs(300))
    }

    /// A cache with explicit limits.
    pub fn with_limits(
        source: Arc<dyn JwksSource>,
        min_refetch_interval: Duration,
        max_age: Duration,
    ) -> Self {
        Self {
            source,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            refetch: tokio::sync::Mutex::new(None),
            min_refetch_interval,
            max_age,
            fetches: AtomicU64::new(0),
        }
    }

    /// A cache fetching `jwks_uri` over HTTP.
    pub fn http(jwks_uri: impl Into<String>) -> Result<Self> {
        Ok(Self::new(Arc::new(HttpJwks::new(jwks_uri)?)))
    }

    /// How many times the source was asked for the key set.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn fresh(&self, snap: &Snapshot) -> bool {
        snap.fetched_at.is_some_and(|t| t.elapsed() < self.max_age)
    }

    /// The key with id `kid`, fetching the key set if needed and allowed.
    pub async fn key(&self, kid: &str) -> Option<VerificationKey> {
        let snap = self.current();
        if self.fresh(&snap)
            && let Some(key) = snap.keys.get(kid)
        {
            return Some(key.clone());
        }
        let mut last = self.refetch.lock().await;
        // Someone may have refreshed while we waited for the lock.
        let snap = self.current();
        if self.fresh(&snap)
            && let Some(key) = snap.keys.get(kid)
        {
            return Some(key.clone());
        }
        let allowed = last.is_none_or(|t| t.elapsed() >= self.min_refetch_interval);
        if !allowed {
            return snap.keys.get(kid).cloned();
        }
        *last = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.source.fetch().await {
            Ok(set) => {
                let next = Arc::new(Snapshot {
                    keys: load(&set),
                    fetched_at: Some(Instant::now()),
                });
                let key = next.keys.get(kid).cloned();
                match self.snapshot.write() {
                    Ok(mut guard) => *guard = next,
                    Err(poisoned) => *poisoned.into_inner() = next,
                }
                key
            }
            Err(err) => {
                tracing::warn!(error = %err, "JWKS fetch failed; keeping cached keys");
                snap.keys.get(kid).cloned()
            }
        }
    }
}

fn load(set: &JwkSet) -> HashMap<String, VerificationKey> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let (key, alg) = verification_key(jwk)?;
            Some((
                kid,
                VerificationKey {
                    key: Arc::new(key),
                    alg,
                },
            ))
        })
        .collect()
}

/// The decoding key and its single algorithm, for asymmetric signing keys only.
fn verification_key(jwk: &Jwk) -> Option<(DecodingKey, Algorithm)> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let inferred = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => SigningAlgorithm::Rs256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            SigningAlgorithm::Es256
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            SigningAlgorithm::EdDsa
        }
        // Symmetric and unsupported keys are never used.
        _ => return None,
    };
    let declared = match jwk.common.key_algorithm {
        None => inferred,
        Some(KeyAlgorithm::RS256) => SigningAlgorithm::Rs256,
        Some(KeyAlgorithm::ES256) => SigningAlgorithm::Es256,
        Some(KeyAlgorithm::EdDSA) => SigningAlgorithm::EdDsa,
        Some(_) => return None,
    };
    if declared != inferred {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((key, declared.jwt_algorithm()))
}
