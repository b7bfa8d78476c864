//! From a raw answer to a checked spec: parsing, bmm-core's validation and
//! static checks, then a dry run of every tool.
//!
//! The dry run serves the spec in-process with bmm's runtime and calls each
//! tool once with arguments synthesised from its input schema. Secrets get
//! placeholder values and the network is answered locally (every request
//! that passes the egress allowlist gets `200 {}`), so nothing leaves the
//! machine. What it catches, as problems a model can fix:
//!
//! - scripts that do not compile or have no default export;
//! - scripts that throw a `TypeError`, `ReferenceError`, `SyntaxError`,
//!   `RangeError` or `InternalError` before their first request, or hit a
//!   limit (time, memory, stack, output, fetch count);
//! - requests the egress policy refuses (a host missing from `egress`, an
//!   undeclared secret) and http templates that cannot be rendered.
//!
//! What it cannot judge offline becomes a warning instead: a script that
//! throws an error of its own making (usually deliberate input validation),
//! and a script that fails after the first locally answered request, since
//! the real upstream's answer would differ. An http tool whose response
//! shaping (`pointer`, `fields`) finds nothing in the local `{}` is fine.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bmm_core::{CheckOptions as CoreOptions, ValidatedSpec};
use bmm_runtime::{
    EgressClient, EgressPolicy, EgressRequest, EgressResponse, Sandbox, SandboxConfig, SecretValue,
    Secrets, ServeOptions, SpecServer,
};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};

/// How drafts are checked.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Accept plain `http` URLs (local development only; default false).
    pub allow_http: bool,
    /// Run every tool once before accepting the spec (default true).
    pub dry_run: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            allow_http: false,
            dry_run: true,
        }
    }
}

/// A draft that passed every check.
#[derive(Debug)]
pub struct Checked {
    /// The validated spec.
    pub spec: ValidatedSpec,
    /// What the checks could not settle, for a person to look at.
    pub warnings: Vec<String>,
}

/// Why a draft was refused: every problem, each located so a model can fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The problems, e.g. `tools[1].implementation.source: …`.
    pub problems: Vec<String>,
    /// Whether the draft was not even JSON (rather than an invalid spec).
    pub unparseable: bool,
}

/// Checks drafts; holds the sandbox and the offline network the dry run uses.
///
/// Dry runs on one checker run one at a time (they take a few
/// milliseconds); give concurrent builds a checker each to overlap them.
#[derive(Debug)]
pub struct Checker {
    options: CheckOptions,
    sandbox: Sandbox,
    /// The offline egress client every dry run derives its own from; building
    /// a client (TLS roots and all) costs more than the rest of a dry run.
    base: EgressClient,
    /// Requests answered during the current dry-run call.
    requests: Arc<AtomicUsize>,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Checker {
    /// A checker with its own small sandbox pool. Call it inside a tokio
    /// runtime (the sandbox's workers hand results back through it).
    pub fn new(options: CheckOptions) -> Result<Self, bmm_runtime::Error> {
        let sandbox = Sandbox::new(SandboxConfig {
            workers: 2,
            ..SandboxConfig::default()
        })?;
        let requests = Arc::new(AtomicUsize::new(0));
        let base = offline_egress(&options, Arc::clone(&requests))?;
        Ok(Self {
            options,
            sandbox,
            base,
            requests,
            one_at_a_time: tokio::sync::Mutex::new(()),
        })
    }

    /// The options in use.
    pub fn options(&self) -> &CheckOptions {
        &self.options
    }

    /// Parses, validates, statically checks and dry-runs `draft`.
    pub async fn check(&self, draft: &Value) -> Result<Checked, Rejection> {
        let parsed;
        let draft = match draft {
            Value::String(text) => {
                parsed = serde_json::from_str::<Value>(text).map_err(|e| Rejection {
                    problems: vec![format!("the answer is not valid JSON: {e}")],
                    unparseable: true,
                })?;
                &parsed
            }
            other => other,
        };
        if !draft.is_object() {
            return Err(Rejection {
                problems: vec!["the answer must be a JSON object (a ServerSpec)".into()],
                unparseable: true,
            });
        }
        let options = CoreOptions::default().allow_http(self.options.allow_http);
        let spec = bmm_core::check(draft, &options).map_err(|report| Rejection {
            problems: report.errors().map(ToString::to_string).collect(),
            unparseable: false,
        })?;
        let mut warnings: Vec<String> = spec
            .warnings()
            .warnings()
            .map(ToString::to_string)
            .collect();
        if self.options.dry_run {
            let outcome = self.dry_run(&spec).await;
            warnings.extend(outcome.warnings);
            if !outcome.problems.is_empty() {
                return Err(Rejection {
                    problems: outcome.problems,
                    unparseable: false,
                });
            }
        }
        Ok(Checked { spec, warnings })
    }

    /// Runs every tool of `spec` once, offline. See the module docs.
    pub async fn dry_run(&self, spec: &ValidatedSpec) -> DryRun {
        let mut outcome = DryRun::default();
        let _turn = self.one_at_a_time.lock().await;
        let requests = &self.requests;
        let server = match self.offline_server(spec) {
            Ok(server) => server,
            Err(error) => {
                outcome
                    .problems
                    .push(format!("the server cannot start: {error}"));
                return outcome;
            }
        };
        for (index, tool) in spec.spec().tools.iter().enumerate() {
            let name = tool.name.as_str();
            let at = format!("tools[{index}] ({name})");
            let args = example(
                &Value::Object(tool.input_schema.clone()),
                &tool.input_schema,
                0,
            );
            requests.store(0, Ordering::SeqCst);
            let (result, _logs) = server.execute(name, &args).await;
            let fetched = requests.load(Ordering::SeqCst) > 0;
            let Err(error) = result else { continue };
            match classify(&error, fetched) {
                Verdict::Problem => outcome
                    .problems
                    .push(format!("{at}: the dry run failed: {error}")),
                Verdict::Warning => outcome.warnings.push(format!(
                    "{at}: the dry run could not confirm the tool works offline: {error}"
                )),
                Verdict::Fine => {}
            }
        }
        outcome
    }

    fn offline_server(&self, spec: &ValidatedSpec) -> Result<SpecServer, bmm_runtime::Error> {
        let secrets: Secrets = spec
            .spec()
            .secrets
            .iter()
            .map(|s| {
                (
                    s.name.as_str().to_owned(),
                    SecretValue::new("dry-run-placeholder"),
                )
            })
            .collect();
        let options = ServeOptions {
            https_only: !self.options.allow_http,
            ..ServeOptions::default()
        };
        SpecServer::with_egress(spec, secrets, self.sandbox.clone(), &self.base, &options)
    }
}

/// An egress client that answers every allowed request with `200 {}`,
/// counting them in `requests`.
fn offline_egress(
    options: &CheckOptions,
    requests: Arc<AtomicUsize>,
) -> Result<EgressClient, bmm_runtime::Error> {
    let mut policy = EgressPolicy::deny_all();
    policy.https_only = !options.allow_http;
    let responder = move |request: &EgressRequest| {
        requests.fetch_add(1, Ordering::SeqCst);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        EgressResponse {
            status: StatusCode::OK,
            url: request.url.clone(),
            headers,
            body: b"{}".to_vec(),
        }
    };
    EgressClient::offline(policy, Arc::new(responder))
}

/// What a dry run found.
#[derive(Clone, Debug, Default)]
pub struct DryRun {
    /// Failures that make the spec unusable.
    pub problems: Vec<String>,
    /// Failures the dry run cannot judge offline.
    pub warnings: Vec<String>,
}

enum Verdict {
    Problem,
    Warning,
    /// Says nothing about the tool offline.
    Fine,
}

fn classify(error: &bmm_runtime::Error, fetched: bool) -> Verdict {
    use bmm_runtime::Error as E;
    if error.is_limit() {
        return Verdict::Problem;
    }
    match error {
        E::Compile { .. }
        | E::MissingEntryPoint { .. }
        | E::EgressDenied { .. }
        | E::UnknownSecret { .. }
        | E::InvalidRequest { .. }
        | E::RequestTooLarge { .. }
        | E::UnknownTool { .. } => Verdict::Problem,
        E::Template { .. } | E::InvalidOutput { .. } if !fetched => Verdict::Problem,
        E::Script { message } if !fetched && is_engine_error(message) => Verdict::Problem,
        // Shaping a made-up `{}` answer says nothing about the real one.
        E::Response { .. } if fetched => Verdict::Fine,
        _ => Verdict::Warning,
    }
}

fn is_engine_error(message: &str) -> bool {
    [
        "TypeError",
        "ReferenceError",
        "SyntaxError",
        "RangeError",
        "InternalError",
    ]
    .iter()
    .any(|name| message.starts_with(name))
}

/// A value that satisfies `schema` as far as cheaply possible: `default`,
/// then `const`, `examples` and `enum`, then the least value of its type
/// that meets its bounds. Objects get their required properties only.
/// `root` resolves local `$ref`s.
pub fn example(schema: &Value, root: &Map<String, Value>, depth: usize) -> Value {
    const MAX_DEPTH: usize = 16;
    let Some(schema) = schema.as_object() else {
        return Value::Null;
    };
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| Value::Object(root.clone()).pointer(pointer).cloned());
        return target.map_or(Value::Null, |t| example(&t, root, depth + 1));
    }
    for key in ["default", "const"] {
        if let Some(value) = schema.get(key) {
            return value.clone();
        }
    }
    for key in ["examples", "enum"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return first.clone();
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return example(first, root, depth + 1);
        }
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.contains_key("properties") => "object",
        _ => "string",
    };
    match kind {
        "object" => {
            let mut out = Map::new();
            let properties = schema.get("properties").and_then(Value::as_object);
            let required = schema.get("required").and_then(Value::as_array);
            for name in required.into_iter().flatten().filter_map(Value::as_str) {
                let property = properties
                    .and_then(|p| p.get(name))
                    .cloned()
                    .unwrap_or(json!({}));
                out.insert(name.to_owned(), example(&property, root, depth + 1));
            }
            Value::Object(out)
        }
        "array" => {
            let count = schema
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .min(8);
            let item = schema.get("items").cloned().unwrap_or(json!({}));
            Value::Array(
                (0..count)
                    .map(|_| example(&item, root, depth + 1))
                    .collect(),
            )
        }
        "integer" => {
            let low = bound(schema, "minimum", "exclusiveMinimum", 1.0).ceil();
            let high = bound(schema, "maximum", "exclusiveMaximum", -1.0).floor();
            json!(pick(low, high, 1.0) as i64)
        }
        "number" => {
            let low = bound(schema, "minimum", "exclusiveMinimum", 0.5);
            let high = bound(schema, "maximum", "exclusiveMaximum", -0.5);
            json!(pick(low, high, 1.0))
        }
        "boolean" => json!(false),
        "null" => Value::Null,
        _ => json!(string_example(schema)),
    }
}

/// A bound of a number schema, or NaN when there is none; an exclusive
/// bound is moved inwards by `step`.
fn bound(schema: &Map<String, Value>, inclusive: &str, exclusive: &str, step: f64) -> f64 {
    if let Some(v) = schema.get(inclusive).and_then(Value::as_f64) {
        return v;
    }
    schema
        .get(exclusive)
        .and_then(Value::as_f64)
        .map_or(f64::NAN, |v| v + step)
}

fn pick(low: f64, high: f64, preferred: f64) -> f64 {
    match (low.is_nan(), high.is_nan()) {
        (true, true) => preferred,
        (false, true) => low.max(preferred),
        (true, false) => high.min(preferred),
        (false, false) => low.max(preferred.min(high)),
    }
}

fn string_example(schema: &Map<String, Value>) -> String {
    let base = match schema.get("format").and_then(Value::as_str) {
        Some("date") => "2026-01-15",
        Some("date-time") => "2026-01-15T12:00:00Z",
        Some("time") => "12:00:00",
        Some("email") => "someone@example.com",
        Some("uri" | "url" | "iri") => "https://example.com/",
        Some("uuid") => "00000000-0000-4000-8000-000000000000",
        Some("ipv4") => "192.0.2.1",
        Some("ipv6") => "2001:db8::1",
        _ => "example",
    };
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .map(|m| m as usize);
    let mut text = base.to_owned();
    while text.chars().count() < min.min(4096) {
        text.push('x');
    }
    if let Some(max) = max {
        text = text.chars().take(max).collect();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(schema: Value) -> Value {
        let root = schema.as_object().cloned().unwrap_or_default();
        example(&schema, &root, 0)
    }

    #[test]
    fn examples_satisfy_common_schemas() {
        assert_eq!(
            ex(json!({"type": "object", "properties": {
                "a": {"type": "string", "enum": ["x", "y"]},
                "b": {"type": "integer", "minimum": 5},
                "c": {"type": "number", "exclusiveMaximum": 0},
                "d": {"type": "string"},
                "e": {"type": "array", "minItems": 2, "items": {"type": "boolean"}},
                "f": {"$ref": "#/$defs/thing"},
                "optional": {"type": "string"}
            }, "required": ["a", "b", "c", "d", "e", "f"],
            "$defs": {"thing": {"type": "string", "format": "date"}}})),
            json!({"a": "x", "b": 5, "c": -0.5, "d": "example", "e": [false, false], "f": "2026-01-15"})
        );
        assert_eq!(
            ex(json!({"type": "string", "minLength": 10})),
            json!("examplexxx")
        );
        assert_eq!(ex(json!({"type": "integer", "maximum": 0})), json!(0));
        assert_eq!(
            ex(json!({"type": "integer", "minimum": 1, "maximum": 3})),
            json!(1)
        );
        assert_eq!(ex(json!({"default": 7})), json!(7));
    }

    #[test]
    fn recursive_schemas_end() {
        let schema = json!({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object",
            "properties": {"next": {"$ref": "#/$defs/node"}}, "required": ["next"]}}});
        let value = ex(schema);
        assert!(value.is_object());
    }
}
