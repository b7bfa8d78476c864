//! Importing an OpenAPI 3.0/3.1 document as a `ServerSpec`: one `http` tool
//! per operation.
//!
//! ```
//! use bmm_generator::openapi::{ImportOptions, import};
//!
//! let document = r#"
//! openapi: 3.1.0
//! info: {title: Greetings, version: 1.0.0}
//! servers: [{url: "https://api.example.com/v1"}]
//! paths:
//!   /greetings/{name}:
//!     get:
//!       operationId: greet
//!       summary: Greet someone
//!       parameters:
//!         - {name: name, in: path, required: true, schema: {type: string}}
//!       responses: {"200": {description: A greeting}}
//! "#;
//! let imported = import(document, &ImportOptions::default())?;
//! let tool = &imported.spec.tools[0];
//! assert_eq!(tool.name.as_str(), "greet");
//! assert_eq!(imported.spec.egress, ["api.example.com"]);
//! # Ok::<(), bmm_generator::openapi::ImportError>(())
//! ```
//!
//! # What maps to what
//!
//! | OpenAPI | ServerSpec |
//! |---|---|
//! | `info.title`, `info.description`, `info.version` | `name`, `slug`, `description`, `version` (each overridable) |
//! | the operation's, path's or document's first server (variables at their defaults) | the URL's base and the `egress` allowlist |
//! | an operation (GET, POST, PUT, PATCH, DELETE) | an `http` tool; HEAD, OPTIONS and TRACE are skipped |
//! | `operationId`, else method and path | the tool name, made valid and unique |
//! | `summary` / `description` | `title` / `description`, cleaned for the static checks |
//! | path, query and header parameters | input properties, filled in as `{{args.NAME}}` in the URL path (percent-encoded there by the runtime), `query` and `headers` |
//! | a JSON request body | its object's properties as input properties and a body template, or one `body` argument |
//! | `securitySchemes` (API key in header or query, HTTP bearer and basic, OAuth 2/OpenID Connect as bearer) | declared secrets, used as `{{secrets.NAME}}` |
//!
//! # Why the document is read as JSON and checked by two crates
//!
//! Both well-kept parser crates were tried on the fixtures. `openapiv3` (3.0
//! only) reads the 3.0 documents faithfully but refuses 3.1's `type: [..]`;
//! `oas3` (3.1) refuses 3.0's boolean `exclusiveMinimum` and drops `$defs`
//! and other keywords it does not model. Neither resolves `$ref`s inside
//! schemas, which the importer must inline anyway to give each tool a
//! self-contained input schema. So the document is parsed once into a
//! `serde_json::Value` (keeping key order), its structure is checked by the
//! crate of its own version (`openapiv3` for 3.0, `oas3` for 3.1: a document
//! either refuses is reported as [`ImportError::InvalidDocument`]), and the
//! operations and schemas are read from the value, losslessly, with
//! references resolved here (see `schema`).
//!
//! # Guarantees
//!
//! The importer never panics on input. Every spec it returns passes
//! [`bmm_core::check`] (with `allow_http` when [`ImportOptions::allow_http`]
//! is set): text that the static checks would refuse is cleaned, and a tool
//! that still fails is left out with an [`ImportWarning::ToolRejected`].

mod document;
mod names;
mod operation;
mod schema;
mod security;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bmm_core::path::PathSegment;
use bmm_core::spec::{MAX_DESCRIPTION_CHARS, MAX_TOOLS};
use bmm_core::{CheckOptions, Report, SecretName, SecretSpec, ServerSpec, Slug};
use serde::Serialize;
use serde_json::Value;

pub use document::{MAX_OPENAPI_BYTES, OpenApiVersion};

use names::{MAX_SERVER_NAME, clean_text, slug_from};
use operation::{Built, Cx, Route};

/// What to import and how to name the result.
///
/// Filters: when any include list is non-empty, an operation is kept if it
/// has an included tag or is an included operation; then an operation with an
/// excluded tag or an excluded operation is dropped. Operations are named by
/// `operationId` or as `"METHOD /path"` (e.g. `"GET /pets/{petId}"`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportOptions {
    /// The server's name; `info.title` by default.
    pub name: Option<String>,
    /// The server's slug; derived from the name by default.
    pub slug: Option<String>,
    /// The server's description; `info.description` by default.
    pub description: Option<String>,
    /// Base URL: replaces the document's absolute server URLs, and relative
    /// server URLs are resolved against it.
    pub base_url: Option<String>,
    /// Keep plain `http` server URLs (for local development); otherwise they
    /// are upgraded to https with a warning.
    pub allow_http: bool,
    /// Keep operations with any of these tags.
    pub include_tags: Vec<String>,
    /// Drop operations with any of these tags.
    pub exclude_tags: Vec<String>,
    /// Keep these operations.
    pub include_operations: Vec<String>,
    /// Drop these operations.
    pub exclude_operations: Vec<String>,
}

impl ImportOptions {
    /// Options with nothing set: everything imported, names from the document.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the server's name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the server's slug.
    #[must_use]
    pub fn slug(mut self, slug: impl Into<String>) -> Self {
        self.slug = Some(slug.into());
        self
    }

    /// Sets the server's description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the base URL.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Keeps plain `http` server URLs or not.
    #[must_use]
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Adds a tag to keep.
    #[must_use]
    pub fn include_tag(mut self, tag: impl Into<String>) -> Self {
        self.include_tags.push(tag.into());
        self
    }

    /// Adds a tag to drop.
    #[must_use]
    pub fn exclude_tag(mut self, tag: impl Into<String>) -> Self {
        self.exclude_tags.push(tag.into());
        self
    }

    /// Adds an operation to keep (`operationId` or `"METHOD /path"`).
    #[must_use]
    pub fn include_operation(mut self, operation: impl Into<String>) -> Self {
        self.include_operations.push(operation.into());
        self
    }

    /// Adds an operation to drop (`operationId` or `"METHOD /path"`).
    #[must_use]
    pub fn exclude_operation(mut self, operation: impl Into<String>) -> Self {
        self.exclude_operations.push(operation.into());
        self
    }
}

/// The result of an import: a spec that passes the core's checks, and what
/// was left out or changed on the way.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The spec.
    pub spec: ServerSpec,
    /// Non-fatal findings, in document order.
    pub warnings: Vec<ImportWarning>,
    /// The OpenAPI version of the document.
    pub version: OpenApiVersion,
}

/// Why a document could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The document is larger than [`MAX_OPENAPI_BYTES`].
    #[error("the document is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The text looks like JSON but does not parse.
    #[error("the document is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The text does not parse as YAML.
    #[error("the document is not valid YAML: {0}")]
    Yaml(#[source] serde_yaml_ng::Error),
    /// The document has no `openapi` field.
    #[error("the document is not an OpenAPI document: it has no `openapi` version field")]
    NotOpenApi,
    /// The document is of a version the importer does not read (Swagger 2.0, 3.2, …).
    #[error("OpenAPI version {version} is not supported; 3.0.x and 3.1.x are")]
    UnsupportedVersion {
        /// The version the document declares.
        version: String,
    },
    /// The document does not have the structure its OpenAPI version requires.
    #[error("the document is not a valid OpenAPI document: {message}")]
    InvalidDocument {
        /// What the parser of its version found.
        message: String,
    },
    /// An option is not usable (a slug that is not a slug, a base URL that is not a URL).
    #[error("option `{option}` is not valid: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A server URL is relative and no base URL was given.
    #[error("the server URL `{url}` is relative; give a base URL (--base-url) to resolve it")]
    RelativeServer {
        /// The server URL.
        url: String,
    },
    /// A server URL cannot be used.
    #[error("the server URL `{url}` cannot be used: {reason}")]
    InvalidServerUrl {
        /// The server URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No operation is left after filtering and skipping.
    #[error("no operation is left to import{}", if .skipped > &0 { format!(" ({} skipped, see the warnings)", .skipped) } else { String::new() })]
    NoOperations {
        /// How many operations were skipped or rejected.
        skipped: usize,
        /// Why, in document order.
        warnings: Vec<ImportWarning>,
    },
    /// More operations are left than one server may have tools.
    #[error("{count} operations would become tools but a server holds at most {limit}; choose some with include/exclude filters (tags: {})", tag_list(.tags))]
    TooManyOperations {
        /// How many operations were left.
        count: usize,
        /// [`MAX_TOOLS`].
        limit: usize,
        /// Tags of those operations with their counts, to choose filters from.
        tags: Vec<(String, usize)>,
    },
    /// The assembled spec failed the core's checks (a bug in the importer).
    #[error("the imported spec does not pass the checks: {report}")]
    Invalid {
        /// What the checks found.
        report: Report,
    },
}

fn tag_list(tags: &[(String, usize)]) -> String {
    if tags.is_empty() {
        return "none".to_owned();
    }
    tags.iter()
        .map(|(tag, n)| format!("{tag} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Something left out or changed while importing; none of these stops it.
///
/// Serialized with a `kind` tag (`{"kind": "operation_skipped", "operation":
/// …, "reason": …}`) for clients that show them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ImportWarning {
    /// An operation was not imported.
    OperationSkipped {
        /// `operationId` or `METHOD /path`.
        operation: String,
        /// Why.
        reason: String,
    },
    /// An optional parameter was not imported.
    ParameterSkipped {
        /// `operationId` or `METHOD /path`.
        operation: String,
        /// The parameter's name.
        parameter: String,
        /// Why.
        reason: String,
    },
    /// An array parameter is taken as one comma-separated string.
    ParameterFlattened {
        /// `operationId` or `METHOD /path`.
        operation: String,
        /// The parameter's name.
        parameter: String,
    },
    /// An optional request body was not imported.
    BodySkipped {
        /// `operationId` or `METHOD /path`.
        operation: String,
        /// Why.
        reason: String,
    },
    /// An input schema was loosened: a `$ref` cycle cut, keywords dropped for
    /// depth or size, or a reference that could not be followed.
    SchemaSimplified {
        /// `operationId` or `METHOD /path`.
        operation: String,
        /// What was done.
        reason: String,
    },
    /// Text from the document was changed to pass the static checks (hidden
    /// characters removed, sentences aimed at a model left out).
    TextSanitized {
        /// Where: `server`, or an operation.
        location: String,
    },
    /// A security scheme cannot be used.
    SecuritySchemeUnsupported {
        /// The scheme's name.
        scheme: String,
        /// Why.
        reason: String,
    },
    /// A security scheme is used in a simplified way.
    SecuritySchemeApproximated {
        /// The scheme's name.
        scheme: String,
        /// How.
        reason: String,
    },
    /// An operation was imported without credentials because none of its
    /// security alternatives is supported.
    WithoutCredentials {
        /// `operationId` or `METHOD /path`.
        operation: String,
        /// Why.
        reason: String,
    },
    /// A plain http server URL was upgraded to https.
    UpgradedToHttps {
        /// The server URL as the document gives it.
        url: String,
    },
    /// A filter matched no operation.
    FilterUnmatched {
        /// Which filter list.
        filter: &'static str,
        /// The value that matched nothing.
        value: String,
    },
    /// A tool failed the core's checks and was left out.
    ToolRejected {
        /// The tool's name.
        tool: String,
        /// The first problem found.
        reason: String,
    },
}

impl fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OperationSkipped { operation, reason } => {
                write!(f, "{operation}: skipped: {reason}")
            }
            Self::ParameterSkipped {
                operation,
                parameter,
                reason,
            } => write!(f, "{operation}: parameter `{parameter}` skipped: {reason}"),
            Self::ParameterFlattened {
                operation,
                parameter,
            } => write!(
                f,
                "{operation}: array parameter `{parameter}` is taken as one comma-separated string"
            ),
            Self::BodySkipped { operation, reason } => {
                write!(f, "{operation}: request body skipped: {reason}")
            }
            Self::SchemaSimplified { operation, reason } => {
                write!(f, "{operation}: input schema simplified: {reason}")
            }
            Self::TextSanitized { location } => write!(
                f,
                "{location}: text from the document was cleaned to pass the static checks"
            ),
            Self::SecuritySchemeUnsupported { scheme, reason } => {
                write!(f, "security scheme `{scheme}` is not supported: {reason}")
            }
            Self::SecuritySchemeApproximated { scheme, reason } => {
                write!(f, "security scheme `{scheme}`: {reason}")
            }
            Self::WithoutCredentials { operation, reason } => write!(
                f,
                "{operation}: imported without credentials, no security alternative is supported: {reason}"
            ),
            Self::UpgradedToHttps { url } => write!(f, "server `{url}` is used over https"),
            Self::FilterUnmatched { filter, value } => {
                write!(f, "{filter} `{value}` matches no operation")
            }
            Self::ToolRejected { tool, reason } => {
                write!(f, "tool `{tool}` left out, it fails the checks: {reason}")
            }
        }
    }
}

/// Imports an OpenAPI 3.0 or 3.1 document (JSON or YAML text) as a spec
/// with one `http` tool per operation.
pub fn import(text: &str, options: &ImportOptions) -> Result<Imported, ImportError> {
    let (document, version) = document::parse(text)?;
    let base_url = match &options.base_url {
        Some(raw) => Some(
            url::Url::parse(raw).map_err(|e| ImportError::InvalidOption {
                option: "base_url",
                reason: format!("`{raw}` is not an absolute URL: {e}"),
            })?,
        ),
        None => None,
    };
    let slug = match &options.slug {
        Some(slug) => Some(
            Slug::new(slug.as_str()).map_err(|e| ImportError::InvalidOption {
                option: "slug",
                reason: e.to_string(),
            })?,
        ),
        None => None,
    };
    let mut warnings = Vec::new();
    let routes = routes(&document, options, &mut warnings);

    let mut cx = Cx::new(&document, version, options, base_url);
    let mut built = Vec::new();
    let mut skipped = 0usize;
    for route in &routes {
        match cx.operation(route)? {
            Some(tool) => built.push(tool),
            None => skipped += 1,
        }
    }
    warnings.extend(cx.finish());

    if built.len() > MAX_TOOLS {
        let mut tags: BTreeMap<String, usize> = BTreeMap::new();
        for tool in &built {
            for tag in &tool.tags {
                *tags.entry(tag.clone()).or_default() += 1;
            }
        }
        return Err(ImportError::TooManyOperations {
            count: built.len(),
            limit: MAX_TOOLS,
            tags: tags.into_iter().collect(),
        });
    }

    let check_options = CheckOptions::default().allow_http(options.allow_http);
    let server = server_fields(&document, options, slug, &mut warnings)?;
    // A tool the checks refuse is left out and the rest checked again; each
    // round removes at least one tool, so this ends.
    loop {
        if built.is_empty() {
            return Err(ImportError::NoOperations { skipped, warnings });
        }
        let spec = assemble(&server, &built);
        let report = match spec.check(&check_options) {
            Ok(_) => {
                return Ok(Imported {
                    spec,
                    warnings,
                    version,
                });
            }
            Err(report) => report,
        };
        let mut rejected: BTreeMap<usize, String> = BTreeMap::new();
        let mut elsewhere = false;
        for error in report.errors() {
            match error.path.segments() {
                [PathSegment::Key(k), PathSegment::Index(i), ..] if k == "tools" => {
                    rejected
                        .entry(*i)
                        .or_insert_with(|| format!("{}: {}", error.path, error.message));
                }
                _ => elsewhere = true,
            }
        }
        if elsewhere || rejected.is_empty() {
            return Err(ImportError::Invalid { report });
        }
        for (i, reason) in rejected.iter().rev() {
            if *i < built.len() {
                let tool = built.remove(*i);
                skipped += 1;
                warnings.push(ImportWarning::ToolRejected {
                    tool: tool.tool.name.to_string(),
                    reason: reason.clone(),
                });
            }
        }
    }
}

/// The server's name, slug, description and version.
struct ServerFields {
    name: String,
    slug: Slug,
    description: String,
    version: String,
}

fn server_fields(
    document: &Value,
    options: &ImportOptions,
    slug: Option<Slug>,
    warnings: &mut Vec<ImportWarning>,
) -> Result<ServerFields, ImportError> {
    let info = document.get("info");
    let text = |key: &str| info.and_then(|i| i.get(key)).and_then(Value::as_str);
    let mut sanitized = false;
    let mut clean = |raw: &str, max: usize| {
        let (out, changed) = clean_text(raw, max);
        sanitized |= changed;
        out
    };
    let name = options
        .name
        .as_deref()
        .or(text("title"))
        .and_then(|n| clean(&n.replace(['\n', '\r'], " "), MAX_SERVER_NAME))
        .unwrap_or_else(|| "Imported API".to_owned());
    let description = options
        .description
        .as_deref()
        .or(text("description"))
        .or(text("summary"))
        .and_then(|d| clean(d, MAX_DESCRIPTION_CHARS))
        .unwrap_or_else(|| {
            format!("Tools for the {name} API, imported from its OpenAPI description.")
        });
    if sanitized {
        warnings.push(ImportWarning::TextSanitized {
            location: "server".to_owned(),
        });
    }
    let slug = match slug {
        Some(slug) => slug,
        None => Slug::new(slug_from(&name)).map_err(|e| ImportError::InvalidOption {
            option: "slug",
            reason: e.to_string(),
        })?,
    };
    let version = text("version").map_or_else(|| "0.1.0".to_owned(), semantic_version);
    Ok(ServerFields {
        name,
        slug,
        description,
        version,
    })
}

/// `info.version` as a semantic version: `1.0` → `1.0.0`, anything else unusable → `0.1.0`.
fn semantic_version(raw: &str) -> String {
    let raw = raw.trim().trim_start_matches('v');
    if semver::Version::parse(raw).is_ok() {
        return raw.to_owned();
    }
    let parts: Vec<&str> = raw.split('.').collect();
    if (1..=2).contains(&parts.len()) && parts.iter().all(|p| p.parse::<u64>().is_ok()) {
        let mut padded: Vec<String> = parts
            .iter()
            .map(|p| p.trim_start_matches('0').to_owned())
            .map(|p| if p.is_empty() { "0".to_owned() } else { p })
            .collect();
        while padded.len() < 3 {
            padded.push("0".to_owned());
        }
        let joined = padded.join(".");
        if semver::Version::parse(&joined).is_ok() {
            return joined;
        }
    }
    "0.1.0".to_owned()
}

fn assemble(server: &ServerFields, built: &[Built]) -> ServerSpec {
    let mut secrets: BTreeMap<&str, &str> = BTreeMap::new();
    for tool in built {
        for (name, description) in &tool.secrets {
            secrets.entry(name).or_insert(description);
        }
    }
    let mut egress: Vec<String> = Vec::new();
    for tool in built {
        if !egress.contains(&tool.egress) {
            egress.push(tool.egress.clone());
        }
    }
    let declared = secrets
        .iter()
        .filter_map(|(name, description)| {
            let users = built
                .iter()
                .filter(|t| t.secrets.iter().any(|(n, _)| n == name))
                .count();
            Some(SecretSpec {
                name: SecretName::new(*name).ok()?,
                description: (*description).to_owned(),
                how_to_get: None,
                required: users == built.len(),
            })
        })
        .collect();
    ServerSpec {
        bmm: bmm_core::spec::SpecVersion::V1,
        name: server.name.clone(),
        slug: server.slug.clone(),
        description: server.description.clone(),
        version: server.version.clone(),
        egress,
        secrets: declared,
        tools: built.iter().map(|b| b.tool.clone()).collect(),
    }
}

/// Operations in document order, filtered.
fn routes<'a>(
    document: &'a Value,
    options: &ImportOptions,
    warnings: &mut Vec<ImportWarning>,
) -> Vec<Route<'a>> {
    let mut all = Vec::new();
    if let Some(Value::Object(paths)) = document.get("paths") {
        for (path, item) in paths {
            let item = match document::deref(document, item) {
                Ok(item) => item,
                Err(problem) => {
                    warnings.push(ImportWarning::OperationSkipped {
                        operation: path.clone(),
                        reason: format!("the path item cannot be read: {problem}"),
                    });
                    continue;
                }
            };
            let Value::Object(methods) = item else {
                continue;
            };
            for (method, op) in methods {
                if !operation::METHODS.contains(&method.as_str()) || !op.is_object() {
                    continue;
                }
                all.push(Route::new(path, method, item, op));
            }
        }
    }
    let mut matched: BTreeSet<(&'static str, String)> = BTreeSet::new();
    let mut kept = Vec::new();
    let include = !options.include_tags.is_empty() || !options.include_operations.is_empty();
    for route in all {
        let mut hit = |list: &'static str, values: &[String], tags: bool| -> bool {
            let mut any = false;
            for value in values {
                let is = if tags {
                    route.tags.iter().any(|t| t == value)
                } else {
                    route.is_named(value)
                };
                if is {
                    matched.insert((list, value.clone()));
                    any = true;
                }
            }
            any
        };
        // `|`, not `||`: every filter value is tried, so that one matching
        // nothing can be reported.
        let included = !include
            | hit("include tag", &options.include_tags, true)
            | hit("include operation", &options.include_operations, false);
        let excluded = hit("exclude tag", &options.exclude_tags, true)
            | hit("exclude operation", &options.exclude_operations, false);
        if included && !excluded {
            kept.push(route);
        }
    }
    for (list, values) in [
        ("include tag", &options.include_tags),
        ("include operation", &options.include_operations),
        ("exclude tag", &options.exclude_tags),
        ("exclude operation", &options.exclude_operations),
    ] {
        for value in values {
            if !matched.contains(&(list, value.clone())) {
                warnings.push(ImportWarning::FilterUnmatched {
                    filter: list,
                    value: value.clone(),
                });
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_become_semantic() {
        assert_eq!(semantic_version("1.0.0"), "1.0.0");
        assert_eq!(semantic_version("1.0"), "1.0.0");
        assert_eq!(semantic_version("v2"), "2.0.0");
        assert_eq!(semantic_version("2024-01-01"), "0.1.0");
    }
}
