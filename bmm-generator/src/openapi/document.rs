//! Reading the document: JSON or YAML text to a JSON value, the OpenAPI
//! version, the structural check by the version's parser crate, and local
//! `$ref` resolution.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::ImportError;

/// Largest OpenAPI document accepted, in bytes (16 MiB).
pub const MAX_OPENAPI_BYTES: usize = 16 * 1024 * 1024;

/// Most `$ref` hops followed from one reference before giving up.
const MAX_REF_HOPS: usize = 32;

/// The OpenAPI versions the importer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenApiVersion {
    /// OpenAPI 3.0.x (schemas are an extended subset of JSON Schema draft 4/5).
    V3_0,
    /// OpenAPI 3.1.x (schemas are JSON Schema draft 2020-12).
    V3_1,
}

/// Parses JSON or YAML text into a JSON value and checks that it is an
/// OpenAPI 3.0 or 3.1 document.
pub(crate) fn parse(text: &str) -> Result<(Value, OpenApiVersion), ImportError> {
    if text.len() > MAX_OPENAPI_BYTES {
        return Err(ImportError::TooLarge {
            size: text.len(),
            limit: MAX_OPENAPI_BYTES,
        });
    }
    let text = text.trim_start_matches('\u{feff}');
    let document = match bmm_core::Format::sniff(text) {
        bmm_core::Format::Json => serde_json::from_str(text).map_err(ImportError::Json)?,
        bmm_core::Format::Yaml => {
            let yaml: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(text).map_err(ImportError::Yaml)?;
            yaml_to_json(yaml)
        }
    };
    let Value::Object(root) = &document else {
        return Err(ImportError::NotOpenApi);
    };
    let version = match (root.get("openapi"), root.get("swagger")) {
        (Some(v), _) => scalar_text(v),
        (None, Some(v)) => {
            return Err(ImportError::UnsupportedVersion {
                version: format!("Swagger {}", scalar_text(v)),
            });
        }
        (None, None) => return Err(ImportError::NotOpenApi),
    };
    let version = if version.starts_with("3.0") {
        OpenApiVersion::V3_0
    } else if version.starts_with("3.1") {
        OpenApiVersion::V3_1
    } else {
        return Err(ImportError::UnsupportedVersion { version });
    };
    structure(&document, version)?;
    Ok((document, version))
}

/// Checks the document's structure with the parser crate of its version:
/// `openapiv3` for 3.0, `oas3` for 3.1.
fn structure(document: &Value, version: OpenApiVersion) -> Result<(), ImportError> {
    let result = match version {
        OpenApiVersion::V3_0 => openapiv3::OpenAPI::deserialize(document)
            .map(drop)
            .map_err(|e| e.to_string()),
        OpenApiVersion::V3_1 => oas3::Spec::deserialize(document)
            .map(drop)
            .map_err(|e| e.to_string()),
    };
    result.map_err(|message| ImportError::InvalidDocument { message })
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// YAML to JSON, with scalar keys (`200:`, `true:`) written as strings, as
/// OpenAPI documents need.
fn yaml_to_json(value: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, item) in map {
                let key = match key {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".to_owned(),
                    // Sequences and mappings as keys mean nothing in OpenAPI.
                    _ => continue,
                };
                out.insert(key, yaml_to_json(item));
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

/// Why a `$ref` could not be followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RefProblem {
    /// The reference points outside the document (another file or a URL).
    External(String),
    /// The pointer names nothing in the document.
    Missing(String),
    /// References refer to each other in a loop without reaching a value.
    Loop(String),
}

impl std::fmt::Display for RefProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefProblem::External(r) => write!(f, "`{r}` points outside the document"),
            RefProblem::Missing(r) => write!(f, "`{r}` names nothing in the document"),
            RefProblem::Loop(r) => write!(f, "`{r}` refers to itself"),
        }
    }
}

/// The value `reference` (a `#/…` JSON pointer) points to.
pub(crate) fn lookup<'a>(document: &'a Value, reference: &str) -> Result<&'a Value, RefProblem> {
    let Some(fragment) = reference.strip_prefix('#') else {
        return Err(RefProblem::External(reference.to_owned()));
    };
    let pointer = percent_encoding::percent_decode_str(fragment).decode_utf8_lossy();
    if pointer.is_empty() {
        return Ok(document);
    }
    document
        .pointer(&pointer)
        .ok_or_else(|| RefProblem::Missing(reference.to_owned()))
}

/// The `$ref` of an object, when it has one.
pub(crate) fn ref_of(value: &Value) -> Option<&str> {
    value.get("$ref").and_then(Value::as_str)
}

/// Follows `$ref`s from `value` until an object without one (for parameters,
/// request bodies, path items, security schemes).
pub(crate) fn deref<'a>(document: &'a Value, value: &'a Value) -> Result<&'a Value, RefProblem> {
    let mut current = value;
    for _ in 0..MAX_REF_HOPS {
        match ref_of(current) {
            Some(reference) => current = lookup(document, reference)?,
            None => return Ok(current),
        }
    }
    Err(RefProblem::Loop(
        ref_of(value).unwrap_or_default().to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_keys_become_strings() {
        let (doc, version) = parse(
            "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      responses:\n        200: {description: ok}\n",
        )
        .unwrap();
        assert_eq!(version, OpenApiVersion::V3_0);
        assert!(doc.pointer("/paths/~1a/get/responses/200").is_some());
    }

    #[test]
    fn references_resolve_or_explain() {
        let doc = serde_json::json!({"a": {"$ref": "#/b"}, "b": {"$ref": "#/c%20d"}, "c d": 1,
            "x": {"$ref": "#/x"}});
        assert_eq!(deref(&doc, &doc["a"]), Ok(&Value::from(1)));
        assert!(matches!(deref(&doc, &doc["x"]), Err(RefProblem::Loop(_))));
        assert!(matches!(
            lookup(&doc, "other.yaml#/a"),
            Err(RefProblem::External(_))
        ));
        assert!(matches!(
            lookup(&doc, "#/nope"),
            Err(RefProblem::Missing(_))
        ));
    }
}
