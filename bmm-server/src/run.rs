//! `bmm run`: serve one spec, or every spec in a folder, over MCP.
//!
//! This is the runner that process and container deployments start. Secret
//! values come from the environment (`BMM_SECRET_<NAME>`) or, with
//! `--secrets-stdin`, from a JSON object on standard input — never from the
//! argument list, which other users of the machine can read.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use bmm_core::{CheckOptions, Format, ValidatedSpec, check_text};
use bmm_oauth::SigningAlgorithm;
use bmm_runtime::{Host, HostConfig, SecretValue, Secrets};
use clap::Args;

use crate::auth::{Endpoint, TokenSource};

/// Arguments of `bmm run`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["spec", "dir"])))]
pub(crate) struct RunArgs {
    /// Serve this spec at `/mcp` (and `/mcp/{slug}`).
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// Serve every spec (`*.json`, `*.yaml`, `*.yml`) in this folder at `/mcp/{slug}`.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Port to listen on; 0 picks a free one (printed at start).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Also accept this `Host` header (a public name behind a reverse proxy); repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// Accept any `Host` header (for containers reached through changing names).
    #[arg(long)]
    any_host: bool,
    /// Also accept this browser `Origin` (`https://app.example.com`, `:*` for any port); repeatable.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Accept plain http URLs in specs and upstreams (local development only).
    #[arg(long)]
    allow_http: bool,
    /// Let tools reach this otherwise forbidden network, e.g. 127.0.0.1/32 for a
    /// local upstream (development and tests only); repeatable.
    #[arg(long = "allow-network", value_name = "CIDR")]
    allow_networks: Vec<String>,
    /// Read secret values as a JSON object `{"NAME": "value"}` from standard input.
    #[arg(long)]
    secrets_stdin: bool,
    /// Require OAuth access tokens from the built-in authorization server,
    /// served on the same port (`local`), for a one-command setup on one machine.
    #[arg(long, value_enum, conflicts_with = "issuer")]
    auth: Option<AuthArg>,
    /// In local auth mode, approve every authorization request without a consent page.
    #[arg(long, requires = "auth")]
    auto_approve: bool,
    /// In local auth mode, the algorithm access tokens are signed with.
    /// An RS256 key adds 0.05-0.2 s of key generation at start; its tokens
    /// verify about three times faster than ES256 or EdDSA ones.
    #[arg(long, value_enum, requires = "auth", default_value_t = SigningArg::Rs256)]
    signing_alg: SigningArg,
    /// Require OAuth access tokens issued by this external authorization server
    /// (its issuer identifier, exactly as its tokens carry it).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// Where the external issuer publishes its signing keys (JWKS); default:
    /// the `jwks_uri` of the issuer's metadata (RFC 8414 or OpenID Connect
    /// Discovery), read at start.
    #[arg(long, value_name = "URL", requires = "issuer")]
    jwks_uri: Option<String>,
    /// The URL clients reach this server at (its resources are named from it);
    /// default `http://ADDRESS:PORT` of the listener.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Threads that run script tools (default: one per CPU). Each runs one
    /// call at a time, so this bounds how many script calls run at once.
    #[arg(long, value_name = "N")]
    script_workers: Option<std::num::NonZeroUsize>,
}

/// Authorization modes of `bmm run --auth`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum AuthArg {
    /// The built-in authorization server, on this server's own origin.
    Local,
}

/// Token signing algorithms of `bmm run --auth local --signing-alg`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum SigningArg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit key.
    #[value(name = "RS256", alias = "rs256")]
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    #[value(name = "ES256", alias = "es256")]
    Es256,
    /// Ed25519.
    #[value(name = "EdDSA", alias = "eddsa")]
    EdDsa,
}

impl From<SigningArg> for SigningAlgorithm {
    fn from(arg: SigningArg) -> Self {
        match arg {
            SigningArg::Rs256 => Self::Rs256,
            SigningArg::Es256 => Self::Es256,
            SigningArg::EdDsa => Self::EdDsa,
        }
    }
}

/// Runs `bmm run` until interrupted.
pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: RunArgs) -> anyhow::Result<ExitCode> {
    let options = CheckOptions::default().allow_http(args.allow_http);
    let specs = match (&args.spec, &args.dir) {
        (Some(file), _) => vec![load(file, &options)?],
        (None, Some(dir)) => load_dir(dir, &options)?,
        (None, None) => bail!("give --spec FILE or --dir DIR"),
    };
    let secrets = secret_values(args.secrets_stdin)?;

    let mut config = HostConfig::default();
    config
        .allowed_hosts
        .extend(args.allow_hosts.iter().cloned());
    if args.any_host {
        config.allowed_hosts.clear();
    }
    config
        .allowed_origins
        .extend(args.allow_origins.iter().cloned());
    config.serve.https_only = !args.allow_http;
    config.serve.allowed_networks = args.allow_networks.clone();
    if let Some(workers) = args.script_workers {
        config.sandbox.workers = workers.get();
    }
    let host = Host::new(config).context("cannot start the host")?;
    for spec in &specs {
        host.deploy(spec, declared_secrets(spec, &secrets))
            .with_context(|| format!("cannot serve {}", spec.spec().slug))?;
    }

    let source = match (args.auth, &args.issuer) {
        (Some(AuthArg::Local), _) => Some(TokenSource::Local {
            auto_approve: args.auto_approve,
            algorithm: args.signing_alg.into(),
        }),
        (None, Some(issuer)) => {
            let jwks_uri = match &args.jwks_uri {
                Some(jwks_uri) => jwks_uri.clone(),
                None => {
                    let found = bmm_oauth::resource_server::discover_jwks_uri(issuer)
                        .await
                        .with_context(|| {
                            format!(
                                "cannot find the signing keys of {issuer} from its metadata \
                                 (RFC 8414); give them with --jwks-uri"
                            )
                        })?;
                    say!("bmm: signing keys of {issuer} at {found} (from its metadata)");
                    found
                }
            };
            Some(TokenSource::External {
                issuer: issuer.clone(),
                jwks_uri,
            })
        }
        _ => None,
    };

    let address = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let local = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let router = match specs.as_slice() {
        [single] if args.spec.is_some() => host.single_router(single.spec().slug.as_str()),
        _ => host.router(),
    };
    // The local authorization server's clean-up runs as long as this binding lives.
    let (router, _cleanup) = match &source {
        None => (router, None),
        Some(source) => {
            let public = args
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{local}"));
            let mut endpoints: Vec<Endpoint> = specs
                .iter()
                .map(|s| Endpoint {
                    path: format!("/mcp/{}", s.spec().slug),
                    name: s.spec().name.clone(),
                })
                .collect();
            if let ([single], Some(_)) = (specs.as_slice(), &args.spec) {
                endpoints.push(Endpoint {
                    path: "/mcp".into(),
                    name: single.spec().name.clone(),
                });
            }
            let (router, issuer, cleanup) =
                crate::auth::protect(router, &public, &endpoints, source)?;
            say!("bmm: access tokens from issuer {issuer}");
            (router, cleanup)
        }
    };
    for spec in &specs {
        let s = spec.spec();
        say!(
            "bmm: serving {} v{} ({} tools) at http://{local}/mcp/{}",
            s.slug,
            s.version,
            s.tools.len(),
            s.slug
        );
    }
    if args.spec.is_some() {
        say!("bmm: serving at http://{local}/mcp");
    }
    say!("bmm: listening on {local}");
    bmm_runtime::serve(listener, router, shutdown_signal())
        .await
        .context("the server stopped")?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn load(file: &Path, options: &CheckOptions) -> anyhow::Result<ValidatedSpec> {
    let text = crate::spec::read_limited(file)?;
    let format = Format::from_path(file).unwrap_or_else(|| Format::sniff(&text));
    check_text(&text, format, options)
        .with_context(|| format!("{} is not a valid spec", file.display()))
}

/// Loads every spec of `dir`; an invalid one is reported and skipped, so one
/// bad file does not take the others down. Fails when none is valid.
fn load_dir(dir: &Path, options: &CheckOptions) -> anyhow::Result<Vec<ValidatedSpec>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| Format::from_path(path).is_some())
        .collect();
    files.sort();
    let mut specs: Vec<ValidatedSpec> = Vec::new();
    for file in files {
        match load(&file, options) {
            Ok(spec) => {
                let slug = spec.spec().slug.clone();
                if specs.iter().any(|s| s.spec().slug == slug) {
                    note!(
                        "bmm: skipping {}: slug {slug} is already served",
                        file.display()
                    );
                } else {
                    specs.push(spec);
                }
            }
            Err(error) => note!("bmm: skipping {error:#}"),
        }
    }
    if specs.is_empty() {
        bail!("{} holds no valid spec", dir.display());
    }
    Ok(specs)
}

/// The values of the secrets `spec` declares, out of `values` (others are
/// never handed to a server).
pub(crate) fn declared_secrets(spec: &ValidatedSpec, values: &HashMap<String, String>) -> Secrets {
    spec.spec()
        .secrets
        .iter()
        .filter_map(|s| {
            let name = s.name.as_str();
            let value = values.get(name)?;
            Some((name.to_owned(), SecretValue::new(value.as_str())))
        })
        .collect()
}

/// Secret values from `BMM_SECRET_<NAME>` variables, overridden by a JSON
/// object on standard input when asked.
pub(crate) fn secret_values(from_stdin: bool) -> anyhow::Result<HashMap<String, String>> {
    let mut values: HashMap<String, String> = std::env::vars()
        .filter_map(|(key, value)| Some((key.strip_prefix("BMM_SECRET_")?.to_owned(), value)))
        .collect();
    if from_stdin {
        let mut text = String::new();
        io::stdin()
            .take(1 << 20)
            .read_to_string(&mut text)
            .context("cannot read secrets from standard input")?;
        let given: HashMap<String, String> = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "secrets on standard input must be a JSON object of strings (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        values.extend(given);
    }
    Ok(values)
}

async fn shutdown_signal() {
    bmm_runtime::shutdown_signal().await;
    say!("bmm: shutting down");
}
