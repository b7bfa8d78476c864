//! Secret values: held by the host, injected into requests by reference, never shown.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

pub use bmm_core::SecretValue;

/// The secrets of one server, by name. Cheap to clone.
///
/// `Debug` lists the names only.
#[derive(Clone, Default)]
pub struct Secrets(Arc<HashMap<String, SecretValue>>);

impl Secrets {
    /// No secrets.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of the secret `name`, if the server has it.
    pub fn get(&self, name: &str) -> Option<&SecretValue> {
        self.0.get(name)
    }

    /// Whether there are no secrets.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Names and values, e.g. for filling templates on the way out.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SecretValue)> {
        self.0.iter().map(|(name, value)| (name.as_str(), value))
    }

    /// The secret values, for redacting them from upstream responses.
    pub(crate) fn values(&self) -> impl Iterator<Item = &SecretValue> {
        self.0.values()
    }
}

impl<N: Into<String>> FromIterator<(N, SecretValue)> for Secrets {
    fn from_iter<T: IntoIterator<Item = (N, SecretValue)>>(iter: T) -> Self {
        Self(Arc::new(
            iter.into_iter()
                .map(|(name, value)| (name.into(), value))
                .collect(),
        ))
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Secrets").field("names", &names).finish()
    }
}

/// Replaces every occurrence of a secret's value (and its percent-encoded
/// form) in `text` with `[redacted]`.
///
/// This is defence in depth against an allowlisted upstream that echoes a
/// request back; the allowlist is the real boundary. Values shorter than
/// four characters are left alone, as redacting them would mangle ordinary
/// text.
pub(crate) fn redact(text: &str, secrets: &Secrets) -> String {
    let mut out = text.to_owned();
    for secret in secrets.values() {
        let value = secret.expose_secret();
        if value.len() < 4 {
            continue;
        }
        if out.contains(value) {
            out = out.replace(value, "[redacted]");
        }
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        if encoded != value && out.contains(&encoded) {
            out = out.replace(&encoded, "[redacted]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = SecretValue::new("hunter2-very-secret");
        assert!(!format!("{secret:?}").contains("hunter2"));
        let secrets: Secrets = [("API_KEY", secret)].into_iter().collect();
        let shown = format!("{secrets:?}");
        assert!(shown.contains("API_KEY"));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(SecretValue::new("abc"), SecretValue::new("abc"));
        assert_ne!(SecretValue::new("abc"), SecretValue::new("abd"));
        assert_ne!(SecretValue::new("abc"), SecretValue::new("abcd"));
    }

    #[test]
    fn redact_replaces_plain_and_encoded_values() {
        let secrets: Secrets = [("K", SecretValue::new("s3cr3t value&x"))]
            .into_iter()
            .collect();
        let text = "a s3cr3t value&x b s3cr3t+value%26x c";
        assert_eq!(redact(text, &secrets), "a [redacted] b [redacted] c");
        let short: Secrets = [("K", SecretValue::new("ab"))].into_iter().collect();
        assert_eq!(redact("abc", &short), "abc");
    }
}
