//! The crate's error type.

/// Everything that can go wrong inside bmm-oauth outside of a protocol answer.
///
/// Protocol failures (a bad authorization request, a wrong PKCE verifier, an
/// expired token) are not `Error`s: they are answered on the wire with the
/// RFC 6749 error codes. This type covers configuration, key material, storage
/// and outbound fetches.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value was rejected when building a server or layer.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A URI is not a valid canonical resource identifier (RFC 8707 / RFC 9728).
    #[error("invalid resource URI `{uri}`: {reason}")]
    InvalidResource {
        /// The rejected input.
        uri: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Key material could not be generated, parsed or converted.
    #[error("key error: {0}")]
    Key(String),
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// Signing or decoding a JWT failed.
    #[error("JWT error")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    /// The storage backend failed.
    #[error("store error")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Fetching a remote document (JWKS, client metadata document) failed.
    #[error("fetching {url} failed: {reason}")]
    Fetch {
        /// The URL that was fetched.
        url: String,
        /// What went wrong, safe to log.
        reason: String,
    },
    /// Client metadata (registered or fetched) failed validation.
    #[error("invalid client metadata: {0}")]
    ClientMetadata(String),
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
