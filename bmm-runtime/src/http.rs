//! The executor of `http` tools: render the request from its templates, send
//! it through the egress client, shape the answer.
//!
//! Templates are handlebars in strict mode, restricted to the subset that
//! `bmm_core::template` accepts. Each slot encodes what is filled into it, so
//! an argument cannot break out of its slot:
//!
//! - **URL**: every value is percent-encoded as a path segment (`/` and `?`
//!   included), so `{{args.id}}` cannot add a path or a query.
//! - **query**: values are added as query pairs and encoded by the URL library.
//! - **headers**: values are text; a value with a line break is refused.
//! - **body**: a JSON value; a string that is exactly one `{{args.NAME}}` or
//!   `{{json args.NAME}}` takes the argument's JSON value (a number stays a
//!   number, an object an object), other strings are rendered as text into a
//!   JSON string, where `{{json …}}` writes the value's JSON text.
//!
//! A query parameter, header or body member whose template refers only to
//! optional arguments that were not given is left out. Secrets are filled in
//! from the server's values only here, on the way out; header values holding
//! one are marked sensitive, and any secret value an upstream echoes back is
//! replaced by `[redacted]` before the result reaches the model.

use std::collections::BTreeSet;

use bmm_core::template;
use bmm_core::{HttpImplementation, spec::ResponseShape};
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};
use url::Url;

use crate::egress::{EgressClient, EgressRequest};
use crate::secret::{Secrets, redact};
use crate::{Error, Result};

/// Characters left as they are in a path segment: RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Longest upstream body quoted in an error.
const ERROR_BODY_CHARS: usize = 300;

/// One compiled `http` tool.
#[derive(Debug)]
pub struct HttpTool {
    method: Method,
    url: Slot,
    headers: Vec<(HeaderName, Slot)>,
    query: Vec<(String, Slot)>,
    body: Option<Value>,
    body_args: Vec<(Vec<String>, BTreeSet<String>)>,
    response: ResponseShape,
    registries: Registries,
}

/// A template and the arguments it refers to.
#[derive(Debug)]
struct Slot {
    name: String,
    args: BTreeSet<String>,
    literal: bool,
}

#[derive(Debug)]
struct Registries {
    url: Handlebars<'static>,
    text: Handlebars<'static>,
}

impl HttpTool {
    /// Compiles the tool's templates. The spec is validated, so a failure here
    /// means a template the validator accepted cannot be compiled: a bug,
    /// reported as [`Error::InvalidConfig`].
    pub fn new(http: &HttpImplementation) -> Result<Self> {
        let mut registries = Registries {
            url: registry(true),
            text: registry(false),
        };
        let url = slot(&mut registries.url, "url", &http.url)?;
        let mut headers = Vec::with_capacity(http.headers.len());
        for (name, source) in &http.headers {
            let header =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| Error::InvalidConfig {
                    reason: format!("invalid header name {name:?}"),
                })?;
            headers.push((
                header,
                slot(&mut registries.text, &format!("header:{name}"), source)?,
            ));
        }
        let mut query = Vec::with_capacity(http.query.len());
        for (name, source) in &http.query {
            query.push((
                name.clone(),
                slot(&mut registries.text, &format!("query:{name}"), source)?,
            ));
        }
        let mut body_args = Vec::new();
        if let Some(body) = &http.body {
            compile_body(body, &mut Vec::new(), &mut registries.text, &mut body_args)?;
        }
        let method = Method::from_bytes(http.method.as_str().as_bytes()).map_err(|_| {
            Error::InvalidConfig {
                reason: "invalid method".into(),
            }
        })?;
        Ok(Self {
            method,
            url,
            headers,
            query,
            body: http.body.clone(),
            body_args,
            response: http.response.clone(),
            registries,
        })
    }

    /// Runs the tool with validated `args`: renders, sends, shapes.
    pub async fn call(
        &self,
        args: &Value,
        egress: &EgressClient,
        secrets: &Secrets,
    ) -> Result<Value> {
        let response = egress.send(self.request(args, secrets)?).await?;
        let text = redact(&String::from_utf8_lossy(&response.body), secrets);
        if !response.status.is_success() {
            let mut body: String = text.chars().take(ERROR_BODY_CHARS).collect();
            if text.chars().count() > ERROR_BODY_CHARS {
                body.push('…');
            }
            return Err(Error::UpstreamStatus {
                status: response.status.as_u16(),
                body,
            });
        }
        shape(&text, &self.response)
    }

    /// The request for validated `args`, rendered from the templates.
    fn request(&self, args: &Value, secrets: &Secrets) -> Result<EgressRequest> {
        let context = context(args, secrets);
        let given = |slot_args: &BTreeSet<String>| {
            slot_args.is_empty() || slot_args.iter().any(|a| args.get(a).is_some())
        };

        let rendered = self.render(&self.registries.url, &self.url, &context)?;
        let mut url = Url::parse(&rendered).map_err(|e| Error::Template {
            reason: format!("the URL is not valid after filling in the arguments: {e}"),
        })?;
        {
            let mut pairs = url.query_pairs_mut();
            for (name, slot) in &self.query {
                if given(&slot.args) {
                    pairs.append_pair(name, &self.render(&self.registries.text, slot, &context)?);
                }
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }

        let mut headers = HeaderMap::new();
        for (name, slot) in &self.headers {
            if !given(&slot.args) {
                continue;
            }
            let text = self.render(&self.registries.text, slot, &context)?;
            let mut value = HeaderValue::from_str(&text).map_err(|_| Error::Template {
                reason: format!(
                    "the value of header {name} contains characters a header cannot hold"
                ),
            })?;
            value.set_sensitive(!slot.literal);
            headers.append(name.clone(), value);
        }

        let body = match &self.body {
            Some(template) => {
                let value = self
                    .render_body(template, &mut Vec::new(), args, &context)?
                    .unwrap_or(Value::Null);
                if !headers.contains_key(CONTENT_TYPE) {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                Some(serde_json::to_vec(&value).map_err(|e| Error::Template {
                    reason: e.to_string(),
                })?)
            }
            None => None,
        };

        Ok(EgressRequest {
            method: self.method.clone(),
            url,
            headers,
            body,
        })
    }

    fn render(
        &self,
        registry: &Handlebars<'static>,
        slot: &Slot,
        context: &Value,
    ) -> Result<String> {
        registry
            .render(&slot.name, context)
            .map_err(|e| render_error(&e, &slot.name))
    }

    fn render_body(
        &self,
        template: &Value,
        at: &mut Vec<String>,
        args: &Value,
        context: &Value,
    ) -> Result<Option<Value>> {
        Ok(Some(match template {
            Value::String(source) => {
                if let Some(arg) = whole_argument(source) {
                    return Ok(args.get(arg).cloned());
                }
                let Some((_, refs)) = self.body_args.iter().find(|(path, _)| path == at) else {
                    return Ok(Some(template.clone()));
                };
                if !refs.is_empty() && !refs.iter().any(|a| args.get(a).is_some()) {
                    return Ok(None);
                }
                let name = body_name(at);
                Value::String(
                    self.registries
                        .text
                        .render(&name, context)
                        .map_err(|e| render_error(&e, &name))?,
                )
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    at.push(i.to_string());
                    out.push(
                        self.render_body(item, at, args, context)?
                            .unwrap_or(Value::Null),
                    );
                    at.pop();
                }
                Value::Array(out)
            }
            Value::Object(map) => {
                let mut out = Map::with_capacity(map.len());
                for (key, item) in map {
                    at.push(key.clone());
                    if let Some(value) = self.render_body(item, at, args, context)? {
                        out.insert(key.clone(), value);
                    }
                    at.pop();
                }
                Value::Object(out)
            }
            other => other.clone(),
        }))
    }
}

fn registry(url_slot: bool) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    if url_slot {
        hb.register_escape_fn(|s| utf8_percent_encode(s, SEGMENT).to_string());
    } else {
        hb.register_escape_fn(handlebars::no_escape);
    }
    hb.register_helper("url", Box::new(url_helper));
    hb.register_helper(
        "json",
        Box::new(
            move |h: &Helper<'_>,
                  _: &Handlebars<'_>,
                  _: &Context,
                  _: &mut RenderContext<'_, '_>,
                  out: &mut dyn Output|
                  -> HelperResult {
                let value = h.param(0).map(|p| p.value().clone()).unwrap_or(Value::Null);
                let text = value.to_string();
                if url_slot {
                    out.write(&utf8_percent_encode(&text, SEGMENT).to_string())?;
                } else {
                    out.write(&text)?;
                }
                Ok(())
            },
        ),
    );
    hb
}

fn url_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let text = match h.param(0).map(|p| p.value()) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    out.write(&utf8_percent_encode(&text, SEGMENT).to_string())?;
    Ok(())
}

fn slot(registry: &mut Handlebars<'static>, name: &str, source: &str) -> Result<Slot> {
    let refs = template::analyse(source).map_err(|problems| Error::InvalidConfig {
        reason: format!("template {name}: {problems:?}"),
    })?;
    registry
        .register_template_string(name, source)
        .map_err(|e| Error::InvalidConfig {
            reason: format!("template {name}: {e}"),
        })?;
    Ok(Slot {
        name: name.to_owned(),
        literal: refs.is_empty(),
        args: refs.args,
    })
}

fn body_name(at: &[String]) -> String {
    format!("body:/{}", at.join("/"))
}

fn compile_body(
    value: &Value,
    at: &mut Vec<String>,
    registry: &mut Handlebars<'static>,
    out: &mut Vec<(Vec<String>, BTreeSet<String>)>,
) -> Result<()> {
    match value {
        Value::String(source) if whole_argument(source).is_none() && source.contains("{{") => {
            let slot = slot(registry, &body_name(at), source)?;
            out.push((at.clone(), slot.args));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                at.push(i.to_string());
                compile_body(item, at, registry, out)?;
                at.pop();
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                at.push(key.clone());
                compile_body(item, at, registry, out)?;
                at.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// `NAME` when `source` is exactly `{{args.NAME}}` or `{{json args.NAME}}`
/// (spaces allowed inside the braces): a body value that takes the
/// argument's JSON value as it is.
fn whole_argument(source: &str) -> Option<&str> {
    let inner = source.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let inner = inner
        .strip_prefix("json")
        .filter(|rest| rest.starts_with(char::is_whitespace))
        .map_or(inner, str::trim_start);
    let name = inner.strip_prefix("args.")?;
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        .then_some(name)
        .filter(|n| !n.is_empty())
}

fn context(args: &Value, secrets: &Secrets) -> Value {
    let mut values = Map::new();
    for (name, value) in secrets.iter() {
        values.insert(
            name.to_owned(),
            Value::String(value.expose_secret().to_owned()),
        );
    }
    serde_json::json!({ "args": args, "secrets": values })
}

/// Explains a render failure without quoting values (a secret could be among them).
fn render_error(error: &RenderError, slot: &str) -> Error {
    let reason = match error.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => match path.strip_prefix("args.") {
            Some(arg) => format!("argument `{arg}` is needed by {slot} but was not given"),
            None => format!("{slot} refers to `{path}`, which has no value"),
        },
        _ => format!("{slot} could not be rendered"),
    };
    Error::Template { reason }
}

/// Applies the response shape: JSON is selected by pointer and trimmed to
/// fields; anything that is not JSON is returned as text.
fn shape(text: &str, shape: &ResponseShape) -> Result<Value> {
    let Ok(mut value) = serde_json::from_str::<Value>(text) else {
        return Ok(Value::String(text.to_owned()));
    };
    if let Some(pointer) = shape.pointer.as_deref().filter(|p| !p.is_empty()) {
        value = value
            .pointer(pointer)
            .cloned()
            .ok_or_else(|| Error::Response {
                reason: format!("the response has nothing at {pointer}"),
            })?;
    }
    if !shape.fields.is_empty() {
        let keep = |item: Value| match item {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter(|(k, _)| shape.fields.contains(k))
                    .collect(),
            ),
            other => other,
        };
        value = match value {
            Value::Array(items) => Value::Array(items.into_iter().map(keep).collect()),
            other => keep(other),
        };
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretValue;

    #[test]
    fn whole_argument_detection() {
        assert_eq!(whole_argument("{{args.n}}"), Some("n"));
        assert_eq!(whole_argument("{{ args.n }}"), Some("n"));
        assert_eq!(whole_argument("x{{args.n}}"), None);
        assert_eq!(whole_argument("{{args.a.b}}"), None);
        assert_eq!(whole_argument("{{secrets.K}}"), None);
        assert_eq!(whole_argument("{{json args.n}}"), Some("n"));
        assert_eq!(whole_argument("{{ json  args.n }}"), Some("n"));
        assert_eq!(whole_argument("{{jsonargs.n}}"), None);
        assert_eq!(whole_argument("{{url args.n}}"), None);
        assert_eq!(whole_argument("{{json secrets.K}}"), None);
    }

    fn tool(implementation: Value) -> HttpTool {
        let http: HttpImplementation = serde_json::from_value(implementation).unwrap();
        HttpTool::new(&http).unwrap()
    }

    fn secrets() -> Secrets {
        [("TOKEN", SecretValue::new("s3cr3t-value"))]
            .into_iter()
            .collect()
    }

    fn body(request: &EgressRequest) -> Value {
        serde_json::from_slice(request.body.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn body_values_keep_their_json_types() {
        let tool = tool(serde_json::json!({
            "method": "POST", "url": "https://api.example.com/items",
            "body": {
                "title": "{{json args.title}}", "count": "{{json args.count}}",
                "filter": "{{args.filter}}", "tags": ["{{json args.tags}}", "fixed"],
                "note": "count={{json args.count}}, title={{json args.title}}",
                "plain": "{{args.title}}!", "optional": "{{json args.absent}}",
                "literal": 7
            }
        }));
        let args = serde_json::json!({
            "title": "say \"hi\"", "count": 5, "filter": {"kind": "open"}, "tags": ["a", "b"]
        });
        let request = tool.request(&args, &Secrets::new()).unwrap();
        assert_eq!(
            body(&request),
            serde_json::json!({
                "title": "say \"hi\"", "count": 5, "filter": {"kind": "open"},
                "tags": [["a", "b"], "fixed"],
                "note": "count=5, title=\"say \\\"hi\\\"\"",
                "plain": "say \"hi\"!", "literal": 7
            })
        );
        assert_eq!(request.headers[CONTENT_TYPE], "application/json");
    }

    #[test]
    fn arguments_stay_in_their_slots() {
        let tool = tool(serde_json::json!({
            "method": "GET",
            "url": "https://api.example.com/items/{{args.id}}/{{url args.id}}/{{json args.n}}",
            "query": {"q": "{{args.q}}", "n": "{{args.n}}"},
            "headers": {"X-Note": "{{args.note}}", "Authorization": "Bearer {{secrets.TOKEN}}", "Accept": "application/json"}
        }));
        let args = serde_json::json!({"id": "a/b?c=d#e f", "q": "x&y=z", "n": 3, "note": "plain"});
        let request = tool.request(&args, &secrets()).unwrap();
        assert_eq!(
            request.url.as_str(),
            "https://api.example.com/items/a%2Fb%3Fc%3Dd%23e%20f/a%2Fb%3Fc%3Dd%23e%20f/3?n=3&q=x%26y%3Dz"
        );
        assert_eq!(request.headers["x-note"], "plain");
        assert_eq!(request.headers["authorization"], "Bearer s3cr3t-value");
        assert!(request.headers["authorization"].is_sensitive());
        assert!(!request.headers["accept"].is_sensitive());
        assert!(request.body.is_none());

        // A line break cannot start another header.
        let args = serde_json::json!({"id": "1", "note": "ok\r\nX-Evil: 1"});
        let error = tool.request(&args, &secrets()).unwrap_err();
        assert!(
            matches!(&error, Error::Template { reason } if reason.contains("header x-note")),
            "{error:?}"
        );
    }

    #[test]
    fn a_missing_value_is_a_template_error_that_names_it() {
        let tool = tool(serde_json::json!({
            "method": "GET", "url": "https://api.example.com/items/{{args.id}}"
        }));
        let error = tool
            .request(&serde_json::json!({}), &Secrets::new())
            .unwrap_err();
        assert!(
            matches!(&error, Error::Template { reason } if reason.contains("argument `id` is needed")),
            "{error:?}"
        );
        // Optional query and header values whose arguments are absent are left out.
        let tool = self::tool(serde_json::json!({
            "method": "GET", "url": "https://api.example.com/items",
            "query": {"q": "{{args.q}}"}, "headers": {"X-Q": "{{args.q}}"}
        }));
        let request = tool
            .request(&serde_json::json!({}), &Secrets::new())
            .unwrap();
        assert_eq!(request.url.as_str(), "https://api.example.com/items");
        assert!(request.headers.get("x-q").is_none());
    }

    #[test]
    fn shaping_selects_and_trims() {
        let shape_of = |pointer: Option<&str>, fields: &[&str]| ResponseShape {
            pointer: pointer.map(str::to_owned),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        };
        let text = r#"{"data":{"items":[{"id":1,"name":"a","x":0},{"id":2,"name":"b"}]}}"#;
        assert_eq!(
            shape(text, &shape_of(Some("/data/items"), &["name"])).unwrap(),
            serde_json::json!([{"name": "a"}, {"name": "b"}])
        );
        assert!(matches!(
            shape(text, &shape_of(Some("/nope"), &[])),
            Err(Error::Response { .. })
        ));
        assert_eq!(
            shape("plain text", &ResponseShape::default()).unwrap(),
            Value::from("plain text")
        );
    }
}
