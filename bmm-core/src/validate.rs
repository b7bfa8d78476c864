//! Validation of a spec document: every problem, each located and explained.
//!
//! Two passes. The structural pass validates the document against the
//! `ServerSpec` JSON Schema, so every wrong type, missing field and unknown
//! field is reported at once, not just the first one serde meets. The semantic
//! pass then checks what a schema cannot say — templates against arguments and
//! secrets, URLs against the egress allowlist, tools' own JSON Schemas, the
//! static checks — on every tool and secret that has the right shape, so one
//! malformed tool does not hide the problems of the others.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, ValidationError, Validator};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::checks;
use crate::diagnostic::{Code, Diagnostic, Report, Severity};
use crate::egress::EgressRule;
use crate::error::{Error, Result};
use crate::load::{self, Format};
use crate::path::JsonPath;
use crate::script;
use crate::spec::{
    HttpImplementation, Implementation, JsonObject, MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH,
    MAX_TEMPLATE_CHARS, SecretSpec, ServerSpec, ToolSpec,
};
use crate::template::{self, TemplateProblem};

/// Options for [`check`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CheckOptions {
    /// Accept plain `http` URLs. For local development only; off by default.
    pub allow_http: bool,
}

impl CheckOptions {
    /// Options with plain `http` allowed or not.
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }
}

/// A spec that passed every check: the only way to hold one is through [`check`].
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedSpec {
    spec: ServerSpec,
    warnings: Report,
}

impl ValidatedSpec {
    /// The spec.
    pub fn spec(&self) -> &ServerSpec {
        &self.spec
    }

    /// The warnings found; none of them is an error.
    pub fn warnings(&self) -> &Report {
        &self.warnings
    }

    /// The spec, leaving the warnings behind.
    pub fn into_spec(self) -> ServerSpec {
        self.spec
    }
}

/// Validates and statically checks a spec document.
///
/// Returns the validated spec (with its warnings), or a [`Report`] of every
/// error and warning found.
pub fn check(document: &Value, options: &CheckOptions) -> Result<ValidatedSpec, Report> {
    let mut out = Vec::new();
    structural(document, &mut out);
    semantic(document, options, &mut out);
    let report = Report::new(out);
    if report.has_errors() {
        return Err(report);
    }
    match serde_json::from_value::<ServerSpec>(document.clone()) {
        Ok(spec) => Ok(ValidatedSpec {
            spec,
            warnings: report,
        }),
        Err(e) => {
            // The schema and the types agree, so this is a bug; still an error, not a panic.
            let mut all = report.diagnostics().to_vec();
            all.push(Diagnostic::error(
                Code::Structure,
                JsonPath::root(),
                e.to_string(),
            ));
            Err(Report::new(all))
        }
    }
}

/// Parses `text` and checks it: the whole path from a file's contents to a
/// validated spec.
pub fn check_text(text: &str, format: Format, options: &CheckOptions) -> Result<ValidatedSpec> {
    let document = load::parse_document(text, format)?;
    check(&document, options).map_err(|report| Error::Invalid { report })
}

impl ServerSpec {
    /// Checks a spec built in code (by an importer or a generator) the same way
    /// a document is checked.
    pub fn check(&self, options: &CheckOptions) -> Result<ValidatedSpec, Report> {
        match serde_json::to_value(self) {
            Ok(document) => check(&document, options),
            Err(e) => Err(Report::new(vec![Diagnostic::error(
                Code::Structure,
                JsonPath::root(),
                e.to_string(),
            )])),
        }
    }
}

static SPEC_VALIDATOR: LazyLock<Result<Validator, String>> = LazyLock::new(|| {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .build(&ServerSpec::json_schema())
        .map_err(|e| e.to_string())
});

fn structural(document: &Value, out: &mut Vec<Diagnostic>) {
    match SPEC_VALIDATOR.as_ref() {
        Ok(validator) => {
            for error in validator.iter_errors(document) {
                map_schema_error(&error, document, out);
            }
        }
        Err(e) => out.push(Diagnostic::error(
            Code::Structure,
            JsonPath::root(),
            format!("internal error: the spec schema does not compile: {e}"),
        )),
    }
}

/// Every field name the spec format knows, for "did you mean" hints.
static KNOWN_FIELDS: LazyLock<Vec<String>> = LazyLock::new(|| {
    fn collect(schema: &Value, out: &mut Vec<String>) {
        match schema {
            Value::Object(map) => {
                if let Some(Value::Object(properties)) = map.get("properties") {
                    out.extend(properties.keys().cloned());
                }
                map.values().for_each(|v| collect(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut fields = Vec::new();
    collect(&ServerSpec::json_schema(), &mut fields);
    fields.sort();
    fields.dedup();
    fields
});

fn suggest(field: &str) -> Option<&'static str> {
    KNOWN_FIELDS
        .iter()
        .map(|known| (strsim::damerau_levenshtein(field, known), known))
        .filter(|(distance, known)| *distance <= 2 && *distance < known.len())
        .min()
        .map(|(_, known)| known.as_str())
}

fn json_type(value: Option<&Value>) -> &'static str {
    match value {
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
        None => "nothing",
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 60 {
        return text;
    }
    let head: String = text.chars().take(57).collect();
    format!("{head}...")
}

fn type_names(kind: &TypeKind) -> String {
    let name = |t: &jsonschema::JsonType| format!("{t}");
    match kind {
        TypeKind::Single(t) => name(t),
        TypeKind::Multiple(ts) => ts.iter().map(|t| name(&t)).collect::<Vec<_>>().join(" or "),
    }
}

fn map_schema_error(error: &ValidationError<'_>, document: &Value, out: &mut Vec<Diagnostic>) {
    let pointer = error.instance_path().as_str();
    let path = JsonPath::from_pointer(pointer, document);
    let instance = document.pointer(pointer);
    let message = match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            for field in unexpected {
                let hint = match suggest(field) {
                    Some(known) => format!("did you mean `{known}`?"),
                    None => "see the spec format with `bmm spec schema`".to_owned(),
                };
                out.push(Diagnostic::error(
                    Code::Structure,
                    path.key(field.as_str()),
                    format!("unknown field `{field}`: {hint}"),
                ));
            }
            return;
        }
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            out.push(Diagnostic::error(
                Code::Structure,
                path.key(name.as_str()),
                format!("missing required field `{name}`"),
            ));
            return;
        }
        ValidationErrorKind::Type { kind } => {
            format!(
                "expected {}, found {}",
                type_names(kind),
                json_type(instance)
            )
        }
        ValidationErrorKind::MinLength { limit: 1 } => "must not be empty".to_owned(),
        ValidationErrorKind::MinLength { limit } => {
            format!("must be at least {limit} characters long")
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("is longer than the limit of {limit} characters")
        }
        ValidationErrorKind::MinItems { limit } => format!("needs at least {limit} item(s)"),
        ValidationErrorKind::MaxItems { limit } => {
            format!("has more than the limit of {limit} items")
        }
        ValidationErrorKind::Pattern { pattern } => format!(
            "{} does not match the pattern {pattern}",
            instance.map_or_else(String::new, short)
        ),
        ValidationErrorKind::Enum { options } => format!(
            "{} is not one of {options}",
            instance.map_or_else(String::new, short)
        ),
        ValidationErrorKind::Constant { expected_value } => format!(
            "must be {expected_value}, found {}",
            instance.map_or_else(String::new, short)
        ),
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            one_of(context, &path, document, out);
            return;
        }
        _ => {
            let text = error.to_string();
            let head: String = text.chars().take(200).collect();
            head
        }
    };
    out.push(Diagnostic::error(Code::Structure, path, message));
}

/// Explains a failed `oneOf`: when the discriminating `kind` matched one branch,
/// that branch's own errors; otherwise what the discriminator may be.
fn one_of(
    context: &[Vec<ValidationError<'static>>],
    path: &JsonPath,
    document: &Value,
    out: &mut Vec<Diagnostic>,
) {
    let is_kind = |e: &ValidationError<'_>| {
        e.instance_path().as_str().ends_with("/kind")
            || matches!(e.kind(), ValidationErrorKind::Required { property } if property == "kind")
    };
    let matching: Vec<_> = context
        .iter()
        .filter(|branch| !branch.iter().any(is_kind))
        .collect();
    if let [branch] = matching.as_slice() {
        for error in branch.iter() {
            map_schema_error(error, document, out);
        }
        return;
    }
    let constants = |here: &dyn Fn(&ValidationError<'_>) -> bool| -> Vec<String> {
        let mut values: Vec<String> = context
            .iter()
            .flatten()
            .filter_map(|e| match e.kind() {
                ValidationErrorKind::Constant { expected_value } if here(e) => {
                    Some(expected_value.to_string())
                }
                _ => None,
            })
            .collect();
        values.sort();
        values.dedup();
        values
    };
    let pointer = path.to_pointer();
    // A oneOf of constants (an enum with documented variants): list the values.
    let values = constants(&|e| e.instance_path().as_str() == pointer);
    let message = if context.iter().all(|b| b.len() == 1) && values.len() == context.len() {
        let found = document.pointer(&pointer).map_or_else(String::new, short);
        format!("{found} is not one of {}", values.join(", "))
    } else {
        let kinds = constants(&is_kind);
        if kinds.is_empty() {
            "does not match any of the allowed forms".to_owned()
        } else {
            format!("`kind` must be one of {}", kinds.join(", "))
        }
    };
    out.push(Diagnostic::error(Code::Structure, path.clone(), message));
}

/// Items of the array at `field` that deserialize as `T`, with their indices.
fn items<T: DeserializeOwned>(document: &Value, field: &str) -> Vec<(usize, T)> {
    document
        .get(field)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| Some((i, serde_json::from_value(item.clone()).ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

struct Context<'a> {
    options: &'a CheckOptions,
    rules: Vec<EgressRule>,
    used_rules: BTreeSet<usize>,
    declared_secrets: BTreeSet<String>,
    used_secrets: BTreeSet<String>,
    out: &'a mut Vec<Diagnostic>,
}

fn semantic(document: &Value, options: &CheckOptions, out: &mut Vec<Diagnostic>) {
    let root = JsonPath::root();
    for field in ["name", "description"] {
        if let Some(text) = document.get(field).and_then(Value::as_str) {
            checks::check_text(text, &root.key(field), out);
        }
    }
    if let Some(version) = document.get("version").and_then(Value::as_str)
        && let Err(e) = semver::Version::parse(version)
    {
        out.push(Diagnostic::error(
            Code::InvalidVersion,
            root.key("version"),
            format!("{version:?} is not a semantic version such as \"1.0.0\": {e}"),
        ));
    }

    let mut rules = Vec::new();
    let mut seen_entries = BTreeMap::new();
    for (i, entry) in items::<String>(document, "egress") {
        let path = root.key("egress").index(i);
        if let Some(first) = seen_entries.insert(entry.clone(), i) {
            out.push(Diagnostic::warning(
                Code::Duplicate,
                path.clone(),
                format!("`{entry}` is already listed at egress[{first}]"),
            ));
        }
        match EgressRule::parse(&entry) {
            Ok(rule) => rules.push((i, rule)),
            Err(message) => out.push(Diagnostic::error(Code::InvalidEgress, path, message)),
        }
    }

    let secrets = items::<SecretSpec>(document, "secrets");
    let mut declared_secrets = BTreeSet::new();
    for (i, secret) in &secrets {
        let path = root.key("secrets").index(*i);
        if !declared_secrets.insert(secret.name.as_str().to_owned()) {
            out.push(Diagnostic::error(
                Code::Duplicate,
                path.key("name"),
                format!("secret `{}` is declared twice", secret.name),
            ));
        }
        checks::check_text(&secret.description, &path.key("description"), out);
        if let Some(how) = &secret.how_to_get {
            checks::check_text(how, &path.key("how_to_get"), out);
        }
    }

    let (rule_indices, rules): (Vec<usize>, Vec<EgressRule>) = rules.into_iter().unzip();
    let mut cx = Context {
        options,
        rules,
        used_rules: BTreeSet::new(),
        declared_secrets,
        used_secrets: BTreeSet::new(),
        out,
    };

    let tools = items::<ToolSpec>(document, "tools");
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut has_script = false;
    for (i, tool) in &tools {
        let path = root.key("tools").index(*i);
        if let Some(first) = names.insert(tool.name.as_str(), *i) {
            cx.out.push(Diagnostic::error(
                Code::Duplicate,
                path.key("name"),
                format!(
                    "tool name `{}` is already used by tools[{first}]; tool names must be unique",
                    tool.name
                ),
            ));
        }
        has_script |= matches!(tool.implementation, Implementation::Script(_));
        check_tool(tool, &path, &mut cx);
    }

    for (i, secret) in &secrets {
        let name = secret.name.as_str();
        if !cx.used_secrets.contains(name) {
            cx.out.push(Diagnostic::error(
                Code::UnusedSecret,
                root.key("secrets").index(*i).key("name"),
                format!(
                    "secret `{name}` is declared but no tool uses it; remove it, or use it as {{{{secrets.{name}}}}} in an http tool or {{secret: \"{name}\"}} in a script"
                ),
            ));
        }
    }
    // Scripts may build URLs at run time, so only servers without scripts can
    // tell that an entry is unused.
    if !has_script {
        for (n, rule) in cx.rules.iter().enumerate() {
            if !cx.used_rules.contains(&n) {
                cx.out.push(Diagnostic::warning(
                    Code::UnusedEgress,
                    root.key("egress").index(rule_indices[n]),
                    format!("no tool reaches `{rule}`; remove it to keep the allowlist tight"),
                ));
            }
        }
    }
}

fn check_tool(tool: &ToolSpec, path: &JsonPath, cx: &mut Context<'_>) {
    checks::check_text(tool.name.as_str(), &path.key("name"), cx.out);
    if let Some(title) = &tool.title {
        checks::check_text(title, &path.key("title"), cx.out);
    }
    checks::check_text(&tool.description, &path.key("description"), cx.out);
    let arguments = check_object_schema(&tool.input_schema, &path.key("input_schema"), cx.out);
    if let Some(output) = &tool.output_schema {
        check_object_schema(output, &path.key("output_schema"), cx.out);
    }
    let implementation = path.key("implementation");
    match &tool.implementation {
        Implementation::Http(http) => check_http(http, &arguments, &implementation, cx),
        Implementation::Script(s) => check_script(&s.source, &implementation.key("source"), cx),
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Checks a tool's input or output schema; returns the property names it declares.
fn check_object_schema(
    schema: &JsonObject,
    path: &JsonPath,
    out: &mut Vec<Diagnostic>,
) -> BTreeSet<String> {
    let value = Value::Object(schema.clone());
    checks::check_json_text(&value, path, out);
    let size = value.to_string().len();
    if size > MAX_SCHEMA_BYTES {
        out.push(Diagnostic::error(
            Code::LimitExceeded,
            path.clone(),
            format!("the schema is {size} bytes, more than the limit of {MAX_SCHEMA_BYTES}"),
        ));
        return BTreeSet::new();
    }
    if depth(&value) > MAX_SCHEMA_DEPTH {
        out.push(Diagnostic::error(
            Code::LimitExceeded,
            path.clone(),
            format!("the schema nests deeper than the limit of {MAX_SCHEMA_DEPTH} levels"),
        ));
        return BTreeSet::new();
    }
    if schema.get("type") != Some(&Value::from("object")) {
        out.push(Diagnostic::error(
            Code::InvalidJsonSchema,
            path.key("type"),
            "a tool's schema must have \"type\": \"object\"",
        ));
    }
    if let Err(e) = jsonschema::options()
        .with_draft(Draft::Draft202012)
        .build(&value)
    {
        let inner = JsonPath::from_pointer(e.instance_path().as_str(), &value);
        let text: String = e.to_string().chars().take(200).collect();
        out.push(Diagnostic::error(
            Code::InvalidJsonSchema,
            path.join(&inner),
            format!("not a valid JSON Schema: {text}"),
        ));
    }
    let properties: BTreeSet<String> = match schema.get("properties") {
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        _ => BTreeSet::new(),
    };
    if let Some(Value::Array(required)) = schema.get("required") {
        for (i, name) in required.iter().enumerate() {
            if let Some(name) = name.as_str().filter(|n| !properties.contains(*n)) {
                out.push(Diagnostic::error(
                    Code::InvalidJsonSchema,
                    path.key("required").index(i),
                    format!("`{name}` is required but not declared in properties"),
                ));
            }
        }
    }
    properties
}

fn check_template(
    source: &str,
    arguments: &BTreeSet<String>,
    path: &JsonPath,
    cx: &mut Context<'_>,
) {
    if source.chars().count() > MAX_TEMPLATE_CHARS {
        cx.out.push(Diagnostic::error(
            Code::LimitExceeded,
            path.clone(),
            format!("the template is longer than the limit of {MAX_TEMPLATE_CHARS} characters"),
        ));
        return;
    }
    let refs = match template::analyse(source) {
        Ok(refs) => refs,
        Err(problems) => {
            for problem in problems {
                let (code, message) = match problem {
                    TemplateProblem::Syntax(m) => (Code::TemplateSyntax, m),
                    TemplateProblem::Unsupported(m) => (Code::UnsupportedTemplate, m),
                };
                cx.out.push(Diagnostic::error(code, path.clone(), message));
            }
            return;
        }
    };
    for arg in refs.args.iter().filter(|a| !arguments.contains(*a)) {
        let declared = if arguments.is_empty() {
            "none".to_owned()
        } else {
            arguments
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        cx.out.push(Diagnostic::error(
            Code::UnknownArgument,
            path.clone(),
            format!(
                "`args.{arg}` is not declared in input_schema.properties (declared: {declared})"
            ),
        ));
    }
    for secret in refs.secrets {
        if !cx.declared_secrets.contains(&secret) {
            cx.out.push(Diagnostic::error(
                Code::UnknownSecret,
                path.clone(),
                format!("`secrets.{secret}` is not declared; add it to the server's secrets or remove the reference"),
            ));
        }
        cx.used_secrets.insert(secret);
    }
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_http(
    http: &HttpImplementation,
    arguments: &BTreeSet<String>,
    path: &JsonPath,
    cx: &mut Context<'_>,
) {
    check_template(&http.url, arguments, &path.key("url"), cx);
    check_url(&http.url, &path.key("url"), cx);
    for (name, value) in &http.headers {
        let at = path.key("headers").key(name.as_str());
        if !is_header_name(name) {
            cx.out.push(Diagnostic::error(
                Code::Structure,
                at.clone(),
                format!("`{name}` is not a valid header name"),
            ));
        }
        check_template(value, arguments, &at, cx);
    }
    for (name, value) in &http.query {
        check_template(value, arguments, &path.key("query").key(name.as_str()), cx);
    }
    if let Some(body) = &http.body {
        check_body(body, arguments, &path.key("body"), cx);
    }
    if let Some(pointer) = &http.response.pointer
        && !pointer.is_empty()
        && !pointer.starts_with('/')
    {
        cx.out.push(Diagnostic::error(
            Code::Structure,
            path.key("response").key("pointer"),
            format!("{pointer:?} is not a JSON pointer; write it like \"/data/items\""),
        ));
    }
}

fn check_body(body: &Value, arguments: &BTreeSet<String>, path: &JsonPath, cx: &mut Context<'_>) {
    match body {
        Value::String(s) => check_template(s, arguments, path, cx),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_body(item, arguments, &path.index(i), cx);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                check_body(item, arguments, &path.key(key.as_str()), cx);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn check_url(raw: &str, path: &JsonPath, cx: &mut Context<'_>) {
    let literal_head = raw.split("{{").next().unwrap_or_default();
    let authority_is_literal = literal_head
        .split_once("://")
        .is_some_and(|(_, rest)| rest.contains('/') || !raw.contains("{{"));
    if !authority_is_literal {
        cx.out.push(Diagnostic::error(
            Code::InvalidUrl,
            path.clone(),
            "the URL must be absolute, with its scheme and host written literally (e.g. \"https://api.example.com/...\"); only the path may contain templates",
        ));
        return;
    }
    // Templates stand for path text here; the host part is literal, checked above.
    let substituted = substitute_templates(raw);
    let url = match url::Url::parse(&substituted) {
        Ok(url) => url,
        Err(e) => {
            cx.out.push(Diagnostic::error(
                Code::InvalidUrl,
                path.clone(),
                format!("not a valid URL: {e}"),
            ));
            return;
        }
    };
    match url.scheme() {
        "https" => {}
        "http" if cx.options.allow_http => {}
        "http" => cx.out.push(Diagnostic::error(
            Code::InsecureUrl,
            path.clone(),
            "plain http is not allowed; use https (plain http is accepted only with the development allowance, `--allow-http`)",
        )),
        other => {
            cx.out.push(Diagnostic::error(
                Code::InvalidUrl,
                path.clone(),
                format!("the scheme must be https, not {other}"),
            ));
            return;
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        cx.out.push(Diagnostic::error(
            Code::InvalidUrl,
            path.clone(),
            "the URL must not carry credentials; declare a secret and send it in a header",
        ));
    }
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        cx.out.push(Diagnostic::error(
            Code::InvalidUrl,
            path.clone(),
            "the URL has no host",
        ));
        return;
    };
    let default_port = if url.scheme() == "https" { 443 } else { 80 };
    reach(host, port, default_port, path, Severity::Error, cx);
}

fn reach(
    host: &str,
    port: u16,
    default_port: u16,
    path: &JsonPath,
    severity: Severity,
    cx: &mut Context<'_>,
) {
    let mut covered = false;
    for (n, rule) in cx.rules.iter().enumerate() {
        if rule.allows(host, port, default_port) {
            cx.used_rules.insert(n);
            covered = true;
        }
    }
    if !covered {
        let entry = if port == default_port {
            host.to_owned()
        } else {
            format!("{host}:{port}")
        };
        cx.out.push(Diagnostic {
            severity,
            code: Code::EgressNotCovered,
            path: path.clone(),
            message: format!("the tool reaches `{entry}` but the egress allowlist does not list it; add \"{entry}\" to egress"),
        });
    }
}

fn substitute_templates(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        out.push('x');
        match rest[start..].find("}}") {
            Some(end) => rest = &rest[start + end + 2..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

fn check_script(source: &str, path: &JsonPath, cx: &mut Context<'_>) {
    let views = script::views(source);
    checks::check_script(source, &views, path, cx.out);
    let (names, dynamic) = script::secret_references(&views);
    for line in dynamic {
        cx.out.push(Diagnostic::error(
            Code::UnknownSecret,
            path.clone(),
            format!("line {line}: a secret reference must be a string literal naming a declared secret, e.g. {{secret: \"API_KEY\"}}"),
        ));
    }
    for name in names {
        if !cx.declared_secrets.contains(&name) {
            cx.out.push(Diagnostic::error(
                Code::UnknownSecret,
                path.clone(),
                format!("{{secret: \"{name}\"}} refers to a secret that is not declared; add it to the server's secrets"),
            ));
        }
        cx.used_secrets.insert(name);
    }
    for (scheme, host, port) in script::url_literals(&views) {
        let default_port = if scheme == "https" { 443 } else { 80 };
        if scheme == "http" && !cx.options.allow_http {
            cx.out.push(Diagnostic::warning(
                Code::InsecureUrl,
                path.clone(),
                format!("the script mentions http://{host}; plain http requests will be refused, use https"),
            ));
        }
        reach(
            &host,
            port.unwrap_or(default_port),
            default_port,
            path,
            Severity::Warning,
            cx,
        );
    }
}
