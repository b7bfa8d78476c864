//! The tower layer that demands a valid bearer token before the inner service runs.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{Request, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::{BearerError, ResourceServer};

/// Verifies `Authorization: Bearer` tokens, answers failures with the proper
/// challenge, and passes a [`super::Principal`] to the inner service in the
/// request extensions. The `Authorization` header is removed before the inner
/// service runs, so the token cannot be passed through to an upstream API.
#[derive(Debug, Clone)]
pub struct BearerLayer {
    server: ResourceServer,
    required: Arc<[String]>,
}

impl BearerLayer {
    pub(crate) fn new(server: ResourceServer, required: Vec<String>) -> Self {
        Self {
            server,
            required: required.into(),
        }
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service produced by [`BearerLayer`].
#[derive(Debug, Clone)]
pub struct BearerService<S> {
    inner: S,
    layer: BearerLayer,
}

/// The bearer token of a request, refusing every other way of sending one.
fn extract_token(req: &Request<Body>) -> Result<String, BearerError> {
    if let Some(query) = req.uri().query()
        && url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "access_token")
    {
        return Err(BearerError::InvalidRequest(
            "access tokens are accepted in the Authorization header only".into(),
        ));
    }
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(BearerError::Missing);
    };
    if values.next().is_some() {
        return Err(BearerError::InvalidRequest(
            "several Authorization headers".into(),
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| BearerError::InvalidRequest("malformed Authorization header".into()))?;
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err(BearerError::Missing);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::Missing);
    }
    let token = token.trim();
    let token68 = !token.is_empty()
        && token.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
        });
    if !token68 {
        return Err(BearerError::InvalidRequest("malformed bearer token".into()));
    }
    Ok(token.to_owned())
}

impl<S> Service<Request<Body>> for BearerService<S>
where
    S: Service<Request<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        // The clone is not ready yet; keep the ready one for this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let server = &layer.server;
            let refuse = |err: BearerError| Ok(server.challenge_for(&err, &layer.required));
            let token = match extract_token(&req) {
                Ok(token) => token,
                Err(err) => return refuse(err),
            };
            let principal = match server.verify(&token).await {
                Ok(p) => p,
                Err(err) => return refuse(err),
            };
            let needed: Vec<&str> = layer.required.iter().map(String::as_str).collect();
            if let Err(err) = principal.require_scopes(&needed) {
                return refuse(err);
            }
            req.headers_mut().remove(header::AUTHORIZATION);
            req.extensions_mut().insert(principal);
            Ok(inner.call(req).await?.into_response())
        })
    }
}
