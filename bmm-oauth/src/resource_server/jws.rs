//! Just enough of compact JWS (RFC 7515 §7.1) to verify access tokens: strict
//! base64url, exactly three parts, and the few header and claim fields we act on.
//!
//! This is on the path of every request, so it allocates only what it must:
//! the three parts are decoded into one buffer, and header and claim strings
//! borrow from it unless they contain escapes.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The protected header fields that matter here; others are ignored.
#[derive(Debug, Deserialize)]
pub(super) struct Header<'a> {
    #[serde(borrow)]
    pub(super) alg: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(super) typ: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) kid: Option<Cow<'a, str>>,
    /// Only whether it is there matters: no critical extension is understood.
    #[serde(default)]
    pub(super) crit: Option<IgnoredAny>,
}

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug)]
pub(super) enum Audience<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

impl Audience<'_> {
    pub(super) fn contains(&self, resource: &str) -> bool {
        match self {
            Self::One(a) => a == resource,
            Self::Many(all) => all.iter().any(|a| a == resource),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Audience<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AudienceVisitor;

        impl<'de> Visitor<'de> for AudienceVisitor {
            type Value = Audience<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Audience::One(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Audience::One(Cow::Owned(v.to_owned())))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(Str(a)) = seq.next_element()? {
                    all.push(a);
                }
                Ok(Audience::Many(all))
            }
        }

        deserializer.deserialize_any(AudienceVisitor)
    }
}

/// A string borrowed from the input when it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;

        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
        }

        deserializer.deserialize_str(StrVisitor)
    }
}

/// The claims read from an access token.
#[derive(Debug, Deserialize)]
pub(super) struct Claims<'a> {
    #[serde(default, borrow)]
    pub(super) iss: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) sub: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) aud: Option<Audience<'a>>,
    #[serde(default)]
    pub(super) exp: Option<serde_json::Number>,
    #[serde(default)]
    pub(super) nbf: Option<serde_json::Number>,
    #[serde(default, borrow)]
    pub(super) client_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) scope: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) jti: Option<Cow<'a, str>>,
}

/// A compact JWS with its three parts decoded (into one allocation); the
/// signature has not been checked and the claims not parsed.
pub(super) struct CompactJws<'a> {
    /// `BASE64URL(header) "." BASE64URL(payload)`, what the signature covers.
    pub(super) signing_input: &'a str,
    decoded: Vec<u8>,
    payload_at: usize,
    signature_at: usize,
}

impl<'a> CompactJws<'a> {
    /// Split `token` into exactly three parts and decode each as strict base64url.
    pub(super) fn parse(token: &'a str) -> Option<Self> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let (header, payload) = signing_input.split_once('.')?;
        if payload.contains('.') {
            return None;
        }
        let mut decoded = Vec::with_capacity(
            base64::decoded_len_estimate(header.len())
                + base64::decoded_len_estimate(payload.len())
                + base64::decoded_len_estimate(signature.len()),
        );
        URL_SAFE_NO_PAD.decode_vec(header, &mut decoded).ok()?;
        let payload_at = decoded.len();
        URL_SAFE_NO_PAD.decode_vec(payload, &mut decoded).ok()?;
        let signature_at = decoded.len();
        URL_SAFE_NO_PAD.decode_vec(signature, &mut decoded).ok()?;
        Some(Self {
            signing_input,
            decoded,
            payload_at,
            signature_at,
        })
    }

    /// The protected header, parsed.
    pub(super) fn header(&self) -> Option<Header<'_>> {
        serde_json::from_slice(self.decoded.get(..self.payload_at)?).ok()
    }

    /// The signature bytes.
    pub(super) fn signature(&self) -> &[u8] {
        self.decoded.get(self.signature_at..).unwrap_or_default()
    }

    /// The claims, parsed; call only after the signature verified.
    pub(super) fn claims(&self) -> Option<Claims<'_>> {
        serde_json::from_slice(self.decoded.get(self.payload_at..self.signature_at)?).ok()
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
        let good = format!("{h}.{p}.c2ln");
        let jws = CompactJws::parse(&good).unwrap();
        assert_eq!(jws.header().unwrap().alg, "RS256");
        assert!(jws.claims().is_some());
        assert_eq!(jws.signature(), b"sig");
        assert_eq!(jws.signing_input, format!("{h}.{p}"));
        for bad in [
            format!("{h}.{p}"),
            format!("{h}.{p}.c2ln.extra"),
            format!("{h}=.{p}.c2ln"),
            format!("{h}.{p}=.c2ln"),
            format!("{h}.{p}.c2ln="),
            format!("{h}.{p}.c2l"),
            format!("eyJ.{p}.c2ln"),
            String::new(),
        ] {
            assert!(CompactJws::parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn strings_with_escapes_are_decoded() {
        let header: Header<'_> =
            serde_json::from_str(r#"{"alg":"RS\u0032\u0035\u0036","kid":"a\"b","crit":null}"#)
                .unwrap();
        assert_eq!(header.alg, "RS256");
        assert_eq!(header.kid.as_deref(), Some("a\"b"));
        assert!(header.crit.is_none());
        let header: Header<'_> = serde_json::from_str(r#"{"alg":"RS256","crit":["exp"]}"#).unwrap();
        assert!(header.crit.is_some());
        let claims: Claims<'_> =
            serde_json::from_str(r#"{"aud":["x","https:\/\/a"],"iss":"i\n"}"#).unwrap();
        assert!(claims.aud.unwrap().contains("https://a"));
        assert_eq!(claims.iss.as_deref(), Some("i\n"));
    }

    #[test]
    fn duplicate_members_are_refused() {
        assert!(serde_json::from_str::<Claims<'_>>(r#"{"aud":"a","aud":"b"}"#).is_err());
        assert!(serde_json::from_str::<Header<'_>>(r#"{"alg":"RS256","alg":"none"}"#).is_err());
    }

    #[test]
    fn audience_forms() {
        let one: Audience<'_> = serde_json::from_str(r#""https://a""#).unwrap();
        let many: Audience<'_> = serde_json::from_str(r#"["https://b","https://a"]"#).unwrap();
        assert!(one.contains("https://a") && many.contains("https://a"));
        assert!(!one.contains("https://a/") && !many.contains("https://c"));
        for bad in ["1", r#"["https://a",1]"#, r#"{"a":"b"}"#, "null"] {
            assert!(serde_json::from_str::<Audience<'_>>(bad).is_err(), "{bad}");
        }
        let claims: Claims<'_> = serde_json::from_str(r#"{"aud":null}"#).unwrap();
        assert!(claims.aud.is_none());
    }

    #[test]
    fn numeric_dates() {
        let n = |s: &str| serde_json::from_str::<serde_json::Number>(s).unwrap();
        assert_eq!(numeric_date(&n("1700000000")), Some(1_700_000_000));
        assert_eq!(numeric_date(&n("1700000000.9")), Some(1_700_000_000));
    }
}
