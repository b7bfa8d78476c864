//! Security schemes to declared secrets used by reference in headers and
//! query parameters.

use std::collections::{BTreeMap, BTreeSet};

use bmm_core::spec::MAX_DESCRIPTION_CHARS;
use serde_json::Value;

use super::ImportWarning;
use super::document;
use super::names::{clean_text, max_secret_name, secret_name, unique};

/// How one security scheme is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Carrier {
    /// An API key in the named header.
    Header(String),
    /// An API key in the named query parameter.
    Query(String),
    /// `Authorization: Bearer …` (HTTP bearer; OAuth 2 and OpenID Connect access tokens).
    Bearer,
    /// `Authorization: Basic …`, the secret holding base64 of `user:password`.
    Basic,
}

#[derive(Clone, Debug)]
struct Scheme {
    carrier: Result<Carrier, String>,
    description: Option<String>,
    secret: Option<String>,
}

/// What an operation sends to authenticate.
#[derive(Clone, Debug, Default)]
pub(crate) struct Credentials {
    /// Header name to template.
    pub(crate) headers: BTreeMap<String, String>,
    /// Query parameter name to template.
    pub(crate) query: BTreeMap<String, String>,
    /// Secrets used.
    pub(crate) secrets: BTreeSet<String>,
}

/// The document's security schemes and the secrets assigned to them.
pub(crate) struct Security {
    schemes: BTreeMap<String, Scheme>,
    global: Option<Value>,
    taken: BTreeSet<String>,
    warned: BTreeSet<String>,
}

impl Security {
    /// Reads `components.securitySchemes` and the global `security`.
    pub(crate) fn new(document: &Value, warnings: &mut Vec<ImportWarning>) -> Self {
        let mut schemes = BTreeMap::new();
        if let Some(Value::Object(map)) = document.pointer("/components/securitySchemes") {
            for (name, raw) in map {
                let (carrier, description) = match document::deref(document, raw) {
                    Ok(scheme) => (carrier(scheme), scheme.get("description")),
                    Err(problem) => (Err(problem.to_string()), None),
                };
                if let Err(reason) = &carrier {
                    warnings.push(ImportWarning::SecuritySchemeUnsupported {
                        scheme: name.clone(),
                        reason: reason.clone(),
                    });
                }
                let description = description
                    .and_then(Value::as_str)
                    .and_then(|d| clean_text(d, MAX_DESCRIPTION_CHARS).0);
                schemes.insert(
                    name.clone(),
                    Scheme {
                        carrier,
                        description,
                        secret: None,
                    },
                );
            }
        }
        Self {
            schemes,
            global: document.get("security").cloned(),
            taken: BTreeSet::new(),
            warned: BTreeSet::new(),
        }
    }

    /// The credentials `operation` sends: its own `security` or the global
    /// one; the first alternative whose schemes are all supported (an empty
    /// alternative means none). `Err` explains why none could be chosen.
    pub(crate) fn credentials(&mut self, operation: &Value) -> Result<Credentials, String> {
        let requirement = operation.get("security").or(self.global.as_ref()).cloned();
        let Some(Value::Array(alternatives)) = requirement else {
            return Ok(Credentials::default());
        };
        if alternatives.is_empty() {
            return Ok(Credentials::default());
        }
        let mut reasons = Vec::new();
        for alternative in &alternatives {
            let Value::Object(names) = alternative else {
                continue;
            };
            let unsupported: Vec<String> = names
                .keys()
                .filter_map(|name| match self.schemes.get(name) {
                    None => Some(format!("`{name}` is not defined")),
                    Some(Scheme {
                        carrier: Err(reason),
                        ..
                    }) => Some(format!("`{name}`: {reason}")),
                    Some(_) => None,
                })
                .collect();
            if unsupported.is_empty() {
                return Ok(self.apply(names.keys()));
            }
            reasons.extend(unsupported);
        }
        Err(reasons.join("; "))
    }

    fn apply<'k>(&mut self, names: impl Iterator<Item = &'k String>) -> Credentials {
        let mut out = Credentials::default();
        for name in names {
            let Some(scheme) = self.schemes.get_mut(name) else {
                continue;
            };
            let Ok(carrier) = scheme.carrier.clone() else {
                continue;
            };
            let secret = scheme
                .secret
                .get_or_insert_with(|| {
                    unique(&secret_name(name), max_secret_name(), &mut self.taken)
                })
                .clone();
            let reference = format!("{{{{secrets.{secret}}}}}");
            match carrier {
                Carrier::Header(header) => {
                    out.headers.insert(header, reference);
                }
                Carrier::Query(param) => {
                    out.query.insert(param, reference);
                }
                Carrier::Bearer => {
                    out.headers
                        .insert("Authorization".to_owned(), format!("Bearer {reference}"));
                }
                Carrier::Basic => {
                    out.headers
                        .insert("Authorization".to_owned(), format!("Basic {reference}"));
                }
            }
            out.secrets.insert(secret);
        }
        out
    }

    /// Warnings for schemes taken as bearer tokens (OAuth 2, OpenID Connect),
    /// once each.
    pub(crate) fn approximations(&mut self, document: &Value) -> Vec<ImportWarning> {
        let mut out = Vec::new();
        for (name, scheme) in &self.schemes {
            if scheme.secret.is_none() || self.warned.contains(name) {
                continue;
            }
            let kind = document
                .pointer(&format!(
                    "/components/securitySchemes/{}",
                    name.replace('~', "~0").replace('/', "~1")
                ))
                .and_then(|s| document::deref(document, s).ok())
                .and_then(|s| s.get("type"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if matches!(kind, "oauth2" | "openIdConnect") {
                self.warned.insert(name.clone());
                out.push(ImportWarning::SecuritySchemeApproximated {
                    scheme: name.clone(),
                    reason: format!(
                        "{kind} is sent as a bearer access token that the user obtains and renews; the server does not run the {kind} flow"
                    ),
                });
            }
        }
        out
    }

    /// The description shown to the user who supplies `secret`.
    pub(crate) fn describe(&self, secret: &str) -> Option<String> {
        self.schemes.iter().find_map(|(name, scheme)| {
            if scheme.secret.as_deref() != Some(secret) {
                return None;
            }
            let how = match scheme.carrier.as_ref().ok()? {
                Carrier::Header(h) => format!("API key sent in the `{h}` header"),
                Carrier::Query(q) => format!("API key sent as the `{q}` query parameter"),
                Carrier::Bearer => "Bearer token sent in the Authorization header".to_owned(),
                Carrier::Basic => {
                    "HTTP basic credentials: the base64 encoding of `username:password`, sent in the Authorization header".to_owned()
                }
            };
            let text = match &scheme.description {
                Some(d) => format!("{how} (security scheme `{name}`): {d}"),
                None => format!("{how} (security scheme `{name}`)."),
            };
            let (text, _) = clean_text(&text, MAX_DESCRIPTION_CHARS);
            Some(text.unwrap_or(how))
        })
    }
}

/// How a security scheme object is sent, or why it cannot be.
fn carrier(scheme: &Value) -> Result<Carrier, String> {
    let kind = scheme
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "apiKey" => {
            let name = scheme
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or("an apiKey scheme needs a `name`")?;
            match scheme.get("in").and_then(Value::as_str) {
                Some("header") if is_header_name(name) => Ok(Carrier::Header(name.to_owned())),
                Some("header") => Err(format!("`{name}` is not a valid header name")),
                Some("query") => Ok(Carrier::Query(name.to_owned())),
                Some("cookie") => Err("API keys in cookies are not supported".to_owned()),
                _ => Err("an apiKey scheme needs `in`: header, query or cookie".to_owned()),
            }
        }
        "http" => {
            let scheme_name = scheme
                .get("scheme")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_lowercase();
            match scheme_name.as_str() {
                "bearer" => Ok(Carrier::Bearer),
                "basic" => Ok(Carrier::Basic),
                other => Err(format!("the HTTP `{other}` scheme is not supported")),
            }
        }
        "oauth2" | "openIdConnect" => Ok(Carrier::Bearer),
        "mutualTLS" => Err("mutual TLS is not supported".to_owned()),
        other => Err(format!("scheme type `{other}` is not supported")),
    }
}

/// Whether `name` is a valid HTTP header name (an RFC 9110 token).
pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
