//! The token endpoint (authorization code and refresh token grants) and revocation (RFC 7009).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::error::{ErrorCode, OAuthError};
use super::{Form, Inner};
use crate::pkce;
use crate::resource::ResourceUri;
use crate::secret::{AuthorizationCode, RefreshToken, random_token};
use crate::store::{ClientRecord, CodeLookup, RefreshRecord};
use crate::token::{AccessTokenClaims, sign_access_token};

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `POST {issuer}/token`.
pub(super) async fn token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let form = Form::from_body(&headers, &body)?;
        let client = inner.authenticate_client(&headers, &form).await?;
        match form.get("grant_type") {
            Some("authorization_code") => authorization_code(&inner, &client, &form).await,
            Some("refresh_token") => refresh_token(&inner, &client, &form).await,
            Some(_) => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "supported grant types are authorization_code and refresh_token",
            )),
            None => Err(OAuthError::invalid_request(
                "parameter `grant_type` is required",
            )),
        }
    }
    .await;
    match result {
        Ok(response) => no_store(Json(response).into_response()),
        Err(err) => err.into_response(),
    }
}

/// The `resource` parameter of a token request, if any, must name the grant's resource.
fn check_resource(form: &Form, granted: &ResourceUri) -> Result<(), OAuthError> {
    let Some(resource) = form.get("resource") else {
        return Ok(());
    };
    match ResourceUri::parse(resource) {
        Ok(r) if &r == granted => Ok(()),
        _ => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource differs from the one authorized",
        )),
    }
}

async fn authorization_code(
    inner: &Inner,
    client: &ClientRecord,
    form: &Form,
) -> Result<TokenResponse, OAuthError> {
    let code = AuthorizationCode::new(form.require("code")?);
    let verifier = form.require("code_verifier")?;
    if !client.allows_grant("authorization_code") {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the client is not registered for the authorization_code grant",
        ));
    }
    let record = match inner.store.consume_code(&code.hash()).await? {
        CodeLookup::Missing => return Err(OAuthError::invalid_grant("unknown authorization code")),
        CodeLookup::Replayed(record) => {
            // RFC 6749 §4.1.2: a second use revokes what the first one issued.
            if let Some(family) = &record.family {
                inner.store.revoke_family(family).await?;
            }
            tracing::warn!(client_id = %record.client_id, "authorization code replayed");
            return Err(OAuthError::invalid_grant("authorization code already used"));
        }
        CodeLookup::Fresh(record) => record,
    };
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "authorization code was issued to another client",
        ));
    }
    if record.expires_at <= inner.now() {
        return Err(OAuthError::invalid_grant("authorization code expired"));
    }
    match form.get("redirect_uri") {
        Some(uri) if uri == record.redirect_uri => {}
        None if !record.redirect_uri_sent => {}
        _ => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri differs from the authorization request",
            ));
        }
    }
    if !pkce::verify_s256(verifier, &record.code_challenge) {
        return Err(OAuthError::invalid_grant("PKCE verification failed"));
    }
    check_resource(form, &record.resource)?;

    let refresh = if client.allows_grant("refresh_token") {
        let token = RefreshToken::generate()?;
        let family = random_token()?;
        let now = inner.now();
        inner
            .store
            .insert_refresh(RefreshRecord {
                hash: token.hash(),
                family: family.clone(),
                client_id: client.client_id.clone(),
                subject: record.subject.clone(),
                resource: record.resource.clone(),
                scopes: record.scopes.clone(),
                issued_at: now,
                expires_at: now.saturating_add(inner.config.refresh_token_ttl_secs),
                rotated_at: None,
                successor: None,
                revoked: false,
            })
            .await?;
        inner.store.set_code_family(&record.hash, &family).await?;
        Some(token)
    } else {
        None
    };
    inner
        .store
        .touch_client(&client.client_id, inner.now())
        .await?;
    respond(
        inner,
        client,
        &record.subject,
        &record.resource,
        &record.scopes,
        refresh,
    )
}

async fn refresh_token(
    inner: &Inner,
    client: &ClientRecord,
    form: &Form,
) -> Result<TokenResponse, OAuthError> {
    let presented = RefreshToken::new(form.require("refresh_token")?);
    if !client.allows_grant("refresh_token") {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the client is not registered for the refresh_token grant",
        ));
    }
    let hash = presented.hash();
    let Some(record) = inner.store.refresh(&hash).await? else {
        return Err(OAuthError::invalid_grant("unknown refresh token"));
    };
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "refresh token was issued to another client",
        ));
    }
    if record.revoked {
        return Err(OAuthError::invalid_grant("refresh token revoked"));
    }
    let now = inner.now();
    if record.expires_at <= now {
        return Err(OAuthError::invalid_grant("refresh token expired"));
    }
    check_resource(form, &record.resource)?;
    let scopes = match form.get("scope") {
        None => record.scopes.clone(),
        Some(scope) => {
            let requested = super::scope_list(scope);
            if !requested.iter().all(|s| record.scopes.contains(s)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a refresh cannot widen the granted scope",
                ));
            }
            requested
        }
    };

    let successor = successor_of(inner, &presented)?;
    let mut record = record;
    if record.rotated_at.is_none() {
        let next = RefreshRecord {
            hash: successor.hash(),
            family: record.family.clone(),
            client_id: record.client_id.clone(),
            subject: record.subject.clone(),
            resource: record.resource.clone(),
            scopes: record.scopes.clone(),
            issued_at: now,
            expires_at: now.saturating_add(inner.config.refresh_token_ttl_secs),
            rotated_at: None,
            successor: None,
            revoked: false,
        };
        if inner.store.rotate_refresh(&hash, now, next).await? {
            inner.store.touch_client(&client.client_id, now).await?;
            return respond(
                inner,
                client,
                &record.subject,
                &record.resource,
                &scopes,
                Some(successor),
            );
        }
        // Another request rotated it first: answer as that one did, if in time.
        match inner.store.refresh(&hash).await? {
            Some(fresh) => record = fresh,
            None => return Err(OAuthError::invalid_grant("unknown refresh token")),
        }
    }

    let rotated_at = record.rotated_at.unwrap_or(now);
    let within_grace = now.saturating_sub(rotated_at) <= inner.config.refresh_grace_secs;
    if !record.revoked && within_grace {
        match record.successor {
            Some(h) if h == successor.hash() => {
                let live = inner
                    .store
                    .refresh(&h)
                    .await?
                    .is_some_and(|s| s.rotated_at.is_none() && !s.revoked);
                if live {
                    return respond(
                        inner,
                        client,
                        &record.subject,
                        &record.resource,
                        &scopes,
                        Some(successor),
                    );
                }
            }
            // Rotated by an instance with another rotation secret: refuse, but
            // this is no evidence of theft.
            _ => return Err(OAuthError::invalid_grant("refresh token already rotated")),
        }
    }
    inner.store.revoke_family(&record.family).await?;
    tracing::warn!(client_id = %record.client_id, "refresh token reuse; family revoked");
    Err(OAuthError::invalid_grant(
        "refresh token reuse detected; the grant is revoked",
    ))
}

/// The rotated successor of a refresh token: `HMAC(rotation_key, token)`. Only the
/// holder of the predecessor (and the server) can compute it.
fn successor_of(inner: &Inner, token: &RefreshToken) -> Result<RefreshToken, OAuthError> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&inner.rotation_key)
        .map_err(|_| OAuthError::server_error())?;
    mac.update(b"bmm-oauth refresh rotation\0");
    mac.update(token.expose().as_bytes());
    Ok(RefreshToken::new(
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()),
    ))
}

fn respond(
    inner: &Inner,
    client: &ClientRecord,
    subject: &str,
    resource: &ResourceUri,
    scopes: &[String],
    refresh: Option<RefreshToken>,
) -> Result<TokenResponse, OAuthError> {
    let now = inner.now();
    let scope = scopes.join(" ");
    let claims = AccessTokenClaims {
        iss: inner.issuer.clone(),
        sub: subject.to_owned(),
        aud: resource.as_str().to_owned(),
        client_id: client.client_id.clone(),
        scope: scope.clone(),
        exp: now.saturating_add(inner.config.access_token_ttl_secs),
        iat: now,
        nbf: now,
        jti: random_token()?,
    };
    let access_token = sign_access_token(&inner.keys.current(), &claims)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: inner.config.access_token_ttl_secs,
        refresh_token: refresh.map(|t| t.expose().to_owned()),
        scope,
    })
}

/// `POST {issuer}/revoke` (RFC 7009).
///
/// A refresh token revokes its whole family. Access tokens are self-contained
/// JWTs and stay valid until they expire (minutes); revoking one is answered
/// with success, as is revoking an unknown token.
pub(super) async fn revoke(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let form = Form::from_body(&headers, &body)?;
        let client = inner.authenticate_client(&headers, &form).await?;
        let token = RefreshToken::new(form.require("token")?);
        if let Some(record) = inner.store.refresh(&token.hash()).await? {
            if record.client_id != client.client_id {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    "the token was not issued to this client",
                ));
            }
            inner.store.revoke_family(&record.family).await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(err) => err.into_response(),
    }
}
