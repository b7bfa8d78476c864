//! Secret newtypes: random generation, redacted `Debug`, hashing, constant-time comparison.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Number of random bytes in every generated secret (256 bits).
const SECRET_BYTES: usize = 32;

/// Fill a buffer from the operating system's CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| Error::Random)?;
    Ok(buf)
}

/// A fresh random identifier or secret: 256 bits, base64url without padding.
pub(crate) fn random_token() -> Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<SECRET_BYTES>()?))
}

/// SHA-256 of a secret, the only form in which secrets are stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Hash a secret value.
    pub fn of(value: &str) -> Self {
        Self(Sha256::digest(value.as_bytes()).into())
    }

    /// The raw digest, e.g. for a database column.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuild from a stored digest.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Whether `value` hashes to this digest, compared in constant time.
    pub fn matches(&self, value: &str) -> bool {
        bool::from(Self::of(value).0.ct_eq(&self.0))
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest of a 256-bit secret reveals nothing, but a prefix is enough to debug with.
        write!(
            f,
            "SecretHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(String);

        impl $name {
            /// Wrap a value received from a peer.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// A fresh random value (256 bits, base64url).
            pub fn generate() -> Result<Self> {
                random_token().map(Self)
            }

            /// The plain value; only to put it on the wire to its owner.
            pub fn expose(&self) -> &str {
                &self.0
            }

            /// The SHA-256 digest under which it is stored.
            pub fn hash(&self) -> SecretHash {
                SecretHash::of(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                bool::from(self.0.as_bytes().ct_eq(other.0.as_bytes()))
            }
        }

        impl Eq for $name {}
    };
}

secret_type!(
    /// A confidential client's secret (`client_secret_basic` / `client_secret_post`).
    ClientSecret
);
secret_type!(
    /// An authorization code, single use and short-lived.
    AuthorizationCode
);
secret_type!(
    /// A refresh token; rotated on every use.
    RefreshToken
);

/// 256 bits of key material for deriving rotated refresh tokens; shared by
/// every instance of one authorization server.
#[derive(Clone)]
pub struct RotationSecret([u8; 32]);

impl RotationSecret {
    /// Wrap key material (e.g. decoded from configuration).
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Fresh random key material.
    pub fn generate() -> Result<Self> {
        random_bytes::<32>().map(Self)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for RotationSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RotationSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = ClientSecret::new("hunter2");
        assert_eq!(format!("{s:?}"), "ClientSecret([redacted])");
        assert!(!format!("{:?}", s.hash()).contains("hunter2"));
    }

    #[test]
    fn generated_secrets_are_distinct_and_long() {
        let a = RefreshToken::generate().unwrap();
        let b = RefreshToken::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
    }

    #[test]
    fn hash_matches_only_its_value() {
        let code = AuthorizationCode::new("abc");
        assert!(code.hash().matches("abc"));
        assert!(!code.hash().matches("abd"));
    }
}
