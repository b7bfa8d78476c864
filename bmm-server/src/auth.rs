//! OAuth for `bmm run`: every served MCP endpoint becomes an OAuth 2.1
//! resource server, with tokens from the built-in authorization server
//! (`--auth local`) or from an external issuer (`--issuer`).
//!
//! The Host's router is wrapped, path by path, in bmm-oauth's bearer layer
//! with that endpoint's canonical resource URI as the required audience; RFC
//! 9728 metadata is served beside it, unauthenticated, and so are `/healthz`,
//! `/readyz` and (in local mode) the authorization server itself; any other
//! path is a 404 here, so no spelling of a path reaches a server unchecked
//! (the Host, for its part, serves a slug under its one spelling). The layer
//! removes the `Authorization` header before the request reaches the MCP
//! handler, so a token never travels on to an upstream API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use bmm_oauth::resource_server::{
    ProtectedResourceMetadata, ResourceDirectory, protected_resource_router,
};
use bmm_oauth::server::MetadataDocumentPolicy;
use bmm_oauth::{
    AuthorizationServer, AuthorizationServerConfig, JwksCache, KeyRing, MemoryStore,
    ResourceRecord, ResourceServer, ResourceServerConfig, ResourceUri, SigningAlgorithm,
    StaticUser,
};
use tower::Layer;

/// The scope every served MCP endpoint advertises.
pub(crate) const SCOPE: &str = "mcp:tools";

/// How often the local authorization server forgets expired codes, pending
/// requests and refresh tokens and deletes stale registrations.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(3600);

/// The local authorization server's periodic clean-up; it stops when this is
/// dropped, so keep it for as long as the server runs.
pub(crate) struct Cleanup(tokio::task::JoinHandle<()>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where tokens come from.
#[derive(Clone, Debug)]
pub(crate) enum TokenSource {
    /// The built-in authorization server at the server's own origin, with one
    /// always-signed-in local user.
    Local {
        /// Approve every request without a consent page.
        auto_approve: bool,
        /// What access tokens are signed with.
        algorithm: SigningAlgorithm,
    },
    /// An external authorization server.
    External {
        /// Its issuer identifier.
        issuer: String,
        /// Where its signing keys are published.
        jwks_uri: String,
    },
}

/// One MCP endpoint to protect: its path on this server and a display name.
pub(crate) struct Endpoint {
    pub(crate) path: String,
    pub(crate) name: String,
}

/// `mcp` wrapped so every endpoint needs a token for itself; returns the router,
/// the issuer tokens come from and, in local mode, the authorization server's
/// clean-up task (call it on a tokio runtime).
pub(crate) fn protect(
    mcp: Router,
    public_base: &str,
    endpoints: &[Endpoint],
    source: &TokenSource,
) -> anyhow::Result<(Router, String, Option<Cleanup>)> {
    let public_base = public_base.trim_end_matches('/');
    let (issuer, jwks, authorization_server) = match source {
        TokenSource::Local {
            auto_approve,
            algorithm,
        } => {
            let store = Arc::new(MemoryStore::new());
            for endpoint in endpoints {
                store.add_resource(ResourceRecord {
                    uri: resource_uri(public_base, &endpoint.path)?,
                    scopes_supported: vec![SCOPE.to_owned()],
                });
            }
            let keys =
                Arc::new(KeyRing::generate(*algorithm).context("cannot create signing keys")?);
            let mut config = AuthorizationServerConfig::new(public_base);
            config.scopes_supported = vec![SCOPE.to_owned()];
            // Local clients publish their metadata documents on loopback.
            config.metadata_documents = MetadataDocumentPolicy {
                allow_loopback: true,
                ..config.metadata_documents
            };
            let user: Arc<StaticUser> = Arc::new(if *auto_approve {
                StaticUser::auto_approving("local-user")
            } else {
                StaticUser::new("local-user")
            });
            let server = AuthorizationServer::new(config, store, user, keys.clone())
                .context("cannot start the authorization server")?;
            (
                public_base.to_owned(),
                Arc::new(JwksCache::new(keys)),
                Some(server),
            )
        }
        TokenSource::External { issuer, jwks_uri } => {
            let jwks = JwksCache::http(jwks_uri.as_str()).context("invalid --jwks-uri")?;
            (issuer.clone(), Arc::new(jwks), None)
        }
    };

    let mut app = Router::new();
    let mut directory = HashMap::new();
    for endpoint in endpoints {
        let mut config =
            ResourceServerConfig::new(resource_uri(public_base, &endpoint.path)?, issuer.as_str());
        config.scopes_supported = vec![SCOPE.to_owned()];
        config.resource_name = Some(endpoint.name.clone());
        let server = ResourceServer::new(config, Arc::clone(&jwks));
        directory.insert(endpoint.path.clone(), server.metadata());
        app = app.route_service(&endpoint.path, server.layer().layer(mcp.clone()));
    }
    app = app.merge(protected_resource_router(Arc::new(Directory(directory))));
    let mut cleanup = None;
    if let Some(server) = authorization_server {
        app = app.merge(server.router());
        cleanup = Some(Cleanup(server.spawn_cleanup(CLEANUP_INTERVAL)));
    }
    // The probes go to the host unprotected; every other path is refused
    // here, so that nothing reaches a server but through its own check.
    for probe in ["/healthz", "/readyz"] {
        app = app.route_service(probe, mcp.clone().into_service());
    }
    let not_found = |uri: axum::http::Uri| async move { bmm_runtime::not_served(uri.path()) };
    Ok((app.fallback(not_found), issuer, cleanup))
}

fn resource_uri(public_base: &str, path: &str) -> anyhow::Result<ResourceUri> {
    ResourceUri::parse(&format!("{public_base}{path}"))
        .with_context(|| format!("{public_base}{path} cannot name a protected resource"))
}

/// RFC 9728 metadata of every protected endpoint, by path.
struct Directory(HashMap<String, ProtectedResourceMetadata>);

impl ResourceDirectory for Directory {
    fn metadata_for(&self, resource_path: &str) -> Option<ProtectedResourceMetadata> {
        self.0.get(resource_path).cloned()
    }
}
