//! The resource-server side: token verification, `Principal`, challenges and
//! RFC 9728 protected resource metadata.

mod jwks;
mod layer;
mod metadata;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use serde::Deserialize;

pub use jwks::{HttpJwks, JwksCache, JwksSource, VerificationKey};
pub use layer::{BearerLayer, BearerService};
pub use metadata::{ProtectedResourceMetadata, ResourceDirectory, protected_resource_router};

use crate::keys::SigningAlgorithm;
use crate::resource::ResourceUri;
use crate::token::ACCESS_TOKEN_TYP;

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
        }
    }
}

/// Who a verified access token speaks for; inserted into request extensions by the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The end user (`sub`).
    pub subject: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The token id (`jti`).
    pub token_id: String,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
}

impl Principal {
    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
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

#[derive(Deserialize)]
struct VerifiedClaims {
    sub: String,
    client_id: String,
    #[serde(default)]
    scope: Option<String>,
    jti: String,
    exp: i64,
}

pub(crate) struct Shared {
    pub(crate) config: ResourceServerConfig,
    pub(crate) jwks: Arc<JwksCache>,
    validation: HashSet<String>,
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
    pub fn new(mut config: ResourceServerConfig, jwks: Arc<JwksCache>) -> Self {
        config.scopes_supported.retain(|s| s != "offline_access");
        let validation = HashSet::from([config.issuer.clone()]);
        Self {
            shared: Arc::new(Shared {
                config,
                jwks,
                validation,
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

    /// A layer requiring a valid token with `scopes`.
    pub fn layer_with_scopes(&self, scopes: &[&str]) -> BearerLayer {
        BearerLayer::new(
            self.clone(),
            scopes.iter().map(|s| (*s).to_owned()).collect(),
        )
    }

    /// Verify an access token: signature by a key from the issuer's JWKS with a
    /// pinned algorithm, `typ`, `iss`, `aud`, `exp` and `nbf`.
    pub async fn verify(&self, token: &str) -> Result<Principal, BearerError> {
        let invalid = |d: &str| BearerError::InvalidToken(d.to_owned());
        let config = &self.shared.config;
        let header = decode_header(token).map_err(|_| invalid("malformed token"))?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(invalid("not an access token (typ must be at+jwt)"));
        }
        let allowed = SigningAlgorithm::from_jwt_algorithm(header.alg)
            .is_some_and(|a| config.algorithms.contains(&a));
        if !allowed {
            return Err(invalid("signing algorithm not accepted"));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| invalid("token has no kid"))?;
        let key = self
            .shared
            .jwks
            .key(kid)
            .await
            .ok_or_else(|| invalid("unknown signing key"))?;
        if key.alg != header.alg {
            return Err(invalid("algorithm does not match the key"));
        }
        let mut validation = Validation::new(key.alg);
        validation.leeway = config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.iss = Some(self.shared.validation.clone());
        validation.set_audience(&[config.resource.as_str()]);
        let data = decode::<VerifiedClaims>(token, &key.key, &validation).map_err(|e| {
            invalid(match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::ImmatureSignature => "token not yet valid",
                ErrorKind::InvalidAudience => "token is for another resource",
                ErrorKind::InvalidIssuer => "token from another issuer",
                ErrorKind::InvalidSignature => "signature verification failed",
                ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                _ => "invalid token",
            })
        })?;
        let claims = data.claims;
        Ok(Principal {
            subject: claims.sub,
            client_id: claims.client_id,
            scopes: claims
                .scope
                .unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            token_id: claims.jti,
            expires_at: claims.exp,
        })
    }

    /// Scopes named in a `401` challenge: the required ones, else those supported;
    /// never `offline_access`.
    fn challenge_scopes(&self) -> Vec<String> {
        let c = &self.shared.config;
        let source = if c.required_scopes.is_empty() {
            &c.scopes_supported
        } else {
            &c.required_scopes
        };
        source
            .iter()
            .filter(|s| *s != "offline_access")
            .cloned()
            .collect()
    }

    /// The `WWW-Authenticate` value for `err`.
    pub fn www_authenticate(&self, err: &BearerError) -> String {
        let mut params = vec![format!(
            "resource_metadata=\"{}\"",
            quote(&self.shared.config.resource.metadata_url())
        )];
        let scopes = match err {
            BearerError::InsufficientScope(needed) => needed
                .iter()
                .filter(|s| *s != "offline_access")
                .cloned()
                .collect(),
            _ => self.challenge_scopes(),
        };
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
        let status = match err {
            BearerError::Missing | BearerError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            BearerError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            BearerError::InsufficientScope(_) => StatusCode::FORBIDDEN,
        };
        let mut response = status.into_response();
        if let Ok(value) = HeaderValue::from_str(&self.www_authenticate(err)) {
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
