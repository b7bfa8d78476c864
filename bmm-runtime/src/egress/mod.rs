//! Egress policy shared by both executors: which hosts a tool may reach, and how.
//!
//! An [`EgressPolicy`] is an allowlist of [`HostPattern`]s plus caps. An
//! [`EgressClient`] is a reqwest client built around it:
//!
//! - only `http`/`https` URLs whose host and port match the allowlist are sent;
//! - every address a host name resolves to is checked by the client's own DNS
//!   resolver, so the address actually connected to is the one checked (there
//!   is no gap between a check and a second lookup for DNS rebinding to use);
//!   IP-literal hosts are checked before sending;
//! - loopback, private (RFC 1918), shared, link-local (`169.254.0.0/16`, the
//!   cloud metadata address included), unique-local (`fc00::/7`), unspecified,
//!   multicast, reserved and documentation ranges are refused, including IPv6
//!   forms that embed such an IPv4 address, unless
//!   [`EgressPolicy::allowed_networks`] names them;
//! - environment proxies are ignored;
//! - redirects are followed by hand, each hop checked against the allowlist,
//!   never from `https` down to `http`, and a hop to another origin drops
//!   every request header (so a secret in a header never leaves its origin);
//! - request and response sizes are capped and every request has a timeout.

mod ip;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bmm_core::egress::EgressRule;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};
use url::{Host, Url};

use crate::{Error, Result};

/// One allowlist entry: `api.example.com`, `*.example.com`, `api.example.com:8443`,
/// `127.0.0.1:8080` or `[::1]:8080`.
///
/// `*.example.com` matches any subdomain of `example.com` but not `example.com`
/// itself. Without a port, only the scheme's default port (80 or 443) matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
    host: Host<String>,
    wildcard: bool,
    port: Option<u16>,
}

impl HostPattern {
    /// Whether `url`'s host and port match this entry.
    pub fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host() else {
            return false;
        };
        let port_ok = match (self.port, url.port_or_known_default()) {
            (Some(wanted), Some(port)) => wanted == port,
            (None, Some(port)) => url.port().is_none() || Some(port) == default_port(url.scheme()),
            (_, None) => false,
        };
        if !port_ok {
            return false;
        }
        match (&self.host, host) {
            (Host::Domain(pattern), Host::Domain(domain)) => {
                let domain = domain.strip_suffix('.').unwrap_or(domain);
                if self.wildcard {
                    domain
                        .strip_suffix(pattern.as_str())
                        .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
                } else {
                    domain == pattern
                }
            }
            (Host::Ipv4(pattern), Host::Ipv4(ip)) => *pattern == ip,
            (Host::Ipv6(pattern), Host::Ipv6(ip)) => *pattern == ip,
            _ => false,
        }
    }
}

impl FromStr for HostPattern {
    type Err = Error;

    /// Parses an entry with the spec's own rules (`bmm_core::egress`), so an
    /// allowlist means the same at validation and at connect time.
    fn from_str(pattern: &str) -> Result<Self> {
        let rule = EgressRule::parse(pattern).map_err(|reason| Error::InvalidHostPattern {
            pattern: pattern.to_owned(),
            reason,
        })?;
        let host = Host::parse(rule.host()).map_err(|e| Error::InvalidHostPattern {
            pattern: pattern.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            host,
            wildcard: rule.is_wildcard(),
            port: rule.port(),
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        match &self.host {
            Host::Ipv6(ip) => write!(f, "[{ip}]")?,
            host => write!(f, "{host}")?,
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Where a tool may send requests, and the caps on them.
///
/// A `Config` struct with public fields; [`EgressPolicy::new`] fills the
/// caps with defaults.
#[derive(Clone, Debug)]
pub struct EgressPolicy {
    /// Hosts that may be contacted. Empty means none.
    pub allowed_hosts: Vec<HostPattern>,
    /// Networks exempt from the forbidden-address check, e.g. `127.0.0.1/32`
    /// for a test upstream. Empty by default.
    pub allowed_networks: Vec<IpNet>,
    /// Refuse plain `http` URLs. Off by default.
    pub https_only: bool,
    /// Cap on a request's URL, headers and body together (default 1 MiB).
    pub max_request_bytes: usize,
    /// Cap on a response body (default 4 MiB).
    pub max_response_bytes: usize,
    /// Time allowed for a whole request, redirects included (default 10 s).
    pub timeout: Duration,
    /// Time allowed to resolve and connect (default 5 s).
    pub connect_timeout: Duration,
    /// Redirects followed per request (default 5).
    pub max_redirects: usize,
}

impl EgressPolicy {
    /// A policy allowing `hosts` (see [`HostPattern`]) with default caps.
    pub fn new<I, S>(hosts: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let allowed_hosts = hosts
            .into_iter()
            .map(|h| h.as_ref().parse())
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            allowed_hosts,
            ..Self::deny_all()
        })
    }

    /// A policy that allows no host at all.
    pub fn deny_all() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allowed_networks: Vec::new(),
            https_only: false,
            max_request_bytes: 1 << 20,
            max_response_bytes: 4 << 20,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_redirects: 5,
        }
    }

    /// Exempts `network` (e.g. `"127.0.0.1/32"`) from the forbidden-address check.
    pub fn allow_network(mut self, network: &str) -> Result<Self> {
        let net = network
            .parse::<IpNet>()
            .or_else(|_| network.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| Error::InvalidConfig {
                reason: format!("{network:?} is not an IP network"),
            })?;
        self.allowed_networks.push(net);
        Ok(self)
    }

    /// Checks a URL's scheme, host and port against the allowlist, and an
    /// IP-literal host against the forbidden ranges.
    pub fn check_url(&self, url: &Url) -> Result<()> {
        let host = url.host_str().unwrap_or_default().to_owned();
        let deny = |reason: &str| Error::EgressDenied {
            host: host.clone(),
            reason: reason.to_owned(),
        };
        match url.scheme() {
            "https" => {}
            "http" if !self.https_only => {}
            "http" => return Err(deny("plain http is not allowed")),
            _ => return Err(deny("only http and https URLs are allowed")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(deny("credentials in the URL are not allowed"));
        }
        if !self.allowed_hosts.iter().any(|p| p.matches(url)) {
            return Err(deny("host is not in the allowlist"));
        }
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        match ip {
            Some(ip) => self.check_address(ip).map_err(deny),
            None => Ok(()),
        }
    }

    /// `Ok` when the address may be connected to; otherwise why not.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), &'static str> {
        let canonical = ip::canonical(ip);
        if self
            .allowed_networks
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
        {
            return Ok(());
        }
        match ip::forbidden_reason(ip) {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }
}

/// A request for an [`EgressClient`]. Secrets are already filled in; mark
/// such header values sensitive (`HeaderValue::set_sensitive`).
#[derive(Debug)]
pub struct EgressRequest {
    /// The HTTP method.
    pub method: Method,
    /// The URL, query included.
    pub url: Url,
    /// Request headers.
    pub headers: HeaderMap,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

/// A response read in full (within the size cap).
#[derive(Debug)]
pub struct EgressResponse {
    /// The status code.
    pub status: StatusCode,
    /// The URL that answered, after redirects.
    pub url: Url,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

/// Answers requests without a network, for dry runs: see [`EgressClient::offline`].
pub trait OfflineResponder: Send + Sync + 'static {
    /// The response to `request`, which has already passed the allowlist check.
    fn respond(&self, request: &EgressRequest) -> EgressResponse;
}

impl<F> OfflineResponder for F
where
    F: Fn(&EgressRequest) -> EgressResponse + Send + Sync + 'static,
{
    fn respond(&self, request: &EgressRequest) -> EgressResponse {
        self(request)
    }
}

/// A reqwest client bound to an [`EgressPolicy`]. Cheap to clone.
#[derive(Clone)]
pub struct EgressClient {
    policy: Arc<EgressPolicy>,
    client: reqwest::Client,
    offline: Option<Arc<dyn OfflineResponder>>,
}

impl fmt::Debug for EgressClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EgressClient")
            .field("policy", &self.policy)
            .field("offline", &self.offline.is_some())
            .finish_non_exhaustive()
    }
}

impl EgressClient {
    /// Builds a client enforcing `policy`.
    pub fn new(policy: EgressPolicy) -> Result<Self> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(PolicyResolver {
                policy: Arc::clone(&policy),
            })
            .timeout(policy.timeout)
            .connect_timeout(policy.connect_timeout)
            .https_only(policy.https_only)
            .build()
            .map_err(|e| Error::InvalidConfig {
                reason: format!("HTTP client: {e}"),
            })?;
        Ok(Self {
            policy,
            client,
            offline: None,
        })
    }

    /// A client that never touches the network: every request that passes
    /// the policy's URL checks (scheme, allowlist, IP literals, size) is
    /// answered by `responder`. Host names are not resolved, so the
    /// address checks that happen at connect time do not apply.
    ///
    /// This is what a dry run uses to exercise tools before they are served.
    pub fn offline(policy: EgressPolicy, responder: Arc<dyn OfflineResponder>) -> Result<Self> {
        let mut client = Self::new(policy)?;
        client.offline = Some(responder);
        Ok(client)
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// A client with this client's policy but another host allowlist, sharing
    /// its connection pool, resolver and TLS setup.
    ///
    /// This is how a host serving many servers keeps one HTTP client: the
    /// allowlist is checked per request, while everything the shared client
    /// enforces itself (forbidden addresses, timeouts, https-only) is the same
    /// for all of them. A reqwest client costs about 100 KiB, so one per
    /// served spec would dominate a host's memory.
    pub fn with_allowed_hosts(&self, allowed_hosts: Vec<HostPattern>) -> Self {
        let policy = EgressPolicy {
            allowed_hosts,
            ..(*self.policy).clone()
        };
        Self {
            policy: Arc::new(policy),
            client: self.client.clone(),
            offline: self.offline.clone(),
        }
    }

    /// Sends a request, following redirects within the allowlist, and reads
    /// the response body up to the cap.
    pub async fn send(&self, request: EgressRequest) -> Result<EgressResponse> {
        let EgressRequest {
            mut method,
            mut url,
            mut headers,
            mut body,
        } = request;
        let size = url.as_str().len()
            + headers
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 4)
                .sum::<usize>()
            + body.as_ref().map_or(0, Vec::len);
        if size > self.policy.max_request_bytes {
            return Err(Error::RequestTooLarge {
                limit: self.policy.max_request_bytes,
            });
        }
        let deadline = tokio::time::Instant::now() + self.policy.timeout;
        let mut redirects = 0;
        loop {
            self.policy.check_url(&url)?;
            if let Some(responder) = &self.offline {
                let request = EgressRequest {
                    method,
                    url,
                    headers,
                    body,
                };
                let response = responder.respond(&request);
                if response.body.len() > self.policy.max_response_bytes {
                    return Err(Error::ResponseTooLarge {
                        limit: self.policy.max_response_bytes,
                    });
                }
                return Ok(response);
            }
            let host = url.host_str().unwrap_or_default().to_owned();
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let response = tokio::time::timeout_at(deadline, builder.send())
                .await
                .map_err(|_| Error::UpstreamTimeout { host: host.clone() })?
                .map_err(|e| transport_error(e, &host))?;
            let status = response.status();
            let location = response.headers().get(header::LOCATION).cloned();
            let redirect = status.is_redirection() && status != StatusCode::NOT_MODIFIED;
            if let (true, Some(location)) = (redirect, location) {
                if redirects >= self.policy.max_redirects {
                    let reason = "too many redirects".into();
                    return Err(Error::EgressDenied { host, reason });
                }
                redirects += 1;
                let next = redirect_target(&url, &location, &host)?;
                if next.origin() != url.origin() {
                    headers = HeaderMap::new();
                }
                let to_get = status == StatusCode::SEE_OTHER
                    || (method == Method::POST
                        && matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND));
                if to_get {
                    method = Method::GET;
                    body = None;
                    headers.remove(header::CONTENT_TYPE);
                    headers.remove(header::CONTENT_LENGTH);
                }
                url = next;
                continue;
            }
            let (headers, body) =
                tokio::time::timeout_at(deadline, self.read_body(response, &host))
                    .await
                    .map_err(|_| Error::UpstreamTimeout { host: host.clone() })??;
            return Ok(EgressResponse {
                status,
                url,
                headers,
                body,
            });
        }
    }

    async fn read_body(
        &self,
        mut response: reqwest::Response,
        host: &str,
    ) -> Result<(HeaderMap, Vec<u8>)> {
        let limit = self.policy.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(Error::ResponseTooLarge { limit });
        }
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(e, host))?
        {
            if body.len() + chunk.len() > limit {
                return Err(Error::ResponseTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((headers, body))
    }
}

/// Where a redirect from `url` leads, refusing invalid locations and a step
/// down from `https` to `http`. The allowlist is checked on the next hop.
fn redirect_target(url: &Url, location: &header::HeaderValue, host: &str) -> Result<Url> {
    let next = location
        .to_str()
        .ok()
        .and_then(|l| url.join(l).ok())
        .ok_or_else(|| Error::EgressDenied {
            host: host.to_owned(),
            reason: "redirect to an invalid location".into(),
        })?;
    if url.scheme() == "https" && next.scheme() != "https" {
        return Err(Error::EgressDenied {
            host: next.host_str().unwrap_or_default().to_owned(),
            reason: "redirect from https to http".into(),
        });
    }
    Ok(next)
}

fn transport_error(error: reqwest::Error, host: &str) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(denied) = cause.downcast_ref::<AddressDenied>() {
            return Error::EgressDenied {
                host: denied.host.clone(),
                reason: denied.reason.clone(),
            };
        }
        source = cause.source();
    }
    if error.is_timeout() {
        return Error::UpstreamTimeout {
            host: host.to_owned(),
        };
    }
    Error::Upstream {
        host: host.to_owned(),
        source: error.without_url(),
    }
}

/// The resolver's refusal, recognised again in reqwest's error chain.
#[derive(Debug)]
struct AddressDenied {
    host: String,
    reason: String,
}

impl fmt::Display for AddressDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} resolves to a forbidden address ({})",
            self.host, self.reason
        )
    }
}

impl std::error::Error for AddressDenied {}

/// Resolves with the system resolver, then keeps only addresses the policy allows.
struct PolicyResolver {
    policy: Arc<EgressPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let lookup = tokio::net::lookup_host((host.as_str(), 0));
            let addrs: Vec<SocketAddr> = tokio::time::timeout(policy.connect_timeout, lookup)
                .await
                .map_err(|_| Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut)))??
                .collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|addr| match policy.check_address(addr.ip()) {
                    Ok(()) => true,
                    Err(reason) => {
                        refused.get_or_insert(reason);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let reason = refused.unwrap_or("name does not resolve").to_owned();
                return Err(Box::new(AddressDenied { host, reason }) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        s.parse().unwrap()
    }

    #[test]
    fn host_patterns_parse_and_print() {
        for (input, shown) in [
            ("api.example.com", "api.example.com"),
            ("*.example.com", "*.example.com"),
            ("example.com:8443", "example.com:8443"),
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("[::1]:8080", "[::1]:8080"),
            ("[::1]", "[::1]"),
        ] {
            let pattern: HostPattern = input.parse().unwrap();
            assert_eq!(pattern.to_string(), shown, "{input}");
        }
        for bad in [
            "",
            "*.com",
            "*.127.0.0.1",
            "example.com:99999",
            "https://example.com",
            "a b",
            "[::1",
            "x@y",
            "*",
            // The spec's rules: hosts are written in lowercase, without a trailing dot.
            "API.Example.com",
            "api.example.com.",
        ] {
            assert!(
                bad.parse::<HostPattern>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn host_patterns_match_host_and_port() {
        let exact: HostPattern = "api.example.com".parse().unwrap();
        assert!(exact.matches(&url("https://api.example.com/x")));
        assert!(exact.matches(&url("http://API.example.com./x")));
        assert!(exact.matches(&url("https://api.example.com:443/x")));
        assert!(!exact.matches(&url("https://api.example.com:8443/x")));
        assert!(!exact.matches(&url("https://evil.api.example.com/")));
        assert!(!exact.matches(&url("https://api.example.com.evil.net/")));

        let wildcard: HostPattern = "*.example.com".parse().unwrap();
        assert!(wildcard.matches(&url("https://a.example.com/")));
        assert!(wildcard.matches(&url("https://a.b.example.com/")));
        assert!(!wildcard.matches(&url("https://example.com/")));
        assert!(!wildcard.matches(&url("https://badexample.com/")));

        let port: HostPattern = "127.0.0.1:8080".parse().unwrap();
        assert!(port.matches(&url("http://127.0.0.1:8080/")));
        assert!(
            port.matches(&url("http://2130706433:8080/")),
            "numeric IPv4 forms are normalised"
        );
        assert!(!port.matches(&url("http://127.0.0.1/")));
        assert!(!port.matches(&url("http://localhost:8080/")));
    }

    #[test]
    fn check_url_applies_scheme_allowlist_and_ranges() {
        let policy = EgressPolicy::new(["api.example.com", "10.0.0.1", "8.8.8.8"]).unwrap();
        policy
            .check_url(&url("https://api.example.com/v1"))
            .unwrap();
        policy.check_url(&url("http://8.8.8.8/")).unwrap();
        for bad in [
            "https://other.example.com/",
            "ftp://api.example.com/",
            "https://user:pw@api.example.com/",
            "http://10.0.0.1/",
        ] {
            let err = policy.check_url(&url(bad)).unwrap_err();
            assert!(matches!(err, Error::EgressDenied { .. }), "{bad}: {err:?}");
        }
        let https_only = EgressPolicy {
            https_only: true,
            ..policy.clone()
        };
        assert!(
            https_only
                .check_url(&url("http://api.example.com/"))
                .is_err()
        );
        let allowed = policy.allow_network("10.0.0.0/8").unwrap();
        allowed.check_url(&url("http://10.0.0.1/")).unwrap();
        assert!(EgressPolicy::deny_all().allow_network("not-an-ip").is_err());
    }

    #[test]
    fn allowances_cover_mapped_forms() {
        let policy = EgressPolicy::deny_all().allow_network("127.0.0.1").unwrap();
        assert!(policy.check_address("127.0.0.1".parse().unwrap()).is_ok());
        assert!(
            policy
                .check_address("::ffff:127.0.0.1".parse().unwrap())
                .is_ok()
        );
        assert!(policy.check_address("127.0.0.2".parse().unwrap()).is_err());
        assert!(policy.check_address("::1".parse().unwrap()).is_err());
    }
}
