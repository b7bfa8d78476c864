//! The authorization endpoint (RFC 6749 §4.1, OAuth 2.1) and the consent decision.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use super::clients::{is_scope_token, redirect_uri_matches};
use super::consent::ConsentPrompt;
use super::error::{ErrorCode, OAuthError};
use super::{Form, Inner};
use crate::pkce;
use crate::resource::ResourceUri;
use crate::secret::{AuthorizationCode, SecretHash, random_token};
use crate::store::{CodeRecord, PendingAuthorization};

/// Name of the cookie binding a pending request to the browser that made it.
pub(crate) const BROWSER_COOKIE: &str = "bmm_oauth_browser";

/// An error answered without redirecting: the client or redirect URI could not be trusted.
fn direct_error(code: ErrorCode, description: impl Into<String>) -> Response {
    let mut response = OAuthError::new(code, description).into_response();
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

/// Where and with what to answer once the redirect URI is trusted.
struct Callback<'a> {
    inner: &'a Inner,
    redirect_uri: String,
    state: Option<String>,
    status: StatusCode,
}

impl Callback<'_> {
    fn redirect(&self, params: &[(&str, &str)]) -> Response {
        let Ok(mut url) = Url::parse(&self.redirect_uri) else {
            // Registered redirect URIs were validated as absolute URIs.
            return direct_error(ErrorCode::ServerError, "invalid redirect URI");
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            if let Some(state) = &self.state {
                q.append_pair("state", state);
            }
            q.append_pair("iss", &self.inner.issuer);
        }
        let Ok(location) = HeaderValue::from_str(url.as_str()) else {
            return direct_error(ErrorCode::ServerError, "invalid redirect URI");
        };
        let mut response = self.status.into_response();
        response.headers_mut().insert(header::LOCATION, location);
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    fn error(&self, code: ErrorCode, description: &str) -> Response {
        self.redirect(&[("error", code.as_str()), ("error_description", description)])
    }
}

/// `GET {issuer}/authorize`.
pub(super) async fn authorize(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query_string = query.unwrap_or_default();
    let form = match Form::parse(query_string.as_bytes()) {
        Ok(form) => form,
        Err(err) => return direct_error(err.code, err.description),
    };

    // Until the client and its redirect URI are known, never redirect.
    let Some(client_id) = form.get("client_id") else {
        return direct_error(
            ErrorCode::InvalidRequest,
            "parameter `client_id` is required",
        );
    };
    let client = match inner.find_client(client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => return direct_error(ErrorCode::InvalidClient, "unknown client"),
        Err(err) => return OAuthError::from(err).into_response(),
    };
    let redirect_uri = match form.get("redirect_uri") {
        Some(uri) => {
            if !redirect_uri_matches(&client.redirect_uris, uri) {
                return direct_error(
                    ErrorCode::InvalidRequest,
                    "redirect_uri is not registered for this client",
                );
            }
            uri.to_owned()
        }
        None => match client.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => {
                return direct_error(
                    ErrorCode::InvalidRequest,
                    "parameter `redirect_uri` is required",
                );
            }
        },
    };
    let callback = Callback {
        inner: &inner,
        redirect_uri: redirect_uri.clone(),
        state: form.get("state").map(str::to_owned),
        status: StatusCode::FOUND,
    };

    match form.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return callback.error(
                ErrorCode::UnsupportedResponseType,
                "only the `code` response type is supported",
            );
        }
        None => {
            return callback.error(
                ErrorCode::InvalidRequest,
                "parameter `response_type` is required",
            );
        }
    }
    if !client.allows_grant("authorization_code") {
        return callback.error(
            ErrorCode::UnauthorizedClient,
            "the client is not registered for the authorization_code grant",
        );
    }
    let Some(challenge) = form.get("code_challenge") else {
        return callback.error(
            ErrorCode::InvalidRequest,
            "PKCE is required: send code_challenge (S256)",
        );
    };
    if form.get("code_challenge_method") != Some(pkce::S256) {
        return callback.error(
            ErrorCode::InvalidRequest,
            "code_challenge_method must be S256",
        );
    }
    if !pkce::is_valid_s256_challenge(challenge) {
        return callback.error(ErrorCode::InvalidRequest, "code_challenge is malformed");
    }
    let Some(resource) = form.get("resource") else {
        return callback.error(
            ErrorCode::InvalidRequest,
            "parameter `resource` is required",
        );
    };
    let resource = match ResourceUri::parse(resource) {
        Ok(r) => r,
        Err(_) => return callback.error(ErrorCode::InvalidTarget, "resource is not a valid URI"),
    };
    let record = match inner.store.resource(&resource).await {
        Ok(Some(record)) => record,
        Ok(None) => return callback.error(ErrorCode::InvalidTarget, "unknown resource"),
        Err(err) => return OAuthError::from(err).into_response(),
    };
    let scopes = match form.get("scope") {
        None => record.scopes_supported.clone(),
        Some(scope) => {
            let requested = super::scope_list(scope);
            let known = |s: &String| {
                is_scope_token(s) && (s == "offline_access" || record.scopes_supported.contains(s))
            };
            if !requested.iter().all(known) {
                return callback.error(ErrorCode::InvalidScope, "a requested scope is unknown");
            }
            requested
        }
    };

    let Some(subject) = inner.consent.current_user(&headers).await else {
        let return_to = format!("{}{}?{}", inner.origin, inner.paths.authorize, query_string);
        return inner.consent.sign_in(&return_to).await;
    };

    let mut prompt = ConsentPrompt {
        subject: subject.clone(),
        client_id: client.client_id.clone(),
        client_name: client.client_name.clone(),
        redirect_uri: redirect_uri.clone(),
        resource: resource.as_str().to_owned(),
        scopes: scopes.clone(),
        form_action: format!("{}{}", inner.origin, inner.paths.decision),
        request_id: String::new(),
        csrf_token: String::new(),
    };
    let redirect_uri_sent = form.get("redirect_uri").is_some();
    if inner.consent.already_granted(&prompt).await {
        let grant = Grant {
            subject,
            client_id: client.client_id,
            redirect_uri,
            redirect_uri_sent,
            resource,
            scopes,
            code_challenge: challenge.to_owned(),
        };
        return issue_code(&inner, &callback, grant).await;
    }

    let (cookie_value, new_cookie) = match browser_cookie(&headers) {
        Some(value) => (value, false),
        None => match random_token() {
            Ok(value) => (value, true),
            Err(err) => return OAuthError::from(err).into_response(),
        },
    };
    let (request_id, csrf) = match (random_token(), random_token()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(err), _) | (_, Err(err)) => return OAuthError::from(err).into_response(),
    };
    let pending = PendingAuthorization {
        id: request_id.clone(),
        browser_binding: SecretHash::of(&cookie_value),
        csrf: SecretHash::of(&csrf),
        subject,
        client_id: client.client_id.clone(),
        redirect_uri,
        redirect_uri_sent,
        state: callback.state.clone(),
        code_challenge: challenge.to_owned(),
        resource,
        scopes,
        expires_at: inner.now().saturating_add(inner.config.pending_ttl_secs),
    };
    if let Err(err) = inner.store.insert_pending(pending).await {
        return OAuthError::from(err).into_response();
    }
    prompt.request_id = request_id;
    prompt.csrf_token = csrf;
    let mut response = inner.consent.consent_page(&prompt);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The consent page must not be framed (clickjacking).
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    if new_cookie {
        let cookie = format!(
            "{BROWSER_COOKIE}={cookie_value}; Path={}; HttpOnly; SameSite=Lax; Max-Age={}{}",
            if inner.paths.authorize.is_empty() {
                "/"
            } else {
                &inner.paths.authorize
            },
            inner.config.pending_ttl_secs,
            if inner.secure_cookies { "; Secure" } else { "" },
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The browser-binding cookie sent with a request, if well formed.
fn browser_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| {
            *name == BROWSER_COOKIE
                && value.len() == 43
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(|(_, value)| value.to_owned())
}

/// `POST {issuer}/authorize/decision`: the user's answer on the consent page.
pub(super) async fn decision(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match Form::from_body(&headers, &body) {
        Ok(form) => form,
        Err(err) => return direct_error(err.code, err.description),
    };
    let (Some(request_id), Some(csrf), Some(decision)) = (
        form.get("request_id"),
        form.get("csrf_token"),
        form.get("decision"),
    ) else {
        return direct_error(
            ErrorCode::InvalidRequest,
            "request_id, csrf_token and decision are required",
        );
    };
    // Taken, not read: a decision is accepted once, and a forged attempt burns the request.
    let pending = match inner.store.take_pending(request_id).await {
        Ok(Some(p)) if p.expires_at > inner.now() => p,
        Ok(_) => {
            return direct_error(
                ErrorCode::InvalidRequest,
                "unknown or expired authorization request",
            );
        }
        Err(err) => return OAuthError::from(err).into_response(),
    };
    let bound = browser_cookie(&headers).is_some_and(|c| pending.browser_binding.matches(&c));
    if !bound {
        return direct_error(
            ErrorCode::InvalidRequest,
            "the authorization request belongs to another browser session",
        );
    }
    if !pending.csrf.matches(csrf) {
        return direct_error(ErrorCode::InvalidRequest, "invalid csrf_token");
    }
    if inner.consent.current_user(&headers).await.as_deref() != Some(pending.subject.as_str()) {
        return direct_error(
            ErrorCode::InvalidRequest,
            "the signed-in user changed during the authorization request",
        );
    }
    let callback = Callback {
        inner: &inner,
        redirect_uri: pending.redirect_uri.clone(),
        state: pending.state.clone(),
        status: StatusCode::SEE_OTHER,
    };
    match decision {
        "approve" => {}
        "deny" => return callback.error(ErrorCode::AccessDenied, "the user denied the request"),
        _ => {
            return callback.error(
                ErrorCode::InvalidRequest,
                "decision must be approve or deny",
            );
        }
    }
    let client_name = match inner.find_client(&pending.client_id).await {
        Ok(Some(c)) => c.client_name,
        Ok(None) => {
            return callback.error(ErrorCode::UnauthorizedClient, "the client no longer exists");
        }
        Err(err) => return OAuthError::from(err).into_response(),
    };
    let prompt = ConsentPrompt {
        subject: pending.subject.clone(),
        client_id: pending.client_id.clone(),
        client_name,
        redirect_uri: pending.redirect_uri.clone(),
        resource: pending.resource.as_str().to_owned(),
        scopes: pending.scopes.clone(),
        form_action: String::new(),
        request_id: String::new(),
        csrf_token: String::new(),
    };
    inner.consent.record_grant(&prompt).await;
    let grant = Grant {
        subject: pending.subject,
        client_id: pending.client_id,
        redirect_uri: pending.redirect_uri,
        redirect_uri_sent: pending.redirect_uri_sent,
        resource: pending.resource,
        scopes: pending.scopes,
        code_challenge: pending.code_challenge,
    };
    issue_code(&inner, &callback, grant).await
}

struct Grant {
    subject: String,
    client_id: String,
    redirect_uri: String,
    redirect_uri_sent: bool,
    resource: ResourceUri,
    scopes: Vec<String>,
    code_challenge: String,
}

async fn issue_code(inner: &Inner, callback: &Callback<'_>, grant: Grant) -> Response {
    let code = match AuthorizationCode::generate() {
        Ok(code) => code,
        Err(err) => return OAuthError::from(err).into_response(),
    };
    let record = CodeRecord {
        hash: code.hash(),
        client_id: grant.client_id,
        redirect_uri: grant.redirect_uri,
        redirect_uri_sent: grant.redirect_uri_sent,
        subject: grant.subject,
        resource: grant.resource,
        scopes: grant.scopes,
        code_challenge: grant.code_challenge,
        expires_at: inner.now().saturating_add(inner.config.code_ttl_secs),
        used: false,
        family: None,
    };
    if let Err(err) = inner.store.insert_code(record).await {
        return OAuthError::from(err).into_response();
    }
    callback.redirect(&[("code", code.expose())])
}
