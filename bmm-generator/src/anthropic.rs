//! The Anthropic provider: Claude over the Messages API.
//!
//! One request per round: the shared [system prompt](crate::prompt::SYSTEM_PROMPT)
//! (marked for prompt caching, which also caches the tool definition before
//! it), the answer tool whose input schema is the `ServerSpec` JSON Schema,
//! a forced `tool_choice` so the model can only answer through that tool,
//! and the conversation so far: the request, then for each earlier round the
//! model's `tool_use` and a `tool_result` with `is_error: true` listing that
//! draft's problems.
//!
//! Transient failures — HTTP 429, 529 and other 5xx answers, timeouts and
//! dropped connections — are retried with exponential backoff and jitter,
//! waiting at least what a `retry-after` header asks. Everything else fails
//! at once with a typed [`ProviderError`].
//!
//! Configuration comes from [`AnthropicConfig`], usually
//! [`AnthropicConfig::from_env`]: `ANTHROPIC_API_KEY` (required),
//! `ANTHROPIC_BASE_URL` (default `https://api.anthropic.com`) and
//! `ANTHROPIC_MODEL` (default [`DEFAULT_MODEL`]). The key is held as a
//! [`SecretValue`]: it is sent in the `x-api-key` header only, and never
//! appears in `Debug` output, errors or logs.

use std::time::Duration;

use async_trait::async_trait;
use bmm_core::SecretValue;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::prompt::{ANSWER_TOOL, SYSTEM_PROMPT, answer_tool, repair_turn, user_turn};
use crate::provider::{Conversation, Draft, ProviderError, SpecGenerator, Usage};

/// The model used when none is configured.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-6";

/// The Messages API version this client speaks.
pub const API_VERSION: &str = "2023-06-01";

/// How to reach the Messages API, and how patiently.
#[derive(Clone, Debug)]
pub struct AnthropicConfig {
    /// The API key (`x-api-key`).
    pub api_key: SecretValue,
    /// Where the API is, e.g. `https://api.anthropic.com`; `/v1/messages` is appended.
    pub base_url: String,
    /// The model to ask.
    pub model: String,
    /// The most tokens an answer may use (default 16,000).
    pub max_tokens: u32,
    /// Time allowed for one request, answer included (default 180 s).
    pub timeout: Duration,
    /// Retries after the first attempt for transient failures (default 4).
    pub max_retries: u32,
    /// The first backoff; each retry doubles it (default 1 s).
    pub backoff: Duration,
    /// The longest wait between attempts, `retry-after` included (default 60 s);
    /// an API asking for longer fails the call at once.
    pub max_wait: Duration,
    /// The largest answer read, in bytes (default 2 MiB).
    pub max_answer_bytes: usize,
}

impl AnthropicConfig {
    /// A configuration with `api_key` and every default.
    pub fn new(api_key: SecretValue) -> Self {
        Self {
            api_key,
            base_url: "https://api.anthropic.com".to_owned(),
            model: DEFAULT_MODEL.to_owned(),
            max_tokens: 16_000,
            timeout: Duration::from_secs(180),
            max_retries: 4,
            backoff: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
            max_answer_bytes: 2 << 20,
        }
    }

    /// Reads `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL` and `ANTHROPIC_MODEL`.
    ///
    /// Fails with [`ProviderError::NotConfigured`] when the key is missing or
    /// empty, or the base URL does not parse.
    pub fn from_env() -> Result<Self, ProviderError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`AnthropicConfig::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ProviderError> {
        let key = lookup("ANTHROPIC_API_KEY")
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| ProviderError::NotConfigured {
                reason: "ANTHROPIC_API_KEY is not set".into(),
            })?;
        let mut config = Self::new(SecretValue::new(key.trim()));
        if let Some(base) = lookup("ANTHROPIC_BASE_URL").filter(|b| !b.trim().is_empty()) {
            config.base_url = base.trim().to_owned();
            endpoint(&config.base_url)?;
        }
        if let Some(model) = lookup("ANTHROPIC_MODEL").filter(|m| !m.trim().is_empty()) {
            config.model = model.trim().to_owned();
        }
        Ok(config)
    }
}

/// `{base}/v1/messages`, keeping any path the base has.
fn endpoint(base: &str) -> Result<Url, ProviderError> {
    let mut base = Url::parse(base).map_err(|e| ProviderError::NotConfigured {
        reason: format!("ANTHROPIC_BASE_URL is not a URL: {e}"),
    })?;
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.join("v1/messages")
        .map_err(|e| ProviderError::NotConfigured {
            reason: format!("ANTHROPIC_BASE_URL cannot take a path: {e}"),
        })
}

/// Claude as a [`SpecGenerator`].
#[derive(Clone, Debug)]
pub struct AnthropicGenerator {
    config: AnthropicConfig,
    client: reqwest::Client,
    endpoint: Url,
}

impl AnthropicGenerator {
    /// A provider using `config`.
    pub fn new(config: AnthropicConfig) -> Result<Self, ProviderError> {
        let endpoint = endpoint(&config.base_url)?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ProviderError::NotConfigured {
                reason: format!("HTTP client: {e}"),
            })?;
        Ok(Self {
            config,
            client,
            endpoint,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &AnthropicConfig {
        &self.config
    }

    /// The Messages API request body for `conversation`.
    pub fn request_body(&self, conversation: &Conversation) -> Value {
        let mut messages = vec![json!({
            "role": "user",
            "content": user_turn(&conversation.request),
        })];
        for round in &conversation.rounds {
            let input = match &round.draft.spec {
                Value::Object(_) => round.draft.spec.clone(),
                other => json!({ "unparsed_answer": truncate(&other.to_string(), 4000) }),
            };
            messages.push(json!({
                "role": "assistant",
                "content": [{
                    "type": "tool_use",
                    "id": round.draft.answer_id,
                    "name": ANSWER_TOOL,
                    "input": input,
                }],
            }));
            messages.push(json!({
                "role": "user",
                "content": [{
                    "type": "tool_result",
                    "tool_use_id": round.draft.answer_id,
                    "is_error": true,
                    "content": repair_turn(&round.problems),
                }],
            }));
        }
        json!({
            "model": self.config.model,
            "max_tokens": self.config.max_tokens,
            "system": [{
                "type": "text",
                "text": SYSTEM_PROMPT,
                "cache_control": {"type": "ephemeral"},
            }],
            "tools": [answer_tool()],
            "tool_choice": {"type": "tool", "name": ANSWER_TOOL},
            "messages": messages,
        })
    }

    fn headers(&self) -> Result<HeaderMap, ProviderError> {
        let mut headers = HeaderMap::new();
        let mut key = HeaderValue::from_str(self.config.api_key.expose_secret()).map_err(|_| {
            ProviderError::NotConfigured {
                reason: "ANTHROPIC_API_KEY holds characters a header cannot carry".into(),
            }
        })?;
        key.set_sensitive(true);
        headers.insert("x-api-key", key);
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        Ok(headers)
    }

    /// One attempt: `Ok` with the answer, or the failure and whether (and
    /// after how long, if the API said) it is worth retrying.
    async fn attempt(&self, body: &Value) -> Result<Answer, Failure> {
        let headers = self.headers().map_err(Failure::fatal)?;
        let response = self
            .client
            .post(self.endpoint.clone())
            .headers(headers)
            .json(body)
            .send()
            .await
            .map_err(|e| transport_failure(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let bytes = self.read_capped(response).await?;
        if status == 200 {
            return parse_answer(&bytes).map_err(Failure::fatal);
        }
        let message = error_message(&bytes);
        let failure = match status {
            401 | 403 => Failure::fatal(ProviderError::Unauthenticated { status, message }),
            429 => Failure::retry(Kind::RateLimited, retry_after),
            529 => Failure::retry(Kind::Overloaded, retry_after),
            500..=599 => Failure::retry(Kind::Server(status), retry_after),
            _ => Failure::fatal(ProviderError::Rejected { status, message }),
        };
        Err(failure)
    }

    async fn read_capped(&self, mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
        let limit = self.config.max_answer_bytes;
        let too_large = || Failure::fatal(ProviderError::AnswerTooLarge { limit });
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport_failure(&e))? {
            if bytes.len() + chunk.len() > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// The wait before retry number `retry` (1-based): exponential from
    /// [`AnthropicConfig::backoff`] with "equal jitter" (half fixed, half
    /// random), never less than what the API asked for.
    fn wait(&self, retry: u32, asked: Option<Duration>) -> Duration {
        let exp = self
            .config
            .backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
        let capped = exp.min(self.config.max_wait);
        let half = capped / 2;
        let jitter = half.mul_f64(fastrand::f64());
        (half + jitter).max(asked.unwrap_or_default())
    }
}

#[async_trait]
impl SpecGenerator for AnthropicGenerator {
    fn describe(&self) -> String {
        format!("anthropic ({})", self.config.model)
    }

    async fn draft(&self, conversation: &Conversation) -> Result<Draft, ProviderError> {
        let body = self.request_body(conversation);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (kind, retry_after) = match self.attempt(&body).await {
                Ok(answer) => return answer.into_draft(),
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Retry { kind, retry_after }) => (kind, retry_after),
            };
            let give_up = attempts > self.config.max_retries
                || retry_after.is_some_and(|d| d > self.config.max_wait);
            if give_up {
                return Err(kind.into_error(attempts, retry_after, self.config.timeout));
            }
            let wait = self.wait(attempts, retry_after);
            tracing::debug!(attempt = attempts, ?wait, "retrying the Messages API");
            tokio::time::sleep(wait).await;
        }
    }
}

/// A transport failure: timeouts apart, retried as `Transport` with the
/// error's cause as its reason (never reqwest's message, which names the URL).
fn transport_failure(error: &reqwest::Error) -> Failure {
    if error.is_timeout() {
        return Failure::retry(Kind::Timeout, None);
    }
    let reason = std::error::Error::source(error)
        .map(ToString::to_string)
        .unwrap_or_else(|| "connection failed".into());
    Failure::retry(Kind::Transport(truncate(&reason, 200)), None)
}

/// Why an attempt failed, and whether to retry.
enum Failure {
    Fatal(ProviderError),
    Retry {
        kind: Kind,
        retry_after: Option<Duration>,
    },
}

impl Failure {
    fn fatal(error: ProviderError) -> Self {
        Self::Fatal(error)
    }

    fn retry(kind: Kind, retry_after: Option<Duration>) -> Self {
        Self::Retry { kind, retry_after }
    }
}

enum Kind {
    RateLimited,
    Overloaded,
    Server(u16),
    Timeout,
    Transport(String),
}

impl Kind {
    fn into_error(
        self,
        attempts: u32,
        retry_after: Option<Duration>,
        timeout: Duration,
    ) -> ProviderError {
        match self {
            Kind::RateLimited => ProviderError::RateLimited {
                retry_after,
                attempts,
            },
            Kind::Overloaded => ProviderError::Overloaded { attempts },
            Kind::Server(status) => ProviderError::Server { status, attempts },
            Kind::Timeout => ProviderError::Timeout { timeout, attempts },
            Kind::Transport(reason) => ProviderError::Transport { reason },
        }
    }
}

/// The parts of a Messages API answer this client reads.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: ApiUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Default, Deserialize)]
struct ApiUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl Answer {
    fn into_draft(self) -> Result<Draft, ProviderError> {
        let usage = Usage {
            input_tokens: self.usage.input_tokens,
            output_tokens: self.usage.output_tokens,
            cache_creation_input_tokens: self.usage.cache_creation_input_tokens.unwrap_or(0),
            cache_read_input_tokens: self.usage.cache_read_input_tokens.unwrap_or(0),
        };
        let stop_reason = self.stop_reason.unwrap_or_default();
        let mut text = String::new();
        let mut tool = None;
        for block in self.content {
            match block {
                Block::Text { text: t } => text.push_str(&t),
                Block::ToolUse { id, name, input } if name == ANSWER_TOOL => {
                    tool = Some((id, input));
                }
                _ => {}
            }
        }
        match tool {
            Some((id, input)) if stop_reason == "tool_use" => Ok(Draft {
                spec: input,
                answer_id: id,
                usage,
            }),
            _ => Err(ProviderError::Refused {
                stop_reason: if stop_reason.is_empty() {
                    "none".into()
                } else {
                    stop_reason
                },
                message: truncate(text.trim(), 500),
            }),
        }
    }
}

fn parse_answer(bytes: &[u8]) -> Result<Answer, ProviderError> {
    serde_json::from_slice(bytes).map_err(|e| ProviderError::Protocol {
        reason: e.to_string(),
    })
}

/// The `error.message` of an API error body, or a short excerpt of the body.
fn error_message(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Body>(bytes) {
        Ok(body) => truncate(&body.error.message, 300),
        Err(_) => truncate(&String::from_utf8_lossy(bytes), 300),
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max_chars).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Request, Round};

    fn generator() -> AnthropicGenerator {
        AnthropicGenerator::new(AnthropicConfig::new(SecretValue::new("sk-ant-test-key"))).unwrap()
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let generator = generator();
        let text = format!("{generator:?}");
        assert!(!text.contains("sk-ant-test-key"), "{text}");
        assert!(text.contains("claude-sonnet-4-6"));
    }

    #[test]
    fn configuration_comes_from_the_environment() {
        let vars = |name: &str| match name {
            "ANTHROPIC_API_KEY" => Some(" key ".to_owned()),
            "ANTHROPIC_BASE_URL" => Some("http://127.0.0.1:9/".to_owned()),
            "ANTHROPIC_MODEL" => Some("claude-test".to_owned()),
            _ => None,
        };
        let config = AnthropicConfig::from_lookup(vars).unwrap();
        assert_eq!(config.api_key.expose_secret(), "key");
        assert_eq!(config.base_url, "http://127.0.0.1:9/");
        assert_eq!(
            endpoint("http://127.0.0.1:9/proxy").unwrap().as_str(),
            "http://127.0.0.1:9/proxy/v1/messages"
        );
        assert_eq!(config.model, "claude-test");
        let missing = AnthropicConfig::from_lookup(|_| None).unwrap_err();
        assert!(matches!(missing, ProviderError::NotConfigured { .. }));
        let bad = AnthropicConfig::from_lookup(|n| {
            (n != "ANTHROPIC_MODEL").then(|| "not a url".to_owned())
        })
        .unwrap_err();
        assert!(bad.to_string().contains("ANTHROPIC_BASE_URL"), "{bad}");
    }

    #[test]
    fn the_request_forces_the_answer_tool_and_caches_the_system_prompt() {
        let body = generator().request_body(&Conversation {
            request: Request::new("a dice roller"),
            rounds: vec![Round {
                draft: Draft {
                    spec: json!({"bmm": "1"}),
                    answer_id: "toolu_1".into(),
                    usage: Usage::default(),
                },
                problems: vec!["name: missing".into()],
            }],
        });
        assert_eq!(
            body["tool_choice"],
            json!({"type": "tool", "name": ANSWER_TOOL})
        );
        assert_eq!(body["system"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(body["system"][0]["text"], SYSTEM_PROMPT);
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert!(
            messages[0]["content"]
                .as_str()
                .unwrap()
                .contains("a dice roller")
        );
        assert_eq!(messages[1]["content"][0]["type"], "tool_use");
        assert_eq!(messages[2]["content"][0]["tool_use_id"], "toolu_1");
        assert_eq!(messages[2]["content"][0]["is_error"], true);
        assert!(
            messages[2]["content"][0]["content"]
                .as_str()
                .unwrap()
                .contains("- name: missing")
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let mut config = AnthropicConfig::new(SecretValue::new("k"));
        config.backoff = Duration::from_millis(100);
        config.max_wait = Duration::from_millis(1000);
        let g = AnthropicGenerator::new(config).unwrap();
        for _ in 0..50 {
            let first = g.wait(1, None);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first));
            let fourth = g.wait(4, None);
            assert!((Duration::from_millis(400)..=Duration::from_millis(800)).contains(&fourth));
            let capped = g.wait(20, None);
            assert!(capped <= Duration::from_millis(1000));
            assert!(g.wait(1, Some(Duration::from_millis(700))) >= Duration::from_millis(700));
        }
    }
}
