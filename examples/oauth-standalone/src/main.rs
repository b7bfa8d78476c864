//! Run with `cargo run -p example-oauth-standalone -- --port 9000 --resource http://127.0.0.1:9001/mcp`.
//!
//! Serves the bmm-oauth authorization server alone on loopback, with an
//! in-memory store, one protected resource and a single always-signed-in user
//! (`--subject`) who approves every request without a page, so that a client
//! (or the MCP conformance suite) can complete the code flow headlessly. Client
//! ID metadata documents on loopback are allowed. Not for production.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bmm_oauth::{
    AuthorizationServer, AuthorizationServerConfig, KeyRing, MemoryStore, ResourceRecord,
    ResourceUri, SigningAlgorithm, StaticUser,
};
use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
struct Args {
    /// Loopback port to listen on.
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Canonical URI of the protected resource tokens are issued for.
    #[arg(long, default_value = "http://127.0.0.1:9001/mcp")]
    resource: String,
    /// Scopes the resource supports (space-separated).
    #[arg(long, default_value = "mcp:tools")]
    scopes: String,
    /// The signed-in end user.
    #[arg(long, default_value = "local-user")]
    subject: String,
    /// Signing algorithm: RS256, ES256 or EdDSA.
    #[arg(long, default_value = "RS256")]
    alg: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let alg = SigningAlgorithm::ALL
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(&args.alg))
        .with_context(|| format!("unknown algorithm {}", args.alg))?;
    let issuer = format!("http://127.0.0.1:{}", args.port);

    let store = Arc::new(MemoryStore::new());
    store.add_resource(ResourceRecord {
        uri: ResourceUri::parse(&args.resource)?,
        scopes_supported: args.scopes.split_whitespace().map(str::to_owned).collect(),
    });
    let mut config = AuthorizationServerConfig::new(&issuer);
    config.metadata_documents.allow_loopback = true;
    let server = AuthorizationServer::new(
        config,
        store,
        Arc::new(StaticUser::auto_approving(args.subject)),
        Arc::new(KeyRing::generate(alg)?),
    )?;
    server.spawn_cleanup(Duration::from_secs(3600));

    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port))).await?;
    println!("issuer {issuer}");
    println!("metadata {issuer}/.well-known/oauth-authorization-server");
    axum::serve(listener, server.router()).await?;
    Ok(())
}
