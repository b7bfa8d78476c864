//! Canonical resource URIs (RFC 8707, MCP) and where their RFC 9728 metadata lives.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

use crate::error::{Error, Result};

/// The well-known path prefix of RFC 9728 protected resource metadata.
pub const PROTECTED_RESOURCE_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// A resource server's canonical URI: lowercase scheme and host, default port
/// omitted, no user info, query or fragment, and no trailing slash.
///
/// `https://MCP.example.com/mcp/Notes/` becomes `https://mcp.example.com/mcp/Notes`;
/// the path keeps its case. `http` is accepted only for loopback hosts.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceUri {
    canonical: String,
    /// Byte offset where the path starts in `canonical`.
    path_start: usize,
}

impl ResourceUri {
    /// Parse and canonicalise.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidResource {
            uri: input.to_owned(),
            reason,
        };
        let url = Url::parse(input).map_err(|_| bad("not an absolute URI"))?;
        if url.fragment().is_some() || input.contains('#') {
            return Err(bad("a resource URI has no fragment"));
        }
        if url.query().is_some() {
            return Err(bad("a resource URI has no query"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("a resource URI has no user info"));
        }
        let host = url.host().ok_or_else(|| bad("a resource URI has a host"))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&host) => {}
            "http" => return Err(bad("http is allowed for loopback hosts only")),
            _ => return Err(bad("the scheme must be https")),
        }
        let mut canonical = format!("{}://{}", url.scheme(), host_string(&host));
        if let Some(port) = url.port() {
            canonical.push_str(&format!(":{port}"));
        }
        let path_start = canonical.len();
        canonical.push_str(url.path().trim_end_matches('/'));
        Ok(Self {
            canonical,
            path_start,
        })
    }

    /// The canonical form.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// The path part, empty for a resource at the root of its host.
    pub fn path(&self) -> &str {
        &self.canonical[self.path_start..]
    }

    /// `scheme://authority` without a path.
    pub fn origin(&self) -> &str {
        &self.canonical[..self.path_start]
    }

    /// Where RFC 9728 says this resource's metadata is served:
    /// the well-known prefix inserted between the origin and the path.
    pub fn metadata_url(&self) -> String {
        format!(
            "{}{}{}",
            self.origin(),
            PROTECTED_RESOURCE_WELL_KNOWN,
            self.path()
        )
    }

    /// The path of [`Self::metadata_url`] on this host.
    pub fn metadata_path(&self) -> String {
        format!("{}{}", PROTECTED_RESOURCE_WELL_KNOWN, self.path())
    }
}

impl fmt::Debug for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ResourceUri").field(&self.canonical).finish()
    }
}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl TryFrom<String> for ResourceUri {
    type Error = Error;

    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<ResourceUri> for String {
    fn from(value: ResourceUri) -> Self {
        value.canonical
    }
}

impl std::str::FromStr for ResourceUri {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

fn host_string(host: &Host<&str>) -> String {
    match host {
        Host::Domain(d) => d.to_ascii_lowercase(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => format!("[{ip}]"),
    }
}

/// Whether a URL host is `localhost` or a loopback address.
pub(crate) fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises() {
        let cases = [
            ("https://MCP.Example.com/", "https://mcp.example.com"),
            (
                "HTTPS://mcp.example.com:443/mcp/Notes/",
                "https://mcp.example.com/mcp/Notes",
            ),
            (
                "https://mcp.example.com:8443",
                "https://mcp.example.com:8443",
            ),
            ("http://127.0.0.1:3000/mcp/a", "http://127.0.0.1:3000/mcp/a"),
            ("http://localhost/x//", "http://localhost/x"),
            ("http://[::1]:9/", "http://[::1]:9"),
        ];
        for (input, want) in cases {
            assert_eq!(ResourceUri::parse(input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn rejects() {
        for input in [
            "https://mcp.example.com/#frag",
            "https://mcp.example.com/?a=b",
            "http://mcp.example.com/",
            "ftp://mcp.example.com/",
            "https://user@mcp.example.com/",
            "/relative",
        ] {
            assert!(ResourceUri::parse(input).is_err(), "{input}");
        }
    }

    #[test]
    fn metadata_url_inserts_well_known() {
        let r = ResourceUri::parse("https://h.example/mcp/notes").unwrap();
        assert_eq!(
            r.metadata_url(),
            "https://h.example/.well-known/oauth-protected-resource/mcp/notes"
        );
        let root = ResourceUri::parse("https://h.example").unwrap();
        assert_eq!(
            root.metadata_url(),
            "https://h.example/.well-known/oauth-protected-resource"
        );
    }
}
