//! Turning JSON or YAML text into a JSON value, with a size limit and typed errors.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// Largest spec document accepted, in bytes (4 MiB). A real spec is a few kilobytes.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// The text format of a spec document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// YAML (1.2, as serde_yaml_ng reads it).
    Yaml,
}

impl Format {
    /// The format a file name suggests: `.json`, or `.yaml`/`.yml`.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }

    /// Guesses the format from the text: JSON when it starts with `{` or `[`.
    pub fn sniff(text: &str) -> Self {
        match text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .chars()
            .next()
        {
            Some('{' | '[') => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// Parses a spec document into a JSON value.
///
/// Refuses documents over [`MAX_DOCUMENT_BYTES`] before parsing them. Nesting
/// is bounded by the parsers' recursion limits, so hostile input ends in an
/// error, never a stack overflow.
pub fn parse_document(text: &str, format: Format) -> Result<Value> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::TooLarge {
            size: text.len() as u64,
            limit: MAX_DOCUMENT_BYTES as u64,
        });
    }
    let text = text.trim_start_matches('\u{feff}');
    match format {
        Format::Json => serde_json::from_str(text).map_err(Error::Json),
        Format::Yaml => serde_yaml_ng::from_str(text).map_err(Error::Yaml),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_names_and_text() {
        assert_eq!(Format::from_path(Path::new("a/b.JSON")), Some(Format::Json));
        assert_eq!(Format::from_path(Path::new("b.yml")), Some(Format::Yaml));
        assert_eq!(Format::from_path(Path::new("b.txt")), None);
        assert_eq!(Format::sniff("  \n{\"a\":1}"), Format::Json);
        assert_eq!(Format::sniff("a: 1"), Format::Yaml);
    }

    #[test]
    fn errors_are_typed_and_located() {
        let err = parse_document("{\"a\": }", Format::Json).unwrap_err();
        assert!(matches!(err, Error::Json(_)));
        assert!(err.to_string().contains("line 1 column 7"), "{err}");
        let err = parse_document("a: [1, 2\nb: 3", Format::Yaml).unwrap_err();
        assert!(matches!(err, Error::Yaml(_)), "{err}");
    }

    #[test]
    fn refuses_oversized_documents_before_parsing() {
        let big = " ".repeat(MAX_DOCUMENT_BYTES + 1);
        let err = parse_document(&big, Format::Json).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(matches!(
            parse_document(&deep, Format::Json),
            Err(Error::Json(_))
        ));
        let deep_yaml = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(matches!(
            parse_document(&deep_yaml, Format::Yaml),
            Err(Error::Yaml(_))
        ));
    }
}
