//! Findings of validation and static checks: typed, located, error or warning.

use std::fmt;

use serde::Serialize;

use crate::path::JsonPath;

/// How serious a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The spec must not be built or served until this is fixed.
    Error,
    /// Worth a look; the spec is still usable.
    Warning,
}

/// What kind of problem a [`Diagnostic`] reports. Stable: tools and tests match on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Code {
    /// The document does not have the shape of a `ServerSpec` (wrong type,
    /// missing or unknown field, value out of range).
    Structure,
    /// A tool's `input_schema` or `output_schema` is not a well-formed JSON Schema
    /// for an object.
    InvalidJsonSchema,
    /// Two tools share a name, or two secrets share a name.
    Duplicate,
    /// A template does not parse.
    TemplateSyntax,
    /// A template uses a construct outside the supported subset.
    UnsupportedTemplate,
    /// A template refers to an argument the input schema does not declare.
    UnknownArgument,
    /// A template or script refers to a secret the spec does not declare.
    UnknownSecret,
    /// A declared secret is used by no tool.
    UnusedSecret,
    /// A URL cannot be parsed, is relative, carries credentials, or takes its host from a template.
    InvalidUrl,
    /// A URL uses plain `http` without the development allowance.
    InsecureUrl,
    /// A host a tool reaches is missing from the egress allowlist.
    EgressNotCovered,
    /// An egress entry is malformed.
    InvalidEgress,
    /// An egress entry that no http tool uses.
    UnusedEgress,
    /// A value exceeds one of the spec's size limits.
    LimitExceeded,
    /// Text that reaches a model reads like instructions to that model.
    ToolPoisoning,
    /// Text contains invisible, bidirectional or control characters.
    HiddenUnicode,
    /// Text refers to credentials or configuration files of the user's machine.
    SensitiveReference,
    /// A script uses a construct that never belongs in a tool.
    BannedScriptPattern,
    /// A script lacks the shape the sandbox calls (`export default` a function).
    ScriptShape,
    /// The server `version` is not a semantic version.
    InvalidVersion,
}

impl Code {
    /// Every code, in declaration order.
    pub const ALL: [Code; 20] = [
        Code::Structure,
        Code::InvalidJsonSchema,
        Code::Duplicate,
        Code::TemplateSyntax,
        Code::UnsupportedTemplate,
        Code::UnknownArgument,
        Code::UnknownSecret,
        Code::UnusedSecret,
        Code::InvalidUrl,
        Code::InsecureUrl,
        Code::EgressNotCovered,
        Code::InvalidEgress,
        Code::UnusedEgress,
        Code::LimitExceeded,
        Code::ToolPoisoning,
        Code::HiddenUnicode,
        Code::SensitiveReference,
        Code::BannedScriptPattern,
        Code::ScriptShape,
        Code::InvalidVersion,
    ];

    /// The stable `snake_case` name of this code.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Structure => "structure",
            Code::InvalidJsonSchema => "invalid_json_schema",
            Code::Duplicate => "duplicate",
            Code::TemplateSyntax => "template_syntax",
            Code::UnsupportedTemplate => "unsupported_template",
            Code::UnknownArgument => "unknown_argument",
            Code::UnknownSecret => "unknown_secret",
            Code::UnusedSecret => "unused_secret",
            Code::InvalidUrl => "invalid_url",
            Code::InsecureUrl => "insecure_url",
            Code::EgressNotCovered => "egress_not_covered",
            Code::InvalidEgress => "invalid_egress",
            Code::UnusedEgress => "unused_egress",
            Code::LimitExceeded => "limit_exceeded",
            Code::ToolPoisoning => "tool_poisoning",
            Code::HiddenUnicode => "hidden_unicode",
            Code::SensitiveReference => "sensitive_reference",
            Code::BannedScriptPattern => "banned_script_pattern",
            Code::ScriptShape => "script_shape",
            Code::InvalidVersion => "invalid_version",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_code_once_with_its_serialized_name() {
        // Adding a variant without listing it here fails to compile.
        let listed = |c: Code| match c {
            Code::Structure
            | Code::InvalidJsonSchema
            | Code::Duplicate
            | Code::TemplateSyntax
            | Code::UnsupportedTemplate
            | Code::UnknownArgument
            | Code::UnknownSecret
            | Code::UnusedSecret
            | Code::InvalidUrl
            | Code::InsecureUrl
            | Code::EgressNotCovered
            | Code::InvalidEgress
            | Code::UnusedEgress
            | Code::LimitExceeded
            | Code::ToolPoisoning
            | Code::HiddenUnicode
            | Code::SensitiveReference
            | Code::BannedScriptPattern
            | Code::ScriptShape
            | Code::InvalidVersion => Code::ALL.contains(&c),
        };
        let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        for code in Code::ALL {
            assert!(listed(code));
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Code::ALL.len());
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a spec: what, where, how bad, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The kind of problem.
    pub code: Code,
    /// Where in the document the problem is.
    pub path: JsonPath,
    /// What is wrong and how to fix it, in a sentence a person or a model can act on.
    pub message: String,
}

impl Diagnostic {
    /// An error at `path`.
    pub fn error(code: Code, path: JsonPath, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            path,
            message: message.into(),
        }
    }

    /// A warning at `path`.
    pub fn warning(code: Code, path: JsonPath, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            code,
            path,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}[{}] {}: {}", self.code, self.path, self.message)
    }
}

/// Every diagnostic found in one spec, errors first, then in document order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// A report holding `diagnostics`, sorted errors first and then by path.
    pub fn new(mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by(|a, b| (a.severity, &a.path).cmp(&(b.severity, &b.path)));
        diagnostics.dedup();
        Self { diagnostics }
    }

    /// All diagnostics.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The diagnostics of severity error.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    /// The diagnostics of severity warning.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// Whether the report is empty.
    pub fn is_empty(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}
