//! RFC 9728 protected resource metadata and the router serving it.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::resource::PROTECTED_RESOURCE_WELL_KNOWN;

/// The protected resource metadata document (RFC 9728 §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    /// The canonical resource URI.
    pub resource: String,
    /// Issuers whose tokens the resource accepts.
    pub authorization_servers: Vec<String>,
    /// Scopes the resource understands (never `offline_access`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub scopes_supported: Vec<String>,
    /// `["header"]`: tokens are accepted in the `Authorization` header only.
    pub bearer_methods_supported: Vec<String>,
    /// A human-readable name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource_name: Option<String>,
}

/// Looks up the metadata of the resource at a path on this host; a multi-tenant
/// host implements it to serve `/.well-known/oauth-protected-resource/mcp/{slug}`
/// for every hosted server.
pub trait ResourceDirectory: Send + Sync + 'static {
    /// Metadata for the resource whose URI path is `resource_path` (`""` for the
    /// host root, otherwise starting with `/`).
    fn metadata_for(&self, resource_path: &str) -> Option<ProtectedResourceMetadata>;
}

/// A router serving `/.well-known/oauth-protected-resource` and
/// `/.well-known/oauth-protected-resource/{path}` from `directory`.
pub fn protected_resource_router(directory: Arc<dyn ResourceDirectory>) -> Router {
    Router::new()
        .route(PROTECTED_RESOURCE_WELL_KNOWN, get(root))
        .route(
            &format!("{PROTECTED_RESOURCE_WELL_KNOWN}/{{*path}}"),
            get(with_path),
        )
        .with_state(directory)
}

async fn root(State(dir): State<Arc<dyn ResourceDirectory>>) -> Response {
    answer(dir.metadata_for(""))
}

async fn with_path(
    State(dir): State<Arc<dyn ResourceDirectory>>,
    Path(path): Path<String>,
) -> Response {
    let path = format!("/{}", path.trim_end_matches('/'));
    answer(dir.metadata_for(&path))
}

fn answer(meta: Option<ProtectedResourceMetadata>) -> Response {
    let Some(meta) = meta else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = Json(meta).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}
