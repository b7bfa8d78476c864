//! Dynamic client registration (RFC 7591), kept for clients that predate client ID
//! metadata documents.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Inner;
use super::clients::{ClientMetadata, MetadataError, validate_metadata};
use super::error::{ErrorCode, OAuthError};
use crate::secret::{ClientSecret, random_token};
use crate::store::{ClientAuthMethod, ClientRecord};

#[derive(Debug, Serialize)]
struct RegistrationResponse {
    client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    client_id_issued_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_expires_at: Option<i64>,
    redirect_uris: Vec<String>,
    token_endpoint_auth_method: &'static str,
    grant_types: Vec<String>,
    response_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// `POST {issuer}/register`.
pub(super) async fn register(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match register_inner(&inner, &headers, &body).await {
        Ok(response) => {
            let mut response = (StatusCode::CREATED, Json(response)).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(err) => err.into_response(),
    }
}

async fn register_inner(
    inner: &Inner,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<RegistrationResponse, OAuthError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "the body must be application/json",
        ));
    }
    let meta: ClientMetadata = serde_json::from_slice(body).map_err(|_| {
        OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "the body is not valid client metadata",
        )
    })?;
    if meta.client_id.is_some() || meta.client_secret.is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "client_id and client_secret are assigned by the server",
        ));
    }
    let valid =
        validate_metadata(&meta, ClientAuthMethod::ClientSecretBasic).map_err(|e| match e {
            MetadataError::RedirectUri(m) => OAuthError::new(ErrorCode::InvalidRedirectUri, m),
            MetadataError::Metadata(m) => OAuthError::new(ErrorCode::InvalidClientMetadata, m),
        })?;
    let client_id = random_token()?;
    let secret = match valid.auth_method {
        ClientAuthMethod::None => None,
        _ => Some(ClientSecret::generate()?),
    };
    let now = inner.now();
    inner
        .store
        .insert_client(ClientRecord {
            client_id: client_id.clone(),
            secret_hash: secret.as_ref().map(ClientSecret::hash),
            auth_method: valid.auth_method,
            redirect_uris: valid.redirect_uris.clone(),
            grant_types: valid.grant_types.clone(),
            client_name: valid.client_name.clone(),
            scope: valid.scope.clone(),
            registered_at: now,
            last_used_at: None,
        })
        .await?;
    Ok(RegistrationResponse {
        client_id,
        client_secret_expires_at: secret.as_ref().map(|_| 0),
        client_secret: secret.map(|s| s.expose().to_owned()),
        client_id_issued_at: now,
        redirect_uris: valid.redirect_uris,
        token_endpoint_auth_method: valid.auth_method.as_str(),
        grant_types: valid.grant_types,
        response_types: valid.response_types,
        client_name: valid.client_name,
        scope: valid.scope,
    })
}
