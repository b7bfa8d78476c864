//! Just enough of compact JWS (RFC 7515 §7.1) to verify access tokens: strict
//! base64url, exactly three parts, and the few header and claim fields we act on.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The protected header fields that matter here; others are ignored.
#[derive(Debug, Deserialize)]
pub(super) struct Header {
    pub(super) alg: String,
    #[serde(default)]
    pub(super) typ: Option<String>,
    #[serde(default)]
    pub(super) kid: Option<String>,
    #[serde(default)]
    pub(super) crit: Option<serde_json::Value>,
}

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub(super) fn contains(&self, resource: &str) -> bool {
        match self {
            Self::One(a) => a == resource,
            Self::Many(all) => all.iter().any(|a| a == resource),
        }
    }
}

/// The claims read from an access token.
#[derive(Debug, Deserialize)]
pub(super) struct Claims {
    pub(super) iss: Option<String>,
    pub(super) sub: Option<String>,
    pub(super) aud: Option<Audience>,
    pub(super) exp: Option<serde_json::Number>,
    pub(super) nbf: Option<serde_json::Number>,
    pub(super) client_id: Option<String>,
    pub(super) scope: Option<String>,
    pub(super) jti: Option<String>,
}

/// A split and decoded compact JWS whose signature has not been checked yet.
pub(super) struct CompactJws<'a> {
    pub(super) header: Header,
    /// `BASE64URL(header) "." BASE64URL(payload)`, what the signature covers.
    pub(super) signing_input: &'a str,
    payload: &'a str,
    pub(super) signature: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    pub(super) fn parse(token: &'a str) -> Option<Self> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let (header, payload) = signing_input.split_once('.')?;
        if payload.contains('.') {
            return None;
        }
        let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        Some(Self {
            header,
            signing_input,
            payload,
            signature,
        })
    }

    /// Decode the claims; call only after the signature verified.
    pub(super) fn claims(&self) -> Option<Claims> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(self.payload).ok()?).ok()
    }
}

/// A NumericDate as whole seconds (fractions are truncated).
pub(super) fn numeric_date(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // `as` saturates; a date beyond i64 seconds is as good as never.
    f.is_finite().then_some(f.trunc() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_compact_serialisations() {
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#);
        let p = URL_SAFE_NO_PAD.encode("{}");
        assert!(CompactJws::parse(&format!("{h}.{p}.c2ln")).is_some());
        for bad in [
            format!("{h}.{p}"),
            format!("{h}.{p}.c2ln.extra"),
            format!("{h}=.{p}.c2ln"),
            format!("{h}.{p}.c2ln="),
            format!("eyJ.{p}.c2ln"),
            String::new(),
        ] {
            assert!(CompactJws::parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn audience_forms() {
        let one: Audience = serde_json::from_str(r#""https://a""#).unwrap();
        let many: Audience = serde_json::from_str(r#"["https://b","https://a"]"#).unwrap();
        assert!(one.contains("https://a") && many.contains("https://a"));
        assert!(!one.contains("https://a/") && !many.contains("https://c"));
    }

    #[test]
    fn numeric_dates() {
        let n = |s: &str| serde_json::from_str::<serde_json::Number>(s).unwrap();
        assert_eq!(numeric_date(&n("1700000000")), Some(1_700_000_000));
        assert_eq!(numeric_date(&n("1700000000.9")), Some(1_700_000_000));
    }
}
