//! Coolify's OpenAPI document as a request checker: which paths, methods,
//! parameters and bodies it allows, and which answers it promises.
//!
//! Schemas are checked with the `jsonschema` crate (draft 2020-12, the
//! dialect of OpenAPI 3.1). Two adjustments make the document say what
//! Coolify does:
//!
//! - `nullable: true`, an OpenAPI 3.0 keyword the document still uses, is
//!   turned into a `null` member of the schema's `type`;
//! - a request body object takes no field its schema does not declare
//!   (`additionalProperties: false` is added where the document is silent),
//!   since Coolify answers 422 "This field is not allowed." to one.
//!
//! An answer is checked against the operation's declared responses, and
//! 404 and 422 are accepted for every operation (in the shapes of
//! `components/responses`): Coolify answers them everywhere, although the
//! document declares them on some operations only.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use jsonschema::{Draft, Validator};
use serde_json::{Map, Value};

/// A document that cannot be used as a checker.
#[derive(Debug, thiserror::Error)]
#[error("the OpenAPI document is unusable: {0}")]
pub struct DocumentError(String);

/// The operations of an OpenAPI 3.1 document, ready to check requests.
pub(crate) struct Document {
    /// The path of the first server URL, e.g. `/api/v1`, which requests carry first.
    prefix: String,
    paths: Vec<PathItem>,
    components: Value,
    /// Answers Coolify gives to any operation although not every operation
    /// declares them: 404 (a resource named in the request is missing) and
    /// 422 (Laravel's validation), in the shapes of `components/responses`.
    generic: BTreeMap<String, Option<Value>>,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

struct PathItem {
    template: String,
    segments: Vec<Segment>,
    operations: BTreeMap<String, Operation>,
}

enum Segment {
    Literal(String),
    Param(String),
}

/// One operation of the document.
pub(crate) struct Operation {
    pub(crate) id: String,
    parameters: Vec<Parameter>,
    body: Option<Body>,
    /// Status code (or `default`) → the JSON schema of the answer, if the document gives one.
    responses: BTreeMap<String, Option<Value>>,
    secured: bool,
}

struct Parameter {
    name: String,
    location: String,
    required: bool,
    schema: Value,
}

struct Body {
    required: bool,
    schema: Option<Value>,
}

/// A request the document allows, with what was read from it.
pub(crate) struct Matched<'d> {
    pub(crate) operation: &'d Operation,
    pub(crate) path_params: BTreeMap<String, String>,
    pub(crate) body: Option<Value>,
}

/// The parts of a request the checker looks at.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: &'a [(String, String)],
    pub(crate) authorization: Option<&'a str>,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) body: &'a [u8],
}

impl Document {
    /// Reads the document's paths, operations and components.
    pub(crate) fn new(document: &Value) -> Result<Self, DocumentError> {
        let version = document
            .get("openapi")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !version.starts_with("3.") {
            return Err(DocumentError(format!(
                "not OpenAPI 3 (openapi: {version:?})"
            )));
        }
        let prefix = document
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .and_then(|u| url::Url::parse(u).ok())
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let global_security = document
            .get("security")
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty());
        let Some(Value::Object(path_map)) = document.get("paths") else {
            return Err(DocumentError("no `paths`".into()));
        };
        let mut paths = Vec::new();
        for (template, item) in path_map {
            let segments = template
                .trim_start_matches('/')
                .split('/')
                .map(
                    |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => Segment::Param(name.to_owned()),
                        None => Segment::Literal(s.to_owned()),
                    },
                )
                .collect();
            let shared = item.get("parameters").cloned().unwrap_or(Value::Null);
            let mut operations = BTreeMap::new();
            for method in [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ] {
                let Some(op) = item.get(method) else { continue };
                let operation =
                    read_operation(document, template, method, op, &shared, global_security)?;
                operations.insert(method.to_owned(), operation);
            }
            paths.push(PathItem {
                template: template.clone(),
                segments,
                operations,
            });
        }
        let mut components = document.get("components").cloned().unwrap_or(Value::Null);
        adjust(&mut components, false);
        let mut generic = BTreeMap::new();
        for code in ["404", "422"] {
            if let Some(response) = components.pointer(&format!("/responses/{code}")) {
                let schema = response
                    .pointer("/content/application~1json/schema")
                    .cloned();
                generic.insert(code.to_owned(), schema);
            }
        }
        Ok(Self {
            prefix,
            paths,
            components,
            generic,
            validators: Mutex::new(HashMap::new()),
        })
    }

    /// How many templated paths the document has.
    pub(crate) fn path_count(&self) -> usize {
        self.paths.len()
    }

    /// Checks a request against the document; every problem is returned.
    pub(crate) fn check<'d>(&'d self, request: &Request<'_>) -> Result<Matched<'d>, Vec<String>> {
        let Some(rest) = request.path.strip_prefix(&self.prefix) else {
            return Err(vec![format!(
                "the path is not under the API prefix {}",
                self.prefix
            )]);
        };
        let Some((item, path_params)) = self.find(rest) else {
            return Err(vec![format!("no path of the document matches {rest}")]);
        };
        let method = request.method.to_ascii_lowercase();
        let Some(operation) = item.operations.get(&method) else {
            let allowed: Vec<&str> = item.operations.keys().map(String::as_str).collect();
            return Err(vec![format!(
                "{} is not an operation of {} (the document has {})",
                request.method.to_ascii_uppercase(),
                item.template,
                allowed.join(", ")
            )]);
        };
        let mut problems = Vec::new();
        if operation.secured {
            let bearer = request
                .authorization
                .and_then(|h| h.split_once(' '))
                .filter(|(scheme, token)| {
                    scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()
                });
            if bearer.is_none() {
                problems.push(
                    "the operation requires bearer authentication and none was sent".to_owned(),
                );
            }
        }
        for param in &operation.parameters {
            match param.location.as_str() {
                "path" => {
                    if let Some(Err(problem)) = path_params
                        .get(&param.name)
                        .map(|value| check_scalar(value, &param.schema))
                    {
                        problems.push(format!("path parameter `{}`: {problem}", param.name));
                    }
                }
                "query" => {
                    let given = request.query.iter().filter(|(k, _)| *k == param.name);
                    let mut any = false;
                    for (_, value) in given {
                        any = true;
                        if let Err(problem) = check_scalar(value, &param.schema) {
                            problems.push(format!("query parameter `{}`: {problem}", param.name));
                        }
                    }
                    if param.required && !any {
                        problems.push(format!(
                            "the required query parameter `{}` is missing",
                            param.name
                        ));
                    }
                }
                _ => {}
            }
        }
        for (name, _) in request.query {
            let declared = operation
                .parameters
                .iter()
                .any(|p| p.location == "query" && p.name == *name);
            if !declared {
                problems.push(format!("the query parameter `{name}` is not declared"));
            }
        }
        let body = self.check_body(operation, request, &mut problems);
        if problems.is_empty() {
            Ok(Matched {
                operation,
                path_params,
                body,
            })
        } else {
            Err(problems)
        }
    }

    fn check_body(
        &self,
        operation: &Operation,
        request: &Request<'_>,
        problems: &mut Vec<String>,
    ) -> Option<Value> {
        let present = !request.body.iter().all(u8::is_ascii_whitespace);
        let Some(spec) = &operation.body else {
            if present {
                problems.push("the operation takes no request body and one was sent".to_owned());
            }
            return None;
        };
        if !present {
            if spec.required {
                problems.push("the operation requires a JSON body and none was sent".to_owned());
            }
            return None;
        }
        let json_type = request
            .content_type
            .and_then(|c| c.split(';').next())
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
        if !json_type {
            problems.push(format!(
                "the body must be sent as application/json, not {:?}",
                request.content_type.unwrap_or("no content type")
            ));
        }
        let value: Value = match serde_json::from_slice(request.body) {
            Ok(value) => value,
            Err(e) => {
                problems.push(format!("the body is not JSON: {e}"));
                return None;
            }
        };
        if let Some(schema) = &spec.schema {
            let key = format!("{} request", operation.id);
            match self.validator(&key, schema) {
                Ok(validator) => {
                    for error in validator.iter_errors(&value) {
                        problems.push(format!(
                            "body {}: {}",
                            pointer(error.instance_path().as_str()),
                            error.masked()
                        ));
                    }
                }
                Err(problem) => problems.push(problem),
            }
        }
        Some(value)
    }

    /// Checks an answer against what the document promises for the operation.
    pub(crate) fn check_answer(
        &self,
        operation: &Operation,
        status: u16,
        body: &Value,
    ) -> Vec<String> {
        let code = status.to_string();
        let declared = operation
            .responses
            .get(&code)
            .or_else(|| operation.responses.get("default"))
            .or_else(|| self.generic.get(&code));
        let schema = match declared {
            Some(schema) => schema,
            None => {
                let declared: Vec<&str> = operation.responses.keys().map(String::as_str).collect();
                return vec![format!(
                    "the fake answered {status}, which the document does not declare for {} ({})",
                    operation.id,
                    declared.join(", ")
                )];
            }
        };
        let Some(schema) = schema else {
            return Vec::new();
        };
        let key = format!("{} {code}", operation.id);
        match self.validator(&key, schema) {
            Ok(validator) => validator
                .iter_errors(body)
                .map(|e| {
                    format!(
                        "the fake's {status} answer {}: {}",
                        pointer(e.instance_path().as_str()),
                        e.masked()
                    )
                })
                .collect(),
            Err(problem) => vec![problem],
        }
    }

    fn find(&self, path: &str) -> Option<(&PathItem, BTreeMap<String, String>)> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut best: Option<(usize, &PathItem, BTreeMap<String, String>)> = None;
        for item in &self.paths {
            if item.segments.len() != parts.len() {
                continue;
            }
            let mut params = BTreeMap::new();
            let mut literals = 0;
            let matches = item
                .segments
                .iter()
                .zip(&parts)
                .all(|(segment, part)| match segment {
                    Segment::Literal(text) => {
                        literals += 1;
                        text == part
                    }
                    Segment::Param(name) => {
                        let decoded = percent_decode(part);
                        params.insert(name.clone(), decoded);
                        !part.is_empty()
                    }
                });
            // The most literal template wins: `/applications/dockerimage` over `/applications/{uuid}`.
            if matches && best.as_ref().is_none_or(|(n, _, _)| literals > *n) {
                best = Some((literals, item, params));
            }
        }
        best.map(|(_, item, params)| (item, params))
    }

    fn validator(&self, key: &str, schema: &Value) -> Result<Arc<Validator>, String> {
        let mut cache = self
            .validators
            .lock()
            .map_err(|_| "the validator cache is poisoned".to_owned())?;
        if let Some(validator) = cache.get(key) {
            return Ok(Arc::clone(validator));
        }
        // The schema is checked as the root of a document that also holds
        // `components`, so the document's `#/components/...` references resolve.
        let mut root = match schema {
            Value::Object(map) => map.clone(),
            other => {
                let mut map = Map::new();
                map.insert("allOf".into(), Value::Array(vec![other.clone()]));
                map
            }
        };
        root.insert("components".into(), self.components.clone());
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .build(&Value::Object(root))
            .map_err(|e| format!("the document's schema for {key} does not compile: {e}"))?;
        let validator = Arc::new(validator);
        cache.insert(key.to_owned(), Arc::clone(&validator));
        Ok(validator)
    }
}

fn read_operation(
    document: &Value,
    template: &str,
    method: &str,
    op: &Value,
    shared: &Value,
    global_security: bool,
) -> Result<Operation, DocumentError> {
    let id = op
        .get("operationId")
        .and_then(Value::as_str)
        .map_or_else(|| format!("{method} {template}"), str::to_owned);
    let mut parameters = Vec::new();
    let declared = shared.as_array().into_iter().flatten().chain(
        op.get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    );
    for param in declared {
        let param = resolve(document, param)?;
        let (Some(name), Some(location)) = (
            param.get("name").and_then(Value::as_str),
            param.get("in").and_then(Value::as_str),
        ) else {
            return Err(DocumentError(format!(
                "a parameter of {id} has no name or location"
            )));
        };
        let mut schema = param.get("schema").cloned().unwrap_or(Value::Bool(true));
        adjust(&mut schema, false);
        parameters.push(Parameter {
            name: name.to_owned(),
            location: location.to_owned(),
            required: param
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(location == "path"),
            schema,
        });
    }
    let body = match op.get("requestBody") {
        Some(body) => {
            let body = resolve(document, body)?;
            let mut schema = body.pointer("/content/application~1json/schema").cloned();
            if let Some(schema) = &mut schema {
                adjust(schema, true);
            }
            Some(Body {
                required: body
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                schema,
            })
        }
        None => None,
    };
    let mut responses = BTreeMap::new();
    if let Some(Value::Object(map)) = op.get("responses") {
        for (code, response) in map {
            let response = resolve(document, response)?;
            let mut schema = response
                .pointer("/content/application~1json/schema")
                .cloned();
            if let Some(schema) = &mut schema {
                adjust(schema, false);
            }
            responses.insert(code.clone(), schema);
        }
    }
    let secured = match op.get("security") {
        Some(Value::Array(requirements)) => !requirements.is_empty(),
        _ => global_security,
    };
    Ok(Operation {
        id,
        parameters,
        body,
        responses,
        secured,
    })
}

/// Follows a `$ref` to a reusable object (parameter, body, response) in the document.
fn resolve<'a>(document: &'a Value, value: &'a Value) -> Result<&'a Value, DocumentError> {
    let mut current = value;
    for _ in 0..8 {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            return Ok(current);
        };
        let Some(pointer) = reference.strip_prefix('#') else {
            return Err(DocumentError(format!("external reference {reference}")));
        };
        current = document
            .pointer(pointer)
            .ok_or_else(|| DocumentError(format!("dangling reference {reference}")))?;
    }
    Err(DocumentError("a reference chain longer than 8".into()))
}

/// Makes an OpenAPI schema a JSON Schema that says what Coolify checks (see the module docs).
fn adjust(schema: &mut Value, strict: bool) {
    match schema {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                match map.get_mut("type") {
                    Some(Value::String(t)) => {
                        let t = Value::String(t.clone());
                        map.insert("type".into(), Value::Array(vec![t, "null".into()]));
                    }
                    Some(Value::Array(types)) if !types.contains(&Value::from("null")) => {
                        types.push("null".into())
                    }
                    _ => {}
                }
                if let Some(Value::Array(values)) = map.get_mut("enum") {
                    values.push(Value::Null);
                }
            }
            if strict && map.contains_key("properties") && !map.contains_key("additionalProperties")
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (key, value) in map.iter_mut() {
                // Examples and defaults are data, not schemas.
                if matches!(
                    key.as_str(),
                    "example" | "examples" | "default" | "enum" | "const"
                ) {
                    continue;
                }
                adjust(value, strict);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| adjust(v, strict)),
        _ => {}
    }
}

/// Checks a path or query value against a scalar schema.
fn check_scalar(value: &str, schema: &Value) -> Result<(), String> {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()),
    };
    let fits = |t: &str| match t {
        "boolean" => matches!(value, "true" | "false"),
        "integer" => value.parse::<i64>().is_ok(),
        "number" => value.parse::<f64>().is_ok(),
        "string" => true,
        "null" => value.is_empty(),
        _ => true,
    };
    if types.iter().any(|t| fits(t)) {
        Ok(())
    } else {
        Err(format!("{value:?} is not of type {}", types.join(" or ")))
    }
}

fn pointer(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn document() -> Document {
        let doc = json!({
            "openapi": "3.1.0",
            "servers": [{"url": "https://x.example/api/v1"}],
            "paths": {
                "/things": {"post": {
                    "operationId": "create-thing",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}, "port": {"type": "string", "nullable": true},
                                        "tags": {"type": "array", "items": {"type": "string"}}},
                        "type": "object"}}}},
                    "responses": {"201": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                                  "401": {"$ref": "#/components/responses/401"}},
                    "security": [{"bearerAuth": []}]}},
                "/things/{uuid}": {"get": {
                    "operationId": "get-thing",
                    "parameters": [{"name": "uuid", "in": "path", "required": true, "schema": {"type": "string"}},
                                   {"name": "lines", "in": "query", "schema": {"type": "integer"}}],
                    "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}},
                    "security": [{"bearerAuth": []}]}},
                "/things/special": {"get": {"operationId": "special", "responses": {"200": {}}}}
            },
            "components": {
                "schemas": {"Thing": {"type": "object", "properties": {"uuid": {"type": "string"}, "size": {"type": "integer", "nullable": true}}}},
                "responses": {"401": {"description": "no", "content": {"application/json": {"schema": {"properties": {"message": {"type": "string"}}, "type": "object"}}}}}
            }
        });
        Document::new(&doc).unwrap()
    }

    fn request<'a>(
        method: &'a str,
        path: &'a str,
        query: &'a [(String, String)],
        body: &'a [u8],
    ) -> Request<'a> {
        Request {
            method,
            path,
            query,
            authorization: Some("Bearer abc"),
            content_type: Some("application/json"),
            body,
        }
    }

    #[test]
    fn accepts_what_the_document_allows() {
        let doc = document();
        let matched = doc
            .check(&request(
                "POST",
                "/api/v1/things",
                &[],
                br#"{"name": "a", "port": null, "tags": ["x"]}"#,
            ))
            .unwrap();
        assert_eq!(matched.operation.id, "create-thing");
        let query = [("lines".to_owned(), "10".to_owned())];
        let matched = doc
            .check(&request("GET", "/api/v1/things/u1", &query, b""))
            .unwrap();
        assert_eq!(matched.path_params["uuid"], "u1");
        assert_eq!(
            doc.check(&request("GET", "/api/v1/things/special", &[], b""))
                .unwrap()
                .operation
                .id,
            "special"
        );
    }

    #[test]
    fn refuses_what_it_does_not() {
        let doc = document();
        let problems = |r: Request<'_>| doc.check(&r).err().unwrap_or_default().join(" | ");
        assert!(problems(request("GET", "/api/v1/nothing", &[], b"")).contains("no path"));
        assert!(
            problems(request("DELETE", "/api/v1/things", &[], b"")).contains("not an operation")
        );
        assert!(problems(request("GET", "/things", &[], b"")).contains("prefix"));
        let wrong_type = problems(request("POST", "/api/v1/things", &[], br#"{"name": 5}"#));
        assert!(wrong_type.contains("/name"), "{wrong_type}");
        assert!(
            problems(request("POST", "/api/v1/things", &[], br#"{"port": "1"}"#)).contains("name")
        );
        assert!(
            problems(request(
                "POST",
                "/api/v1/things",
                &[],
                br#"{"name": "a", "nmae": "b"}"#
            ))
            .contains("nmae")
        );
        assert!(
            problems(request("POST", "/api/v1/things", &[], b"")).contains("requires a JSON body")
        );
        let query = [("line".to_owned(), "10".to_owned())];
        assert!(
            problems(request("GET", "/api/v1/things/u1", &query, b""))
                .contains("`line` is not declared")
        );
        let query = [("lines".to_owned(), "ten".to_owned())];
        assert!(problems(request("GET", "/api/v1/things/u1", &query, b"")).contains("integer"));
        let mut anonymous = request("GET", "/api/v1/things/u1", &[], b"");
        anonymous.authorization = None;
        assert!(problems(anonymous).contains("bearer"));
        assert!(
            problems(request("GET", "/api/v1/things/u1", &[], b"{}"))
                .contains("takes no request body")
        );
    }

    #[test]
    fn checks_answers_against_the_document() {
        let doc = document();
        let matched = doc
            .check(&request("GET", "/api/v1/things/u1", &[], b""))
            .unwrap();
        assert!(
            doc.check_answer(matched.operation, 200, &json!({"uuid": "u1", "size": null}))
                .is_empty()
        );
        assert!(
            !doc.check_answer(matched.operation, 200, &json!({"uuid": 1}))
                .is_empty()
        );
        assert!(
            !doc.check_answer(matched.operation, 201, &json!({}))
                .is_empty()
        );
    }

    #[test]
    fn coolify_document_is_read_whole_and_every_schema_compiles() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/coolify/openapi.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let doc = Document::new(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(doc.path_count(), 192);
        assert_eq!(doc.prefix, "/api/v1");
        let mut compiled = 0;
        for item in &doc.paths {
            for operation in item.operations.values() {
                if let Some(Body {
                    schema: Some(schema),
                    ..
                }) = &operation.body
                {
                    doc.validator(&format!("{} request", operation.id), schema)
                        .unwrap();
                    compiled += 1;
                }
                for (code, schema) in &operation.responses {
                    if let Some(schema) = schema {
                        doc.validator(&format!("{} {code}", operation.id), schema)
                            .unwrap();
                        compiled += 1;
                    }
                }
            }
        }
        assert!(compiled > 400, "{compiled}");
        // A reference into `components` is followed: an application without a string uuid fails.
        let get = doc.check(&Request {
            method: "GET",
            path: "/api/v1/applications/abc",
            query: &[],
            authorization: Some("Bearer t"),
            content_type: None,
            body: b"",
        });
        let operation = get.ok().unwrap().operation;
        assert_eq!(operation.id, "get-application-by-uuid");
        assert!(
            doc.check_answer(
                operation,
                200,
                &json!({"uuid": "a", "status": "running:healthy"})
            )
            .is_empty()
        );
        assert!(
            !doc.check_answer(operation, 200, &json!({"uuid": 7}))
                .is_empty()
        );
    }

    #[test]
    fn body_errors_do_not_echo_values() {
        let doc = document();
        let problems = doc
            .check(&request(
                "POST",
                "/api/v1/things",
                &[],
                br#"{"name": ["sk-secret-value"]}"#,
            ))
            .err()
            .unwrap()
            .join(" ");
        assert!(!problems.contains("sk-secret-value"), "{problems}");
    }
}
