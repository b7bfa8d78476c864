//! The OAuth 2.1 authorization server: configuration, shared state and the axum router.

mod authorize;
pub(crate) mod clients;
mod consent;
mod error;
mod metadata;
mod register;
mod token;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use url::Url;

pub use clients::MetadataDocumentPolicy;
pub use consent::{Consent, ConsentPrompt, StaticUser, default_consent_page, escape_html};
pub use error::ErrorCode;
pub use metadata::AuthorizationServerMetadata;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::keys::KeyRing;
use crate::resource::is_loopback_host;
use crate::secret::{ClientSecret, RotationSecret, random_bytes};
use crate::store::{ClientAuthMethod, ClientRecord, Store};
use clients::MetadataDocuments;
use error::OAuthError;

/// Settings of an [`AuthorizationServer`]. Build with [`AuthorizationServerConfig::new`]
/// and adjust the public fields.
#[derive(Debug, Clone)]
pub struct AuthorizationServerConfig {
    /// The issuer identifier: an https URL (http only on loopback) without query
    /// or fragment. A trailing slash is removed; the result is what appears,
    /// byte for byte, in the metadata and in every token's `iss`.
    pub issuer: String,
    /// Authorization code lifetime in seconds (default 60).
    pub code_ttl_secs: i64,
    /// Access token lifetime in seconds (default 600).
    pub access_token_ttl_secs: i64,
    /// Refresh token lifetime in seconds (default 30 days).
    pub refresh_token_ttl_secs: i64,
    /// How long after a refresh token was rotated a second use of it still gets
    /// the same refresh token back instead of revoking the family (default 10 s).
    pub refresh_grace_secs: i64,
    /// How long an authorization request waits for the user's decision (default 600 s).
    pub pending_ttl_secs: i64,
    /// Serve dynamic client registration (RFC 7591) at `/register` (default true).
    pub dynamic_registration: bool,
    /// Registered clients that never obtained a token are deleted this long after
    /// registration (default 1 day).
    pub stale_registration_secs: i64,
    /// Registered clients are deleted when their last token is this old (default 90 days).
    pub unused_client_secs: i64,
    /// How client ID metadata documents are fetched.
    pub metadata_documents: MetadataDocumentPolicy,
    /// Largest request body accepted by the endpoints (default 16 KiB).
    pub max_body_bytes: usize,
    /// Scopes advertised in the metadata (optional; `offline_access` is left out).
    pub scopes_supported: Vec<String>,
    /// Secret from which a rotated refresh token is derived from its
    /// predecessor (so concurrent refreshes get the same answer). Instances
    /// sharing one store must share it; `None` picks a random one per process.
    pub rotation_secret: Option<RotationSecret>,
}

impl AuthorizationServerConfig {
    /// Defaults for `issuer`.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            code_ttl_secs: 60,
            access_token_ttl_secs: 600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            refresh_grace_secs: 10,
            pending_ttl_secs: 600,
            dynamic_registration: true,
            stale_registration_secs: 24 * 3600,
            unused_client_secs: 90 * 24 * 3600,
            metadata_documents: MetadataDocumentPolicy::default(),
            max_body_bytes: 16 * 1024,
            scopes_supported: Vec::new(),
            rotation_secret: None,
        }
    }
}

/// Endpoint paths derived from the issuer.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    /// The issuer's path without a trailing slash, `""` at the root.
    pub(crate) base: String,
    pub(crate) authorize: String,
    pub(crate) decision: String,
    pub(crate) token: String,
    pub(crate) revoke: String,
    pub(crate) register: String,
    pub(crate) jwks: String,
}

pub(crate) struct Inner {
    pub(crate) config: AuthorizationServerConfig,
    pub(crate) issuer: String,
    pub(crate) origin: String,
    pub(crate) secure_cookies: bool,
    pub(crate) paths: Paths,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) consent: Arc<dyn Consent>,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) documents: MetadataDocuments,
    /// Key deriving a rotated refresh token from its predecessor, so that a
    /// concurrent refresh inside the grace window gets the same token back
    /// without the store ever holding a token in the clear.
    pub(crate) rotation_key: [u8; 32],
}

/// The authorization server. Cheap to clone; serve it with [`AuthorizationServer::router`].
#[derive(Clone)]
pub struct AuthorizationServer {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for AuthorizationServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationServer")
            .field("issuer", &self.inner.issuer)
            .finish()
    }
}

impl AuthorizationServer {
    /// A server over `store`, asking `consent`, signing with `keys`.
    pub fn new(
        config: AuthorizationServerConfig,
        store: Arc<dyn Store>,
        consent: Arc<dyn Consent>,
        keys: Arc<KeyRing>,
    ) -> Result<Self> {
        Self::with_clock(config, store, consent, keys, Arc::new(SystemClock))
    }

    /// Like [`AuthorizationServer::new`] with an explicit clock.
    pub fn with_clock(
        config: AuthorizationServerConfig,
        store: Arc<dyn Store>,
        consent: Arc<dyn Consent>,
        keys: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let issuer = config
            .issuer
            .strip_suffix('/')
            .unwrap_or(&config.issuer)
            .to_owned();
        let url = Url::parse(&issuer)
            .map_err(|_| Error::Config(format!("issuer `{issuer}` is not a URL")))?;
        if url.query().is_some() || url.fragment().is_some() || issuer.contains('#') {
            return Err(Error::Config("the issuer has no query or fragment".into()));
        }
        let host = url
            .host()
            .ok_or_else(|| Error::Config("the issuer has a host".into()))?;
        let secure_cookies = match url.scheme() {
            "https" => true,
            "http" if is_loopback_host(&host) => false,
            _ => {
                return Err(Error::Config(
                    "the issuer must be https (http on loopback)".into(),
                ));
            }
        };
        for (name, v) in [
            ("code_ttl_secs", config.code_ttl_secs),
            ("access_token_ttl_secs", config.access_token_ttl_secs),
            ("refresh_token_ttl_secs", config.refresh_token_ttl_secs),
            ("pending_ttl_secs", config.pending_ttl_secs),
        ] {
            if v <= 0 {
                return Err(Error::Config(format!("{name} must be positive")));
            }
        }
        let base = url.path().trim_end_matches('/').to_owned();
        let origin = url.origin().ascii_serialization();
        // Clients compare the issuer byte for byte with the URL they derived it
        // from, so it must already be in the form the URL parser produces.
        if format!("{origin}{base}") != issuer {
            return Err(Error::Config(format!(
                "issuer `{issuer}` is not normalised (expected `{origin}{base}`)"
            )));
        }
        let paths = Paths {
            authorize: format!("{base}/authorize"),
            decision: format!("{base}/authorize/decision"),
            token: format!("{base}/token"),
            revoke: format!("{base}/revoke"),
            register: format!("{base}/register"),
            jwks: format!("{base}/jwks.json"),
            base,
        };
        let documents = MetadataDocuments::new(config.metadata_documents.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                rotation_key: match &config.rotation_secret {
                    Some(secret) => *secret.bytes(),
                    None => random_bytes::<32>()?,
                },
                config,
                issuer,
                origin,
                secure_cookies,
                paths,
                store,
                consent,
                keys,
                clock,
                documents,
            }),
        })
    }

    /// The issuer identifier, exactly as published.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The signing keys.
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.inner.keys
    }

    /// The RFC 8414 metadata this server publishes.
    pub fn metadata(&self) -> AuthorizationServerMetadata {
        metadata::build(&self.inner)
    }

    /// The router serving every endpoint at its absolute path (derived from the
    /// issuer's path); merge it into the application's router at the root.
    pub fn router(&self) -> Router {
        let p = &self.inner.paths;
        let mut router = Router::new()
            .route(&p.authorize, get(authorize::authorize))
            .route(&p.decision, post(authorize::decision))
            .route(&p.token, post(token::token))
            .route(&p.revoke, post(token::revoke))
            .route(&p.jwks, get(metadata::jwks));
        if self.inner.config.dynamic_registration {
            router = router.route(&p.register, post(register::register));
        }
        for path in metadata::well_known_paths(&p.base) {
            router = router.route(&path, get(metadata::metadata));
        }
        router
            .layer(DefaultBodyLimit::max(self.inner.config.max_body_bytes))
            .with_state(Arc::clone(&self.inner))
    }

    /// Forget expired codes, pending requests and refresh tokens, and delete
    /// stale registrations. Returns the number of clients deleted.
    pub async fn cleanup(&self) -> Result<usize> {
        let now = self.inner.clock.now();
        let c = &self.inner.config;
        self.inner.store.purge_expired(now).await?;
        self.inner
            .store
            .delete_stale_clients(
                now.saturating_sub(c.stale_registration_secs),
                now.saturating_sub(c.unused_client_secs),
            )
            .await
    }

    /// Run [`AuthorizationServer::cleanup`] every `interval` on the current tokio runtime.
    pub fn spawn_cleanup(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let server = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                ticker.tick().await;
                if let Err(err) = server.cleanup().await {
                    tracing::warn!(error = %err, "oauth cleanup failed");
                }
            }
        })
    }
}

impl Inner {
    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A registered client, or a client ID metadata document fetched on demand.
    pub(crate) async fn find_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        if self.documents.is_document_id(client_id) {
            return match self.documents.resolve(client_id, self.now()).await {
                Ok(record) => Ok(Some(record)),
                Err(err @ (Error::Fetch { .. } | Error::ClientMetadata(_))) => {
                    tracing::info!(error = %err, "client metadata document refused");
                    Ok(None)
                }
                Err(err) => Err(err),
            };
        }
        self.store.client(client_id).await
    }

    /// Authenticate the client of a token or revocation request.
    pub(crate) async fn authenticate_client(
        &self,
        headers: &HeaderMap,
        form: &Form,
    ) -> Result<ClientRecord, OAuthError> {
        let basic = basic_credentials(headers)?;
        let (client_id, secret, method) = match basic {
            Some((id, secret)) => {
                if form.get("client_secret").is_some() {
                    return Err(OAuthError::invalid_request(
                        "use one client authentication method, not several",
                    ));
                }
                if form.get("client_id").is_some_and(|f| f != id) {
                    return Err(OAuthError::invalid_request(
                        "client_id differs from the authenticated client",
                    ));
                }
                (id, Some(secret), ClientAuthMethod::ClientSecretBasic)
            }
            None => {
                let Some(id) = form.get("client_id") else {
                    return Err(OAuthError::invalid_client(
                        "client authentication is required",
                    ));
                };
                match form.get("client_secret") {
                    Some(secret) => (
                        id.to_owned(),
                        Some(secret.to_owned()),
                        ClientAuthMethod::ClientSecretPost,
                    ),
                    None => (id.to_owned(), None, ClientAuthMethod::None),
                }
            }
        };
        let challenge = method == ClientAuthMethod::ClientSecretBasic;
        let fail = |description: &str| {
            let mut e = OAuthError::invalid_client(description);
            e.basic_challenge = challenge;
            e
        };
        let Some(client) = self.find_client(&client_id).await? else {
            return Err(fail("unknown client"));
        };
        if client.auth_method != method {
            return Err(fail(&format!(
                "the client is registered for {} authentication",
                client.auth_method.as_str()
            )));
        }
        if let Some(secret) = secret {
            let ok = client
                .secret_hash
                .is_some_and(|h| h.matches(ClientSecret::new(secret).expose()));
            if !ok {
                return Err(fail("client authentication failed"));
            }
        }
        Ok(client)
    }
}

/// Decode `Authorization: Basic` client credentials (RFC 6749 §2.3.1: each part
/// form-urlencoded before base64).
/// The scopes of a space-separated `scope` parameter (RFC 6749 §3.3), empty
/// entries dropped.
fn scope_list(scope: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || {
        let mut e = OAuthError::invalid_client("malformed Basic credentials");
        e.basic_challenge = true;
        e
    };
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// A parsed `application/x-www-form-urlencoded` body or query: each parameter
/// at most once, empty values treated as absent (RFC 6749 §3.1).
#[derive(Debug, Default)]
pub(crate) struct Form(HashMap<String, String>);

impl Form {
    pub(crate) fn parse(raw: &[u8]) -> Result<Self, OAuthError> {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(raw) {
            if map.contains_key(k.as_ref()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{k}` is repeated"
                )));
            }
            map.insert(k.into_owned(), v.into_owned());
        }
        map.retain(|_, v| !v.is_empty());
        Ok(Self(map))
    }

    /// Parse a request body, insisting on the form content type.
    pub(crate) fn from_body(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        Self::parse(body)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub(crate) fn require(&self, key: &str) -> Result<&str, OAuthError> {
        self.get(key)
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter `{key}` is required")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningAlgorithm;
    use crate::server::StaticUser;
    use crate::store::MemoryStore;

    fn build(issuer: &str) -> Result<AuthorizationServer> {
        AuthorizationServer::new(
            AuthorizationServerConfig::new(issuer),
            Arc::new(MemoryStore::new()),
            Arc::new(StaticUser::new("u")),
            Arc::new(KeyRing::generate(SigningAlgorithm::EdDsa)?),
        )
    }

    #[test]
    fn issuers_must_be_normalised_urls() {
        assert_eq!(
            build("https://auth.example.com/").unwrap().issuer(),
            "https://auth.example.com"
        );
        assert_eq!(
            build("http://127.0.0.1:9000/t").unwrap().issuer(),
            "http://127.0.0.1:9000/t"
        );
        for bad in [
            "https://Auth.example.com",
            "https://auth.example.com:443",
            "https://auth.example.com/ä",
            "https://auth.example.com/a/./b",
            "https://auth.example.com?x=1",
            "https://auth.example.com#f",
            "http://auth.example.com",
            "ftp://auth.example.com",
            "not a url",
        ] {
            assert!(build(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forms_refuse_repeated_parameters_and_drop_empty_ones() {
        assert!(Form::parse(b"a=1&a=2").is_err());
        let form = Form::parse(b"a=1&b=&c=%20x").unwrap();
        assert_eq!(form.get("a"), Some("1"));
        assert_eq!(form.get("b"), None);
        assert_eq!(form.get("c"), Some(" x"));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode("my%20id:s%3Acret"));
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        assert_eq!(
            basic_credentials(&headers).unwrap(),
            Some(("my id".to_owned(), "s:cret".to_owned()))
        );
        headers.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert!(basic_credentials(&headers).is_err());
    }
}
