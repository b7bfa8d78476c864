//! Secret values: held in memory, never printed, never serialized.

use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;

/// The value of one secret a user supplied for a server (an API key, a token).
///
/// The field is private; `Debug` prints `[redacted]`; there is no `Display`
/// and no `Serialize`, so a secret does not reach a log, a response or a build
/// event by accident. Equality is constant-time. Cheap to clone.
#[derive(Clone)]
pub struct SecretValue(Arc<str>);

impl SecretValue {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into()))
    }

    /// The value itself. Call this only where the value leaves for its
    /// destination (a header or query parameter of an allowlisted upstream).
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([redacted])")
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SecretValue {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = SecretValue::new("sk-live-123");
        assert_eq!(format!("{s:?}"), "SecretValue([redacted])");
        assert_eq!(s.expose_secret(), "sk-live-123");
        assert_eq!(s, SecretValue::new("sk-live-123"));
        assert_ne!(s, SecretValue::new("sk-live-124"));
    }
}
