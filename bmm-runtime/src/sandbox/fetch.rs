//! The `fetch` host function: requests through the egress policy, secrets by reference.

use std::rc::Rc;

use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use rquickjs::function::Opt;
use rquickjs::{Ctx, Exception, Function, Object, Persistent, Promise, Value};
use url::Url;

use super::engine::{CallState, Current, Resolvers, current_state, truncate};
use crate::egress::{EgressRequest, EgressResponse};
use crate::secret::redact;
use crate::{Error, Result};

/// The outcome of one `fetch`, sent from the tokio task back to the worker.
pub(super) struct Completion {
    pub(super) id: u64,
    pub(super) result: Result<EgressResponse>,
}

/// Defines the global `fetch`.
pub(super) fn install<'js>(ctx: &Ctx<'js>, current: &Current) -> rquickjs::Result<()> {
    let current = Rc::clone(current);
    let fetch = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>,
              url: Value<'js>,
              init: Opt<Value<'js>>|
              -> rquickjs::Result<Promise<'js>> {
            let state = current_state(&ctx, &current)?;
            start(&ctx, &state, url, init.0)
        },
    )?;
    ctx.globals().set("fetch", fetch)
}

/// Validates the request, fills in secrets, checks the policy and starts the
/// request on the tokio runtime. Policy refusals end the whole call.
fn start<'js>(
    ctx: &Ctx<'js>,
    state: &CallState,
    url: Value<'js>,
    init: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let Some(handle) = state.handle.clone() else {
        return Err(Exception::throw_type(
            ctx,
            "fetch is not available while checking a script",
        ));
    };
    let count = state.fetches.get() + 1;
    state.fetches.set(count);
    if count > state.limits.max_fetches {
        return Err(fatal(
            ctx,
            state,
            Error::TooManyFetches {
                limit: state.limits.max_fetches,
            },
        ));
    }
    let request = match build_request(ctx, state, url, init) {
        Ok(request) => request,
        Err(Rejection::Type(message)) => return Err(Exception::throw_type(ctx, &message)),
        Err(Rejection::Fatal(error)) => return Err(fatal(ctx, state, error)),
        Err(Rejection::Js(error)) => return Err(error),
    };
    let Some(egress) = state.env.egress.clone() else {
        let host = request.url.host_str().unwrap_or_default().to_owned();
        let reason = "this tool may not make requests".to_owned();
        return Err(fatal(ctx, state, Error::EgressDenied { host, reason }));
    };
    if let Err(error) = egress.policy().check_url(&request.url) {
        return Err(fatal(ctx, state, error));
    }
    let (promise, resolve, reject) = ctx.promise()?;
    let id = state.add_pending((
        Persistent::save(ctx, resolve),
        Persistent::save(ctx, reject),
    ));
    let completions = state.completions.clone();
    let task = handle.spawn(async move {
        let result = egress.send(request).await;
        // The call may have ended already; then nobody listens and that is fine.
        let _ = completions.send(Completion { id, result });
    });
    state.add_task(task);
    Ok(promise)
}

fn fatal(ctx: &Ctx<'_>, state: &CallState, error: Error) -> rquickjs::Error {
    let message = error.to_string();
    // The error names a host or a secret's name, never a URL or a value.
    tracing::debug!(%error, "script call ended by the egress policy");
    state.fail(error);
    Exception::throw_internal(ctx, &message)
}

enum Rejection {
    /// The script passed something malformed: a catchable `TypeError`.
    Type(String),
    /// A policy refusal: ends the call.
    Fatal(Error),
    /// An exception already thrown by the engine.
    Js(rquickjs::Error),
}

impl From<rquickjs::Error> for Rejection {
    fn from(error: rquickjs::Error) -> Self {
        Self::Js(error)
    }
}

fn build_request<'js>(
    ctx: &Ctx<'js>,
    state: &CallState,
    url: Value<'js>,
    init: Option<Value<'js>>,
) -> Result<EgressRequest, Rejection> {
    let url = url
        .as_string()
        .ok_or_else(|| Rejection::Type("fetch: the URL must be a string".into()))?
        .to_string()?;
    let mut url =
        Url::parse(&url).map_err(|e| Rejection::Type(format!("fetch: invalid URL: {e}")))?;
    let init = match init {
        Some(init) if init.is_object() => init.into_object(),
        Some(init) if !init.is_undefined() && !init.is_null() => {
            return Err(Rejection::Type("fetch: options must be an object".into()));
        }
        _ => None,
    };
    let Some(init) = init else {
        return Ok(EgressRequest {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: None,
        });
    };

    let method = match init.get::<_, Option<String>>("method")? {
        Some(method) => Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| Rejection::Type("fetch: invalid method".into()))?,
        None => Method::GET,
    };

    let mut headers = HeaderMap::new();
    if let Some(object) = optional_object(&init, "headers")? {
        for entry in object.props::<String, Value<'js>>() {
            let (name, value) = entry?;
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Rejection::Type(format!("fetch: invalid header name {name:?}")))?;
            let (text, secret) =
                slot_value(state, &value).map_err(|e| e.context(&format!("header {name:?}")))?;
            let mut value = HeaderValue::from_str(&text).map_err(|_| match secret {
                true => Rejection::Type(format!(
                    "fetch: secret for header {name:?} is not a valid header value"
                )),
                false => Rejection::Type(format!("fetch: invalid value for header {name:?}")),
            })?;
            value.set_sensitive(secret);
            headers.append(header, value);
        }
    }

    if let Some(object) = optional_object(&init, "query")? {
        let mut pairs = Vec::new();
        for entry in object.props::<String, Value<'js>>() {
            let (name, value) = entry?;
            let (text, _) =
                slot_value(state, &value).map_err(|e| e.context(&format!("query {name:?}")))?;
            pairs.push((name, text));
        }
        url.query_pairs_mut().extend_pairs(pairs);
    }

    let body: Value<'js> = init.get("body")?;
    let body = if body.is_undefined() || body.is_null() {
        None
    } else if let Some(text) = body.as_string() {
        if !headers.contains_key(header::CONTENT_TYPE) {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
        Some(text.to_string()?.into_bytes())
    } else {
        let json = ctx
            .json_stringify(body)?
            .ok_or_else(|| Rejection::Type("fetch: body cannot be turned into JSON".into()))?;
        if !headers.contains_key(header::CONTENT_TYPE) {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        Some(json.to_string()?.into_bytes())
    };

    Ok(EgressRequest {
        method,
        url,
        headers,
        body,
    })
}

impl Rejection {
    fn context(self, slot: &str) -> Self {
        match self {
            Self::Type(message) => Self::Type(format!("fetch: {slot}: {message}")),
            other => other,
        }
    }
}

fn optional_object<'js>(init: &Object<'js>, key: &str) -> Result<Option<Object<'js>>, Rejection> {
    let value: Value<'js> = init.get(key)?;
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    match value.into_object() {
        Some(object) if !object.is_function() => Ok(Some(object)),
        _ => Err(Rejection::Type(format!("fetch: {key} must be an object"))),
    }
}

/// A header or query value: a string, number or boolean, or `{secret: "NAME"}`.
/// Returns the text and whether it is a secret.
fn slot_value(state: &CallState, value: &Value<'_>) -> Result<(String, bool), Rejection> {
    if let Some(text) = value.as_string() {
        return Ok((text.to_string()?, false));
    }
    if let Some(number) = value.as_number() {
        return Ok((number_text(number), false));
    }
    if let Some(flag) = value.as_bool() {
        return Ok((flag.to_string(), false));
    }
    if let Some(object) = value.as_object() {
        let name: Option<String> = object.get("secret")?;
        if let Some(name) = name {
            let Some(secret) = state.env.secrets.get(&name) else {
                return Err(Rejection::Fatal(Error::UnknownSecret { name }));
            };
            return Ok((secret.expose_secret().to_owned(), true));
        }
    }
    Err(Rejection::Type(
        "expected a string, number, boolean or {secret: \"NAME\"}".into(),
    ))
}

fn number_text(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{}", number as i64)
    } else {
        number.to_string()
    }
}

/// Settles a `fetch` promise with its outcome.
pub(super) fn deliver<'js>(
    ctx: &Ctx<'js>,
    state: &CallState,
    (resolve, reject): Resolvers,
    result: Result<EgressResponse>,
) -> Result<()> {
    let engine = |e: rquickjs::Error| super::engine::classify(ctx, state, e);
    let resolve = resolve.restore(ctx).map_err(engine)?;
    let reject = reject.restore(ctx).map_err(engine)?;
    match result {
        Ok(response) => {
            let object = response_object(ctx, state, response).map_err(engine)?;
            resolve.call::<_, ()>((object,)).map_err(engine)
        }
        Err(error @ (Error::EgressDenied { .. } | Error::UnknownSecret { .. })) => {
            state.fail(error);
            Err(state.stopped().unwrap_or(Error::Engine {
                message: "call aborted".into(),
            }))
        }
        Err(error) => {
            let message = truncate(format!("fetch failed: {error}"));
            let exception = Exception::from_message(ctx.clone(), &message).map_err(engine)?;
            reject.call::<_, ()>((exception,)).map_err(engine)
        }
    }
}

/// The object a `fetch` promise resolves to; secrets echoed by the upstream are redacted.
fn response_object<'js>(
    ctx: &Ctx<'js>,
    state: &CallState,
    response: EgressResponse,
) -> rquickjs::Result<Object<'js>> {
    let secrets = &state.env.secrets;
    let object = Object::new(ctx.clone())?;
    object.set("status", response.status.as_u16())?;
    object.set("ok", response.status.is_success())?;
    object.set(
        "statusText",
        response.status.canonical_reason().unwrap_or(""),
    )?;
    object.set("url", redact(response.url.as_str(), secrets))?;
    let headers = Object::new(ctx.clone())?;
    for name in response.headers.keys() {
        let joined = response
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        headers.set(name.as_str(), redact(&joined, secrets))?;
    }
    object.set("headers", headers)?;
    let body: Rc<str> = Rc::from(redact(&String::from_utf8_lossy(&response.body), secrets));
    let text_body = Rc::clone(&body);
    object.set(
        "text",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>| -> rquickjs::Result<Promise<'js>> {
                let (promise, resolve, _) = ctx.promise()?;
                resolve.call::<_, ()>((text_body.as_ref(),))?;
                Ok(promise)
            },
        )?,
    )?;
    object.set(
        "json",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>| -> rquickjs::Result<Promise<'js>> {
                let (promise, resolve, reject) = ctx.promise()?;
                match ctx.json_parse(body.as_bytes()) {
                    Ok(value) => resolve.call::<_, ()>((value,))?,
                    Err(rquickjs::Error::Exception) => reject.call::<_, ()>((ctx.catch(),))?,
                    Err(other) => return Err(other),
                }
                Ok(promise)
            },
        )?,
    )?;
    Ok(object)
}
