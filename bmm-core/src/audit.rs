//! Audit vocabulary: who did what to which resource, and where such records go.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Actor {
    /// A signed-in user.
    User {
        /// The user's id.
        id: String,
    },
    /// A caller holding an API key.
    ApiKey {
        /// The key's id (never the key).
        id: String,
    },
    /// An OAuth client acting for a user.
    Client {
        /// The client's id.
        client_id: String,
        /// The user it acts for.
        subject: String,
    },
    /// bmm itself (the build worker, a reconciler).
    System,
}

/// Whether the action took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It took effect.
    Success,
    /// It was refused (authorization, validation).
    Denied,
    /// It was attempted and failed.
    Failure,
}

/// One audit record. It names resources by id and never carries a secret value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// When it happened (RFC 3339 on the wire).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who acted.
    pub actor: Actor,
    /// The organisation the resource belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// What was done, as `resource.verb`, e.g. `server.deploy`, `secret.update`, `member.invite`.
    pub action: String,
    /// The resource acted on, e.g. a server slug or a member id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Whether it took effect.
    pub outcome: Outcome,
    /// Extra facts (never secret values).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

/// A boxed future, so that [`AuditSink`] stays usable as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an audit record could not be written.
#[derive(Debug, thiserror::Error)]
#[error("audit record not written: {message}")]
pub struct AuditError {
    /// What went wrong, without secrets.
    pub message: String,
    /// The underlying cause.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Where audit records go: a database table, a log pipeline, a test's vector.
pub trait AuditSink: Send + Sync {
    /// Records one event. An action whose record fails should fail too.
    fn record(&self, event: AuditEvent) -> BoxFuture<'_, Result<(), AuditError>>;
}

/// An [`AuditSink`] that keeps records in memory, for tests and demos.
#[derive(Debug, Default)]
pub struct MemoryAuditSink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAuditSink {
    /// A copy of every record so far, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl AuditSink for MemoryAuditSink {
    fn record(&self, event: AuditEvent) -> BoxFuture<'_, Result<(), AuditError>> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
        Box::pin(std::future::ready(Ok(())))
    }
}
