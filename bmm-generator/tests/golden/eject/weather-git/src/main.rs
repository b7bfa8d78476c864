//! Weather: an MCP server ejected from bmm. Run with `cargo run --release`.
//!
//! It serves the tools of `server.json` (compiled into the binary: edit it
//! and rebuild) over MCP's Streamable HTTP transport at `/mcp`, with bmm's
//! runtime: arguments checked against each tool's input schema, script tools
//! in a sandbox, every request held to the spec's egress allowlist.
//!
//! Configuration comes from the environment:
//!
//! - `BIND` (default `127.0.0.1`) and `PORT` (default `8080`; `0` picks a free port);
//! - `ALLOWED_HOSTS`: `Host` names to accept besides loopback, comma-separated,
//!   e.g. the public name behind a reverse proxy; `*` accepts any;
//! - `BMM_SECRET_<NAME>`: the value of each secret the spec declares.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use bmm_core::{CheckOptions, Format, check_text};
use bmm_runtime::{Host, HostConfig, SecretValue, Secrets};

/// The spec this server serves.
const SPEC: &str = include_str!("../server.json");

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let spec = check_text(SPEC, Format::Json, &CheckOptions::default())
        .map_err(|e| format!("server.json is not a valid spec: {e}"))?;

    let mut config = HostConfig::default();
    if let Ok(hosts) = std::env::var("ALLOWED_HOSTS") {
        let hosts: Vec<String> = hosts.split(',').map(|h| h.trim().to_owned()).collect();
        if hosts.iter().any(|h| h == "*") {
            // An empty list accepts any Host header.
            config.allowed_hosts.clear();
        } else {
            config.allowed_hosts.extend(hosts.into_iter().filter(|h| !h.is_empty()));
        }
    }
    let host = Host::new(config).map_err(|e| format!("cannot start the host: {e}"))?;

    // Secret values come from the environment, never from the spec or the arguments.
    let secrets: Secrets = spec
        .spec()
        .secrets
        .iter()
        .filter_map(|secret| {
            let value = std::env::var(format!("BMM_SECRET_{}", secret.name)).ok()?;
            Some((secret.name.to_string(), SecretValue::new(value.as_str())))
        })
        .collect();
    host.deploy(&spec, secrets)
        .map_err(|e| format!("cannot serve the spec: {e}"))?;

    let bind: IpAddr = setting("BIND", "127.0.0.1")?;
    let port: u16 = setting("PORT", "8080")?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(bind, port))
        .await
        .map_err(|e| format!("cannot listen on {bind}:{port}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;

    // Add your own routes here: this is an axum Router.
    let router = host.single_router(spec.spec().slug.as_str());

    // A closed standard output must not stop the server, so write errors are ignored.
    let _ = writeln!(std::io::stdout(), "serving at http://{local}/mcp");
    bmm_runtime::serve(listener, router, bmm_runtime::shutdown_signal())
        .await
        .map_err(|e| format!("the server stopped: {e}"))
}

/// The environment variable `name` parsed, or `default`.
fn setting<T: std::str::FromStr>(name: &str, default: &str) -> Result<T, String> {
    let text = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    text.parse()
        .map_err(|_| format!("{name}={text:?} is not a valid value"))
}
