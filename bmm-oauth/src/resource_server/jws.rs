//! Just enough of compact JWS (RFC 7515 §7.1) to verify access tokens: strict
//! base64url, exactly three parts, and the few header and claim fields we act on.
//!
//! This is on the path of every request, so it allocates only what it must:
//! payload and signature are decoded into a buffer on the stack, claim strings borrow
//! from it unless they contain escapes, and a protected header is decoded and
//! parsed once per distinct header text (see [`HeaderCache`]).
//!
//! Base64url is decoded with `base64_simd`, as strictly as the `base64` crate
//! the rest of this crate uses (no padding, canonical trailing bits) but with
//! SIMD: decoding was about 40% of a verification's work outside the RSA check.

use std::borrow::Cow;
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::{Arc, PoisonError, RwLock};

use base64_simd::{Out, URL_SAFE_NO_PAD};
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::keys::SigningAlgorithm;
use crate::token::ACCESS_TOKEN_TYP;

/// What verification needs from a protected header, owned so that it can be
/// kept in a [`HeaderCache`]. Every check on it is still made on every token.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ProtectedHeader {
    /// The algorithm `alg` names, if it is one this crate implements.
    pub(super) alg: Option<SigningAlgorithm>,
    /// Whether `typ` says access token (`at+jwt`, RFC 9068 §2.1).
    pub(super) typ_ok: bool,
    /// The key id.
    pub(super) kid: Option<Box<str>>,
    /// Whether `crit` is present (and not `null`): no critical extension is understood.
    pub(super) crit: bool,
}

impl ProtectedHeader {
    /// Parse the decoded header JSON.
    pub(super) fn parse(json: &[u8]) -> Option<Self> {
        if !is_json_object(json) {
            return None;
        }
        let header: Header<'_> = serde_json::from_slice(json).ok()?;
        Some(Self {
            alg: SigningAlgorithm::ALL
                .into_iter()
                .find(|a| a.as_str() == header.alg),
            typ_ok: header.typ.as_deref().is_some_and(|t| {
                t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
                    || t.eq_ignore_ascii_case("application/at+jwt")
            }),
            kid: header.kid.map(Into::into),
            crit: header.crit.is_some(),
        })
    }
}

/// How many distinct header texts a [`HeaderCache`] keeps before starting over.
const HEADER_CACHE_ENTRIES: usize = 32;

/// Header texts longer than this are parsed every time and never kept.
const MAX_CACHED_HEADER_BYTES: usize = 512;

/// Protected headers already parsed, by their exact base64url text.
///
/// Tokens signed by one key of one issuer share the same header bytes, so
/// nearly every token skips decoding and parsing its header. The parsed form
/// is a function of the text alone, so a hit answers exactly what parsing
/// would have; headers that do not parse are never kept. The cache is
/// bounded (it is emptied when full), so made-up headers cannot grow it; a
/// linear scan suits the handful of entries real issuers produce.
#[derive(Debug, Default)]
pub(super) struct HeaderCache {
    entries: RwLock<Vec<(Box<str>, Arc<ProtectedHeader>)>>,
}

impl HeaderCache {
    /// The header whose base64url text is `encoded`, from the cache or by
    /// decoding and parsing it; `None` when it is not a valid header.
    pub(super) fn get_or_parse(&self, encoded: &str) -> Option<Arc<ProtectedHeader>> {
        if let Some(header) = self.get(encoded) {
            return Some(header);
        }
        let json = URL_SAFE_NO_PAD.decode_to_vec(encoded).ok()?;
        let header = Arc::new(ProtectedHeader::parse(&json)?);
        if encoded.len() <= MAX_CACHED_HEADER_BYTES {
            let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
            // Another verification may have added it while we parsed.
            if !entries.iter().any(|(text, _)| **text == *encoded) {
                if entries.len() >= HEADER_CACHE_ENTRIES {
                    entries.clear();
                }
                entries.push((encoded.into(), Arc::clone(&header)));
            }
        }
        Some(header)
    }

    fn get(&self, encoded: &str) -> Option<Arc<ProtectedHeader>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .find(|(text, _)| **text == *encoded)
            .map(|(_, header)| Arc::clone(header))
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The protected header fields that matter here; others are ignored.
#[derive(Debug, Deserialize)]
struct Header<'a> {
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
///
/// serde borrows a bare `Cow<str>` field marked `#[serde(borrow)]`, but not
/// one inside an `Option`: that one is always copied into a new `String`.
/// Optional claims use this type instead, so a claims set without escapes
/// is read with no allocation at all.
#[derive(Debug)]
pub(super) struct Str<'a>(Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
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

/// A NumericDate (RFC 7519 §2) as whole seconds: fractions are truncated,
/// and a date beyond the range of `i64` saturates (it is as good as never).
///
/// Any JSON number is accepted, as `serde_json::Number` would, but read
/// straight into seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NumericDate(pub(super) i64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DateVisitor;

        impl Visitor<'_> for DateVisitor {
            type Value = NumericDate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON number")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(NumericDate(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(NumericDate(i64::try_from(v).unwrap_or(i64::MAX)))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if !v.is_finite() {
                    // What `serde_json::Number` answers; serde_json never
                    // produces such a value from JSON text.
                    return Err(E::custom("not a JSON number"));
                }
                // `as` saturates.
                Ok(NumericDate(v.trunc() as i64))
            }
        }

        deserializer.deserialize_any(DateVisitor)
    }
}

/// The claims read from an access token.
#[derive(Debug, Deserialize)]
pub(super) struct Claims<'a> {
    #[serde(default, borrow)]
    pub(super) iss: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub(super) sub: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub(super) aud: Option<Audience<'a>>,
    #[serde(default)]
    pub(super) exp: Option<NumericDate>,
    #[serde(default)]
    pub(super) nbf: Option<NumericDate>,
    #[serde(default, borrow)]
    pub(super) client_id: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub(super) scope: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub(super) jti: Option<Str<'a>>,
}

/// Room for the decoded payload and signature of any token up to
/// `max_token_bytes` long: base64url decodes 4 symbols to 3 bytes, plus a
/// little for the estimates of two parts.
pub(super) const fn decoded_room(max_token_bytes: usize) -> usize {
    max_token_bytes / 4 * 3 + 8
}

/// A compact JWS split into exactly three parts, with payload and signature
/// decoded (into a buffer the caller lends, so that no allocation is made)
/// and the header left to a [`HeaderCache`]; the signature has not been
/// checked and the claims not parsed.
pub(super) struct CompactJws<'a> {
    /// `BASE64URL(header) "." BASE64URL(payload)`, what the signature covers.
    pub(super) signing_input: &'a str,
    /// The protected header, still base64url-encoded (and not yet checked to be).
    pub(super) header: &'a str,
    payload: &'a [u8],
    signature: &'a [u8],
}

impl<'a> CompactJws<'a> {
    /// Split `token` into exactly three parts and decode payload and
    /// signature as strict base64url into `buffer`; `None` when the token is
    /// malformed, or too long for `buffer` (see [`decoded_room`]).
    pub(super) fn parse(token: &'a str, buffer: &'a mut [MaybeUninit<u8>]) -> Option<Self> {
        // A fourth part is caught by decoding: `.` is not a base64url symbol.
        // memchr finds the dots with SIMD; `get` cannot fail on an ASCII `.`.
        let header_end = memchr::memchr(b'.', token.as_bytes())?;
        let header = token.get(..header_end)?;
        let rest = token.get(header_end + 1..)?;
        let payload_end = memchr::memchr(b'.', rest.as_bytes())?;
        let (payload, signature) = (rest.get(..payload_end)?, rest.get(payload_end + 1..)?);
        let signing_input = token.get(..header_end + 1 + payload_end)?;
        // Decoding needs room for at least the exact length, which the
        // estimates bound: checked here, as it would panic otherwise.
        let payload_room = URL_SAFE_NO_PAD.estimated_decoded_length(payload.len());
        let signature_room = URL_SAFE_NO_PAD.estimated_decoded_length(signature.len());
        if payload_room.checked_add(signature_room)? > buffer.len() {
            return None;
        }
        let (payload_buffer, signature_buffer) = buffer.split_at_mut(payload_room);
        let payload = URL_SAFE_NO_PAD
            .decode(payload.as_bytes(), Out::from_uninit_slice(payload_buffer))
            .ok()?;
        let signature = URL_SAFE_NO_PAD
            .decode(
                signature.as_bytes(),
                Out::from_uninit_slice(signature_buffer),
            )
            .ok()?;
        Some(Self {
            signing_input,
            header,
            payload,
            signature,
        })
    }

    /// The signature bytes.
    pub(super) fn signature(&self) -> &[u8] {
        self.signature
    }

    /// The claims, parsed; call only after the signature verified.
    ///
    /// The whole claims set must be UTF-8 (RFC 7519 §7.2): checking it once
    /// up front, with SIMD, is cheaper than serde_json checking every string
    /// it borrows.
    pub(super) fn claims(&self) -> Option<Claims<'_>> {
        if !is_json_object(self.payload) {
            return None;
        }
        let json = simdutf8::basic::from_utf8(self.payload).ok()?;
        serde_json::from_str(json).ok()
    }
}

/// Whether `json` is an object, not any other JSON value. A derived
/// `Deserialize` also reads a struct from an array of its fields in order,
/// but a JOSE header (RFC 7515 §4) and a claims set (RFC 7519 §4) are objects.
fn is_json_object(json: &[u8]) -> bool {
    json.iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some_and(|&b| b == b'{')
}

#[cfg(test)]
mod tests {
    use super::*;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn rejects_malformed_compact_serialisations() {
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#);
        let p = URL_SAFE_NO_PAD.encode("{}");
        let good = format!("{h}.{p}.c2ln");
        let mut buffer = [MaybeUninit::uninit(); 64];
        let jws = CompactJws::parse(&good, &mut buffer).unwrap();
        assert_eq!(jws.header, h);
        let cache = HeaderCache::default();
        assert_eq!(
            cache.get_or_parse(jws.header).unwrap().alg,
            Some(SigningAlgorithm::Rs256)
        );
        assert!(jws.claims().is_some());
        assert_eq!(jws.signature(), b"sig");
        assert_eq!(jws.signing_input, format!("{h}.{p}"));
        for bad in [
            format!("{h}.{p}"),
            format!("{h}.{p}.c2ln.extra"),
            format!("{h}.{p}.c2ln."),
            format!("{h}..{p}.c2ln"),
            format!(".{h}.{p}.c2ln"),
            format!("{h}.{p}..c2ln"),
            format!("{h}.{p}=.c2ln"),
            format!("{h}.{p}.c2ln="),
            format!("{h}.{p}.c2l"),
            String::new(),
        ] {
            assert!(CompactJws::parse(&bad, &mut buffer).is_none(), "{bad}");
        }
        // Claims that are not UTF-8 are refused, even in a claim not read.
        let latin1 = URL_SAFE_NO_PAD.encode(b"{\"x\":\"\xff\"}");
        let token = format!("{h}.{latin1}.c2ln");
        assert!(
            CompactJws::parse(&token, &mut buffer)
                .unwrap()
                .claims()
                .is_none()
        );
        // The header is decoded by the cache, just as strictly.
        for bad in [format!("{h}="), "eyJ".to_owned(), format!("{h}.")] {
            assert!(cache.get_or_parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_longest_token_accepted_fits_the_decoding_room() {
        // Part lengths whose estimates overshoot the most (2 and 3 symbols
        // past a multiple of 4), filling the whole token; the header is not
        // decoded here.
        let max = super::super::MAX_TOKEN_BYTES;
        let header = "h".repeat(5);
        let signature = "A".repeat(3 + 4 * 100);
        let payload = "A".repeat(max - header.len() - signature.len() - 2);
        assert_eq!(payload.len() % 4, 2);
        let token = format!("{header}.{payload}.{signature}");
        assert_eq!(token.len(), max);
        let mut buffer = vec![MaybeUninit::uninit(); decoded_room(max)];
        let jws = CompactJws::parse(&token, &mut buffer).unwrap();
        assert_eq!(jws.signature().len(), 302);
        // Too little room is a refusal, never a panic.
        let mut small = vec![MaybeUninit::uninit(); decoded_room(max) / 2];
        assert!(CompactJws::parse(&token, &mut small).is_none());
        assert!(CompactJws::parse("e30.e30.c2ln", &mut []).is_none());
    }

    #[test]
    fn decoding_is_as_strict_as_the_base64_crate() {
        // Every string of up to three symbols from an alphabet of edge cases
        // (non-canonical trailing bits, padding, the standard alphabet's
        // symbols, separators, non-ASCII), alone, after good text long
        // enough for the SIMD path, and before it.
        let symbols = [
            "A", "B", "Q", "g", "w", "-", "_", "+", "/", "=", ".", " ", "é",
        ];
        let mut candidates = vec![String::new()];
        let mut level = candidates.clone();
        for _ in 0..3 {
            level = level
                .iter()
                .flat_map(|c| symbols.iter().map(move |s| format!("{c}{s}")))
                .collect();
            candidates.extend_from_slice(&level);
        }
        assert_eq!(candidates.len(), 1 + 13 + 13 * 13 + 13 * 13 * 13);
        let good = "QUJD".repeat(17);
        for candidate in &candidates {
            for text in [
                candidate.clone(),
                format!("{good}{candidate}"),
                format!("{candidate}{good}"),
            ] {
                assert_eq!(
                    URL_SAFE_NO_PAD.decode(&text).ok(),
                    base64_simd::URL_SAFE_NO_PAD.decode_to_vec(&text).ok(),
                    "{text}"
                );
            }
        }
    }

    fn encoded(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn headers_are_read_into_what_verification_checks() {
        let cache = HeaderCache::default();
        let parse = |json: &str| cache.get_or_parse(&encoded(json));
        assert_eq!(
            *parse(r#"{"alg":"ES256","typ":"AT+JWT","kid":"k","x":1}"#).unwrap(),
            ProtectedHeader {
                alg: Some(SigningAlgorithm::Es256),
                typ_ok: true,
                kid: Some("k".into()),
                crit: false,
            }
        );
        let other = parse(r#"{"alg":"none","typ":"JWT","crit":["exp"]}"#).unwrap();
        assert_eq!(
            *other,
            ProtectedHeader {
                alg: None,
                typ_ok: false,
                kid: None,
                crit: true,
            }
        );
        assert!(
            parse(r#"{"alg":"HS256","typ":"application/at+jwt"}"#)
                .unwrap()
                .typ_ok
        );
        assert!(!parse(r#"{"alg":"RS256","crit":null}"#).unwrap().crit);
        for bad in [
            r#"{"typ":"at+jwt"}"#,
            r#"{"alg":"RS256","alg":"none"}"#,
            r#"{"alg":1}"#,
            "[]",
            "",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        // Only the headers that parsed were kept.
        assert_eq!(cache.len(), 4);
    }

    #[test]
    fn cached_headers_answer_like_fresh_ones() {
        let cache = HeaderCache::default();
        let a = encoded(r#"{"alg":"RS256","typ":"at+jwt","kid":"a"}"#);
        let b = encoded(r#"{"alg":"EdDSA","typ":"at+jwt","kid":"b"}"#);
        let first = cache.get_or_parse(&a).unwrap();
        assert!(Arc::ptr_eq(&first, &cache.get_or_parse(&a).unwrap()));
        let second = cache.get_or_parse(&b).unwrap();
        assert_eq!(second.kid.as_deref(), Some("b"));
        assert_eq!(second.alg, Some(SigningAlgorithm::EdDsa));
        assert_eq!(cache.get_or_parse(&a).unwrap().kid.as_deref(), Some("a"));
        assert_eq!(cache.len(), 2);
        // A failure is never remembered, and does not disturb what is.
        assert!(cache.get_or_parse(&encoded("{}")).is_none());
        assert!(cache.get_or_parse(&encoded("{}")).is_none());
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_header_cache_stays_bounded() {
        let cache = HeaderCache::default();
        for i in 0..3 * HEADER_CACHE_ENTRIES {
            let text = encoded(&format!(r#"{{"alg":"RS256","kid":"{i}"}}"#));
            assert_eq!(
                cache.get_or_parse(&text).unwrap().kid.as_deref(),
                Some(i.to_string().as_str())
            );
            assert!(cache.len() <= HEADER_CACHE_ENTRIES);
        }
        let long = "x".repeat(MAX_CACHED_HEADER_BYTES);
        let text = encoded(&format!(r#"{{"alg":"RS256","kid":"{long}"}}"#));
        let before = cache.len();
        assert_eq!(
            cache.get_or_parse(&text).unwrap().kid.as_deref(),
            Some(long.as_str())
        );
        assert_eq!(cache.len(), before);
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
    fn header_and_claims_must_be_objects() {
        // serde's derive reads a struct from an array of its fields too.
        assert!(serde_json::from_str::<Header<'_>>(r#"["RS256"]"#).is_ok());
        assert!(ProtectedHeader::parse(br#"["RS256"]"#).is_none());
        assert!(ProtectedHeader::parse(b" \r\n\t{\"alg\":\"RS256\"}").is_some());
        assert!(ProtectedHeader::parse(b"").is_none());
        assert!(
            serde_json::from_str::<Claims<'_>>(r#"["https://issuer.example","someone"]"#).is_ok()
        );
        for (payload, object) in [
            (&br#"["https://issuer.example","someone"]"#[..], false),
            (b"null", false),
            (b"", false),
            (br#" {"sub":"someone"}"#, true),
        ] {
            let jws = CompactJws {
                signing_input: "",
                header: "",
                payload,
                signature: b"",
            };
            assert_eq!(jws.claims().is_some(), object, "{payload:?}");
        }
    }

    #[test]
    fn claims_without_escapes_borrow_every_string() {
        let claims: Claims<'_> = serde_json::from_str(
            r#"{"iss":"i","sub":"s","aud":"a","client_id":"c","scope":"x y","jti":"j","exp":1}"#,
        )
        .unwrap();
        for s in [
            &claims.iss,
            &claims.sub,
            &claims.client_id,
            &claims.scope,
            &claims.jti,
        ] {
            assert!(matches!(s, Some(Str(Cow::Borrowed(_)))), "{s:?}");
        }
        assert!(matches!(
            claims.aud,
            Some(Audience::One(Cow::Borrowed("a")))
        ));
        let escaped: Claims<'_> = serde_json::from_str(r#"{"sub":"\u0073"}"#).unwrap();
        assert!(matches!(escaped.sub, Some(Str(Cow::Owned(s))) if s == "s"));
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
        let n = |s: &str| serde_json::from_str::<NumericDate>(s).map(|d| d.0).ok();
        assert_eq!(n("1700000000"), Some(1_700_000_000));
        assert_eq!(n("1700000000.9"), Some(1_700_000_000));
        assert_eq!(n("-1.5"), Some(-1));
        assert_eq!(n("-0"), Some(0));
        assert_eq!(n("1e3"), Some(1000));
        assert_eq!(n("18446744073709551615"), Some(i64::MAX));
        assert_eq!(n("-1e300"), Some(i64::MIN));
        for bad in ["1e400", r#""1700000000""#, "true", "[1]", "null"] {
            assert_eq!(n(bad), None, "{bad}");
        }
        let claims: Claims<'_> = serde_json::from_str(r#"{"exp":null,"nbf":2}"#).unwrap();
        assert_eq!((claims.exp, claims.nbf), (None, Some(NumericDate(2))));
    }
}
