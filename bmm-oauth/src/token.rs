//! RFC 9068 JWT access tokens: the claims and how they are signed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
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
    let header = JoseHeader {
        typ,
        alg: key.algorithm().as_str(),
        kid: key.kid(),
    };
    let header = serde_json::to_vec(&header).map_err(jwt_error)?;
    let claims = serde_json::to_vec(claims).map_err(jwt_error)?;
    // Room for both parts, the dots and an RSA-4096 signature.
    let mut token = String::with_capacity((header.len() + claims.len() + 512) * 4 / 3 + 8);
    URL_SAFE_NO_PAD.encode_string(&header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

/// The protected header of the JWTs this crate signs.
#[derive(Serialize)]
struct JoseHeader<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    typ: Option<&'a str>,
    alg: &'a str,
    kid: &'a str,
}

fn jwt_error(e: serde_json::Error) -> Error {
    Error::Jwt(e.into())
}
