//! The user's sign-in and consent, supplied by the embedding application.

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// What the user is asked to approve.
#[derive(Debug, Clone)]
pub struct ConsentPrompt {
    /// The signed-in end user.
    pub subject: String,
    /// The client asking.
    pub client_id: String,
    /// Its display name, if it gave one (untrusted: escape it).
    pub client_name: Option<String>,
    /// Where the user will be sent back to.
    pub redirect_uri: String,
    /// The resource the token will be for.
    pub resource: String,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// Where the form posts its decision.
    pub form_action: String,
    /// Hidden form field `request_id`.
    pub request_id: String,
    /// Hidden form field `csrf_token`.
    pub csrf_token: String,
}

/// Sign-in and consent for the authorization endpoint.
///
/// The authorization server calls [`Consent::current_user`] with the browser's
/// headers; when nobody is signed in it answers with [`Consent::sign_in`]. Otherwise
/// it shows [`Consent::consent_page`], whose form must POST `request_id`,
/// `csrf_token` and `decision` (`approve` or `deny`) to `form_action`. The
/// decision is accepted only from the browser that made the request (a cookie
/// set with the page) and the same signed-in user.
#[async_trait]
pub trait Consent: Send + Sync + 'static {
    /// The end user signed in on this browser, if any (from the app's own session cookie).
    async fn current_user(&self, headers: &HeaderMap) -> Option<String>;

    /// The answer when nobody is signed in; `return_to` is the authorization URL
    /// to come back to after signing in.
    async fn sign_in(&self, return_to: &str) -> Response {
        let _ = return_to;
        (StatusCode::UNAUTHORIZED, "sign in to continue").into_response()
    }

    /// Whether `prompt.subject` already approved this client, resource and
    /// scopes; if so no page is shown.
    async fn already_granted(&self, prompt: &ConsentPrompt) -> bool {
        let _ = prompt;
        false
    }

    /// Remember an approval.
    async fn record_grant(&self, prompt: &ConsentPrompt) {
        let _ = prompt;
    }

    /// The consent page. The default is a plain HTML form.
    fn consent_page(&self, prompt: &ConsentPrompt) -> Response {
        default_consent_page(prompt)
    }
}

/// The built-in implementation for standalone use and tests: one fixed user
/// who is always signed in. With `auto_approve` every request is approved
/// without a page, which is what a headless test or a single-user local mode wants.
#[derive(Debug, Clone)]
pub struct StaticUser {
    subject: String,
    auto_approve: bool,
}

impl StaticUser {
    /// A user who sees the consent page.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            auto_approve: false,
        }
    }

    /// A user who approves everything without a page.
    pub fn auto_approving(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            auto_approve: true,
        }
    }
}

#[async_trait]
impl Consent for StaticUser {
    async fn current_user(&self, _headers: &HeaderMap) -> Option<String> {
        Some(self.subject.clone())
    }

    async fn already_granted(&self, _prompt: &ConsentPrompt) -> bool {
        self.auto_approve
    }
}

/// Escape text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// The built-in consent page.
pub fn default_consent_page(p: &ConsentPrompt) -> Response {
    let name = p.client_name.as_deref().unwrap_or(&p.client_id);
    let scopes = if p.scopes.is_empty() {
        "<li>(no scopes)</li>".to_owned()
    } else {
        p.scopes
            .iter()
            .map(|s| format!("<li>{}</li>", escape_html(s)))
            .collect()
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Authorize</title></head><body>\
         <h1>Authorize {name}</h1>\
         <p>Signed in as {subject}. <strong>{name}</strong> ({client_id}) asks to access \
         <code>{resource}</code> and will be sent back to <code>{redirect}</code>.</p>\
         <ul>{scopes}</ul>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"request_id\" value=\"{request_id}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <button name=\"decision\" value=\"approve\">Approve</button> \
         <button name=\"decision\" value=\"deny\">Deny</button>\
         </form></body></html>",
        name = escape_html(name),
        subject = escape_html(&p.subject),
        client_id = escape_html(&p.client_id),
        resource = escape_html(&p.resource),
        redirect = escape_html(&p.redirect_uri),
        action = escape_html(&p.form_action),
        request_id = escape_html(&p.request_id),
        csrf = escape_html(&p.csrf_token),
    );
    Html(body).into_response()
}
