//! The `ServerSpec` format: what an LLM fills in, the importer produces and the runtime serves.
//!
//! Every type here is a wire contract. Field names are stable; a change of
//! meaning needs a new [`SpecVersion`]. Doc comments become descriptions in the
//! exported JSON Schema, which is what a model reads, so they are written for it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most tools one server may have.
pub const MAX_TOOLS: usize = 64;
/// Most secrets one server may declare.
pub const MAX_SECRETS: usize = 32;
/// Most hosts in one server's egress allowlist.
pub const MAX_EGRESS: usize = 32;
/// Longest description (server, tool or secret), in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4096;
/// Longest script source, in characters.
pub const MAX_SCRIPT_CHARS: usize = 65_536;
/// Longest template (URL, header or query value), in characters.
pub const MAX_TEMPLATE_CHARS: usize = 4096;
/// Deepest nesting of a tool's input or output schema.
pub const MAX_SCHEMA_DEPTH: usize = 32;
/// Largest tool input or output schema, in bytes of compact JSON.
pub const MAX_SCHEMA_BYTES: usize = 65_536;

/// A JSON object, as used for JSON Schemas inside a spec.
pub type JsonObject = serde_json::Map<String, Value>;

/// The description of one MCP server: its identity, what it may reach, which
/// credentials it needs and its tools.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "ServerSpec")]
pub struct ServerSpec {
    /// Version of this spec format. Always the string "1".
    pub bmm: SpecVersion,
    /// Human-readable name of the server, e.g. "Weather".
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// URL-safe identifier: lowercase letters, digits and single hyphens, e.g. "weather".
    pub slug: Slug,
    /// What the server is for, in one or two sentences.
    #[schemars(length(min = 1, max = 4096))]
    pub description: String,
    /// Semantic version of this server, e.g. "1.0.0".
    #[serde(default = "default_version")]
    #[schemars(length(min = 5, max = 64))]
    pub version: String,
    /// Hosts the server's tools may reach over the network, e.g. "api.example.com",
    /// "*.example.com" or "api.example.com:8443". Every host in an http tool's URL must
    /// be listed; script tools may fetch only these hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub egress: Vec<String>,
    /// Credentials a user supplies when deploying (API keys, tokens). Only declare a
    /// secret that a tool uses. Values never appear in the spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub secrets: Vec<SecretSpec>,
    /// The tools this server offers.
    #[schemars(length(min = 1, max = 64))]
    pub tools: Vec<ToolSpec>,
}

fn default_version() -> String {
    "0.1.0".to_owned()
}

impl ServerSpec {
    /// The JSON Schema of the spec format: the contract a model is asked to fill.
    pub fn json_schema() -> Value {
        Value::from(schemars::schema_for!(ServerSpec))
    }
}

/// The version of the spec format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SpecVersion {
    /// Version 1, the current format.
    #[default]
    #[serde(rename = "1")]
    V1,
}

/// A credential a server needs: declared by name, used by reference, supplied by the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// Name the tools refer to, in SCREAMING_SNAKE_CASE, e.g. "OPENWEATHER_API_KEY".
    pub name: SecretName,
    /// What the credential is, shown to the user who supplies it.
    #[schemars(length(min = 1, max = 4096))]
    pub description: String,
    /// Where or how a user obtains it, e.g. a URL of the provider's API-key page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub how_to_get: Option<String>,
    /// Whether the server cannot work without it.
    #[serde(default = "default_true")]
    pub required: bool,
}

fn default_true() -> bool {
    true
}

/// One MCP tool: its name, its description, its input contract and how it runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// Tool name as MCP clients see it: 1 to 128 characters of letters, digits, "_", "-" and ".".
    pub name: ToolName,
    /// Short human-readable title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub title: Option<String>,
    /// What the tool does and when to use it, for the model that will call it.
    #[schemars(length(min = 1, max = 4096))]
    pub description: String,
    /// JSON Schema (draft 2020-12) of the arguments; must be of "type": "object" with
    /// "properties". Templates and scripts may use only the properties declared here.
    pub input_schema: JsonObject,
    /// JSON Schema of the structured result, when the tool returns a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<JsonObject>,
    /// Hints for clients about the tool's behaviour.
    #[serde(default, skip_serializing_if = "ToolAnnotations::is_empty")]
    pub annotations: ToolAnnotations,
    /// How the tool runs: a declarative HTTP request or a JavaScript function.
    pub implementation: Implementation,
}

/// MCP tool annotations: hints, not guarantees.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolAnnotations {
    /// The tool does not change anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// The tool may delete or overwrite data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive: Option<bool>,
    /// Calling the tool twice with the same arguments has no further effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// The tool reaches entities outside the server (the internet, other services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world: Option<bool>,
}

impl ToolAnnotations {
    /// Whether no hint is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// How a tool runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Implementation {
    /// A declarative HTTP request built from templates.
    Http(HttpImplementation),
    /// A JavaScript function run in a sandbox.
    Script(ScriptImplementation),
}

/// A declarative HTTP request. Templates use `{{args.NAME}}` for an argument and
/// `{{secrets.NAME}}` for a declared secret; the helpers `url` and `json` encode a
/// value explicitly, and `{{#if args.NAME}}…{{/if}}` tests an optional argument.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpImplementation {
    /// HTTP method.
    pub method: HttpMethod,
    /// Absolute https URL; its scheme and host are literal text, and values filled
    /// into the path are percent-encoded, e.g. `https://api.example.com/v1/cities/{{args.city}}`.
    #[schemars(length(min = 1, max = 4096))]
    pub url: String,
    /// Request headers: name to template, e.g. {"Authorization": "Bearer {{secrets.API_TOKEN}}"}.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Query parameters: name to template; a parameter whose template refers only to
    /// absent optional arguments is left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// JSON request body. String values are templates; a string that is exactly one
    /// `{{args.NAME}}` is replaced by the argument's JSON value, keeping its type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// How to shape the response before it is returned to the model.
    #[serde(default, skip_serializing_if = "ResponseShape::is_empty")]
    pub response: ResponseShape,
}

/// HTTP methods an http tool may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl HttpMethod {
    /// The method as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// Response shaping for an http tool. JSON responses are shaped; anything else is
/// returned as text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseShape {
    /// RFC 6901 JSON pointer selecting part of the JSON response, e.g. "/data/items".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Keep only these fields of the selected object, or of each object of the selected array.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

impl ResponseShape {
    /// Whether the response is returned unchanged.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A JavaScript tool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptImplementation {
    /// An ES module whose default export is a (possibly async) function taking the
    /// validated arguments object and returning a string or a JSON value, e.g.
    /// "export default async function (args) { return `Hello, ${args.name}!`; }".
    /// To return MCP content blocks (an image, audio, an embedded resource), return
    /// `{ $content: [{ type: "image", data: BASE64, mimeType: "image/png" }] }`.
    /// The script has the JavaScript standard library, `console`, and
    /// `fetch(url, { method, headers, query, body })` to egress hosts only, which
    /// resolves to `{ status, ok, statusText, url, headers, text(), json() }` for
    /// every status. A secret goes into a request as `{secret: "NAME"}` in a header
    /// or query value and is never readable by the script. There is no filesystem,
    /// process, environment, timers, `eval` or imports. Each call has 2 s of CPU
    /// time, 32 MiB of memory and 16 fetches; throw an Error to fail the call.
    #[schemars(length(min = 1, max = 65536))]
    pub source: String,
}

macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $pattern:expr, $min:expr, $max:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The regular expression every value matches.
            pub const PATTERN: &'static str = $pattern;

            /// Checks `value` and wraps it.
            pub fn new(value: impl Into<String>) -> Result<Self, crate::Error> {
                static RE: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new($pattern).ok());
                let value = value.into();
                let len = value.chars().count();
                let matches = RE.as_ref().is_some_and(|re| re.is_match(&value));
                if !($min..=$max).contains(&len) || !matches {
                    return Err(crate::Error::InvalidIdentifier {
                        kind: $what,
                        value: value.chars().take(140).collect(),
                        pattern: $pattern,
                    });
                }
                Ok(Self(value))
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = crate::Error;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "minLength": $min,
                    "maxLength": $max,
                    "pattern": $pattern,
                })
            }
        }
    };
}

validated_string!(
    /// A server's URL-safe identifier: 1 to 63 lowercase letters, digits and inner hyphens.
    Slug,
    "^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
    1,
    63,
    "slug"
);

validated_string!(
    /// A tool name as MCP allows it: 1 to 128 characters of `[A-Za-z0-9_.-]`.
    ToolName,
    "^[A-Za-z0-9_.-]+$",
    1,
    128,
    "tool name"
);

validated_string!(
    /// A secret's name: SCREAMING_SNAKE_CASE, starting with a letter, at most 64 characters.
    SecretName,
    "^[A-Z][A-Z0-9_]*$",
    1,
    64,
    "secret name"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_accept_and_refuse() {
        assert!(Slug::new("weather-api").is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(Slug::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ToolName::new("get.weather-v2_x").is_ok());
        assert!(ToolName::new("get weather").is_err());
        assert!(ToolName::new("x".repeat(129)).is_err());
        assert!(ToolName::new("x".repeat(128)).is_ok());
        assert!(SecretName::new("API_KEY").is_ok());
        assert!(SecretName::new("api_key").is_err());
    }

    #[test]
    fn implementation_is_tagged_by_kind_and_denies_unknown_fields() {
        let ok: Implementation =
            serde_json::from_str(r#"{"kind":"script","source":"export default () => 1"}"#).unwrap();
        assert!(matches!(ok, Implementation::Script(_)));
        let typo =
            serde_json::from_str::<Implementation>(r#"{"kind":"script","source":"x","sorce":"y"}"#);
        assert!(typo.is_err());
    }
}
