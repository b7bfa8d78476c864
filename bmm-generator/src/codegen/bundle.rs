//! The deploy bundle: a spec and everything needed to run it in a container.
//!
//! The container holds only the static `bmm` binary and `server.json`
//! (`FROM scratch`), runs as a non-root user and is started by
//! `bmm run --spec /server.json --bind 0.0.0.0 --port 8080 --any-host`.
//! `--any-host` because a container is reached through names it cannot
//! know in advance (a Docker network alias, a proxy's public name).
//! Secrets reach it as `BMM_SECRET_<NAME>` environment variables, which
//! `bmm run` reads; `compose.yaml` fills them from variables of the
//! deployer's environment (`${NAME}`), so no value is ever written here.
//!
//! No healthcheck is declared: a `scratch` image has no shell or `curl` to
//! run one with, and `bmm` has no subcommand that probes `/healthz`. An
//! orchestrator that probes over HTTP can use `/healthz` and `/readyz`.

use std::fs;
use std::path::{Component, Path, PathBuf};

use bmm_core::ValidatedSpec;
use serde::Serialize;

use super::snippets::{SnippetInput, check_url};
use super::{CodegenError, Renderer, Result};

/// How the bundle is deployed. A `Config` struct with public fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleOptions {
    /// The URL clients will reach the MCP endpoint at, e.g.
    /// `https://weather.example.com/mcp`, for the README's install snippets.
    /// Default: `http://localhost:{host_port}/mcp`.
    pub public_url: Option<String>,
    /// The port published on the host. Default 8080.
    pub host_port: u16,
    /// The container's memory limit in MiB. Default 256.
    pub memory_mib: u32,
    /// The most processes and threads the container may have. Default 128.
    pub pids_limit: u32,
}

impl Default for BundleOptions {
    fn default() -> Self {
        Self {
            public_url: None,
            host_port: 8080,
            memory_mib: 256,
            pids_limit: 128,
        }
    }
}

/// One rendered file: a relative path and its contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedFile {
    /// Where the file goes, relative to the bundle's directory, with `/`
    /// separators, e.g. `src/main.rs`.
    pub path: String,
    /// The file's text.
    pub contents: String,
}

/// A set of rendered files, in a fixed order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// The files.
    pub files: Vec<RenderedFile>,
}

impl Bundle {
    /// The file at `path`, if the bundle has one.
    pub fn file(&self, path: &str) -> Option<&RenderedFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Writes every file under `dir`, creating it and any subdirectory.
    ///
    /// Refuses a `dir` that already holds anything unless `overwrite` is
    /// set (then files of the same name are replaced and others left
    /// alone), and refuses any file path that is not a plain relative path,
    /// checking all of them before writing the first.
    pub fn write_to(&self, dir: impl AsRef<Path>, overwrite: bool) -> Result<()> {
        let dir = dir.as_ref();
        let mut targets = Vec::with_capacity(self.files.len());
        for file in &self.files {
            targets.push((dir.join(safe_relative(&file.path)?), file));
        }
        let write_error = |path: &Path, source| CodegenError::Write {
            path: path.to_owned(),
            source,
        };
        match fs::read_dir(dir) {
            Ok(mut entries) => {
                if !overwrite && entries.next().is_some() {
                    return Err(CodegenError::NotEmpty {
                        path: dir.to_owned(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
            }
            Err(e) => return Err(write_error(dir, e)),
        }
        for (path, file) in targets {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| write_error(parent, e))?;
            }
            // Replace a link rather than write through it (`overwrite` must
            // not let a planted symlink point a write elsewhere).
            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                fs::remove_file(&path).map_err(|e| write_error(&path, e))?;
            }
            fs::write(&path, &file.contents).map_err(|e| write_error(&path, e))?;
        }
        Ok(())
    }
}

/// `path` as a relative path of normal components only.
fn safe_relative(path: &str) -> Result<PathBuf> {
    let unsafe_path = || CodegenError::UnsafePath {
        path: path.to_owned(),
    };
    if path.is_empty() || path.contains(['\\', '\0', ':']) {
        return Err(unsafe_path());
    }
    let mut out = PathBuf::new();
    for part in path.split('/') {
        let component = Path::new(part).components().next();
        match component {
            Some(Component::Normal(normal)) if normal == part => out.push(normal),
            _ => return Err(unsafe_path()),
        }
    }
    Ok(out)
}

#[derive(Serialize)]
struct Context<'a> {
    name: &'a str,
    slug: &'a str,
    description: &'a str,
    version: &'a str,
    tools: Vec<Tool<'a>>,
    secrets: Vec<Secret<'a>>,
    egress: &'a [String],
    host_port: u16,
    memory_mib: u32,
    pids_limit: u32,
    url: &'a str,
    snippets: &'a str,
}

#[derive(Serialize)]
struct Tool<'a> {
    name: &'a str,
    title: Option<&'a str>,
    description: &'a str,
}

#[derive(Serialize)]
struct Secret<'a> {
    name: &'a str,
    description: &'a str,
    how_to_get: Option<&'a str>,
    required: bool,
    /// The value compose.yaml gives `BMM_SECRET_<NAME>`: a reference to the
    /// deployer's variable `NAME`, required or defaulting to empty.
    compose_value: String,
}

impl Renderer {
    /// Renders the deploy bundle of `spec`: `server.json`, `Dockerfile`,
    /// `compose.yaml`, `.env.example` and `README.md`.
    pub fn bundle(&self, spec: &ValidatedSpec, options: &BundleOptions) -> Result<Bundle> {
        let s = spec.spec();
        let url = match &options.public_url {
            Some(url) => check_url(url)?.to_string(),
            None => format!("http://localhost:{}/mcp", options.host_port),
        };
        let snippets = self.snippets(
            &SnippetInput::new(s.slug.as_str(), url.as_str()).description(s.description.as_str()),
        )?;
        let context = Context {
            name: &s.name,
            slug: s.slug.as_str(),
            description: &s.description,
            version: &s.version,
            tools: s
                .tools
                .iter()
                .map(|t| Tool {
                    name: t.name.as_str(),
                    title: t.title.as_deref(),
                    description: &t.description,
                })
                .collect(),
            secrets: s
                .secrets
                .iter()
                .map(|secret| Secret {
                    name: secret.name.as_str(),
                    description: &secret.description,
                    how_to_get: secret.how_to_get.as_deref(),
                    required: secret.required,
                    compose_value: if secret.required {
                        format!("${{{0}:?set {0} (see README.md)}}", secret.name)
                    } else {
                        format!("${{{0}:-}}", secret.name)
                    },
                })
                .collect(),
            egress: &s.egress,
            host_port: options.host_port,
            memory_mib: options.memory_mib,
            pids_limit: options.pids_limit,
            url: &url,
            snippets: snippets.to_markdown(),
        };
        let files = vec![
            RenderedFile {
                path: "server.json".into(),
                contents: spec_json(spec)?,
            },
            RenderedFile {
                path: "Dockerfile".into(),
                contents: self.render("bundle/Dockerfile.hbs", &context)?,
            },
            RenderedFile {
                path: "compose.yaml".into(),
                contents: self.render("bundle/compose.yaml.hbs", &context)?,
            },
            RenderedFile {
                path: ".env.example".into(),
                contents: self.render("bundle/env.example.hbs", &context)?,
            },
            RenderedFile {
                path: "README.md".into(),
                contents: self.render("bundle/README.md.hbs", &context)?,
            },
        ];
        Ok(Bundle { files })
    }
}

/// The spec as pretty JSON with a final newline.
pub(crate) fn spec_json(spec: &ValidatedSpec) -> Result<String> {
    let mut text = serde_json::to_string_pretty(spec.spec())?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_safe() {
        assert!(safe_relative("README.md").is_ok());
        assert!(safe_relative("src/main.rs").is_ok());
        assert!(safe_relative(".env.example").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a/",
            "a\\b",
            "C:x",
            "a\0b",
        ] {
            assert!(safe_relative(bad).is_err(), "{bad:?}");
        }
    }
}
