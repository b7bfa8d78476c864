//! OAuth 2.1 for MCP servers: the authorization server and the resource-server side.
//!
//! Every hosted MCP server is an OAuth 2.1 resource server; the control plane is
//! the authorization server that issues tokens bound to one server. This crate
//! is both halves, as a library to merge into any axum application. It knows
//! nothing about MCP itself.
//!
//! # Module map
//!
//! | module | what |
//! |---|---|
//! | [`server`] | the authorization server: [`AuthorizationServer`] (an axum `Router` over a [`Store`]), RFC 8414 metadata, `/authorize` with PKCE S256 and browser-bound consent through the [`Consent`] trait, `/token`, `/revoke` (RFC 7009), `/register` (RFC 7591), client ID metadata documents |
//! | [`resource_server`] | the resource-server side: [`ResourceServer`], the [`BearerLayer`] tower layer, [`Principal`], `WWW-Authenticate` challenges, the [`JwksCache`], RFC 9728 metadata |
//! | [`store`] | the [`Store`] trait and [`MemoryStore`] |
//! | [`keys`] | [`SigningKey`], [`KeyRing`] with rotation and an overlap window, JWKS |
//! | [`token`] | RFC 9068 access-token claims and signing |
//! | [`resource`] | [`ResourceUri`], the canonical resource identifier |
//! | [`pkce`] | RFC 7636 S256 |
//! | [`secret`] | secret newtypes: redacted, hashed at rest, compared in constant time |
//! | [`clock`] | injectable time |
//!
//! # Feature flags
//!
//! None. Cryptography is aws-lc-rs, called directly: the [`KeyRing`] signs
//! with private keys parsed once and the resource server verifies with
//! pre-parsed public keys; compact JWS is written ([`token`]) and read by
//! this crate. jsonwebtoken only loads PEM keys and supplies the JWK types
//! (and the RFC 7638 thumbprints used as key ids); it signs and verifies
//! nothing. The client ID metadata fetcher and [`HttpJwks`] use reqwest with
//! rustls.
//!
//! # Behaviour worth knowing
//!
//! - **Codes** are single use and live 60 s; a replayed code revokes the
//!   refresh-token family its first exchange started.
//! - **Refresh tokens** rotate on every use. Reusing a rotated token revokes the
//!   family, except within `refresh_grace_secs` (10 s) of the rotation, when the
//!   same successor is answered again: the successor is derived from its
//!   predecessor with an HMAC under [`secret::RotationSecret`], so the store
//!   never holds a token in the clear. Instances sharing a store must share
//!   the secret.
//! - **Access tokens** are self-contained RFC 9068 JWTs (10 minutes by
//!   default). Revoking one is accepted but has no effect before it expires;
//!   revoking its refresh token ends the grant.
//! - **Keys**: [`KeyRing::rotate`] switches at once and keeps the old key
//!   published for an overlap window; [`KeyRing::stage`] then
//!   [`KeyRing::promote_staged`] publishes the next key first, so resource
//!   servers hold it before the first token signed with it arrives (their
//!   refetch on an unknown `kid` is rate-limited).
//! - **Verification** on the resource server accepts RS256, ES256 and EdDSA
//!   only, takes the algorithm from the JWKS key (never from the token alone),
//!   and ignores symmetric keys in the JWKS. A bounded cache remembers verified
//!   tokens (by SHA-256) until they expire, emptied when the key set changes.
//! - **Client ID metadata documents** are fetched without redirects or proxies,
//!   from a pinned address that must be public (loopback only with
//!   [`server::MetadataDocumentPolicy::allow_loopback`]), within a time and a
//!   size limit, and cached.
//! - **The [`Store`]** must make `consume_code` and `rotate_refresh` atomic;
//!   [`MemoryStore`] does so under one mutex.
//!
//! `examples/oauth-standalone` serves the authorization server alone on
//! loopback; its `conformance.sh` runs the MCP conformance suite's
//! authorization scenarios against it.
//!
//! # Embedding
//!
//! Serve the authorization server and a protected route from one axum app. In a
//! real deployment the resource server would use [`JwksCache::http`] with the
//! issuer's `jwks_uri`; here it reads the key ring in process.
//!
//! ```
//! use std::sync::Arc;
//!
//! use axum::{Extension, Router, routing::post};
//! use bmm_oauth::{
//!     AuthorizationServer, AuthorizationServerConfig, JwksCache, KeyRing, MemoryStore,
//!     Principal, ResourceRecord, ResourceServer, ResourceServerConfig, ResourceUri,
//!     SigningAlgorithm, StaticUser,
//! };
//!
//! # fn main() -> bmm_oauth::Result<()> {
//! let issuer = "https://auth.example.com";
//! let resource = ResourceUri::parse("https://mcp.example.com/mcp/notes")?;
//!
//! let store = Arc::new(MemoryStore::new());
//! store.add_resource(ResourceRecord {
//!     uri: resource.clone(),
//!     scopes_supported: vec!["notes:read".into()],
//! });
//! let keys = Arc::new(KeyRing::generate(SigningAlgorithm::Es256)?);
//! let auth = AuthorizationServer::new(
//!     AuthorizationServerConfig::new(issuer),
//!     store,
//!     Arc::new(StaticUser::new("alice")),
//!     keys.clone(),
//! )?;
//!
//! let mut rs_config = ResourceServerConfig::new(resource, issuer);
//! rs_config.scopes_supported = vec!["notes:read".into()];
//! rs_config.required_scopes = vec!["notes:read".into()];
//! let rs = ResourceServer::new(rs_config, Arc::new(JwksCache::new(keys)));
//!
//! async fn call_tool(Extension(who): Extension<Principal>) -> String {
//!     format!("hello {}", who.subject())
//! }
//!
//! let app: Router = Router::new()
//!     .route("/mcp/notes", post(call_tool).layer(rs.layer()))
//!     .merge(rs.metadata_router())
//!     .merge(auth.router());
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

pub mod clock;
mod error;
pub mod keys;
pub mod pkce;
pub mod resource;
pub mod resource_server;
pub mod secret;
pub mod server;
pub mod store;
pub mod token;

pub use error::{Error, Result};
pub use keys::{KeyRing, SigningAlgorithm, SigningKey};
pub use resource::ResourceUri;
pub use resource_server::{
    BearerError, BearerLayer, HttpJwks, JwksCache, JwksSource, Principal,
    ProtectedResourceMetadata, ResourceServer, ResourceServerConfig,
};
pub use server::{
    AuthorizationServer, AuthorizationServerConfig, AuthorizationServerMetadata, Consent,
    ConsentPrompt, StaticUser,
};
pub use store::{ClientAuthMethod, ClientRecord, MemoryStore, ResourceRecord, Store};
