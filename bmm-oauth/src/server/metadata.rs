//! RFC 8414 authorization server metadata, its well-known paths, and the JWKS endpoint.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Inner;

/// The authorization server metadata document (RFC 8414 §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier.
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The JWKS with the token signing keys.
    pub jwks_uri: String,
    /// Dynamic client registration, when enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// Token revocation (RFC 7009).
    pub revocation_endpoint: String,
    /// Advertised scopes, if configured (never `offline_access`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub scopes_supported: Vec<String>,
    /// `["code"]`.
    pub response_types_supported: Vec<String>,
    /// `["query"]`.
    pub response_modes_supported: Vec<String>,
    /// `["authorization_code", "refresh_token"]`.
    pub grant_types_supported: Vec<String>,
    /// `none`, `client_secret_basic`, `client_secret_post`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Same as the token endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// `["S256"]` only.
    pub code_challenge_methods_supported: Vec<String>,
    /// `true`: `iss` is on every authorization response (RFC 9207).
    pub authorization_response_iss_parameter_supported: bool,
    /// `true`: https `client_id`s name client ID metadata documents.
    pub client_id_metadata_document_supported: bool,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub(super) fn build(inner: &Inner) -> AuthorizationServerMetadata {
    let url = |path: &str| format!("{}{}", inner.origin, path);
    let auth_methods = strings(&["none", "client_secret_basic", "client_secret_post"]);
    AuthorizationServerMetadata {
        issuer: inner.issuer.clone(),
        authorization_endpoint: url(&inner.paths.authorize),
        token_endpoint: url(&inner.paths.token),
        jwks_uri: url(&inner.paths.jwks),
        registration_endpoint: inner
            .config
            .dynamic_registration
            .then(|| url(&inner.paths.register)),
        revocation_endpoint: url(&inner.paths.revoke),
        // Like the resource side, never advertise `offline_access`: refresh
        // tokens follow from the client's grant types, not from a scope.
        scopes_supported: inner
            .config
            .scopes_supported
            .iter()
            .filter(|s| *s != "offline_access")
            .cloned()
            .collect(),
        response_types_supported: strings(&["code"]),
        response_modes_supported: strings(&["query"]),
        grant_types_supported: strings(&["authorization_code", "refresh_token"]),
        token_endpoint_auth_methods_supported: auth_methods.clone(),
        revocation_endpoint_auth_methods_supported: auth_methods,
        code_challenge_methods_supported: strings(&["S256"]),
        authorization_response_iss_parameter_supported: true,
        client_id_metadata_document_supported: true,
    }
}

/// Every path a client may derive the metadata URL as: RFC 8414's path
/// insertion, OpenID Connect discovery with insertion, and OpenID Connect
/// discovery appended to the issuer path.
pub(super) fn well_known_paths(base: &str) -> Vec<String> {
    let mut paths = vec![
        format!("/.well-known/oauth-authorization-server{base}"),
        format!("/.well-known/openid-configuration{base}"),
    ];
    if !base.is_empty() {
        paths.push(format!("{base}/.well-known/openid-configuration"));
    }
    paths
}

pub(super) async fn metadata(State(inner): State<Arc<Inner>>) -> Response {
    let mut response = Json(build(&inner)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

pub(super) async fn jwks(State(inner): State<Arc<Inner>>) -> Response {
    let mut response = Json(inner.keys.jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
