//! The bmm vocabulary: the `ServerSpec` contract, its validation and static
//! checks, and the build and audit events shared by every other bmm crate.
//!
//! A [`ServerSpec`] is the one format that a model fills in, the OpenAPI
//! importer produces, the runtime serves and the dashboard shows. Its JSON
//! Schema ([`ServerSpec::json_schema`]) is the contract a model is asked to
//! fill. [`check`] turns a document into a [`ValidatedSpec`] or a [`Report`]
//! listing **every** problem, each with a [`JsonPath`] and a message a person —
//! or a model in a repair loop — can act on.
//!
//! ```
//! use bmm_core::{CheckOptions, Format, check_text};
//!
//! let text = r#"{
//!   "bmm": "1", "name": "Greeter", "slug": "greeter",
//!   "description": "Says hello.",
//!   "tools": [{
//!     "name": "greet", "description": "Greets someone by name.",
//!     "input_schema": {"type": "object", "properties": {"name": {"type": "string"}}},
//!     "implementation": {"kind": "script",
//!       "source": "export default function (args) { return `Hello, ${args.name}!`; }"}
//!   }]
//! }"#;
//! let spec = check_text(text, Format::Json, &CheckOptions::default())?;
//! assert_eq!(spec.spec().tools[0].name.as_str(), "greet");
//! # Ok::<(), bmm_core::Error>(())
//! ```
//!
//! # Modules
//!
//! | module | what it holds |
//! |---|---|
//! | [`spec`] | the spec types and their limits |
//! | [`load`] | JSON/YAML text to a JSON value, size-limited |
//! | [`validate`] | structural and semantic validation, [`ValidatedSpec`] |
//! | [`checks`] | static checks: tool poisoning, hidden unicode, banned script patterns |
//! | [`template`] | the template subset of http tools and what a template refers to |
//! | [`egress`] | egress allowlist entries and matching |
//! | [`script`] | lexical views of script sources used by the checks |
//! | [`diagnostic`], [`path`] | located findings |
//! | [`build`], [`audit`] | build events and status; audit events and the [`AuditSink`] trait |
//! | [`secret`] | [`SecretValue`], a value that never prints |
//!
//! # Architecture invariant
//!
//! bmm-core does no I/O and depends on no async runtime, HTTP stack or
//! database driver. Everything here is pure functions over values.

pub mod audit;
pub mod build;
pub mod checks;
pub mod diagnostic;
pub mod egress;
pub mod error;
pub mod load;
pub mod path;
pub mod script;
pub mod secret;
pub mod spec;
pub mod template;
pub mod validate;

pub use audit::{AuditEvent, AuditSink, MemoryAuditSink};
pub use build::{BuildEvent, BuildStatus, BuildStep, Level};
pub use diagnostic::{Code, Diagnostic, Report, Severity};
pub use error::{Error, Result};
pub use load::{Format, MAX_DOCUMENT_BYTES, parse_document};
pub use path::JsonPath;
pub use secret::SecretValue;
pub use spec::{
    HttpImplementation, HttpMethod, Implementation, ScriptImplementation, SecretName, SecretSpec,
    ServerSpec, Slug, ToolName, ToolSpec,
};
pub use validate::{CheckOptions, ValidatedSpec, check, check_text};
