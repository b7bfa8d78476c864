//! Client metadata: validation shared by dynamic registration and client ID
//! metadata documents, redirect-URI matching, and the guarded metadata-document fetcher.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use url::{Host, Url};

use crate::error::{Error, Result};
use crate::resource::is_loopback_host;
use crate::store::{ClientAuthMethod, ClientRecord};

/// Longest redirect URI accepted.
const MAX_REDIRECT_URI_LEN: usize = 2048;
/// Most redirect URIs one client may register.
const MAX_REDIRECT_URIS: usize = 10;
/// Longest `client_name` accepted.
const MAX_CLIENT_NAME_LEN: usize = 200;
/// Longest `scope` accepted in client metadata.
const MAX_SCOPE_LEN: usize = 1000;

/// Client metadata as a client sends it (RFC 7591 §2), the fields we act on.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ClientMetadata {
    #[serde(default)]
    pub(crate) client_id: Option<String>,
    #[serde(default)]
    pub(crate) redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub(crate) grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) response_types: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) client_name: Option<String>,
    #[serde(default)]
    pub(crate) scope: Option<String>,
    #[serde(default)]
    pub(crate) client_secret: Option<String>,
}

/// Why metadata was refused, split the way RFC 7591 §3.2.2 reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetadataError {
    RedirectUri(String),
    Metadata(String),
}

/// Metadata that passed validation.
#[derive(Debug, Clone)]
pub(crate) struct ValidMetadata {
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) auth_method: ClientAuthMethod,
    pub(crate) grant_types: Vec<String>,
    pub(crate) response_types: Vec<String>,
    pub(crate) client_name: Option<String>,
    pub(crate) scope: Option<String>,
}

/// Validate metadata. `default_auth` is RFC 7591's `client_secret_basic` for
/// registration and `none` for metadata documents.
pub(crate) fn validate_metadata(
    meta: &ClientMetadata,
    default_auth: ClientAuthMethod,
) -> Result<ValidMetadata, MetadataError> {
    let redirect_uris = meta.redirect_uris.clone().unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(MetadataError::RedirectUri(
            "redirect_uris is required".into(),
        ));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(MetadataError::RedirectUri(format!(
            "at most {MAX_REDIRECT_URIS} redirect_uris are accepted"
        )));
    }
    for uri in &redirect_uris {
        validate_redirect_uri(uri).map_err(MetadataError::RedirectUri)?;
    }
    let auth_method = match meta.token_endpoint_auth_method.as_deref() {
        None => default_auth,
        Some(name) => ClientAuthMethod::parse(name).ok_or_else(|| {
            MetadataError::Metadata(format!(
                "token_endpoint_auth_method `{name}` is not supported"
            ))
        })?,
    };
    let grant_types = meta
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    if grant_types.is_empty() {
        return Err(MetadataError::Metadata("grant_types is empty".into()));
    }
    for g in &grant_types {
        if g != "authorization_code" && g != "refresh_token" {
            return Err(MetadataError::Metadata(format!(
                "grant type `{g}` is not supported"
            )));
        }
    }
    let response_types = meta
        .response_types
        .clone()
        .unwrap_or_else(|| vec!["code".to_owned()]);
    if response_types.iter().any(|r| r != "code") {
        return Err(MetadataError::Metadata(
            "only the `code` response type is supported".into(),
        ));
    }
    if grant_types.iter().any(|g| g == "authorization_code")
        != response_types.contains(&"code".to_owned())
    {
        return Err(MetadataError::Metadata(
            "grant_types and response_types are inconsistent".into(),
        ));
    }
    if let Some(name) = &meta.client_name
        && (name.chars().count() > MAX_CLIENT_NAME_LEN || name.chars().any(char::is_control))
    {
        return Err(MetadataError::Metadata(
            "client_name is too long or has control characters".into(),
        ));
    }
    if let Some(scope) = &meta.scope
        && (scope.len() > MAX_SCOPE_LEN || !scope.split(' ').all(is_scope_token))
    {
        return Err(MetadataError::Metadata("scope is malformed".into()));
    }
    Ok(ValidMetadata {
        redirect_uris,
        auth_method,
        grant_types,
        response_types,
        client_name: meta.client_name.clone(),
        scope: meta.scope.clone(),
    })
}

/// RFC 6749 `scope-token`: printable ASCII except space, `"` and `\`.
pub(crate) fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// A redirect URI a client may register: https anywhere, http on loopback only
/// (RFC 8252 §7.3), or a private-use scheme in reverse-domain form (§7.1); never
/// a fragment.
pub(crate) fn validate_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err("redirect URI is too long".into());
    }
    let url =
        Url::parse(uri).map_err(|_| format!("redirect URI `{uri}` is not an absolute URI"))?;
    if url.fragment().is_some() {
        return Err(format!("redirect URI `{uri}` has a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("redirect URI `{uri}` has user info"));
    }
    match url.scheme() {
        "https" => match url.host() {
            Some(_) => Ok(()),
            None => Err(format!("redirect URI `{uri}` has no host")),
        },
        "http" => match url.host() {
            Some(host) if is_loopback_host(&host) => Ok(()),
            _ => Err(format!(
                "redirect URI `{uri}`: http is allowed for loopback hosts only"
            )),
        },
        scheme if scheme.contains('.') => Ok(()),
        scheme => Err(format!("redirect URI scheme `{scheme}` is not allowed")),
    }
}

/// Whether `requested` matches one of `registered`: byte-for-byte, except that a
/// loopback http redirect URI may name any port (RFC 8252 §7.3).
pub(crate) fn redirect_uri_matches(registered: &[String], requested: &str) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Some(req) = loopback_without_port(requested) else {
        return false;
    };
    registered
        .iter()
        .filter_map(|r| loopback_without_port(r))
        .any(|r| r == req)
}

fn loopback_without_port(uri: &str) -> Option<String> {
    let mut url = Url::parse(uri).ok()?;
    if url.scheme() != "http" || url.fragment().is_some() {
        return None;
    }
    let loopback = url.host().is_some_and(|h| is_loopback_host(&h));
    if !loopback {
        return None;
    }
    url.set_port(None).ok()?;
    Some(url.into())
}

/// Limits on fetching client ID metadata documents.
#[derive(Debug, Clone)]
pub struct MetadataDocumentPolicy {
    /// Accept `http://` metadata URLs on loopback addresses and skip the private-address
    /// guard for loopback. For tests and local mode only.
    pub allow_loopback: bool,
    /// Give up on a fetch after this long.
    pub timeout: Duration,
    /// Refuse documents larger than this.
    pub max_bytes: usize,
    /// Keep a fetched document this long (seconds).
    pub cache_ttl_secs: i64,
    /// Most documents cached at once.
    pub max_cached: usize,
}

impl Default for MetadataDocumentPolicy {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            timeout: Duration::from_secs(5),
            max_bytes: 16 * 1024,
            cache_ttl_secs: 300,
            max_cached: 1024,
        }
    }
}

/// Fetches, validates and caches client ID metadata documents.
#[derive(Debug)]
pub(crate) struct MetadataDocuments {
    policy: MetadataDocumentPolicy,
    cache: Mutex<HashMap<String, (ClientRecord, i64)>>,
}

impl MetadataDocuments {
    pub(crate) fn new(policy: MetadataDocumentPolicy) -> Self {
        Self {
            policy,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a `client_id` names a metadata document rather than a registration.
    pub(crate) fn is_document_id(&self, client_id: &str) -> bool {
        client_id.starts_with("https://")
            || (self.policy.allow_loopback && client_id.starts_with("http://"))
    }

    pub(crate) async fn resolve(&self, client_id: &str, now: i64) -> Result<ClientRecord> {
        if let Some(hit) = self.cached(client_id, now) {
            return Ok(hit);
        }
        let record = self.fetch(client_id, now).await?;
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.retain(|_, (_, until)| *until > now);
        if cache.len() < self.policy.max_cached {
            cache.insert(
                client_id.to_owned(),
                (
                    record.clone(),
                    now.saturating_add(self.policy.cache_ttl_secs),
                ),
            );
        }
        Ok(record)
    }

    fn cached(&self, client_id: &str, now: i64) -> Option<ClientRecord> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(client_id)
            .filter(|(_, until)| *until > now)
            .map(|(r, _)| r.clone())
    }

    async fn fetch(&self, client_id: &str, now: i64) -> Result<ClientRecord> {
        let fetch_err = |reason: &str| Error::Fetch {
            url: client_id.to_owned(),
            reason: reason.to_owned(),
        };
        let url = self.check_url(client_id)?;
        let host = url
            .host_str()
            .ok_or_else(|| fetch_err("no host"))?
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| fetch_err("no port"))?;
        let addr = self.resolve_addr(&url, &host, port).await?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.policy.timeout)
            .connect_timeout(self.policy.timeout)
            .no_proxy()
            .resolve(&host, addr)
            .build()
            .map_err(|_| fetch_err("building the HTTP client failed"))?;
        // The client's own timeout and the one around the whole fetch expire
        // together; either way the refusal says the time limit was reached.
        let failed = |e: reqwest::Error, reason: &str| {
            fetch_err(if e.is_timeout() { "timed out" } else { reason })
        };
        let fetch = async {
            let mut response = client
                .get(url.clone())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| failed(e, "request failed"))?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(fetch_err(&format!("status {}", response.status().as_u16())));
            }
            if response
                .content_length()
                .is_some_and(|len| len > self.policy.max_bytes as u64)
            {
                return Err(fetch_err("document too large"));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| failed(e, "read failed"))?
            {
                if body.len() + chunk.len() > self.policy.max_bytes {
                    return Err(fetch_err("document too large"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        let body = tokio::time::timeout(self.policy.timeout, fetch)
            .await
            .map_err(|_| fetch_err("timed out"))??;
        let meta: ClientMetadata = serde_json::from_slice(&body)
            .map_err(|_| Error::ClientMetadata("metadata document is not a JSON object".into()))?;
        if meta.client_id.as_deref() != Some(client_id) {
            return Err(Error::ClientMetadata(
                "metadata document's client_id differs from its URL".into(),
            ));
        }
        if meta.client_secret.is_some() {
            return Err(Error::ClientMetadata(
                "a metadata document carries no secret".into(),
            ));
        }
        let valid = validate_metadata(&meta, ClientAuthMethod::None).map_err(|e| match e {
            MetadataError::RedirectUri(m) | MetadataError::Metadata(m) => Error::ClientMetadata(m),
        })?;
        if valid.auth_method != ClientAuthMethod::None {
            return Err(Error::ClientMetadata(
                "metadata-document clients cannot use shared secrets".into(),
            ));
        }
        Ok(ClientRecord {
            client_id: client_id.to_owned(),
            secret_hash: None,
            auth_method: ClientAuthMethod::None,
            redirect_uris: valid.redirect_uris,
            grant_types: valid.grant_types,
            client_name: valid.client_name,
            scope: valid.scope,
            registered_at: now,
            last_used_at: None,
        })
    }

    /// The client ID URL rules of the MCP specification: https, a path, no
    /// fragment, no user info, no dot segments.
    fn check_url(&self, client_id: &str) -> Result<Url> {
        let bad = |reason: &str| Error::ClientMetadata(format!("client_id URL {reason}"));
        if client_id.contains('#') {
            return Err(bad("has a fragment"));
        }
        let url = Url::parse(client_id).map_err(|_| bad("is not a URL"))?;
        if client_id
            .split('/')
            .skip(3)
            .any(|seg| seg == "." || seg == "..")
        {
            return Err(bad("has dot segments"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("has user info"));
        }
        if url.path().len() <= 1 {
            return Err(bad("has no path"));
        }
        match (url.scheme(), url.host()) {
            ("https", Some(_)) => Ok(url),
            ("http", Some(host)) if self.policy.allow_loopback && is_loopback_host(&host) => {
                Ok(url)
            }
            _ => Err(bad("must use https")),
        }
    }

    /// Resolve once and pin the address, refusing private, loopback and other
    /// special-purpose addresses (unless loopback is allowed for tests).
    async fn resolve_addr(&self, url: &Url, host: &str, port: u16) -> Result<SocketAddr> {
        let fetch_err = |reason: &str| Error::Fetch {
            url: url.to_string(),
            reason: reason.to_owned(),
        };
        let addrs: Vec<SocketAddr> = match url.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            _ => tokio::time::timeout(self.policy.timeout, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| fetch_err("DNS timed out"))?
                .map_err(|_| fetch_err("DNS lookup failed"))?
                .collect(),
        };
        let first = *addrs.first().ok_or_else(|| fetch_err("no address"))?;
        for addr in &addrs {
            let ip = addr.ip();
            let allowed = is_public_ip(ip) || (self.policy.allow_loopback && ip.is_loopback());
            if !allowed {
                return Err(fetch_err("address is not public"));
            }
        }
        Ok(first)
    }
}

/// Whether an address is globally routable (not private, loopback, link-local,
/// shared, documentation, multicast, unspecified or an embedded IPv4 of those).
pub(crate) fn is_public_ip(ip: IpAddr) -> bool {
    use ipnet::{Ipv4Net, Ipv6Net};
    const V4_BLOCKED: &[&str] = &[
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    ];
    const V6_BLOCKED: &[&str] = &[
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",
        "100::/64",
        "2001:db8::/32",
        "2002::/16",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ];
    match ip {
        IpAddr::V4(v4) => !V4_BLOCKED
            .iter()
            .filter_map(|n| n.parse::<Ipv4Net>().ok())
            .any(|net| net.contains(&v4)),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_ip(IpAddr::V4(v4));
            }
            // NAT64 well-known prefix embeds an IPv4 address in the low 32 bits.
            let seg = v6.segments();
            if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6].iter().all(|s| *s == 0) {
                let o = v6.octets();
                return is_public_ip(IpAddr::from([o[12], o[13], o[14], o[15]]));
            }
            !V6_BLOCKED
                .iter()
                .filter_map(|n| n.parse::<Ipv6Net>().ok())
                .any(|net| net.contains(&v6))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use axum::routing::get;
    use futures_util::StreamExt as _;
    use tower::util::MapRequestLayer;

    use super::*;

    #[test]
    fn redirect_uri_rules() {
        for ok in [
            "https://app.example/cb",
            "http://127.0.0.1:33418/callback",
            "http://localhost/cb",
            "http://[::1]:8080/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(validate_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#frag",
            "javascript:alert(1)",
            "data:text/html,hi",
            "/relative",
            "https://user:pw@app.example/cb",
        ] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_port_may_vary_but_nothing_else() {
        let reg = vec![
            "http://127.0.0.1/callback".to_owned(),
            "https://app.example/cb".to_owned(),
        ];
        assert!(redirect_uri_matches(
            &reg,
            "http://127.0.0.1:51234/callback"
        ));
        assert!(redirect_uri_matches(&reg, "https://app.example/cb"));
        assert!(!redirect_uri_matches(&reg, "http://127.0.0.1:51234/other"));
        assert!(!redirect_uri_matches(&reg, "https://app.example:8443/cb"));
        assert!(!redirect_uri_matches(&reg, "https://app.example/cb/"));
        assert!(!redirect_uri_matches(&reg, "https://APP.example/cb"));
    }

    #[test]
    fn ssrf_guard_blocks_special_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "0.0.0.0",
        ] {
            assert!(!is_public_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(is_public_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    /// A loopback TCP listener on `addr` that counts the connections it accepts
    /// and closes each at once; its address and the count.
    async fn counting_listener(addr: &str) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let local = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        (local, accepted)
    }

    /// Requests received, by path.
    #[derive(Clone, Default)]
    struct Hits(Arc<Mutex<HashMap<String, usize>>>);

    impl Hits {
        fn of(&self, path: &str) -> usize {
            self.0.lock().unwrap().get(path).copied().unwrap_or(0)
        }
    }

    /// Serve the router `routes` builds for its base URL over plain HTTP on
    /// 127.0.0.1; the base URL and the requests received.
    async fn serve(routes: impl FnOnce(&str) -> Router) -> (String, Hits) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Hits::default();
        let counter = hits.clone();
        let router = routes(&base).layer(MapRequestLayer::new(move |req: Request<Body>| {
            *counter
                .0
                .lock()
                .unwrap()
                .entry(req.uri().path().to_owned())
                .or_default() += 1;
            req
        }));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (base, hits)
    }

    /// A valid metadata document for `client_id`.
    fn document(client_id: &str) -> serde_json::Value {
        serde_json::json!({
            "client_id": client_id,
            "client_name": "Metadata Client",
            "redirect_uris": ["https://app.example/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        })
    }

    /// A valid document for `client_id`, padded with a member nothing reads
    /// to exactly `len` bytes.
    fn padded_document(client_id: &str, len: usize) -> String {
        let mut doc = document(client_id);
        doc["padding"] = serde_json::Value::String(String::new());
        let bare = doc.to_string().len();
        doc["padding"] = serde_json::Value::String("x".repeat(len - bare));
        let text = doc.to_string();
        assert_eq!(text.len(), len);
        text
    }

    fn documents(allow_loopback: bool) -> MetadataDocuments {
        MetadataDocuments::new(MetadataDocumentPolicy {
            allow_loopback,
            ..MetadataDocumentPolicy::default()
        })
    }

    /// Why the fetcher refused a document.
    fn fetch_reason(result: Result<ClientRecord>) -> String {
        match result {
            Err(Error::Fetch { reason, .. }) => reason,
            other => panic!("expected a fetch error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn non_public_addresses_are_refused_before_connecting() {
        let (v4, v4_accepted) = counting_listener("127.0.0.1:0").await;
        let (v6, v6_accepted) = counting_listener("[::1]:0").await;
        let (p4, p6) = (v4.port(), v6.port());
        let docs = documents(false);
        for url in [
            format!("https://127.0.0.1:{p4}/client.json"),
            format!("https://localhost:{p4}/client.json"),
            format!("https://[::1]:{p6}/client.json"),
            format!("https://[::ffff:127.0.0.1]:{p4}/client.json"),
            format!("https://0.0.0.0:{p4}/client.json"),
            "https://10.1.2.3/client.json".to_owned(),
            "https://192.168.0.10:8443/client.json".to_owned(),
            "https://169.254.169.254/latest/client.json".to_owned(),
            "https://[fd00::1]/client.json".to_owned(),
        ] {
            assert_eq!(
                fetch_reason(docs.resolve(&url, 0).await),
                "address is not public",
                "{url}"
            );
        }
        // Leave a connection that was made the time to be accepted.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(v4_accepted.load(Ordering::SeqCst), 0);
        assert_eq!(v6_accepted.load(Ordering::SeqCst), 0);

        // The listeners do count: with loopback allowed the fetcher connects,
        // and fails, as they speak no TLS.
        let loopback = documents(true);
        for url in [
            format!("https://127.0.0.1:{p4}/client.json"),
            format!("https://[::1]:{p6}/client.json"),
        ] {
            assert_eq!(
                fetch_reason(loopback.resolve(&url, 0).await),
                "request failed",
                "{url}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(v4_accepted.load(Ordering::SeqCst) >= 1);
        assert!(v6_accepted.load(Ordering::SeqCst) >= 1);
    }

    const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (base, hits) = serve(|base| {
            let mut router = Router::new();
            for status in REDIRECTS {
                // The target would be accepted under the URL that redirects to it.
                let target = document(&format!("{base}/{status}.json")).to_string();
                let location = format!("{base}/target-{status}.json");
                router = router
                    .route(
                        &format!("/{status}.json"),
                        get(move || async move {
                            let status = StatusCode::from_u16(status).unwrap();
                            (status, [(header::LOCATION, location)])
                        }),
                    )
                    .route(
                        &format!("/target-{status}.json"),
                        get(move || async move { target }),
                    );
            }
            router
        })
        .await;
        let docs = documents(true);
        for status in REDIRECTS {
            let url = format!("{base}/{status}.json");
            assert_eq!(
                fetch_reason(docs.resolve(&url, 0).await),
                format!("status {status}")
            );
            assert_eq!(hits.of(&format!("/{status}.json")), 1);
            assert_eq!(hits.of(&format!("/target-{status}.json")), 0);
        }
    }

    #[tokio::test]
    async fn documents_over_the_size_limit_are_refused() {
        let limit = MetadataDocumentPolicy::default().max_bytes;
        let (base, _) = serve(|base| {
            let at = |len: usize, name: &str| padded_document(&format!("{base}/{name}"), len);
            let (fits, over) = (at(limit, "fits.json"), at(limit + 1, "over.json"));
            let (fits_chunked, over_chunked) = (
                at(limit, "fits-chunked.json"),
                at(limit + 1, "over-chunked.json"),
            );
            // Without Content-Length, in 1 KiB chunks.
            let chunked = |text: String| {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> = text
                    .into_bytes()
                    .chunks(1024)
                    .map(|c| Ok(c.to_vec()))
                    .collect();
                Body::from_stream(futures_util::stream::iter(chunks))
            };
            Router::new()
                .route("/fits.json", get(move || async move { fits }))
                .route("/over.json", get(move || async move { over }))
                .route(
                    "/fits-chunked.json",
                    get(move || async move { chunked(fits_chunked) }),
                )
                .route(
                    "/over-chunked.json",
                    get(move || async move { chunked(over_chunked) }),
                )
        })
        .await;
        let docs = documents(true);
        for name in ["fits.json", "fits-chunked.json"] {
            let url = format!("{base}/{name}");
            let record = docs.resolve(&url, 0).await.unwrap();
            assert_eq!(record.client_id, url);
            assert_eq!(record.client_name.as_deref(), Some("Metadata Client"));
        }
        for name in ["over.json", "over-chunked.json"] {
            assert_eq!(
                fetch_reason(docs.resolve(&format!("{base}/{name}"), 0).await),
                "document too large",
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn slow_documents_are_refused_at_the_time_limit() {
        let timeout = Duration::from_millis(500);
        let (base, _) = serve(|base| {
            let late = document(&format!("{base}/late.json")).to_string();
            let trickle = document(&format!("{base}/trickle.json")).to_string();
            Router::new()
                .route(
                    "/late.json",
                    get(move || async move {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        late
                    }),
                )
                .route(
                    "/trickle.json",
                    get(move || async move {
                        // The headers and half the body at once, the rest too late.
                        let (head, tail) = trickle.split_at(trickle.len() / 2);
                        let (head, tail) = (head.to_owned(), tail.to_owned());
                        let tail = async move {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            Ok::<_, std::io::Error>(tail)
                        };
                        let stream = futures_util::stream::once(async move { Ok(head) })
                            .chain(futures_util::stream::once(tail));
                        Body::from_stream(stream)
                    }),
                )
        })
        .await;
        let docs = MetadataDocuments::new(MetadataDocumentPolicy {
            allow_loopback: true,
            timeout,
            ..MetadataDocumentPolicy::default()
        });
        for name in ["late.json", "trickle.json"] {
            let started = Instant::now();
            let result = tokio::time::timeout(
                Duration::from_secs(10),
                docs.resolve(&format!("{base}/{name}"), 0),
            )
            .await
            .unwrap_or_else(|_| panic!("{name}: no time limit"));
            let took = started.elapsed();
            assert_eq!(fetch_reason(result), "timed out", "{name}");
            assert!(
                took >= timeout && took < timeout + Duration::from_secs(2),
                "{name}: {took:?}"
            );
        }
    }
}
