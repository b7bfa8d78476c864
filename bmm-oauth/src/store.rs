//! The `Store` trait the authorization server persists through, and an in-memory implementation.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::Result;
use crate::resource::ResourceUri;
use crate::secret::SecretHash;

/// How a client authenticates at the token and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// A public client: no secret, PKCE only.
    None,
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl ClientAuthMethod {
    /// The RFC 7591 name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }

    /// Parse an RFC 7591 name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            _ => None,
        }
    }
}

/// A protected resource tokens can be issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    /// Its canonical URI, the `aud` of its tokens.
    pub uri: ResourceUri,
    /// Scopes a client may ask for (never includes `offline_access`).
    pub scopes_supported: Vec<String>,
}

/// A registered (RFC 7591) or fetched (client ID metadata document) client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client id; an https URL for metadata-document clients.
    pub client_id: String,
    /// Hash of the secret, for confidential clients.
    pub secret_hash: Option<SecretHash>,
    /// How it authenticates.
    pub auth_method: ClientAuthMethod,
    /// Registered redirect URIs, matched exactly (loopback ports excepted).
    pub redirect_uris: Vec<String>,
    /// Grant types it may use.
    pub grant_types: Vec<String>,
    /// Human-readable name shown on the consent page.
    pub client_name: Option<String>,
    /// Scope it registered for, if any.
    pub scope: Option<String>,
    /// When it was registered (or fetched).
    pub registered_at: i64,
    /// When it last obtained a token.
    pub last_used_at: Option<i64>,
}

impl ClientRecord {
    /// Whether the client may use `grant_type`.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// An authorization request waiting for the user's decision, bound to one browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    /// Opaque id carried by the consent form.
    pub id: String,
    /// Hash of the value of the cookie set on the browser that made the request.
    pub browser_binding: SecretHash,
    /// Hash of the CSRF token embedded in the consent form.
    pub csrf: SecretHash,
    /// The end user signed in when the request was made.
    pub subject: String,
    /// The client.
    pub client_id: String,
    /// The redirect URI exactly as sent.
    pub redirect_uri: String,
    /// Whether the client sent `redirect_uri` (then the token request must repeat it).
    pub redirect_uri_sent: bool,
    /// The client's `state`, returned verbatim.
    pub state: Option<String>,
    /// S256 code challenge.
    pub code_challenge: String,
    /// The resource the token will be for.
    pub resource: ResourceUri,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// When the request is forgotten.
    pub expires_at: i64,
}

/// An authorization code, stored by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// Hash of the code.
    pub hash: SecretHash,
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI of the authorization request.
    pub redirect_uri: String,
    /// Whether the authorization request carried `redirect_uri`.
    pub redirect_uri_sent: bool,
    /// The end user.
    pub subject: String,
    /// The resource.
    pub resource: ResourceUri,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// S256 code challenge.
    pub code_challenge: String,
    /// Expiry.
    pub expires_at: i64,
    /// Whether it has been exchanged.
    pub used: bool,
    /// The refresh-token family its exchange started, if any.
    pub family: Option<String>,
}

/// What [`Store::consume_code`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeLookup {
    /// No such code.
    Missing,
    /// First use; the code is now marked used.
    Fresh(CodeRecord),
    /// The code was already used: a replay.
    Replayed(CodeRecord),
}

/// A refresh token, stored by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// Hash of the token.
    pub hash: SecretHash,
    /// The family: every token rotated from one authorization code.
    pub family: String,
    /// The client.
    pub client_id: String,
    /// The end user.
    pub subject: String,
    /// The resource.
    pub resource: ResourceUri,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When it was issued.
    pub issued_at: i64,
    /// Expiry.
    pub expires_at: i64,
    /// When it was exchanged for its successor.
    pub rotated_at: Option<i64>,
    /// Hash of its successor.
    pub successor: Option<SecretHash>,
    /// Whether its family was revoked.
    pub revoked: bool,
}

/// Persistence for the authorization server. Implementations must make
/// [`Store::consume_code`] and [`Store::rotate_refresh`] atomic: they are what
/// keeps a code single-use and a refresh token rotated once.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The resource with this canonical URI, if tokens may be issued for it.
    async fn resource(&self, uri: &ResourceUri) -> Result<Option<ResourceRecord>>;

    /// Save a newly registered client.
    async fn insert_client(&self, client: ClientRecord) -> Result<()>;
    /// A registered client.
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>>;
    /// Note that a client obtained a token at `now`.
    async fn touch_client(&self, client_id: &str, now: i64) -> Result<()>;
    /// Delete clients registered before `never_used_cutoff` that never obtained a
    /// token, and clients whose last token is older than `unused_cutoff`.
    /// Returns how many were deleted.
    async fn delete_stale_clients(
        &self,
        never_used_cutoff: i64,
        unused_cutoff: i64,
    ) -> Result<usize>;

    /// Save a pending authorization request.
    async fn insert_pending(&self, pending: PendingAuthorization) -> Result<()>;
    /// Remove and return a pending request (one decision per request).
    async fn take_pending(&self, id: &str) -> Result<Option<PendingAuthorization>>;

    /// Save a new authorization code.
    async fn insert_code(&self, code: CodeRecord) -> Result<()>;
    /// Atomically look up a code and mark it used.
    async fn consume_code(&self, hash: &SecretHash) -> Result<CodeLookup>;
    /// Remember which refresh-token family a code's exchange started.
    async fn set_code_family(&self, hash: &SecretHash, family: &str) -> Result<()>;

    /// Save a new refresh token.
    async fn insert_refresh(&self, token: RefreshRecord) -> Result<()>;
    /// A refresh token by hash.
    async fn refresh(&self, hash: &SecretHash) -> Result<Option<RefreshRecord>>;
    /// Atomically: if `old` is neither rotated nor revoked, mark it rotated at
    /// `now` with `successor`, save `successor`, and return `true`; otherwise
    /// change nothing and return `false`.
    async fn rotate_refresh(
        &self,
        old: &SecretHash,
        now: i64,
        successor: RefreshRecord,
    ) -> Result<bool>;
    /// Revoke every refresh token of a family.
    async fn revoke_family(&self, family: &str) -> Result<()>;

    /// Forget expired codes, pending requests and refresh tokens.
    async fn purge_expired(&self, now: i64) -> Result<()>;
}

/// How long [`MemoryStore`] remembers a code after it expired.
const CODE_REPLAY_MEMORY_SECS: i64 = 24 * 3600;

#[derive(Debug, Default)]
struct Inner {
    resources: HashMap<ResourceUri, ResourceRecord>,
    clients: HashMap<String, ClientRecord>,
    pending: HashMap<String, PendingAuthorization>,
    codes: HashMap<SecretHash, CodeRecord>,
    refresh: HashMap<SecretHash, RefreshRecord>,
}

/// A [`Store`] in process memory; for tests, local mode and single-process servers.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No code path panics while holding the lock; if one ever did, the data
        // is still consistent record by record, so keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Add or replace a resource.
    pub fn add_resource(&self, resource: ResourceRecord) {
        self.lock().resources.insert(resource.uri.clone(), resource);
    }

    /// Number of registered clients.
    pub fn client_count(&self) -> usize {
        self.lock().clients.len()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn resource(&self, uri: &ResourceUri) -> Result<Option<ResourceRecord>> {
        Ok(self.lock().resources.get(uri).cloned())
    }

    async fn insert_client(&self, client: ClientRecord) -> Result<()> {
        self.lock().clients.insert(client.client_id.clone(), client);
        Ok(())
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        Ok(self.lock().clients.get(client_id).cloned())
    }

    async fn touch_client(&self, client_id: &str, now: i64) -> Result<()> {
        if let Some(c) = self.lock().clients.get_mut(client_id) {
            c.last_used_at = Some(now);
        }
        Ok(())
    }

    async fn delete_stale_clients(
        &self,
        never_used_cutoff: i64,
        unused_cutoff: i64,
    ) -> Result<usize> {
        let mut inner = self.lock();
        let before = inner.clients.len();
        inner.clients.retain(|_, c| match c.last_used_at {
            None => c.registered_at >= never_used_cutoff,
            Some(last) => last >= unused_cutoff,
        });
        Ok(before - inner.clients.len())
    }

    async fn insert_pending(&self, pending: PendingAuthorization) -> Result<()> {
        self.lock().pending.insert(pending.id.clone(), pending);
        Ok(())
    }

    async fn take_pending(&self, id: &str) -> Result<Option<PendingAuthorization>> {
        Ok(self.lock().pending.remove(id))
    }

    async fn insert_code(&self, code: CodeRecord) -> Result<()> {
        self.lock().codes.insert(code.hash, code);
        Ok(())
    }

    async fn consume_code(&self, hash: &SecretHash) -> Result<CodeLookup> {
        let mut inner = self.lock();
        let Some(code) = inner.codes.get_mut(hash) else {
            return Ok(CodeLookup::Missing);
        };
        if code.used {
            return Ok(CodeLookup::Replayed(code.clone()));
        }
        code.used = true;
        Ok(CodeLookup::Fresh(code.clone()))
    }

    async fn set_code_family(&self, hash: &SecretHash, family: &str) -> Result<()> {
        if let Some(code) = self.lock().codes.get_mut(hash) {
            code.family = Some(family.to_owned());
        }
        Ok(())
    }

    async fn insert_refresh(&self, token: RefreshRecord) -> Result<()> {
        self.lock().refresh.insert(token.hash, token);
        Ok(())
    }

    async fn refresh(&self, hash: &SecretHash) -> Result<Option<RefreshRecord>> {
        Ok(self.lock().refresh.get(hash).cloned())
    }

    async fn rotate_refresh(
        &self,
        old: &SecretHash,
        now: i64,
        successor: RefreshRecord,
    ) -> Result<bool> {
        let mut inner = self.lock();
        let Some(record) = inner.refresh.get_mut(old) else {
            return Ok(false);
        };
        if record.rotated_at.is_some() || record.revoked {
            return Ok(false);
        }
        record.rotated_at = Some(now);
        record.successor = Some(successor.hash);
        inner.refresh.insert(successor.hash, successor);
        Ok(true)
    }

    async fn revoke_family(&self, family: &str) -> Result<()> {
        for record in self.lock().refresh.values_mut() {
            if record.family == family {
                record.revoked = true;
            }
        }
        Ok(())
    }

    async fn purge_expired(&self, now: i64) -> Result<()> {
        let mut inner = self.lock();
        inner.pending.retain(|_, p| p.expires_at > now);
        // Codes are remembered for a day past expiry so that a late replay is
        // still recognised as one and revokes what the code issued.
        inner
            .codes
            .retain(|_, c| c.expires_at.saturating_add(CODE_REPLAY_MEMORY_SECS) > now);
        inner.refresh.retain(|_, r| r.expires_at > now);
        Ok(())
    }
}
