//! Finding an authorization server's signing keys from its issuer
//! identifier: its metadata (RFC 8414, or OpenID Connect Discovery) names
//! its `jwks_uri`.

use url::Url;

use super::jwks::{document_client, fetch_limited};
use crate::error::{Error, Result};

/// Largest metadata document read.
const MAX_METADATA_BYTES: usize = 64 * 1024;

/// The metadata URLs of `issuer`, in the order MCP clients try them: RFC
/// 8414 with the well-known segment inserted before the issuer's path, then
/// OpenID Connect Discovery inserted, then appended. An issuer without a
/// path has one URL of each kind.
///
/// Fails when `issuer` is not an http(s) URL without query and fragment
/// (RFC 8414 §2).
pub fn metadata_urls(issuer: &str) -> Result<Vec<String>> {
    let url = Url::parse(issuer)
        .map_err(|e| Error::Config(format!("the issuer {issuer:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(Error::Config(format!(
            "the issuer {issuer:?} is not an http(s) URL with a host"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "the issuer {issuer:?} has a query or fragment, which RFC 8414 forbids"
        )));
    }
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let mut urls = vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
    ];
    if !path.is_empty() {
        urls.push(format!("{origin}{path}/.well-known/openid-configuration"));
    }
    Ok(urls)
}

/// Reads `issuer`'s metadata from the first of [`metadata_urls`] that answers
/// with a JSON object, checks that it names `issuer` byte for byte (RFC 8414
/// §3.3), and returns its `jwks_uri`. Each fetch has a 5 s timeout, follows
/// no redirect and reads at most 64 KiB.
pub async fn discover_jwks_uri(issuer: &str) -> Result<String> {
    let client = document_client("metadata")?;
    let mut failures = Vec::new();
    for url in metadata_urls(issuer)? {
        let metadata = match fetch_limited(&client, &url, MAX_METADATA_BYTES).await {
            Ok(body) => serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .filter(serde_json::Value::is_object),
            Err(Error::Fetch { reason, .. }) => {
                failures.push(format!("{url}: {reason}"));
                continue;
            }
            Err(other) => return Err(other),
        };
        let Some(metadata) = metadata else {
            failures.push(format!("{url}: not a JSON object"));
            continue;
        };
        let named = metadata.get("issuer").and_then(serde_json::Value::as_str);
        if named != Some(issuer) {
            return Err(Error::Config(format!(
                "the metadata at {url} names the issuer {named:?}, not {issuer:?}; \
                 issuers are compared exactly (RFC 8414 §3.3)"
            )));
        }
        return match metadata.get("jwks_uri").and_then(serde_json::Value::as_str) {
            Some(jwks_uri) => Ok(jwks_uri.to_owned()),
            None => Err(Error::Config(format!(
                "the metadata at {url} names no jwks_uri"
            ))),
        };
    }
    Err(Error::Fetch {
        url: issuer.to_owned(),
        reason: format!("no metadata found ({})", failures.join("; ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_insert_the_well_known_segment_before_the_path() {
        assert_eq!(
            metadata_urls("https://as.example.com").unwrap(),
            [
                "https://as.example.com/.well-known/oauth-authorization-server",
                "https://as.example.com/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            metadata_urls("https://as.example.com/tenant/1").unwrap(),
            [
                "https://as.example.com/.well-known/oauth-authorization-server/tenant/1",
                "https://as.example.com/.well-known/openid-configuration/tenant/1",
                "https://as.example.com/tenant/1/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            metadata_urls("http://127.0.0.1:8080/").unwrap(),
            [
                "http://127.0.0.1:8080/.well-known/oauth-authorization-server",
                "http://127.0.0.1:8080/.well-known/openid-configuration",
            ]
        );
        for bad in [
            "as.example.com",
            "ftp://as.example.com",
            "https://as.example.com/?tenant=1",
            "https://as.example.com/#x",
        ] {
            assert!(matches!(metadata_urls(bad), Err(Error::Config(_))), "{bad}");
        }
    }
}
