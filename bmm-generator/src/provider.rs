//! The [`SpecGenerator`] trait: a provider that drafts a spec from a
//! conversation, and the vocabulary it speaks.
//!
//! A provider only drafts. Checking a draft, sending its problems back and
//! deciding when to stop is the [`Generator`](crate::Generator)'s job, so
//! every provider gets the same checks and the same repair loop.

use std::time::Duration;

use async_trait::async_trait;
use bmm_core::{ServerSpec, Slug};
use serde::Serialize;
use serde_json::Value;

/// What a person asked for.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The description of the server (or, with `current`, of the change).
    pub prompt: String,
    /// A name the server must have, if the person chose one.
    pub name: Option<String>,
    /// A slug the server must have, if the person chose one.
    pub slug: Option<Slug>,
    /// The spec to change: set when iterating on an existing server.
    pub current: Option<ServerSpec>,
}

impl Request {
    /// A request for a new server described by `prompt`.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            ..Self::default()
        }
    }

    /// A request to change `current` as `prompt` says.
    pub fn iterate(current: ServerSpec, prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            current: Some(current),
            ..Self::default()
        }
    }
}

/// One answer of a provider: the raw spec it proposed, before any check.
#[derive(Clone, Debug)]
pub struct Draft {
    /// The proposed spec as JSON. It may be anything: checking it is the
    /// generator's job.
    pub spec: Value,
    /// The provider's id for this answer (a tool-use id), echoed when the
    /// answer's problems are sent back.
    pub answer_id: String,
    /// Tokens this answer cost.
    pub usage: Usage,
}

/// An earlier round of a conversation: the draft and what was wrong with it.
#[derive(Clone, Debug)]
pub struct Round {
    /// What the provider answered.
    pub draft: Draft,
    /// Every problem found, each located (`tools[2].input_schema: …`).
    pub problems: Vec<String>,
}

/// Everything a provider needs to draft: the request and every earlier
/// round, oldest first.
#[derive(Clone, Debug)]
pub struct Conversation {
    /// What the person asked for.
    pub request: Request,
    /// Earlier drafts and their problems; empty on the first round.
    pub rounds: Vec<Round>,
}

/// Tokens one model call used, as the provider reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Input tokens billed at the normal rate.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Self) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_creation_input_tokens += other.cache_creation_input_tokens;
        self.cache_read_input_tokens += other.cache_read_input_tokens;
    }
}

/// Why a provider produced no draft. Messages never carry a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider is not configured (e.g. no API key).
    #[error("the provider is not configured: {reason}")]
    NotConfigured {
        /// What is missing.
        reason: String,
    },
    /// The API refused the key (HTTP 401 or 403).
    #[error(
        "the model API refused the credentials (HTTP {status}); check ANTHROPIC_API_KEY: {message}"
    )]
    Unauthenticated {
        /// The HTTP status.
        status: u16,
        /// The API's explanation.
        message: String,
    },
    /// Still rate limited after every retry (HTTP 429).
    #[error("the model API is rate limiting requests (gave up after {attempts} attempts){}", after(*retry_after))]
    RateLimited {
        /// How long the API asked to wait, if it said.
        retry_after: Option<Duration>,
        /// Requests sent.
        attempts: u32,
    },
    /// Still overloaded after every retry (HTTP 529).
    #[error("the model API is overloaded (gave up after {attempts} attempts); try again later")]
    Overloaded {
        /// Requests sent.
        attempts: u32,
    },
    /// Still failing with a server error after every retry (HTTP 5xx).
    #[error("the model API failed with HTTP {status} (gave up after {attempts} attempts)")]
    Server {
        /// The last HTTP status.
        status: u16,
        /// Requests sent.
        attempts: u32,
    },
    /// No answer within the request timeout, on every attempt.
    #[error("the model API did not answer within {timeout:?} (gave up after {attempts} attempts)")]
    Timeout {
        /// The per-request timeout.
        timeout: Duration,
        /// Requests sent.
        attempts: u32,
    },
    /// The request could not be sent or its answer not read.
    #[error("cannot reach the model API: {reason}")]
    Transport {
        /// What failed (never a URL with a key or a header).
        reason: String,
    },
    /// The API rejected the request itself (HTTP 400, 404, 413, …).
    #[error("the model API rejected the request (HTTP {status}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The API's explanation.
        message: String,
    },
    /// The model declined, or stopped without answering through the tool.
    #[error(
        "the model did not produce a spec (stop reason {stop_reason:?}){}",
        detail(message)
    )]
    Refused {
        /// The stop reason the API reported, e.g. `refusal`.
        stop_reason: String,
        /// Any text the model wrote instead.
        message: String,
    },
    /// The answer is larger than the configured cap.
    #[error("the model's answer exceeds {limit} bytes")]
    AnswerTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The API's answer is not the JSON the Messages API documents.
    #[error("the model API's answer does not parse: {reason}")]
    Protocol {
        /// What is wrong with it.
        reason: String,
    },
}

fn after(retry_after: Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |d| {
        format!("; it asked to wait {} s", d.as_secs())
    })
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// A source of spec drafts: a model provider, or the offline mock.
///
/// Implementations draft one answer per call from the whole conversation so
/// far (the request, then every earlier draft with its problems) and do no
/// checking of their own.
#[async_trait]
pub trait SpecGenerator: Send + Sync {
    /// Who drafts, for results and logs, e.g. `anthropic (claude-sonnet-4-6)`.
    fn describe(&self) -> String;

    /// Whether drafts come from the offline mock rather than a model.
    fn is_mock(&self) -> bool {
        false
    }

    /// Drafts the next answer of `conversation`.
    async fn draft(&self, conversation: &Conversation) -> Result<Draft, ProviderError>;
}
