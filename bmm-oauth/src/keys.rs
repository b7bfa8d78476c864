//! Signing keys, the key ring with rotation, and the public JWKS.

use std::fmt;
use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// The asymmetric algorithms access tokens may be signed with.
///
/// Symmetric (`HS*`) algorithms and `none` are deliberately absent: a resource
/// server only ever holds public keys.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 over a 2048-bit key (the default).
    #[default]
    Rs256,
    /// ECDSA over P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl SigningAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [Self; 3] = [Self::Rs256, Self::Es256, Self::EdDsa];

    /// The jsonwebtoken algorithm.
    pub fn jwt_algorithm(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }

    /// The JOSE name (`RS256`, `ES256`, `EdDSA`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Map a JOSE algorithm back, refusing everything this crate does not sign with.
    pub fn from_jwt_algorithm(alg: Algorithm) -> Option<Self> {
        match alg {
            Algorithm::RS256 => Some(Self::Rs256),
            Algorithm::ES256 => Some(Self::Es256),
            Algorithm::EdDSA => Some(Self::EdDsa),
            _ => None,
        }
    }
}

/// A private signing key with its key id and public JWK.
pub struct SigningKey {
    kid: String,
    alg: SigningAlgorithm,
    signer: Signer,
    jwk: Jwk,
}

/// The private key, parsed once: jsonwebtoken parses it again for every
/// signature, and for RSA that (consistency checks, blinding set-up) is a good
/// part of the cost of signing.
enum Signer {
    Rsa(signature::RsaKeyPair),
    Ecdsa(signature::EcdsaKeyPair),
    Ed25519(signature::Ed25519KeyPair),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// Generate a fresh key pair. The key id is the RFC 7638 thumbprint.
    pub fn generate(alg: SigningAlgorithm) -> Result<Self> {
        let key_err = |what: &str| Error::Key(format!("generating a {} key: {what}", alg.as_str()));
        let encoding = match alg {
            SigningAlgorithm::Rs256 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| key_err("generation failed"))?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair
                    .as_der()
                    .map_err(|_| key_err("PKCS#8 encoding failed"))?;
                EncodingKey::from_rsa_pem(pem("PRIVATE KEY", der.as_ref()).as_bytes())?
            }
            SigningAlgorithm::Es256 => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let doc = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &rng,
                )
                .map_err(|_| key_err("generation failed"))?;
                EncodingKey::from_ec_der(doc.as_ref())
            }
            SigningAlgorithm::EdDsa => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let doc = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8v1(&rng)
                    .map_err(|_| key_err("generation failed"))?;
                EncodingKey::from_ed_der(doc.as_ref())
            }
        };
        Self::from_encoding_key(alg, encoding, None)
    }

    /// Load a PEM private key (PKCS#8; PKCS#1 is also accepted for RSA).
    /// Without `kid`, the RFC 7638 thumbprint is used.
    pub fn from_pem(alg: SigningAlgorithm, pem: &[u8], kid: Option<String>) -> Result<Self> {
        let encoding = match alg {
            SigningAlgorithm::Rs256 => EncodingKey::from_rsa_pem(pem)?,
            SigningAlgorithm::Es256 => EncodingKey::from_ec_pem(pem)?,
            SigningAlgorithm::EdDsa => EncodingKey::from_ed_pem(pem)?,
        };
        Self::from_encoding_key(alg, encoding, kid)
    }

    fn from_encoding_key(
        alg: SigningAlgorithm,
        encoding: EncodingKey,
        kid: Option<String>,
    ) -> Result<Self> {
        let der = encoding.as_bytes();
        let rejected = |e: aws_lc_rs::error::KeyRejected| {
            Error::Key(format!("loading a {} key: {e}", alg.as_str()))
        };
        // jsonwebtoken holds RSA keys as PKCS#1 and the others as PKCS#8.
        let signer = match alg {
            SigningAlgorithm::Rs256 => {
                Signer::Rsa(signature::RsaKeyPair::from_der(der).map_err(rejected)?)
            }
            SigningAlgorithm::Es256 => Signer::Ecdsa(
                signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    der,
                )
                .map_err(rejected)?,
            ),
            SigningAlgorithm::EdDsa => {
                Signer::Ed25519(signature::Ed25519KeyPair::from_pkcs8(der).map_err(rejected)?)
            }
        };
        let mut jwk = Jwk::from_encoding_key(&encoding, alg.jwt_algorithm())?;
        let kid = match kid {
            Some(kid) => kid,
            None => jwk.thumbprint(ThumbprintHash::SHA256)?,
        };
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(match alg {
            SigningAlgorithm::Rs256 => KeyAlgorithm::RS256,
            SigningAlgorithm::Es256 => KeyAlgorithm::ES256,
            SigningAlgorithm::EdDsa => KeyAlgorithm::EdDSA,
        });
        Ok(Self {
            kid,
            alg,
            signer,
            jwk,
        })
    }

    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signing algorithm.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.alg
    }

    /// The public half as a JWK.
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Sign `message` with this key's algorithm; the signature as JWS wants
    /// it (ECDSA as fixed-width `r || s`).
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let failed = |_| Error::Key(format!("signing with {} failed", self.alg.as_str()));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match &self.signer {
            Signer::Rsa(pair) => {
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut out)
                    .map_err(failed)?;
                Ok(out)
            }
            Signer::Ecdsa(pair) => Ok(pair.sign(&rng, message).map_err(failed)?.as_ref().to_vec()),
            Signer::Ed25519(pair) => Ok(pair.try_sign(message).map_err(failed)?.as_ref().to_vec()),
        }
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[derive(Debug)]
struct Ring {
    current: Arc<SigningKey>,
    /// The next key, published ahead of use so that resource servers already
    /// hold it when tokens signed with it arrive.
    staged: Option<Arc<SigningKey>>,
    /// Keys no longer used to sign, still published until the instant stored with them.
    retired: Vec<(Arc<SigningKey>, i64)>,
}

/// The authorization server's keys: one current signing key, optionally a
/// staged next key published ahead of use, and, after a rotation, the
/// previous ones, still published in the JWKS for an overlap window so that
/// tokens they signed keep verifying until they expire.
pub struct KeyRing {
    ring: RwLock<Arc<Ring>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("ring", &self.snapshot())
            .finish()
    }
}

impl KeyRing {
    /// A ring whose current key is `key`.
    pub fn new(key: SigningKey) -> Self {
        Self::with_clock(key, Arc::new(SystemClock))
    }

    /// A ring with a fresh key of `alg`.
    pub fn generate(alg: SigningAlgorithm) -> Result<Self> {
        Ok(Self::new(SigningKey::generate(alg)?))
    }

    /// A ring reading time from `clock` (to expire retired keys).
    pub fn with_clock(key: SigningKey, clock: Arc<dyn Clock>) -> Self {
        let ring = Ring {
            current: Arc::new(key),
            staged: None,
            retired: Vec::new(),
        };
        Self {
            ring: RwLock::new(Arc::new(ring)),
            clock,
        }
    }

    fn snapshot(&self) -> Arc<Ring> {
        match self.ring.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Arc<Ring>> {
        match self.ring.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The key new tokens are signed with.
    pub fn current(&self) -> Arc<SigningKey> {
        Arc::clone(&self.snapshot().current)
    }

    /// Make `next` the signing key at once. The previous one stays in the JWKS
    /// for `overlap_secs` (use at least the access-token lifetime plus the
    /// resource servers' JWKS cache age). Resource servers learn the new key on
    /// the first token naming it, subject to their refetch rate limit; to avoid
    /// even that delay, [`KeyRing::stage`] the key first.
    pub fn rotate(&self, next: SigningKey, overlap_secs: i64) {
        self.replace_current(Arc::new(next), overlap_secs);
    }

    /// Publish `next` in the JWKS without signing with it yet; a later
    /// [`KeyRing::promote_staged`] makes it current. Staging again replaces it.
    pub fn stage(&self, next: SigningKey) {
        let mut guard = self.write();
        *guard = Arc::new(Ring {
            current: Arc::clone(&guard.current),
            staged: Some(Arc::new(next)),
            retired: guard.retired.clone(),
        });
    }

    /// Make the staged key current, keeping the previous one published for
    /// `overlap_secs`. Returns `false` (and changes nothing) when none is staged.
    pub fn promote_staged(&self, overlap_secs: i64) -> bool {
        match self.snapshot().staged.clone() {
            Some(next) => {
                self.replace_current(next, overlap_secs);
                true
            }
            None => false,
        }
    }

    fn replace_current(&self, next: Arc<SigningKey>, overlap_secs: i64) {
        let now = self.clock.now();
        let mut guard = self.write();
        let mut retired: Vec<_> = guard
            .retired
            .iter()
            .filter(|(_, until)| *until > now)
            .cloned()
            .collect();
        retired.push((Arc::clone(&guard.current), now.saturating_add(overlap_secs)));
        let staged = guard.staged.clone().filter(|s| s.kid() != next.kid());
        *guard = Arc::new(Ring {
            current: next,
            staged,
            retired,
        });
    }

    /// The public JWKS: the current key first, then the staged one, then
    /// retired keys still inside their overlap.
    pub fn jwks(&self) -> JwkSet {
        let now = self.clock.now();
        let ring = self.snapshot();
        let mut keys = vec![ring.current.public_jwk().clone()];
        keys.extend(ring.staged.iter().map(|k| k.public_jwk().clone()));
        keys.extend(
            ring.retired
                .iter()
                .filter(|(_, until)| *until > now)
                .map(|(k, _)| k.public_jwk().clone()),
        );
        JwkSet { keys }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn every_algorithm_generates_and_publishes() {
        for alg in SigningAlgorithm::ALL {
            let key = SigningKey::generate(alg).unwrap();
            let jwk = key.public_jwk();
            assert_eq!(jwk.common.key_id.as_deref(), Some(key.kid()));
            let json = serde_json::to_value(jwk).unwrap();
            assert!(json.get("d").is_none(), "private part leaked for {alg:?}");
            assert_eq!(json["alg"], alg.as_str());
        }
    }

    #[test]
    fn rotation_keeps_old_key_for_the_overlap() {
        let clock = Arc::new(ManualClock::new(1_000));
        let first = SigningKey::generate(SigningAlgorithm::Es256).unwrap();
        let first_kid = first.kid().to_owned();
        let ring = KeyRing::with_clock(first, clock.clone());
        ring.rotate(SigningKey::generate(SigningAlgorithm::Es256).unwrap(), 60);
        assert_ne!(ring.current().kid(), first_kid);
        let kids: Vec<_> = ring
            .jwks()
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect();
        assert_eq!(kids.len(), 2);
        assert!(kids.contains(&first_kid));
        clock.advance(61);
        assert_eq!(ring.jwks().keys.len(), 1);
    }

    #[test]
    fn staged_keys_are_published_before_they_sign() {
        let clock = Arc::new(ManualClock::new(1_000));
        let key = SigningKey::generate(SigningAlgorithm::EdDsa).unwrap();
        let ring = KeyRing::with_clock(key, clock);
        let first = ring.current().kid().to_owned();
        assert!(!ring.promote_staged(60));
        let next = SigningKey::generate(SigningAlgorithm::EdDsa).unwrap();
        let next_kid = next.kid().to_owned();
        ring.stage(next);
        assert_eq!(ring.current().kid(), first);
        assert_eq!(ring.jwks().keys.len(), 2);
        assert!(ring.jwks().find(&next_kid).is_some());
        assert!(ring.promote_staged(60));
        assert_eq!(ring.current().kid(), next_kid);
        // The new current key and the retired first one; nothing staged any more.
        assert_eq!(ring.jwks().keys.len(), 2);
        assert!(ring.jwks().find(&first).is_some());
    }

    #[test]
    fn debug_hides_private_key() {
        let key = SigningKey::generate(SigningAlgorithm::EdDsa).unwrap();
        assert!(format!("{key:?}").contains("[redacted]"));
    }
}
