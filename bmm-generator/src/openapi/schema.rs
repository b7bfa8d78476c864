//! OpenAPI schema objects to self-contained JSON Schema (draft 2020-12).
//!
//! `$ref`s are inlined; a reference met again inside its own expansion (a
//! cycle) is cut there and replaced by a permissive schema that keeps only the
//! type. Nesting is bounded by a depth budget counted the way the core counts
//! `MAX_SCHEMA_DEPTH` (levels of JSON objects and arrays), so what comes out
//! always fits; keywords that would go deeper are dropped, which loosens the
//! schema rather than failing it. OpenAPI 3.0's own keywords are rewritten
//! (`nullable`, boolean `exclusiveMinimum`/`exclusiveMaximum`, `example`), and
//! keywords without meaning in a tool's input schema (`discriminator`, `xml`,
//! `externalDocs`, extensions, `$id`, …) are left out.

use std::collections::BTreeSet;

use bmm_core::spec::MAX_DESCRIPTION_CHARS;
use serde_json::{Map, Value};

use super::document::{self, OpenApiVersion};
use super::names::clean_text;

/// Keywords whose value is one subschema.
const ONE_SCHEMA: [&str; 9] = [
    "items",
    "additionalProperties",
    "not",
    "propertyNames",
    "contains",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
];
/// Keywords whose value maps names to subschemas.
const SCHEMA_MAP: [&str; 3] = ["properties", "patternProperties", "dependentSchemas"];
/// Keywords whose value is a list of subschemas.
const SCHEMA_LIST: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value is a non-negative integer.
const COUNTS: [&str; 8] = [
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minContains",
    "maxContains",
];
/// Keywords whose value is a number.
const NUMBERS: [&str; 2] = ["minimum", "maximum"];
/// Keywords whose value is a boolean.
const FLAGS: [&str; 4] = ["uniqueItems", "readOnly", "writeOnly", "deprecated"];
/// Keywords whose value is a string, copied as they are.
const STRINGS: [&str; 4] = ["format", "pattern", "contentMediaType", "contentEncoding"];
/// Keywords whose value is any JSON value, copied when it fits the depth budget.
const VALUES: [&str; 4] = ["enum", "const", "default", "examples"];
/// The JSON Schema type names.
const TYPES: [&str; 7] = [
    "string", "number", "integer", "boolean", "object", "array", "null",
];

/// JSON nesting depth, counted as `bmm_core` counts it.
pub(crate) fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// What happened while converting schemas, for warnings.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    /// Names of references whose cycle was cut.
    pub(crate) cycles: BTreeSet<String>,
    /// Keywords were dropped to keep within the depth budget.
    pub(crate) truncated: bool,
    /// References that could not be followed, with why.
    pub(crate) unresolved: BTreeSet<String>,
    /// Descriptions changed to pass the static checks.
    pub(crate) sanitized: bool,
}

/// Converts schemas of one document.
pub(crate) struct Converter<'a> {
    document: &'a Value,
    version: OpenApiVersion,
    /// References being expanded, innermost last.
    stack: Vec<String>,
    /// Schema objects produced since the last [`Converter::reset`].
    work: usize,
    /// What happened, reset by the caller per operation.
    pub(crate) notes: Notes,
}

/// Most schema objects produced for one operation: inlining references can
/// multiply a document's size, and anything near this is far over
/// `MAX_SCHEMA_BYTES` anyway.
const MAX_WORK: usize = 20_000;

impl<'a> Converter<'a> {
    /// A converter over `document`.
    pub(crate) fn new(document: &'a Value, version: OpenApiVersion) -> Self {
        Self {
            document,
            version,
            stack: Vec::new(),
            work: 0,
            notes: Notes::default(),
        }
    }

    /// Starts a new operation: the notes and the work count start afresh.
    pub(crate) fn reset(&mut self) -> Notes {
        self.work = 0;
        self.stack.clear();
        std::mem::take(&mut self.notes)
    }

    /// Follows the `$ref` chain of `schema` to an object without one (the
    /// top of a request body), recording the references on the stack so that
    /// anything inside referring back is cut. Returns the target and how many
    /// references were pushed; call [`Converter::leave`] with that number.
    pub(crate) fn enter(&mut self, schema: &'a Value) -> (&'a Value, usize) {
        let mut current = schema;
        let mut pushed = 0;
        while let Some(reference) = document::ref_of(current) {
            if self.stack.iter().any(|r| r == reference) || pushed >= 32 {
                break;
            }
            match document::lookup(self.document, reference) {
                Ok(target) => {
                    self.stack.push(reference.to_owned());
                    pushed += 1;
                    current = target;
                }
                Err(problem) => {
                    self.notes.unresolved.insert(problem.to_string());
                    return (&Value::Null, pushed);
                }
            }
        }
        (current, pushed)
    }

    /// Undoes `pushed` references of [`Converter::enter`].
    pub(crate) fn leave(&mut self, pushed: usize) {
        for _ in 0..pushed {
            self.stack.pop();
        }
    }

    /// `schema` as self-contained JSON Schema of at most `budget` levels.
    pub(crate) fn convert(&mut self, schema: &Value, budget: usize) -> Value {
        match schema {
            Value::Bool(b) => Value::Bool(*b),
            Value::Object(map) if self.work >= MAX_WORK => {
                self.notes.truncated = true;
                permissive(schema)
            }
            Value::Object(map) => match map.get("$ref").and_then(Value::as_str) {
                Some(reference) => self.reference(reference, map, budget),
                None => Value::Object(self.object(map, budget)),
            },
            _ => Value::Object(Map::new()),
        }
    }

    fn reference(
        &mut self,
        reference: &str,
        siblings: &Map<String, Value>,
        budget: usize,
    ) -> Value {
        let target = match document::lookup(self.document, reference) {
            Ok(target) => target,
            Err(problem) => {
                self.notes.unresolved.insert(problem.to_string());
                return Value::Object(Map::new());
            }
        };
        let mut out = if self.stack.iter().any(|r| r == reference) {
            self.notes.cycles.insert(short_name(reference));
            permissive(target)
        } else if self.stack.len() >= 64 {
            self.notes.truncated = true;
            permissive(target)
        } else {
            self.stack.push(reference.to_owned());
            let converted = self.convert(target, budget);
            self.stack.pop();
            converted
        };
        // Annotations beside a `$ref` (allowed in 3.1) describe this use of it.
        if let Value::Object(out) = &mut out {
            for key in ["description", "title"] {
                if let Some(text) = siblings.get(key).and_then(Value::as_str) {
                    match self.text(text) {
                        Some(text) => out.insert(key.to_owned(), Value::String(text)),
                        None => out.remove(key),
                    };
                }
            }
        }
        out
    }

    fn text(&mut self, text: &str) -> Option<String> {
        let (cleaned, changed) = clean_text(text, MAX_DESCRIPTION_CHARS);
        self.notes.sanitized |= changed;
        cleaned
    }

    fn object(&mut self, map: &Map<String, Value>, budget: usize) -> Map<String, Value> {
        self.work += 1;
        let mut out = Map::new();
        let v30 = self.version == OpenApiVersion::V3_0;
        for (key, value) in map {
            let key = key.as_str();
            if ONE_SCHEMA.contains(&key) {
                if budget < 2 {
                    self.notes.truncated = true;
                } else if value.is_object() || value.is_boolean() {
                    out.insert(key.to_owned(), self.convert(value, budget - 1));
                }
            } else if SCHEMA_MAP.contains(&key) || SCHEMA_LIST.contains(&key) {
                if budget < 3 {
                    self.notes.truncated = true;
                    continue;
                }
                match value {
                    Value::Object(items) if SCHEMA_MAP.contains(&key) => {
                        let converted = items
                            .iter()
                            .filter(|(name, _)| key != "patternProperties" || is_regex(name))
                            .map(|(name, item)| (name.clone(), self.convert(item, budget - 2)))
                            .collect();
                        out.insert(key.to_owned(), Value::Object(converted));
                    }
                    Value::Array(items) if SCHEMA_LIST.contains(&key) && !items.is_empty() => {
                        let converted = items
                            .iter()
                            .map(|item| self.convert(item, budget - 2))
                            .collect();
                        out.insert(key.to_owned(), Value::Array(converted));
                    }
                    _ => {}
                }
            } else if key == "type" {
                match value {
                    Value::String(t) if TYPES.contains(&t.as_str()) => {
                        out.insert(key.to_owned(), value.clone());
                    }
                    Value::Array(ts)
                        if budget >= 2
                            && !ts.is_empty()
                            && ts
                                .iter()
                                .all(|t| t.as_str().is_some_and(|t| TYPES.contains(&t))) =>
                    {
                        let mut unique: Vec<Value> = Vec::new();
                        for t in ts {
                            if !unique.contains(t) {
                                unique.push(t.clone());
                            }
                        }
                        out.insert(key.to_owned(), Value::Array(unique));
                    }
                    _ => {}
                }
            } else if key == "required" {
                if let Value::Array(names) = value
                    && budget >= 2
                    && names.iter().all(Value::is_string)
                {
                    let mut unique: Vec<Value> = Vec::new();
                    for n in names {
                        if !unique.contains(n) {
                            unique.push(n.clone());
                        }
                    }
                    out.insert(key.to_owned(), Value::Array(unique));
                }
            } else if key == "description" || key == "title" {
                if let Some(text) = value.as_str().and_then(|t| self.text(t)) {
                    out.insert(key.to_owned(), Value::String(text));
                }
            } else if COUNTS.contains(&key) {
                if value.as_u64().is_some() {
                    out.insert(key.to_owned(), value.clone());
                }
            } else if NUMBERS.contains(&key) || key == "multipleOf" {
                let positive = key != "multipleOf" || value.as_f64().is_some_and(|n| n > 0.0);
                if value.is_number() && positive {
                    out.insert(key.to_owned(), value.clone());
                }
            } else if key == "exclusiveMinimum" || key == "exclusiveMaximum" {
                // 3.1 (and JSON Schema) give a number; 3.0 a flag over minimum/maximum.
                if value.is_number() {
                    out.insert(key.to_owned(), value.clone());
                }
            } else if FLAGS.contains(&key) {
                if value.is_boolean() {
                    out.insert(key.to_owned(), value.clone());
                }
            } else if STRINGS.contains(&key) {
                match value.as_str() {
                    Some(pattern) if key == "pattern" && !is_regex(pattern) => {
                        self.notes.truncated = true;
                    }
                    Some(_) => {
                        out.insert(key.to_owned(), value.clone());
                    }
                    None => {}
                }
            } else if VALUES.contains(&key) {
                let fits = depth(value) < budget;
                let shaped = match key {
                    "enum" | "examples" => value.as_array().is_some_and(|a| !a.is_empty()),
                    _ => true,
                };
                if !fits {
                    self.notes.truncated = true;
                } else if matches!(key, "default" | "examples") && !acceptable(value) {
                    // Annotations only: left out rather than cleaned, as a changed
                    // example would be a wrong one.
                    self.notes.sanitized = true;
                } else if shaped {
                    out.insert(key.to_owned(), value.clone());
                }
            } else if key == "example" && v30 {
                if !acceptable(value) {
                    self.notes.sanitized = true;
                } else if depth(value) + 1 < budget {
                    out.entry("examples")
                        .or_insert_with(|| Value::Array(vec![value.clone()]));
                } else {
                    self.notes.truncated = true;
                }
            }
        }
        if v30 {
            for (flag, bound) in [
                ("exclusiveMinimum", "minimum"),
                ("exclusiveMaximum", "maximum"),
            ] {
                if map.get(flag) == Some(&Value::Bool(true))
                    && let Some(n) = out.remove(bound)
                {
                    out.insert(flag.to_owned(), n);
                }
            }
            if map.get("nullable") == Some(&Value::Bool(true)) {
                nullable(&mut out, budget);
            }
        }
        out
    }
}

/// Whether `pattern` is a regular expression the core's JSON Schema
/// validator accepts.
fn is_regex(pattern: &str) -> bool {
    let schema = serde_json::json!({ "pattern": pattern });
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .is_ok()
}

/// Whether every string and key in `value` passes the core's text checks.
fn acceptable(value: &Value) -> bool {
    let mut out = Vec::new();
    bmm_core::checks::check_json_text(value, &bmm_core::JsonPath::root(), &mut out);
    !out.iter().any(|d| d.severity == bmm_core::Severity::Error)
}

/// Makes a 3.0 `nullable` schema accept `null`.
fn nullable(out: &mut Map<String, Value>, budget: usize) {
    if budget < 2 {
        return;
    }
    if let Some(Value::String(t)) = out.get("type") {
        let types = Value::Array(vec![Value::String(t.clone()), Value::from("null")]);
        out.insert("type".to_owned(), types);
    }
    if let Some(Value::Array(values)) = out.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
}

/// The last segment of a reference: `#/components/schemas/Node` → `Node`.
fn short_name(reference: &str) -> String {
    reference
        .rsplit('/')
        .next()
        .unwrap_or(reference)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect()
}

/// A schema that accepts whatever the cut-off schema accepted: only its type
/// (when it names one) is kept.
fn permissive(target: &Value) -> Value {
    let mut out = Map::new();
    if let Some(Value::String(t)) = target.get("type")
        && TYPES.contains(&t.as_str())
    {
        out.insert("type".to_owned(), Value::String(t.clone()));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rewrites_openapi_3_0_keywords() {
        let doc = json!({});
        let mut cx = Converter::new(&doc, OpenApiVersion::V3_0);
        let out = cx.convert(
            &json!({"type": "integer", "minimum": 1, "exclusiveMinimum": true, "nullable": true,
                "example": 3, "x-internal": true, "xml": {"name": "n"}, "discriminator": {}}),
            30,
        );
        assert_eq!(
            out,
            json!({"type": ["integer", "null"], "exclusiveMinimum": 1, "examples": [3]})
        );
    }

    #[test]
    fn drops_patterns_the_validator_refuses() {
        let doc = json!({});
        let mut cx = Converter::new(&doc, OpenApiVersion::V3_1);
        let out = cx.convert(
            &json!({"type": "string", "pattern": "([", "patternProperties": {"^a": {}, "[": {}}}),
            30,
        );
        assert_eq!(
            out,
            json!({"type": "string", "patternProperties": {"^a": {}}})
        );
        let out = cx.convert(&json!({"pattern": "^[a-z]+$"}), 30);
        assert_eq!(out, json!({"pattern": "^[a-z]+$"}));
    }

    #[test]
    fn cuts_cycles_and_respects_the_budget() {
        let doc = json!({"components": {"schemas": {"Node": {"type": "object", "properties": {
            "value": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}}}});
        let mut cx = Converter::new(&doc, OpenApiVersion::V3_1);
        let out = cx.convert(&json!({"$ref": "#/components/schemas/Node"}), 30);
        assert_eq!(
            out["properties"]["children"]["items"],
            json!({"type": "object"})
        );
        assert!(cx.notes.cycles.contains("Node"));
        for budget in 1..8 {
            let out = cx.convert(&json!({"$ref": "#/components/schemas/Node"}), budget);
            assert!(depth(&out) <= budget, "{budget}: {out}");
        }
    }

    mod properties {
        use proptest::prelude::*;
        use serde_json::{Map, Value, json};

        use super::super::*;

        const KEYS: [&str; 24] = [
            "type",
            "properties",
            "items",
            "allOf",
            "anyOf",
            "oneOf",
            "not",
            "enum",
            "const",
            "required",
            "minimum",
            "exclusiveMinimum",
            "maxLength",
            "pattern",
            "nullable",
            "example",
            "examples",
            "default",
            "description",
            "additionalProperties",
            "$ref",
            "prefixItems",
            "format",
            "x-ext",
        ];

        fn leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i32>().prop_map(Value::from),
                prop_oneof![
                    Just("string".to_owned()),
                    Just("object".to_owned()),
                    Just("#/components/schemas/A".to_owned()),
                    Just("#/components/schemas/B".to_owned()),
                    Just("#/nowhere".to_owned()),
                    Just("([".to_owned()),
                    Just("(".to_owned()),
                    "[a-z(\\[\\\\]{0,4}",
                    ".{0,8}",
                ]
                .prop_map(Value::String),
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            leaf().prop_recursive(6, 64, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    proptest::collection::vec(
                        (
                            proptest::sample::select(&KEYS[..]).prop_map(str::to_owned),
                            inner
                        ),
                        0..5,
                    )
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            /// Whatever a document holds, the converted schema fits the budget
            /// and is a JSON Schema the core's validator compiles.
            #[test]
            fn converted_schemas_fit_and_compile(
                a in value(), b in value(), budget in 1usize..12,
                schema in proptest::collection::vec(
                    (proptest::sample::select(&KEYS[..]).prop_map(str::to_owned), value()),
                    0..6,
                ).prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
                v30 in any::<bool>(),
            ) {
                let doc = json!({"components": {"schemas": {"A": a, "B": b}}});
                let version = if v30 { OpenApiVersion::V3_0 } else { OpenApiVersion::V3_1 };
                let mut cx = Converter::new(&doc, version);
                let out = cx.convert(&schema, budget);
                prop_assert!(depth(&out) <= budget, "{} > {budget}: {out}", depth(&out));
                let wrapped = json!({"type": "object", "properties": {"x": out}});
                let compiled = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .build(&wrapped);
                prop_assert!(compiled.is_ok(), "{wrapped}: {:?}", compiled.err());
            }
        }
    }
}
