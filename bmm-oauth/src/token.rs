//! RFC 9068 JWT access tokens: the claims and how they are signed.

use jsonwebtoken::Header;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::keys::SigningKey;

/// The JOSE `typ` of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The issuer, byte for byte the authorization server's issuer identifier.
    pub iss: String,
    /// The end user the token acts for.
    pub sub: String,
    /// The one resource (canonical URI) the token is for.
    pub aud: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-separated granted scopes.
    pub scope: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Not before, seconds since the epoch (equal to `iat`).
    pub nbf: i64,
    /// Unique token id.
    pub jti: String,
}

impl AccessTokenClaims {
    /// The scopes as a list.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
}

/// Sign `claims` with `key`, with `typ: at+jwt` and the key's `kid`.
pub fn sign_access_token(key: &SigningKey, claims: &AccessTokenClaims) -> Result<String> {
    sign_jwt(key, Some(ACCESS_TOKEN_TYP), claims)
}

/// Sign any claims with `key` and its `kid`, with the given JOSE `typ`.
pub fn sign_jwt<T: Serialize>(key: &SigningKey, typ: Option<&str>, claims: &T) -> Result<String> {
    let mut header = Header::new(key.algorithm().jwt_algorithm());
    header.typ = typ.map(str::to_owned);
    header.kid = Some(key.kid().to_owned());
    Ok(jsonwebtoken::encode(&header, claims, key.encoding_key())?)
}
