//! Ejecting: a standalone cargo project that serves one spec with bmm's
//! runtime, for a team that wants to own and extend the code.
//!
//! The project embeds `server.json` at compile time, checks it with
//! `bmm_core::check_text` at start, and serves it through a
//! `bmm_runtime::Host` at `/mcp` — what `bmm run --spec` does, in some sixty
//! lines the team can read and change. The bmm crates are not published,
//! so the runtime comes from a [`RuntimeSource`]: a checkout on disk or a
//! git repository at a fixed revision.

use std::path::PathBuf;

use bmm_core::ValidatedSpec;
use serde::Serialize;

use super::bundle::{Bundle, RenderedFile, spec_json};
use super::{CodegenError, Renderer, Result};

/// Where the ejected project takes `bmm-core` and `bmm-runtime` from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuntimeSource {
    /// A checkout of the bmm workspace: the folder holding `bmm-core/` and
    /// `bmm-runtime/`. Best absolute; a relative path is taken from the
    /// ejected project's folder, as cargo does.
    Path(PathBuf),
    /// The bmm git repository at a fixed revision.
    Git {
        /// The repository's URL.
        url: String,
        /// A commit, tag or branch; a commit keeps builds reproducible.
        rev: String,
    },
}

/// How to eject. A `Config` struct with public fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EjectOptions {
    /// Where the runtime comes from.
    pub runtime: RuntimeSource,
    /// The cargo package (and binary) name. Default: the spec's slug, or
    /// `mcp-<slug>` when the slug is not a valid package name (it starts
    /// with a digit, or is a Rust keyword or a reserved name).
    pub package_name: Option<String>,
}

impl EjectOptions {
    /// Takes the runtime from a checkout of bmm at `path`.
    pub fn runtime_path(path: impl Into<PathBuf>) -> Self {
        Self {
            runtime: RuntimeSource::Path(path.into()),
            package_name: None,
        }
    }

    /// Takes the runtime from the git repository `url` at `rev`.
    pub fn runtime_git(url: impl Into<String>, rev: impl Into<String>) -> Self {
        Self {
            runtime: RuntimeSource::Git {
                url: url.into(),
                rev: rev.into(),
            },
            package_name: None,
        }
    }
}

#[derive(Serialize)]
struct Context<'a> {
    name: &'a str,
    slug: &'a str,
    description: &'a str,
    version: &'a str,
    package: &'a str,
    tools: Vec<&'a str>,
    secrets: Vec<&'a str>,
    runtime_path: Option<Paths>,
    runtime_git: Option<Git<'a>>,
}

#[derive(Serialize)]
struct Paths {
    core: String,
    runtime: String,
}

#[derive(Serialize)]
struct Git<'a> {
    url: &'a str,
    rev: &'a str,
}

impl Renderer {
    /// Renders the ejected project of `spec`: `Cargo.toml`, `src/main.rs`,
    /// `server.json`, `README.md` and `.gitignore`.
    pub fn eject(&self, spec: &ValidatedSpec, options: &EjectOptions) -> Result<Bundle> {
        let s = spec.spec();
        let package = match &options.package_name {
            Some(name) if is_package_name(name) => name.clone(),
            Some(name) => {
                return Err(CodegenError::InvalidOption {
                    what: "package name",
                    reason: format!(
                        "{name:?} is not a cargo package name (ASCII letters, digits, - and _, starting with a letter, not a keyword)"
                    ),
                });
            }
            None if is_package_name(s.slug.as_str()) => s.slug.to_string(),
            None => format!("mcp-{}", s.slug),
        };
        let (runtime_path, runtime_git) = match &options.runtime {
            RuntimeSource::Path(path) => {
                let text = path.to_str().ok_or_else(|| CodegenError::InvalidOption {
                    what: "runtime path",
                    reason: format!("{} is not valid UTF-8", path.display()),
                })?;
                let text = text.trim_end_matches(['/', '\\']);
                if text.is_empty() {
                    return Err(CodegenError::InvalidOption {
                        what: "runtime path",
                        reason: "it is empty".into(),
                    });
                }
                let paths = Paths {
                    core: format!("{text}/bmm-core"),
                    runtime: format!("{text}/bmm-runtime"),
                };
                (Some(paths), None)
            }
            RuntimeSource::Git { url, rev } => {
                if url::Url::parse(url).is_err() {
                    return Err(CodegenError::InvalidOption {
                        what: "runtime git URL",
                        reason: format!("{url:?} is not a URL"),
                    });
                }
                if rev.is_empty() || rev.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(CodegenError::InvalidOption {
                        what: "runtime git revision",
                        reason: format!("{rev:?} is not a revision"),
                    });
                }
                (None, Some(Git { url, rev }))
            }
        };
        let context = Context {
            name: &s.name,
            slug: s.slug.as_str(),
            description: &s.description,
            version: &s.version,
            package: &package,
            tools: s.tools.iter().map(|t| t.name.as_str()).collect(),
            secrets: s.secrets.iter().map(|x| x.name.as_str()).collect(),
            runtime_path,
            runtime_git,
        };
        let files = vec![
            RenderedFile {
                path: "Cargo.toml".into(),
                contents: self.render("eject/Cargo.toml.hbs", &context)?,
            },
            RenderedFile {
                path: "src/main.rs".into(),
                contents: self.render("eject/main.rs.hbs", &context)?,
            },
            RenderedFile {
                path: "server.json".into(),
                contents: spec_json(spec)?,
            },
            RenderedFile {
                path: "README.md".into(),
                contents: self.render("eject/README.md.hbs", &context)?,
            },
            RenderedFile {
                path: ".gitignore".into(),
                contents: self.render("eject/gitignore.hbs", &context)?,
            },
        ];
        Ok(Bundle { files })
    }
}

/// Whether cargo accepts `name` as a package name and Rust as a crate name.
fn is_package_name(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "abstract",
        "alloc",
        "as",
        "async",
        "await",
        "become",
        "box",
        "break",
        "build",
        "const",
        "continue",
        "core",
        "crate",
        "deps",
        "do",
        "dyn",
        "else",
        "enum",
        "examples",
        "extern",
        "false",
        "final",
        "fn",
        "for",
        "gen",
        "if",
        "impl",
        "in",
        "incremental",
        "let",
        "loop",
        "macro",
        "match",
        "mod",
        "move",
        "mut",
        "override",
        "priv",
        "proc-macro",
        "proc_macro",
        "pub",
        "ref",
        "return",
        "self",
        "static",
        "std",
        "struct",
        "super",
        "test",
        "trait",
        "true",
        "try",
        "type",
        "typeof",
        "unsafe",
        "unsized",
        "use",
        "virtual",
        "where",
        "while",
        "yield",
    ];
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 64
        && !RESERVED.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_follow_cargo() {
        assert!(is_package_name("unit-converter"));
        assert!(is_package_name("a"));
        for bad in ["", "1st", "fn", "test", "std", "a b", "é"] {
            assert!(!is_package_name(bad), "{bad}");
        }
    }
}
