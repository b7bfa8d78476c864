//! The one error type of bmm-core.

use crate::diagnostic::Report;

/// Everything that can go wrong in bmm-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The document is larger than [`crate::MAX_DOCUMENT_BYTES`].
    #[error("the document is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Size of the document in bytes (at least this many).
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The document is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The document is not valid YAML, or uses YAML that has no JSON equivalent.
    #[error("invalid YAML: {0}")]
    Yaml(#[source] serde_yaml_ng::Error),
    /// A value does not match the rules of an identifier type.
    #[error("invalid {kind} {value:?}: it must match {pattern}")]
    InvalidIdentifier {
        /// Which identifier (slug, tool name, secret name).
        kind: &'static str,
        /// The refused value, shortened.
        value: String,
        /// The pattern it must match.
        pattern: &'static str,
    },
    /// The spec parsed but has errors; the report lists every one.
    #[error("the spec has {} error(s):\n{report}", report.errors().count())]
    Invalid {
        /// Every diagnostic found, warnings included.
        report: Report,
    },
}

/// `Result` with bmm-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
