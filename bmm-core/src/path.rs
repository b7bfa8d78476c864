//! Locations inside a spec document, printed as `tools[2].input_schema.properties.city`.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::Value;

/// One step of a [`JsonPath`]: an object key or an array index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathSegment {
    /// A key of a JSON object.
    Key(String),
    /// An index into a JSON array.
    Index(usize),
}

/// A location in a JSON document, from its root.
///
/// It prints the way a person (or a model in a repair loop) reads a path:
/// `tools[2].input_schema.properties.city`, with keys that are not plain
/// identifiers quoted (`headers["X-Api-Key"]`). The root prints as `$`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JsonPath(Vec<PathSegment>);

impl JsonPath {
    /// The root of the document.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path extended by an object key.
    #[must_use]
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Key(key.into()));
        Self(segments)
    }

    /// This path extended by an array index.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Index(index));
        Self(segments)
    }

    /// This path followed by every segment of `other`.
    #[must_use]
    pub fn join(&self, other: &JsonPath) -> Self {
        let mut segments = self.0.clone();
        segments.extend(other.0.iter().cloned());
        Self(segments)
    }

    /// The segments of this path, from the root.
    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }

    /// Converts an RFC 6901 JSON pointer into a path, using `document` to tell
    /// array indices from object keys that happen to be digits.
    pub fn from_pointer(pointer: &str, document: &Value) -> Self {
        let mut path = Self::root();
        let mut node = Some(document);
        for raw in pointer.split('/').skip(1) {
            let token = raw.replace("~1", "/").replace("~0", "~");
            match node {
                Some(Value::Array(items)) => match token.parse::<usize>() {
                    Ok(i) => {
                        node = items.get(i);
                        path.0.push(PathSegment::Index(i));
                    }
                    Err(_) => {
                        node = None;
                        path.0.push(PathSegment::Key(token));
                    }
                },
                Some(Value::Object(map)) => {
                    node = map.get(&token);
                    path.0.push(PathSegment::Key(token));
                }
                _ => {
                    node = None;
                    path.0.push(PathSegment::Key(token));
                }
            }
        }
        path
    }

    /// The RFC 6901 JSON pointer for this path.
    pub fn to_pointer(&self) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            out.push('/');
            match segment {
                PathSegment::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
                PathSegment::Index(i) => out.push_str(&i.to_string()),
            }
        }
        out
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("$");
        }
        for (n, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Index(i) => write!(f, "[{i}]")?,
                PathSegment::Key(k) if is_identifier(k) => {
                    if n > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                PathSegment::Key(k) => {
                    // Quoting through JSON keeps odd keys unambiguous and printable.
                    let quoted = serde_json::to_string(k).map_err(|_| fmt::Error)?;
                    write!(f, "[{quoted}]")?;
                }
            }
        }
        Ok(())
    }
}

impl Serialize for JsonPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn prints_like_the_issue_example() {
        let p = JsonPath::root()
            .key("tools")
            .index(2)
            .key("input_schema")
            .key("properties")
            .key("city");
        assert_eq!(p.to_string(), "tools[2].input_schema.properties.city");
        assert_eq!(p.to_pointer(), "/tools/2/input_schema/properties/city");
    }

    #[test]
    fn quotes_keys_that_are_not_identifiers() {
        let p = JsonPath::root().key("headers").key("X-Api-Key").key("a\"b");
        assert_eq!(p.to_string(), r#"headers["X-Api-Key"]["a\"b"]"#);
        assert_eq!(JsonPath::root().to_string(), "$");
    }

    #[test]
    fn pointer_round_trip_distinguishes_indices_from_digit_keys() {
        let doc = json!({"tools": [{"x": {"0": {"a/b~": 1}}}]});
        let p = JsonPath::from_pointer("/tools/0/x/0/a~1b~0", &doc);
        assert_eq!(
            p.segments(),
            &[
                PathSegment::Key("tools".into()),
                PathSegment::Index(0),
                PathSegment::Key("x".into()),
                PathSegment::Key("0".into()),
                PathSegment::Key("a/b~".into()),
            ]
        );
        assert_eq!(p.to_pointer(), "/tools/0/x/0/a~1b~0");
    }
}
