//! Rendering a checked spec into a deploy bundle, install snippets and an
//! ejected cargo project.
//!
//! Everything is rendered by a [`Renderer`] from handlebars templates that
//! are compiled into the crate (`bmm-generator/templates/`). A team can
//! replace any of them: [`Renderer::with_overrides`] takes a directory in
//! which a file with a template's name (for example `bundle/README.md.hbs`)
//! replaces the embedded one; [`Renderer::template_names`] lists the names
//! and [`Renderer::embedded`] gives the text to start from.
//!
//! | what | call | files |
//! |---|---|---|
//! | deploy bundle | [`Renderer::bundle`] | `server.json`, `Dockerfile`, `compose.yaml`, `.env.example`, `README.md` |
//! | install snippets | [`Renderer::snippets`] | Claude Desktop, Claude Code, Cursor, VS Code, ChatGPT |
//! | ejected project | [`Renderer::eject`] | `Cargo.toml`, `src/main.rs`, `server.json`, `README.md`, `.gitignore` |
//!
//! ```
//! use bmm_core::{CheckOptions, Format, check_text};
//! use bmm_generator::codegen::{BundleOptions, Renderer, SnippetInput};
//!
//! let text = include_str!("../../../examples/specs/unit-converter.json");
//! let spec = check_text(text, Format::Json, &CheckOptions::default())?;
//! let renderer = Renderer::new()?;
//! let bundle = renderer.bundle(&spec, &BundleOptions::default())?;
//! assert!(bundle.file("Dockerfile").is_some());
//!
//! let snippets = renderer.snippets(&SnippetInput::new("units", "https://units.example.com/mcp"))?;
//! assert_eq!(snippets.claude_code, "claude mcp add --transport http units https://units.example.com/mcp");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Rendering rules
//!
//! - Handlebars runs in strict mode: a template that names a field the
//!   context lacks is an error, not an empty string.
//! - HTML escaping is off. Every value from a spec or an option goes through
//!   the helper of the format it lands in (`json`, `yaml`, `sh`, `toml`,
//!   `md`, `md_code`, `fence`, `one_line`); see the `escape` module.
//! - Rendering is deterministic: the same spec and options give the same
//!   bytes, which the golden files in `tests/golden/` check.
//! - Secret **values** never reach a rendered file: the renderer is only
//!   ever given a spec, which names secrets and holds no values. The deploy
//!   bundle passes them from the environment (`BMM_SECRET_<NAME>`) at run time.

mod bundle;
mod eject;
mod escape;
mod snippets;

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use serde::Serialize;

pub use bundle::{Bundle, BundleOptions, RenderedFile};
pub use eject::{EjectOptions, RuntimeSource};
pub use snippets::{SnippetInput, Snippets};

/// What can go wrong while rendering.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodegenError {
    /// A template, embedded or from an override directory, does not parse.
    #[error("template {name} does not parse: {source}")]
    Template {
        /// The template's name, e.g. `bundle/README.md.hbs`.
        name: String,
        /// What the parser said.
        #[source]
        source: Box<handlebars::TemplateError>,
    },
    /// A template failed to render: it names a value the context lacks
    /// (strict mode), or a helper refused a value.
    #[error("cannot render {name}: {source}")]
    Render {
        /// The template's name.
        name: String,
        /// What went wrong.
        #[source]
        source: Box<handlebars::RenderError>,
    },
    /// The override directory, or a file in it, cannot be read.
    #[error("cannot read template overrides at {path}: {source}")]
    ReadOverrides {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A `.hbs` file in the override directory has no embedded template of
    /// its name (most likely a typo, which would otherwise be ignored).
    #[error("{path} overrides no template; the templates are: {known}")]
    UnknownOverride {
        /// The file, relative to the override directory.
        path: PathBuf,
        /// The template names, comma-separated.
        known: String,
    },
    /// An option has a value that cannot be rendered safely.
    #[error("invalid {what}: {reason}")]
    InvalidOption {
        /// Which option, e.g. "server URL".
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The spec could not be serialized as JSON.
    #[error("cannot serialize the spec: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The target directory of [`Bundle::write_to`] holds files and
    /// overwriting was not asked for.
    #[error("{path} is not empty; choose an empty directory or allow overwriting")]
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// A rendered file's path is not a plain relative path (absolute, or
    /// with `..` or an empty component).
    #[error("{path:?} is not a safe relative path")]
    UnsafePath {
        /// The path as rendered.
        path: String,
    },
    /// Writing a file or creating a directory failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// The result type of this module.
pub type Result<T, E = CodegenError> = std::result::Result<T, E>;

/// The embedded templates: name (relative to `templates/`) and text.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "bundle/Dockerfile.hbs",
        include_str!("../../templates/bundle/Dockerfile.hbs"),
    ),
    (
        "bundle/compose.yaml.hbs",
        include_str!("../../templates/bundle/compose.yaml.hbs"),
    ),
    (
        "bundle/env.example.hbs",
        include_str!("../../templates/bundle/env.example.hbs"),
    ),
    (
        "bundle/README.md.hbs",
        include_str!("../../templates/bundle/README.md.hbs"),
    ),
    (
        "snippets/claude-desktop.json.hbs",
        include_str!("../../templates/snippets/claude-desktop.json.hbs"),
    ),
    (
        "snippets/claude-code.sh.hbs",
        include_str!("../../templates/snippets/claude-code.sh.hbs"),
    ),
    (
        "snippets/cursor.json.hbs",
        include_str!("../../templates/snippets/cursor.json.hbs"),
    ),
    (
        "snippets/vscode.json.hbs",
        include_str!("../../templates/snippets/vscode.json.hbs"),
    ),
    (
        "snippets/vscode-cli.sh.hbs",
        include_str!("../../templates/snippets/vscode-cli.sh.hbs"),
    ),
    (
        "snippets/chatgpt.md.hbs",
        include_str!("../../templates/snippets/chatgpt.md.hbs"),
    ),
    (
        "snippets/snippets.md.hbs",
        include_str!("../../templates/snippets/snippets.md.hbs"),
    ),
    (
        "eject/Cargo.toml.hbs",
        include_str!("../../templates/eject/Cargo.toml.hbs"),
    ),
    (
        "eject/main.rs.hbs",
        include_str!("../../templates/eject/main.rs.hbs"),
    ),
    (
        "eject/README.md.hbs",
        include_str!("../../templates/eject/README.md.hbs"),
    ),
    (
        "eject/gitignore.hbs",
        include_str!("../../templates/eject/gitignore.hbs"),
    ),
];

/// Renders bundles, snippets and ejected projects from templates.
///
/// Building one compiles every template, so a broken override is reported
/// at once rather than at the first render that uses it. Cheap to share:
/// rendering takes `&self`.
#[derive(Debug)]
pub struct Renderer {
    registry: Handlebars<'static>,
}

impl Renderer {
    /// A renderer with the embedded templates.
    pub fn new() -> Result<Self> {
        Self::build(&[])
    }

    /// A renderer whose templates are replaced by the files of the same
    /// name under `dir` (e.g. `dir/bundle/README.md.hbs`). Files not ending
    /// in `.hbs` are ignored; a `.hbs` file that matches no template is an
    /// error, so a misspelt override does not go unnoticed.
    pub fn with_overrides(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let mut overrides = Vec::new();
        collect_overrides(dir, dir, &mut overrides)?;
        overrides.sort();
        Self::build(&overrides)
    }

    /// The names of the templates, as an override directory spells them.
    pub fn template_names() -> impl Iterator<Item = &'static str> {
        TEMPLATES.iter().map(|(name, _)| *name)
    }

    /// The embedded text of the template `name`, to start an override from.
    pub fn embedded(name: &str) -> Option<&'static str> {
        TEMPLATES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, text)| *text)
    }

    fn build(overrides: &[(String, String)]) -> Result<Self> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        escape::register(&mut registry);
        for (name, text) in TEMPLATES {
            let text = overrides
                .iter()
                .find(|(known, _)| known == name)
                .map_or(*text, |(_, text)| text.as_str());
            registry
                .register_template_string(name, text)
                .map_err(|source| CodegenError::Template {
                    name: (*name).to_owned(),
                    source: Box::new(source),
                })?;
        }
        Ok(Self { registry })
    }

    /// Renders the template `name` with `data`.
    fn render(&self, name: &str, data: &impl Serialize) -> Result<String> {
        self.registry
            .render(name, data)
            .map_err(|source| CodegenError::Render {
                name: name.to_owned(),
                source: Box::new(source),
            })
    }
}

/// Reads every `.hbs` file under `dir` into `out` as (name, text), the name
/// relative to `root` with `/` separators.
fn collect_overrides(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<()> {
    let read_error = |path: &Path, source| CodegenError::ReadOverrides {
        path: path.to_owned(),
        source,
    };
    let entries = fs::read_dir(dir).map_err(|e| read_error(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| read_error(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| read_error(&path, e))?;
        if kind.is_dir() {
            collect_overrides(root, &path, out)?;
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "hbs") {
            continue;
        }
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let name = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if Renderer::embedded(&name).is_none() {
            let mut known = String::new();
            for (i, template) in Renderer::template_names().enumerate() {
                let separator = if i == 0 { "" } else { ", " };
                let _ = write!(known, "{separator}{template}");
            }
            return Err(CodegenError::UnknownOverride {
                path: relative.to_owned(),
                known,
            });
        }
        let text = fs::read_to_string(&path).map_err(|e| read_error(&path, e))?;
        out.push((name, text));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_template_compiles_and_has_a_unique_name() {
        let renderer = Renderer::new().unwrap();
        let mut names: Vec<&str> = Renderer::template_names().collect();
        for name in &names {
            assert!(renderer.registry.has_template(name), "{name}");
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TEMPLATES.len());
    }
}
