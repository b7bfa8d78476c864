//! The resource-server side: token verification, `Principal`, challenges and
//! RFC 9728 protected resource metadata.

mod cache;
mod discovery;
mod jwks;
mod jws;
mod layer;
mod metadata;

use std::mem::MaybeUninit;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub use discovery::{discover_jwks_uri, metadata_urls};
pub use jwks::{HttpJwks, JwksCache, JwksSource, VerificationKey};
pub use layer::{BearerLayer, BearerService};
pub use metadata::{ProtectedResourceMetadata, ResourceDirectory, protected_resource_router};

use crate::clock::{Clock, SystemClock};
use crate::keys::SigningAlgorithm;
use crate::resource::ResourceUri;

/// Settings of a [`ResourceServer`].
#[derive(Debug, Clone)]
pub struct ResourceServerConfig {
    /// This server's canonical resource URI: tokens must carry it as `aud`.
    pub resource: ResourceUri,
    /// The authorization server's issuer identifier, compared byte for byte with `iss`.
    pub issuer: String,
    /// Scopes this resource understands (published in metadata; `offline_access` is dropped).
    pub scopes_supported: Vec<String>,
    /// Scopes every request through [`ResourceServer::layer`] needs.
    pub required_scopes: Vec<String>,
    /// Algorithms accepted (default: RS256, ES256, EdDSA).
    pub algorithms: Vec<SigningAlgorithm>,
    /// Clock skew allowed on `exp` and `nbf` (default 30 s).
    pub leeway: Duration,
    /// A human-readable name for the metadata.
    pub resource_name: Option<String>,
    /// How many verified tokens to remember (default 10,000; 0 disables). A
    /// token seen again is accepted without a second signature check while it
    /// has not expired and the key set has not changed.
    pub verified_token_cache: usize,
}

impl ResourceServerConfig {
    /// Defaults for `resource` trusting `issuer`.
    pub fn new(resource: ResourceUri, issuer: impl Into<String>) -> Self {
        Self {
            resource,
            issuer: issuer.into(),
            scopes_supported: Vec::new(),
            required_scopes: Vec::new(),
            algorithms: SigningAlgorithm::ALL.to_vec(),
            leeway: Duration::from_secs(30),
            resource_name: None,
            verified_token_cache: 10_000,
        }
    }
}

/// Who a verified access token speaks for; inserted into request extensions by the layer.
///
/// Cheap to clone: its text is one shared allocation (every request of a
/// session carries a clone, from the verified-token cache).
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    /// Subject, client id, token id and scope, one after another.
    text: Arc<str>,
    client_at: usize,
    token_at: usize,
    scope_at: usize,
    expires_at: i64,
}

impl Principal {
    /// A principal for `subject`, acting through `client_id` with the
    /// space-separated `scope`, from the token `token_id` that expires at
    /// `expires_at` (seconds since the epoch).
    pub fn new(
        subject: &str,
        client_id: &str,
        scope: &str,
        token_id: &str,
        expires_at: i64,
    ) -> Self {
        let mut text =
            String::with_capacity(subject.len() + client_id.len() + token_id.len() + scope.len());
        text.push_str(subject);
        let client_at = text.len();
        text.push_str(client_id);
        let token_at = text.len();
        text.push_str(token_id);
        let scope_at = text.len();
        text.push_str(scope);
        Self {
            text: Arc::from(text),
            client_at,
            token_at,
            scope_at,
            expires_at,
        }
    }

    /// The end user (`sub`).
    pub fn subject(&self) -> &str {
        self.text.get(..self.client_at).unwrap_or_default()
    }

    /// The client the token was issued to (`client_id`).
    pub fn client_id(&self) -> &str {
        self.text
            .get(self.client_at..self.token_at)
            .unwrap_or_default()
    }

    /// The token id (`jti`).
    pub fn token_id(&self) -> &str {
        self.text
            .get(self.token_at..self.scope_at)
            .unwrap_or_default()
    }

    /// The granted scopes, in the token's order.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.text
            .get(self.scope_at..)
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
    }

    /// Expiry, seconds since the epoch.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// `Ok` when every scope in `needed` was granted, otherwise the
    /// `insufficient_scope` error naming all of them.
    pub fn require_scopes(&self, needed: &[&str]) -> Result<(), BearerError> {
        if needed.iter().all(|s| self.has_scope(s)) {
            Ok(())
        } else {
            Err(BearerError::InsufficientScope(
                needed.iter().map(|s| (*s).to_owned()).collect(),
            ))
        }
    }
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &self.subject())
            .field("client_id", &self.client_id())
            .field("scopes", &self.scopes().collect::<Vec<_>>())
            .field("token_id", &self.token_id())
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a request was refused. Turn it into the answer with [`ResourceServer::challenge`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    /// No bearer token was sent: `401` with a bare challenge.
    Missing,
    /// The request carries credentials in a way that is refused (a token in the
    /// query string, several `Authorization` headers, a malformed header): `400`.
    InvalidRequest(String),
    /// The token is not acceptable here: `401`, `error="invalid_token"`.
    InvalidToken(String),
    /// The token lacks scopes: `403`, `error="insufficient_scope"` with every scope needed.
    InsufficientScope(Vec<String>),
}

impl BearerError {
    /// The RFC 6750 error code, if any.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::Missing => None,
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken(_) => Some("invalid_token"),
            Self::InsufficientScope(_) => Some("insufficient_scope"),
        }
    }
}

/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

pub(crate) struct Shared {
    pub(crate) config: ResourceServerConfig,
    pub(crate) jwks: Arc<JwksCache>,
    clock: Arc<dyn Clock>,
    verified: cache::VerifiedTokens,
    headers: jws::HeaderCache,
}

/// The resource-server side for one protected resource.
#[derive(Clone)]
pub struct ResourceServer {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for ResourceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceServer")
            .field("resource", &self.shared.config.resource)
            .field("issuer", &self.shared.config.issuer)
            .finish_non_exhaustive()
    }
}

impl ResourceServer {
    /// A resource server verifying tokens against `jwks`.
    pub fn new(config: ResourceServerConfig, jwks: Arc<JwksCache>) -> Self {
        Self::with_clock(config, jwks, Arc::new(SystemClock))
    }

    /// Like [`ResourceServer::new`], reading time from `clock`.
    pub fn with_clock(
        mut config: ResourceServerConfig,
        jwks: Arc<JwksCache>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        config.scopes_supported.retain(|s| s != "offline_access");
        Self {
            shared: Arc::new(Shared {
                verified: cache::VerifiedTokens::new(config.verified_token_cache),
                headers: jws::HeaderCache::default(),
                config,
                jwks,
                clock,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ResourceServerConfig {
        &self.shared.config
    }

    /// A layer requiring a valid token with the configured `required_scopes`.
    pub fn layer(&self) -> BearerLayer {
        BearerLayer::new(self.clone(), self.shared.config.required_scopes.clone())
    }

    /// A layer requiring a valid token with `scopes`; its `401` challenges
    /// name these scopes as the ones to ask for.
    pub fn layer_with_scopes(&self, scopes: &[&str]) -> BearerLayer {
        BearerLayer::new(
            self.clone(),
            scopes.iter().map(|s| (*s).to_owned()).collect(),
        )
    }

    /// Verify an access token: a compact JWS whose `typ` is `at+jwt`, whose
    /// `alg` is one of the accepted asymmetric algorithms and equals the
    /// algorithm of the JWKS key named by `kid`, whose signature verifies, and
    /// whose `iss`, `aud`, `exp` and `nbf` fit (RFC 9068 §4).
    ///
    /// A token verified before is answered from a bounded cache until it
    /// expires; the cache is emptied whenever the key set changes.
    pub async fn verify(&self, token: &str) -> Result<Principal, BearerError> {
        let shared = &self.shared;
        let now = shared.clock.now();
        let leeway = i64::try_from(shared.config.leeway.as_secs()).unwrap_or(i64::MAX);
        shared.verified.sync_generation(shared.jwks.generation());
        let key = cache::VerifiedTokens::key(token);
        if let Some(principal) = shared.verified.get(&key, now, leeway) {
            return Ok(principal);
        }
        let principal = self.verify_uncached(token).await?;
        shared.verified.sync_generation(shared.jwks.generation());
        shared.verified.insert(key, principal.clone(), now);
        Ok(principal)
    }

    /// [`ResourceServer::verify`] without the cache: every check, every time.
    pub async fn verify_uncached(&self, token: &str) -> Result<Principal, BearerError> {
        let jwks = &self.shared.jwks;
        // Nearly always the key set is fresh and has the token's key: then
        // every check is made in this one synchronous pass, with the decoded
        // token on its stack rather than in this future.
        let mut missing = None;
        let answer = self.check(token, |kid| {
            let key = jwks.fresh_key(kid);
            if key.is_none() {
                missing = Some(kid.to_owned());
            }
            key
        });
        let Some(kid) = missing else {
            return answer;
        };
        // Otherwise fetch the key set if that is due and allowed, and check
        // again from the start with what it gave.
        let key = jwks.key(&kid).await;
        self.check(token, |_| key)
    }

    /// Every check of [`ResourceServer::verify_uncached`], in its order, with
    /// the verification key for a `kid` from `key_for`.
    fn check(
        &self,
        token: &str,
        key_for: impl FnOnce(&str) -> Option<VerificationKey>,
    ) -> Result<Principal, BearerError> {
        let invalid = |d: &str| BearerError::InvalidToken(d.to_owned());
        let config = &self.shared.config;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid("token too large"));
        }
        let mut buffer = [MaybeUninit::uninit(); jws::decoded_room(MAX_TOKEN_BYTES)];
        let jws =
            jws::CompactJws::parse(token, &mut buffer).ok_or_else(|| invalid("malformed token"))?;
        let header = self
            .shared
            .headers
            .get_or_parse(jws.header)
            .ok_or_else(|| invalid("malformed token"))?;
        if header.crit {
            return Err(invalid("unsupported critical header"));
        }
        if !header.typ_ok {
            return Err(invalid("not an access token (typ must be at+jwt)"));
        }
        let alg = header
            .alg
            .filter(|a| config.algorithms.contains(a))
            .ok_or_else(|| invalid("signing algorithm not accepted"))?;
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| invalid("token has no kid"))?;
        let key = key_for(kid).ok_or_else(|| invalid("unknown signing key"))?;
        if key.alg != alg {
            return Err(invalid("algorithm does not match the key"));
        }
        if !key.verify(jws.signing_input.as_bytes(), jws.signature()) {
            return Err(invalid("signature verification failed"));
        }
        let claims = jws.claims().ok_or_else(|| invalid("malformed claims"))?;
        let (Some(iss), Some(aud), Some(exp), Some(sub), Some(client_id), Some(jti)) = (
            claims.iss,
            claims.aud,
            claims.exp,
            claims.sub,
            claims.client_id,
            claims.jti,
        ) else {
            return Err(invalid("token lacks a required claim"));
        };
        if *iss != *config.issuer {
            return Err(invalid("token from another issuer"));
        }
        if !aud.contains(config.resource.as_str()) {
            return Err(invalid("token is for another resource"));
        }
        let now = self.shared.clock.now();
        let leeway = i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX);
        let exp = exp.0;
        if exp.saturating_add(leeway) <= now {
            return Err(invalid("token expired"));
        }
        if let Some(nbf) = claims.nbf
            && nbf.0 > now.saturating_add(leeway)
        {
            return Err(invalid("token not yet valid"));
        }
        Ok(Principal::new(
            &sub,
            &client_id,
            claims.scope.as_deref().unwrap_or_default(),
            &jti,
            exp,
        ))
    }

    /// Scopes named in a `401` challenge: the required ones, else those supported.
    fn challenge_scopes(&self) -> &[String] {
        let c = &self.shared.config;
        if c.required_scopes.is_empty() {
            &c.scopes_supported
        } else {
            &c.required_scopes
        }
    }

    /// The `WWW-Authenticate` value for `err`.
    pub fn www_authenticate(&self, err: &BearerError) -> String {
        self.www_authenticate_for(err, &[])
    }

    /// The `WWW-Authenticate` value for `err` refusing an operation that
    /// needs `needed` (when empty, the required scopes, else those supported).
    fn www_authenticate_for(&self, err: &BearerError, needed: &[String]) -> String {
        let mut params = vec![format!(
            "resource_metadata=\"{}\"",
            quote(&self.shared.config.resource.metadata_url())
        )];
        let scopes = match err {
            BearerError::InsufficientScope(missing) => missing.as_slice(),
            _ if needed.is_empty() => self.challenge_scopes(),
            _ => needed,
        };
        // Never `offline_access`, whichever list it came from.
        let scopes: Vec<&str> = scopes
            .iter()
            .map(String::as_str)
            .filter(|s| *s != "offline_access")
            .collect();
        if !scopes.is_empty() {
            params.push(format!("scope=\"{}\"", quote(&scopes.join(" "))));
        }
        if let Some(code) = err.code() {
            params.push(format!("error=\"{code}\""));
        }
        match err {
            BearerError::InvalidRequest(d) | BearerError::InvalidToken(d) => {
                params.push(format!("error_description=\"{}\"", quote(d)));
            }
            BearerError::InsufficientScope(_) => {
                params.push("error_description=\"the token lacks a required scope\"".to_owned());
            }
            BearerError::Missing => {}
        }
        format!("Bearer {}", params.join(", "))
    }

    /// The HTTP answer for `err`: status and `WWW-Authenticate`.
    pub fn challenge(&self, err: &BearerError) -> Response {
        self.challenge_for(err, &[])
    }

    /// [`ResourceServer::challenge`] refusing an operation that needs
    /// `needed`, which a `401` names as the scopes to ask for (the layer's
    /// scopes rather than the configured ones).
    pub(crate) fn challenge_for(&self, err: &BearerError, needed: &[String]) -> Response {
        let status = match err {
            BearerError::Missing | BearerError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            BearerError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            BearerError::InsufficientScope(_) => StatusCode::FORBIDDEN,
        };
        let mut response = status.into_response();
        if let Ok(value) = HeaderValue::from_str(&self.www_authenticate_for(err, needed)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }

    /// This resource's RFC 9728 metadata.
    pub fn metadata(&self) -> ProtectedResourceMetadata {
        let c = &self.shared.config;
        ProtectedResourceMetadata {
            resource: c.resource.as_str().to_owned(),
            authorization_servers: vec![c.issuer.clone()],
            scopes_supported: c.scopes_supported.clone(),
            bearer_methods_supported: vec!["header".to_owned()],
            resource_name: c.resource_name.clone(),
        }
    }

    /// A router serving this resource's metadata at its RFC 9728 path.
    pub fn metadata_router(&self) -> axum::Router {
        protected_resource_router(Arc::new(self.clone()))
    }
}

impl ResourceDirectory for ResourceServer {
    fn metadata_for(&self, resource_path: &str) -> Option<ProtectedResourceMetadata> {
        (resource_path == self.shared.config.resource.path()).then(|| self.metadata())
    }
}

/// Escape a value for an RFC 7230 quoted-string.
fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::keys::KeyRing;
    use crate::token::{AccessTokenClaims, sign_access_token};

    const RESOURCE: &str = "https://mcp.example.com/mcp";

    #[test]
    fn principal_parts_read_back() {
        let p = Principal::new(
            "ünïcode sub",
            "https://c.example/m.json",
            "  a  b:c ",
            "jti-1",
            7,
        );
        assert_eq!(p.subject(), "ünïcode sub");
        assert_eq!(p.client_id(), "https://c.example/m.json");
        assert_eq!(p.token_id(), "jti-1");
        assert_eq!(p.scopes().collect::<Vec<_>>(), ["a", "b:c"]);
        assert_eq!(p.expires_at(), 7);
        assert!(p.require_scopes(&["b:c", "a"]).is_ok());
        assert_eq!(
            p.require_scopes(&["a", "z"]),
            Err(BearerError::InsufficientScope(vec!["a".into(), "z".into()]))
        );
        let empty = Principal::new("", "", "", "", 0);
        assert_eq!(
            (empty.subject(), empty.client_id(), empty.token_id()),
            ("", "", "")
        );
        assert_eq!(empty.scopes().count(), 0);
        assert_eq!(p.clone(), p);
        assert_ne!(
            Principal::new("ab", "c", "", "", 0),
            Principal::new("a", "bc", "", "", 0)
        );
    }

    fn claims(sub: &str) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://as.example".into(),
            sub: sub.into(),
            aud: RESOURCE.into(),
            client_id: "c".into(),
            scope: "a b".into(),
            exp: i64::MAX / 2,
            iat: 0,
            nbf: 0,
            jti: "j".into(),
        }
    }

    fn part(token: &str, index: usize) -> &str {
        token.split('.').nth(index).unwrap()
    }

    #[tokio::test]
    async fn a_cached_header_does_not_vouch_for_the_rest_of_the_token() {
        let keys = Arc::new(KeyRing::generate(SigningAlgorithm::Es256).unwrap());
        let config =
            ResourceServerConfig::new(ResourceUri::parse(RESOURCE).unwrap(), "https://as.example");
        let rs = ResourceServer::new(config, Arc::new(JwksCache::new(keys.clone())));
        let alice = sign_access_token(&keys.current(), &claims("alice")).unwrap();
        let mallory = sign_access_token(&keys.current(), &claims("mallory")).unwrap();
        assert_eq!(part(&alice, 0), part(&mallory, 0));
        assert_eq!(rs.verify_uncached(&alice).await.unwrap().subject(), "alice");
        assert_eq!(
            rs.verify_uncached(&mallory).await.unwrap().subject(),
            "mallory"
        );
        assert_eq!(rs.shared.headers.len(), 1);
        let invalid = |d: &str| Err(BearerError::InvalidToken(d.to_owned()));
        let swapped = format!(
            "{}.{}.{}",
            part(&alice, 0),
            part(&mallory, 1),
            part(&alice, 2)
        );
        assert_eq!(
            rs.verify_uncached(&swapped).await,
            invalid("signature verification failed")
        );
        let mut signature = URL_SAFE_NO_PAD.decode(part(&alice, 2)).unwrap();
        signature[0] ^= 1;
        let flipped = format!(
            "{}.{}.{}",
            part(&alice, 0),
            part(&alice, 1),
            URL_SAFE_NO_PAD.encode(signature)
        );
        assert_eq!(
            rs.verify_uncached(&flipped).await,
            invalid("signature verification failed")
        );
        let padded = format!(
            "{}.{}=.{}",
            part(&alice, 0),
            part(&alice, 1),
            part(&alice, 2)
        );
        assert_eq!(
            rs.verify_uncached(&padded).await,
            invalid("malformed token")
        );
        // A refused header answers the same the second time; one that does not
        // parse is not kept.
        let crit = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","typ":"at+jwt","crit":["x"]}"#);
        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
        let dup = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","typ":"at+jwt","alg":"none"}"#);
        for _ in 0..2 {
            for (header, reason) in [
                (&crit, "unsupported critical header"),
                (&none, "signing algorithm not accepted"),
                (&dup, "malformed token"),
            ] {
                let token = format!("{header}.{}.{}", part(&alice, 1), part(&alice, 2));
                assert_eq!(
                    rs.verify_uncached(&token).await,
                    invalid(reason),
                    "{header}"
                );
            }
        }
        assert_eq!(rs.shared.headers.len(), 3);
        assert_eq!(rs.verify_uncached(&alice).await.unwrap().subject(), "alice");
    }
}
