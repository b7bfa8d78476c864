//! One operation to one `http` tool: parameters and body to an input schema
//! and templates, the server to a URL base and an egress entry, security to
//! secret references.

use std::collections::{BTreeMap, BTreeSet};

use bmm_core::egress::EgressRule;
use bmm_core::spec::{
    HttpImplementation, Implementation, JsonObject, MAX_DESCRIPTION_CHARS, MAX_SCHEMA_BYTES,
    MAX_SCHEMA_DEPTH, ResponseShape, ToolAnnotations,
};
use bmm_core::{HttpMethod, ToolName, ToolSpec};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Map, Value, json};
use url::Url;

use super::document::{self, OpenApiVersion};
use super::names::{
    MAX_TITLE, MAX_TOOL_NAME, arg_name, clean_text, tool_name_from, tool_name_from_route, unique,
};
use super::schema::{Converter, Notes, depth};
use super::security::{Credentials, Security, is_header_name};
use super::{ImportError, ImportOptions, ImportWarning};

/// Keys of a path item that are operations.
pub(crate) const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Depth budget of one property's schema: the input schema's root object and
/// its `properties` map take two levels.
const PROPERTY_BUDGET: usize = MAX_SCHEMA_DEPTH - 2;

/// Characters percent-encoded in literal path text: everything a path cannot
/// hold as it is, and the braces that would start a template.
const PATH_TEXT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'^')
    .add(b'|')
    .add(b'\\');

/// One operation of the document.
pub(crate) struct Route<'a> {
    path: &'a str,
    method: &'a str,
    item: &'a Value,
    op: &'a Value,
    id: Option<&'a str>,
    /// The operation's tags.
    pub(crate) tags: Vec<String>,
}

impl<'a> Route<'a> {
    /// The operation `method` of `path`.
    pub(crate) fn new(path: &'a str, method: &'a str, item: &'a Value, op: &'a Value) -> Self {
        let tags = op
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| {
                tags.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            path,
            method,
            item,
            op,
            id: op.get("operationId").and_then(Value::as_str),
            tags,
        }
    }

    /// Whether `name` names this operation: its `operationId`, or `METHOD /path`.
    pub(crate) fn is_named(&self, name: &str) -> bool {
        if self.id == Some(name) {
            return true;
        }
        name.split_once(' ').is_some_and(|(method, path)| {
            method.eq_ignore_ascii_case(self.method) && path.trim() == self.path
        })
    }

    /// How warnings name the operation.
    fn label(&self) -> String {
        match self.id {
            Some(id) => id.chars().take(140).collect(),
            None => format!("{} {}", self.method.to_ascii_uppercase(), self.path),
        }
    }
}

/// A converted operation.
pub(crate) struct Built {
    /// The tool.
    pub(crate) tool: ToolSpec,
    /// The egress entry its URL needs.
    pub(crate) egress: String,
    /// Secrets it uses, with their descriptions.
    pub(crate) secrets: Vec<(String, String)>,
    /// The operation's tags.
    pub(crate) tags: Vec<String>,
}

/// A parameter's location.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum In {
    Path,
    Query,
    Header,
}

impl In {
    fn as_str(self) -> &'static str {
        match self {
            In::Path => "path",
            In::Query => "query",
            In::Header => "header",
        }
    }
}

/// The input schema and templates of one operation, as they are built.
#[derive(Default)]
struct Inputs {
    properties: Map<String, Value>,
    required: Vec<String>,
    taken: BTreeSet<String>,
    path_args: BTreeMap<String, String>,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Option<Value>,
}

impl Inputs {
    /// A fresh argument name for `name`, prefixed by `prefix` on a clash.
    fn name(&mut self, name: &str, prefix: &str) -> String {
        let base = arg_name(name);
        if !self.taken.contains(&base) {
            self.taken.insert(base.clone());
            return base;
        }
        unique(&arg_name(&format!("{prefix}_{name}")), 64, &mut self.taken)
    }

    fn add(&mut self, arg: &str, schema: Value, required: bool) {
        self.properties.insert(arg.to_owned(), schema);
        if required {
            self.required.push(arg.to_owned());
        }
    }
}

/// The conversion state shared by all operations of a document.
pub(crate) struct Cx<'a> {
    document: &'a Value,
    converter: Converter<'a>,
    options: &'a ImportOptions,
    base_url: Option<Url>,
    security: Security,
    tool_names: BTreeSet<String>,
    upgraded: BTreeSet<String>,
    warnings: Vec<ImportWarning>,
}

impl<'a> Cx<'a> {
    /// The state for `document`.
    pub(crate) fn new(
        document: &'a Value,
        version: OpenApiVersion,
        options: &'a ImportOptions,
        base_url: Option<Url>,
    ) -> Self {
        let mut warnings = Vec::new();
        let security = Security::new(document, &mut warnings);
        Self {
            document,
            converter: Converter::new(document, version),
            options,
            base_url,
            security,
            tool_names: BTreeSet::new(),
            upgraded: BTreeSet::new(),
            warnings,
        }
    }

    /// The warnings gathered.
    pub(crate) fn finish(mut self) -> Vec<ImportWarning> {
        let approximations = self.security.approximations(self.document);
        self.warnings.extend(approximations);
        self.warnings
    }

    fn skip(&mut self, route: &Route<'_>, reason: impl Into<String>) -> Option<Built> {
        self.warnings.push(ImportWarning::OperationSkipped {
            operation: route.label(),
            reason: reason.into(),
        });
        None
    }

    /// Converts one operation; `Ok(None)` when it is skipped (with a warning).
    pub(crate) fn operation(&mut self, route: &Route<'a>) -> Result<Option<Built>, ImportError> {
        let label = route.label();
        let method = match route.method {
            "get" => HttpMethod::Get,
            "post" => HttpMethod::Post,
            "put" => HttpMethod::Put,
            "patch" => HttpMethod::Patch,
            "delete" => HttpMethod::Delete,
            other => {
                let reason = format!(
                    "the {} method is not supported by http tools",
                    other.to_ascii_uppercase()
                );
                return Ok(self.skip(route, reason));
            }
        };
        let (base, egress) = self.server(route)?;
        self.converter.reset();

        let credentials = match self.security.credentials(route.op) {
            Ok(credentials) => credentials,
            Err(reason) => {
                self.warnings.push(ImportWarning::WithoutCredentials {
                    operation: label.clone(),
                    reason,
                });
                Credentials::default()
            }
        };

        let mut inputs = Inputs::default();
        if let Err(reason) = self.parameters(route, &credentials, &mut inputs) {
            return Ok(self.skip(route, reason));
        }
        let url = match self.url(route, &base, &mut inputs) {
            Ok(url) => url,
            Err(reason) => return Ok(self.skip(route, reason)),
        };
        if let Err(reason) = self.body(route, &mut inputs) {
            return Ok(self.skip(route, reason));
        }
        let notes = self.converter.reset();
        self.notes(&label, notes);

        let mut schema = JsonObject::new();
        schema.insert("type".to_owned(), Value::from("object"));
        schema.insert(
            "properties".to_owned(),
            Value::Object(std::mem::take(&mut inputs.properties)),
        );
        if !inputs.required.is_empty() {
            schema.insert("required".to_owned(), json!(inputs.required));
        }
        schema.insert("additionalProperties".to_owned(), Value::Bool(false));
        let schema = match self.fit(&label, schema) {
            Ok(schema) => schema,
            Err(reason) => return Ok(self.skip(route, reason)),
        };

        let mut headers = inputs.headers;
        headers.extend(credentials.headers);
        let mut query = inputs.query;
        query.extend(credentials.query);

        let (title, description) = self.texts(route, &label);
        let name = self.tool_name(route);
        let Ok(name) = ToolName::new(name) else {
            return Ok(self.skip(route, "no valid tool name could be made"));
        };
        let secrets = credentials
            .secrets
            .iter()
            .map(|s| {
                let description = self
                    .security
                    .describe(s)
                    .unwrap_or_else(|| format!("Credential `{s}`."));
                (s.clone(), description)
            })
            .collect();
        let tool = ToolSpec {
            name,
            title,
            description,
            input_schema: schema,
            output_schema: None,
            annotations: annotations(method),
            implementation: Implementation::Http(HttpImplementation {
                method,
                url,
                headers,
                query,
                body: inputs.body,
                response: ResponseShape::default(),
            }),
        };
        Ok(Some(Built {
            tool,
            egress,
            secrets,
            tags: route.tags.clone(),
        }))
    }

    /// The base URL (no trailing slash) and the egress entry of the
    /// operation's server.
    fn server(&mut self, route: &Route<'_>) -> Result<(String, String), ImportError> {
        let first = |v: &Value| {
            v.get("servers")
                .and_then(Value::as_array)
                .and_then(|s| s.first())
                .cloned()
        };
        let server = first(route.op)
            .or_else(|| first(route.item))
            .or_else(|| first(self.document))
            .unwrap_or_else(|| json!({"url": "/"}));
        let raw = server.get("url").and_then(Value::as_str).unwrap_or("/");
        let substituted = substitute(raw, server.get("variables"));
        let url = match (Url::parse(&substituted), &self.base_url) {
            (Ok(_), Some(base)) => base.clone(),
            (Ok(url), None) => url,
            (Err(url::ParseError::RelativeUrlWithoutBase), Some(base)) => {
                base.join(&substituted)
                    .map_err(|e| ImportError::InvalidServerUrl {
                        url: raw.to_owned(),
                        reason: e.to_string(),
                    })?
            }
            (Err(url::ParseError::RelativeUrlWithoutBase), None) => {
                return Err(ImportError::RelativeServer {
                    url: raw.to_owned(),
                });
            }
            (Err(e), _) => {
                return Err(ImportError::InvalidServerUrl {
                    url: raw.to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        let mut url = url;
        let invalid = |reason: &str| ImportError::InvalidServerUrl {
            url: url_text(raw, &self.base_url),
            reason: reason.to_owned(),
        };
        match url.scheme() {
            "https" => {}
            "http" if self.options.allow_http => {}
            "http" => {
                let shown = url.to_string();
                if url.set_scheme("https").is_err() {
                    return Err(invalid("it cannot be used over https"));
                }
                if self.upgraded.insert(shown.clone()) {
                    self.warnings
                        .push(ImportWarning::UpgradedToHttps { url: shown });
                }
            }
            _ => return Err(invalid("only http and https servers can be reached")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("a server URL must not carry credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a server URL must not have a query or a fragment"));
        }
        let Some(host) = url.host_str() else {
            return Err(invalid("it has no host"));
        };
        let egress = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        EgressRule::parse(&egress).map_err(|reason| invalid(&reason))?;
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok((base, egress))
    }

    fn parameters(
        &mut self,
        route: &Route<'a>,
        credentials: &Credentials,
        inputs: &mut Inputs,
    ) -> Result<(), String> {
        let label = route.label();
        // Operation parameters override path-item ones of the same name and location.
        let mut params: Vec<&'a Value> = Vec::new();
        let mut keys: Vec<(String, String)> = Vec::new();
        let lists = [route.op, route.item].map(|v| {
            v.get("parameters")
                .and_then(Value::as_array)
                .map(|a| a.iter().collect::<Vec<_>>())
                .unwrap_or_default()
        });
        for raw in lists.iter().flatten() {
            let param = match document::deref(self.document, raw) {
                Ok(p) => p,
                Err(problem) => {
                    self.warnings.push(ImportWarning::ParameterSkipped {
                        operation: label.clone(),
                        parameter: String::new(),
                        reason: problem.to_string(),
                    });
                    continue;
                }
            };
            let name = param
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let location = param.get("in").and_then(Value::as_str).unwrap_or_default();
            let key = (name.to_owned(), location.to_owned());
            if name.is_empty() || keys.contains(&key) {
                continue;
            }
            keys.push(key);
            params.push(param);
        }
        // Path parameters first, then query, then headers, each in document order.
        for wanted in [In::Path, In::Query, In::Header] {
            for param in &params {
                self.parameter(&label, param, wanted, credentials, inputs)?;
            }
        }
        for param in &params {
            if param.get("in").and_then(Value::as_str) == Some("cookie") {
                let name = param
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if param.get("required") == Some(&Value::Bool(true)) {
                    return Err(format!(
                        "required cookie parameter `{name}` is not supported"
                    ));
                }
                self.warnings.push(ImportWarning::ParameterSkipped {
                    operation: label.clone(),
                    parameter: name.to_owned(),
                    reason: "cookie parameters are not supported".to_owned(),
                });
            }
        }
        Ok(())
    }

    fn parameter(
        &mut self,
        label: &str,
        param: &'a Value,
        wanted: In,
        credentials: &Credentials,
        inputs: &mut Inputs,
    ) -> Result<(), String> {
        let name = param
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let location = match param.get("in").and_then(Value::as_str) {
            Some("path") => In::Path,
            Some("query") => In::Query,
            Some("header") => In::Header,
            _ => return Ok(()),
        };
        if location != wanted {
            return Ok(());
        }
        let required = location == In::Path || param.get("required") == Some(&Value::Bool(true));
        let skip = |reason: String, warnings: &mut Vec<ImportWarning>| {
            if required {
                Err(format!(
                    "required {} parameter `{name}`: {reason}",
                    location.as_str()
                ))
            } else {
                warnings.push(ImportWarning::ParameterSkipped {
                    operation: label.to_owned(),
                    parameter: name.to_owned(),
                    reason,
                });
                Ok(())
            }
        };
        if location == In::Header {
            // OpenAPI: these header parameters are ignored.
            if ["accept", "content-type", "authorization"]
                .contains(&name.to_ascii_lowercase().as_str())
            {
                return Ok(());
            }
            if !is_header_name(name) {
                return skip(
                    "it is not a valid header name".to_owned(),
                    &mut self.warnings,
                );
            }
            if credentials
                .headers
                .keys()
                .any(|h| h.eq_ignore_ascii_case(name))
            {
                return skip(
                    "the security scheme sends this header".to_owned(),
                    &mut self.warnings,
                );
            }
        }
        if location == In::Query && credentials.query.contains_key(name) {
            return skip(
                "the security scheme sends this query parameter".to_owned(),
                &mut self.warnings,
            );
        }
        let raw_schema = param.get("schema").or_else(|| {
            param
                .get("content")
                .and_then(Value::as_object)
                .and_then(|c| c.values().next())
                .and_then(|m| m.get("schema"))
        });
        let mut schema = match raw_schema {
            Some(raw) => self.converter.convert(raw, PROPERTY_BUDGET),
            None => json!({"type": "string"}),
        };
        if is_object_schema(&schema) {
            return skip(
                format!(
                    "object-valued {} parameters are not supported",
                    location.as_str()
                ),
                &mut self.warnings,
            );
        }
        if let Value::Object(map) = &mut schema {
            if !map.contains_key("description")
                && let Some(text) = param
                    .get("description")
                    .and_then(Value::as_str)
                    .and_then(|d| clean_text(d, MAX_DESCRIPTION_CHARS).0)
            {
                map.insert("description".to_owned(), Value::String(text));
            }
            if param.get("deprecated") == Some(&Value::Bool(true)) {
                map.insert("deprecated".to_owned(), Value::Bool(true));
            }
        }
        if is_array_schema(&schema) {
            let style_form = param
                .get("style")
                .and_then(Value::as_str)
                .is_none_or(|s| s == "form");
            let explode = param
                .get("explode")
                .and_then(Value::as_bool)
                .unwrap_or(location == In::Query && style_form);
            schema = comma_separated(&schema);
            if explode {
                self.warnings.push(ImportWarning::ParameterFlattened {
                    operation: label.to_owned(),
                    parameter: name.to_owned(),
                });
            }
        }
        let arg = inputs.name(name, location.as_str());
        let reference = format!("{{{{args.{arg}}}}}");
        match location {
            In::Path => {
                inputs.path_args.insert(name.to_owned(), arg.clone());
            }
            In::Query => {
                inputs.query.insert(name.to_owned(), reference);
            }
            In::Header => {
                inputs.headers.insert(name.to_owned(), reference);
            }
        }
        inputs.add(&arg, schema, required);
        Ok(())
    }

    /// The URL template: base, then the path with `{name}` as `{{args.ARG}}`.
    fn url(
        &mut self,
        route: &Route<'_>,
        base: &str,
        inputs: &mut Inputs,
    ) -> Result<String, String> {
        let mut url = base.to_owned();
        let mut rest = route.path;
        if !rest.starts_with('/') {
            url.push('/');
        }
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}').map(|c| open + c) else {
                break;
            };
            url.extend(utf8_percent_encode(&rest[..open], PATH_TEXT));
            let name = &rest[open + 1..close];
            let arg = match inputs.path_args.get(name) {
                Some(arg) => arg.clone(),
                None => {
                    let arg = inputs.name(name, "path");
                    inputs.path_args.insert(name.to_owned(), arg.clone());
                    inputs.add(&arg, json!({"type": "string"}), true);
                    self.warnings.push(ImportWarning::ParameterSkipped {
                        operation: route.label(),
                        parameter: name.to_owned(),
                        reason: "the path uses it without declaring it; it is taken as a required string".to_owned(),
                    });
                    arg
                }
            };
            url.push_str(&format!("{{{{args.{arg}}}}}"));
            rest = &rest[close + 1..];
        }
        url.extend(utf8_percent_encode(rest, PATH_TEXT));
        if url.chars().count() > bmm_core::spec::MAX_TEMPLATE_CHARS {
            return Err("the URL is longer than a template may be".to_owned());
        }
        Ok(url)
    }

    fn body(&mut self, route: &Route<'a>, inputs: &mut Inputs) -> Result<(), String> {
        let label = route.label();
        let Some(raw) = route.op.get("requestBody") else {
            return Ok(());
        };
        let body = document::deref(self.document, raw).map_err(|p| p.to_string())?;
        let required = body.get("required") == Some(&Value::Bool(true));
        let content = body.get("content").and_then(Value::as_object);
        let media = content.and_then(|c| {
            c.iter()
                .find(|(t, _)| media_type(t) == "application/json")
                .or_else(|| c.iter().find(|(t, _)| is_json(t)))
        });
        let Some((_, media)) = media else {
            let types = content
                .map(|c| c.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            let reason = format!("the request body is not JSON ({types})");
            if required {
                return Err(reason);
            }
            self.warnings.push(ImportWarning::BodySkipped {
                operation: label,
                reason,
            });
            return Ok(());
        };
        static ANY: Value = Value::Bool(true);
        let schema = media.get("schema").unwrap_or(&ANY);
        let description = body
            .get("description")
            .and_then(Value::as_str)
            .and_then(|d| clean_text(d, MAX_DESCRIPTION_CHARS).0);

        let (top, pushed) = self.converter.enter(schema);
        let flat = self.flatten(top, required, inputs);
        self.converter.leave(pushed);
        if let Some(template) = flat {
            inputs.body = Some(Value::Object(template));
            return Ok(());
        }
        let arg = if inputs.taken.contains("body") {
            inputs.name("request_body", "request")
        } else {
            inputs.name("body", "request")
        };
        let mut converted = self.converter.convert(schema, PROPERTY_BUDGET);
        if let (Value::Object(map), Some(text)) = (&mut converted, description)
            && !map.contains_key("description")
        {
            map.insert("description".to_owned(), Value::String(text));
        }
        inputs.add(&arg, converted, required);
        inputs.body = Some(Value::String(format!("{{{{args.{arg}}}}}")));
        Ok(())
    }

    /// The body's properties as arguments, and the body template, when the
    /// body is an object with named properties (directly or through `allOf`).
    fn flatten(
        &mut self,
        top: &'a Value,
        required: bool,
        inputs: &mut Inputs,
    ) -> Option<Map<String, Value>> {
        let mut properties: Vec<(&'a String, &'a Value)> = Vec::new();
        let mut names: BTreeSet<&'a str> = BTreeSet::new();
        let mut pushed_total = 0;
        let mut ok = self.collect(top, &mut properties, &mut names, &mut pushed_total, 0);
        ok &= !properties.is_empty();
        if !ok {
            self.converter.leave(pushed_total);
            return None;
        }
        let mut template = Map::new();
        let mut seen = BTreeSet::new();
        for (name, raw) in properties {
            if !seen.insert(name.as_str()) {
                continue;
            }
            let read_only = document::deref(self.document, raw)
                .ok()
                .and_then(|s| s.get("readOnly"))
                == Some(&Value::Bool(true));
            if read_only {
                continue;
            }
            let arg = inputs.name(name, "body");
            let schema = self.converter.convert(raw, PROPERTY_BUDGET);
            inputs.add(&arg, schema, required && names.contains(name.as_str()));
            template.insert(name.clone(), Value::String(format!("{{{{args.{arg}}}}}")));
        }
        self.converter.leave(pushed_total);
        (!template.is_empty()).then_some(template)
    }

    /// Gathers the named properties and required names of an object schema
    /// and of its `allOf` parts; `false` when the schema is anything else.
    fn collect(
        &mut self,
        schema: &'a Value,
        properties: &mut Vec<(&'a String, &'a Value)>,
        required: &mut BTreeSet<&'a str>,
        pushed: &mut usize,
        level: usize,
    ) -> bool {
        let Value::Object(map) = schema else {
            return false;
        };
        if level > 8
            || map.contains_key("oneOf")
            || map.contains_key("anyOf")
            || map.get("type").is_some_and(|t| t != &Value::from("object"))
        {
            return false;
        }
        if let Some(Value::Object(props)) = map.get("properties") {
            properties.extend(props.iter());
        }
        if let Some(Value::Array(names)) = map.get("required") {
            required.extend(names.iter().filter_map(Value::as_str));
        }
        if let Some(Value::Array(parts)) = map.get("allOf") {
            for part in parts {
                let (target, n) = self.converter.enter(part);
                *pushed += n;
                if !self.collect(target, properties, required, pushed, level + 1) {
                    return false;
                }
            }
        }
        map.contains_key("properties") || map.contains_key("allOf")
    }

    /// The input schema within the core's limits: as it is, or without the
    /// nested descriptions and examples, or not at all.
    fn fit(&mut self, label: &str, schema: JsonObject) -> Result<JsonObject, String> {
        let mut value = Value::Object(schema);
        if depth(&value) > MAX_SCHEMA_DEPTH {
            return Err("the input schema nests too deeply".to_owned());
        }
        let size = value.to_string().len();
        if size <= MAX_SCHEMA_BYTES {
            return Ok(into_object(value));
        }
        if let Some(Value::Object(properties)) = value.get_mut("properties") {
            for schema in properties.values_mut() {
                strip_annotations(schema, true);
            }
        }
        let reduced = value.to_string().len();
        if reduced > MAX_SCHEMA_BYTES {
            return Err(format!(
                "the input schema is {size} bytes, more than the limit of {MAX_SCHEMA_BYTES}"
            ));
        }
        self.warnings.push(ImportWarning::SchemaSimplified {
            operation: label.to_owned(),
            reason: format!(
                "nested descriptions and examples were left out to fit {MAX_SCHEMA_BYTES} bytes"
            ),
        });
        Ok(into_object(value))
    }

    fn notes(&mut self, label: &str, notes: Notes) {
        let mut reasons = Vec::new();
        if !notes.cycles.is_empty() {
            let names: Vec<_> = notes.cycles.into_iter().collect();
            reasons.push(format!(
                "the recursive schema(s) {} were cut where they repeat",
                names.join(", ")
            ));
        }
        if notes.truncated {
            reasons.push("parts nested too deeply or too large were loosened".to_owned());
        }
        if !notes.unresolved.is_empty() {
            let refs: Vec<_> = notes.unresolved.into_iter().collect();
            reasons.push(format!("references not followed: {}", refs.join("; ")));
        }
        if !reasons.is_empty() {
            self.warnings.push(ImportWarning::SchemaSimplified {
                operation: label.to_owned(),
                reason: reasons.join("; "),
            });
        }
        if notes.sanitized {
            self.warnings.push(ImportWarning::TextSanitized {
                location: label.to_owned(),
            });
        }
    }

    fn texts(&mut self, route: &Route<'_>, label: &str) -> (Option<String>, String) {
        let summary = route.op.get("summary").and_then(Value::as_str);
        let description = route.op.get("description").and_then(Value::as_str);
        let mut sanitized = false;
        let mut clean = |text: Option<&str>, max: usize| {
            let (out, changed) = clean_text(text?, max);
            sanitized |= changed;
            out
        };
        let title = clean(summary.map(|s| s.lines().next().unwrap_or(s)), MAX_TITLE);
        let mut text = clean(description, MAX_DESCRIPTION_CHARS)
            .or_else(|| clean(summary, MAX_DESCRIPTION_CHARS))
            .unwrap_or_else(|| {
                format!(
                    "Calls {} {}.",
                    route.method.to_ascii_uppercase(),
                    route.path
                )
            });
        if route.op.get("deprecated") == Some(&Value::Bool(true))
            && text.chars().count() + 12 <= MAX_DESCRIPTION_CHARS
        {
            text = format!("Deprecated. {text}");
        }
        if sanitized {
            self.warnings.push(ImportWarning::TextSanitized {
                location: label.to_owned(),
            });
        }
        (title, text)
    }

    fn tool_name(&mut self, route: &Route<'_>) -> String {
        let base = route
            .id
            .and_then(tool_name_from)
            .unwrap_or_else(|| tool_name_from_route(route.method, route.path));
        unique(&base, MAX_TOOL_NAME, &mut self.tool_names)
    }
}

fn url_text(raw: &str, base: &Option<Url>) -> String {
    match base {
        Some(base) => base.to_string(),
        None => raw.to_owned(),
    }
}

/// A server URL with `{variable}`s replaced by their defaults.
fn substitute(raw: &str, variables: Option<&Value>) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        out.push_str(&rest[..open]);
        let name = &rest[open + 1..close];
        let variable = variables.and_then(|v| v.get(name));
        let value = variable
            .and_then(|v| v.get("default"))
            .and_then(Value::as_str)
            .or_else(|| {
                variable
                    .and_then(|v| v.get("enum"))
                    .and_then(Value::as_array)
                    .and_then(|e| e.first())
                    .and_then(Value::as_str)
            });
        match value {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[open..=close]),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The media type without parameters, lowercase.
fn media_type(raw: &str) -> String {
    raw.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_json(raw: &str) -> bool {
    let t = media_type(raw);
    t == "application/json" || t.ends_with("+json") || t == "text/json"
}

fn has_type(schema: &Value, wanted: &str) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == wanted,
        Some(Value::Array(ts)) => ts.iter().any(|t| t == wanted),
        _ => false,
    }
}

fn is_object_schema(schema: &Value) -> bool {
    has_type(schema, "object") || schema.get("properties").is_some()
}

fn is_array_schema(schema: &Value) -> bool {
    has_type(schema, "array")
}

/// A string schema standing for a comma-separated list of what the array
/// schema's items allow; an enumeration of items becomes a pattern.
fn comma_separated(array: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".to_owned(), Value::from("string"));
    let items = array.get("items");
    let values: Option<Vec<String>> = items
        .and_then(|i| i.get("enum"))
        .and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
                .collect()
        });
    let mut description = array
        .get("description")
        .and_then(Value::as_str)
        .map(|d| format!("{} ", d.trim_end()))
        .unwrap_or_default();
    match &values {
        Some(values) if !values.is_empty() => {
            let alternatives = values
                .iter()
                .map(|v| regex_escape(v))
                .collect::<Vec<_>>()
                .join("|");
            out.insert(
                "pattern".to_owned(),
                Value::String(format!("^(?:{alternatives})(?:,(?:{alternatives}))*$")),
            );
            description.push_str(&format!("Comma-separated list of: {}.", values.join(", ")));
        }
        _ => description.push_str("Comma-separated list."),
    }
    let (description, _) = clean_text(&description, MAX_DESCRIPTION_CHARS);
    if let Some(description) = description {
        out.insert("description".to_owned(), Value::String(description));
    }
    if let Some(Value::Number(n)) = array.get("minItems")
        && n.as_u64().is_some_and(|n| n > 0)
    {
        out.insert("minLength".to_owned(), Value::from(1));
    }
    Value::Object(out)
}

/// Escapes the characters that are special in ECMAScript regular expressions.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Removes `description`, `title` and `examples` below this schema (and on
/// it unless `keep_top`).
fn strip_annotations(schema: &mut Value, keep_top: bool) {
    match schema {
        Value::Object(map) => {
            if !keep_top {
                map.remove("description");
                map.remove("title");
            }
            map.remove("examples");
            for (key, value) in map.iter_mut() {
                if matches!(key.as_str(), "enum" | "const" | "default") {
                    continue;
                }
                strip_annotations(value, false);
            }
        }
        Value::Array(items) => {
            for item in items {
                strip_annotations(item, false);
            }
        }
        _ => {}
    }
}

fn into_object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

fn annotations(method: HttpMethod) -> ToolAnnotations {
    let (read_only, destructive, idempotent) = match method {
        HttpMethod::Get => (true, false, true),
        HttpMethod::Put => (false, true, true),
        HttpMethod::Delete => (false, true, true),
        HttpMethod::Post | HttpMethod::Patch => (false, false, false),
    };
    ToolAnnotations {
        read_only: Some(read_only),
        destructive: (!read_only).then_some(destructive),
        idempotent: Some(idempotent),
        open_world: Some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_variables_take_defaults() {
        let vars = json!({"region": {"default": "eu"}, "v": {"enum": ["2", "1"]}});
        assert_eq!(
            substitute("https://{region}.example.com/{v}", Some(&vars)),
            "https://eu.example.com/2"
        );
    }

    #[test]
    fn arrays_become_patterns() {
        let out = comma_separated(&json!({"type": "array", "items": {"enum": ["a.b", "c"]}}));
        assert_eq!(out["pattern"], "^(?:a\\.b|c)(?:,(?:a\\.b|c))*$");
        assert_eq!(out["type"], "string");
    }
}
