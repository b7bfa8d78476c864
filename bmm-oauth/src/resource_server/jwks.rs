//! The resource server's cache of the authorization server's public keys.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};

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
        Ok(Self {
            url: url.into(),
            client: document_client("JWKS")?,
            max_bytes: 64 * 1024,
        })
    }
}

/// The client that fetches the authorization server's documents (`what`:
/// the JWKS, its metadata): a 5 s timeout and no redirects.
pub(crate) fn document_client(what: &str) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Config(format!("building the {what} client: {e}")))
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<JwkSet> {
        let body = fetch_limited(&self.client, &self.url, self.max_bytes).await?;
        serde_json::from_slice(&body).map_err(|e| Error::Fetch {
            url: self.url.clone(),
            reason: format!("not a JWKS: {e}"),
        })
    }
}

/// GETs `url` with `client` and returns the body of a 2xx answer, refusing
/// one longer than `max_bytes`.
pub(crate) async fn fetch_limited(
    client: &reqwest::Client,
    url: &str,
    max_bytes: usize,
) -> Result<Vec<u8>> {
    let err = |reason: String| Error::Fetch {
        url: url.to_owned(),
        reason,
    };
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    if !response.status().is_success() {
        return Err(err(format!("status {}", response.status().as_u16())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| err(e.to_string()))? {
        if body.len() + chunk.len() > max_bytes {
            return Err(err(format!("document larger than {max_bytes} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A verification key taken from the JWKS: the public key parsed once, with
/// the one algorithm it may verify.
#[derive(Clone)]
pub struct VerificationKey {
    pub(crate) key: Arc<ParsedPublicKey>,
    pub(crate) alg: SigningAlgorithm,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.alg
    }

    /// Check a signature over `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
}

/// Keys by `kid`. The key ids come from the key set, which the authorization
/// server controls, and a token's `kid` is only ever looked up, so a crafted
/// `kid` cannot make the map slow: foldhash instead of SipHash is safe here
/// and saves about 200 instructions per verification.
type Keys = HashMap<String, VerificationKey, foldhash::fast::RandomState>;

#[derive(Default)]
struct Snapshot {
    keys: Keys,
    /// Whether the keys were fetched (the empty snapshot before the first
    /// fetch never is).
    fetched: bool,
    /// When the keys go stale, worked out once at the fetch rather than on
    /// every verification; `None` when `max_age` reaches beyond what an
    /// `Instant` can represent, so they never do.
    stale_at: Option<Instant>,
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
    /// Bumped whenever a fetch changes the set of key ids.
    generation: AtomicU64,
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
            generation: AtomicU64::new(0),
        }
    }

    /// A cache fetching `jwks_uri` over HTTP.
    pub fn http(jwks_uri: impl Into<String>) -> Result<Self> {
        Ok(Self::new(Arc::new(HttpJwks::new(jwks_uri)?)))
    }

    /// A counter that changes whenever a fetch changed the set of key ids.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// How many times the source was asked for the key set.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The key with id `kid` from a fresh snapshot, read in place: the path
    /// nearly every verification takes, with no clone of the snapshot.
    pub(super) fn fresh_key(&self, kid: &str) -> Option<VerificationKey> {
        let snap = self.snapshot.read().unwrap_or_else(PoisonError::into_inner);
        if !self.fresh(&snap) {
            return None;
        }
        snap.keys.get(kid).cloned()
    }

    fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn fresh(&self, snap: &Snapshot) -> bool {
        snap.fetched && snap.stale_at.is_none_or(|t| Instant::now() < t)
    }

    /// The key with id `kid`, fetching the key set if needed and allowed.
    pub async fn key(&self, kid: &str) -> Option<VerificationKey> {
        if let Some(key) = self.fresh_key(kid) {
            return Some(key);
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
                    fetched: true,
                    stale_at: Instant::now().checked_add(self.max_age),
                });
                let changed = next.keys.len() != snap.keys.len()
                    || next.keys.keys().any(|k| !snap.keys.contains_key(k));
                if changed {
                    self.generation.fetch_add(1, Ordering::AcqRel);
                }
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

fn load(set: &JwkSet) -> Keys {
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

/// The parsed public key and its single algorithm, for asymmetric signing keys only.
fn verification_key(jwk: &Jwk) -> Option<(ParsedPublicKey, SigningAlgorithm)> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let b64 = |s: &str| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok();
    let (inferred, key) = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let (n, e) = (b64(&p.n)?, b64(&p.e)?);
            // Some issuers pad the modulus with a zero octet; aws-lc wants it minimal.
            let minimal = |v: &[u8]| v.iter().position(|b| *b != 0).unwrap_or(0);
            let components = RsaPublicKeyComponents {
                n: &n[minimal(&n)..],
                e: &e[minimal(&e)..],
            };
            let key = components
                .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
                .ok()?;
            (SigningAlgorithm::Rs256, key)
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            let (x, y) = (b64(&p.x)?, b64(&p.y)?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = vec![0x04];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let key = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).ok()?;
            (SigningAlgorithm::Es256, key)
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            let key = ParsedPublicKey::new(&signature::ED25519, b64(&p.x)?).ok()?;
            (SigningAlgorithm::EdDsa, key)
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
    Some((key, declared))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;
    use crate::token::{AccessTokenClaims, sign_access_token};

    /// Claims whose values do not matter to a signature check.
    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            client_id: "c".into(),
            scope: String::new(),
            exp: 2,
            iat: 1,
            nbf: 1,
            jti: "j".into(),
        }
    }

    #[test]
    fn every_published_key_loads_and_verifies_its_signatures() {
        for alg in SigningAlgorithm::ALL {
            let key = SigningKey::generate(alg).unwrap();
            let token = sign_access_token(&key, &claims()).unwrap();
            let (signing_input, sig) = token.rsplit_once('.').unwrap();
            let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
            let (parsed, loaded_alg) = verification_key(key.public_jwk()).unwrap();
            assert_eq!(loaded_alg, alg);
            let vk = VerificationKey {
                key: Arc::new(parsed),
                alg,
            };
            assert!(vk.verify(signing_input.as_bytes(), &sig), "{alg:?}");
            assert!(!vk.verify(b"other", &sig), "{alg:?}");
        }
    }

    #[test]
    fn symmetric_keys_are_ignored() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({
            "keys": [{"kty": "oct", "kid": "k", "alg": "HS256", "k": "c2VjcmV0"}]
        }))
        .unwrap();
        assert!(load(&set).is_empty());
    }

    #[tokio::test]
    async fn keys_go_stale_after_max_age() {
        let keys = Arc::new(KeyRing::generate(SigningAlgorithm::Es256).unwrap());
        let kid = keys.current().kid().to_owned();
        // Stale at once, so every lookup refetches; and an age too long for
        // an `Instant`, so the first fetch serves for ever.
        for (max_age, fetches) in [(Duration::ZERO, 3), (Duration::MAX, 1)] {
            let cache = JwksCache::with_limits(keys.clone(), Duration::ZERO, max_age);
            for _ in 0..3 {
                assert!(cache.key(&kid).await.is_some());
            }
            assert_eq!(cache.fetch_count(), fetches, "{max_age:?}");
        }
    }

    #[test]
    fn rsa_moduli_with_a_leading_zero_octet_load() {
        let key = SigningKey::generate(SigningAlgorithm::Rs256).unwrap();
        let mut jwk = key.public_jwk().clone();
        let AlgorithmParameters::RSA(p) = &mut jwk.algorithm else {
            panic!("not an RSA JWK");
        };
        let mut n = vec![0];
        n.extend(URL_SAFE_NO_PAD.decode(&p.n).unwrap());
        p.n = URL_SAFE_NO_PAD.encode(n);
        let token = sign_access_token(&key, &claims()).unwrap();
        let (signing_input, sig) = token.rsplit_once('.').unwrap();
        let (parsed, _) = verification_key(&jwk).unwrap();
        assert!(
            parsed
                .verify_sig(
                    signing_input.as_bytes(),
                    &URL_SAFE_NO_PAD.decode(sig).unwrap()
                )
                .is_ok()
        );
    }
}
