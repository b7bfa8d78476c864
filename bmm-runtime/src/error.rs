//! The crate's error type.

use std::time::Duration;

/// A specialised `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while checking or running a tool.
///
/// Messages never carry a secret's value, a request URL's query string or a
/// request body: they are safe to show to a user and to log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },

    /// An egress allowlist entry could not be parsed.
    #[error("invalid allowed host {pattern:?}: {reason}")]
    InvalidHostPattern {
        /// The entry as written.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The check of a script found its module's top level running longer
    /// than the check allows. A module is evaluated afresh on every call, so
    /// such work belongs in the default export.
    #[error(
        "the script's top level ran longer than {limit:?} when checked; it runs on every call, so do that work inside the default export"
    )]
    TopLevelTooSlow {
        /// What the check allows.
        limit: Duration,
    },

    /// The script does not compile (syntax or early error).
    #[error("script does not compile: {message}{}", location(*line, *column))]
    Compile {
        /// The engine's message, e.g. `SyntaxError: unexpected token in expression: ')'`.
        message: String,
        /// 1-based line of the error, when the engine reports it.
        line: Option<u32>,
        /// 1-based column of the error, when the engine reports it.
        column: Option<u32>,
    },

    /// The script's module has no default export that is a function.
    #[error("script must `export default` a function (found {found})")]
    MissingEntryPoint {
        /// The JavaScript type of what was found instead.
        found: String,
    },

    /// The script threw an exception or returned a rejected promise.
    #[error("script failed: {message}")]
    Script {
        /// The exception as text, truncated.
        message: String,
    },

    /// The script's return value cannot be turned into JSON.
    #[error("script returned a value that is not JSON: {reason}")]
    InvalidOutput {
        /// Why the value was refused.
        reason: String,
    },

    /// The script's return value is larger than the configured cap.
    #[error("script output exceeds {limit} bytes")]
    OutputTooLarge {
        /// The cap in bytes.
        limit: usize,
    },

    /// The script ran JavaScript for longer than its CPU-time limit.
    #[error("script exceeded its CPU time limit of {limit:?}")]
    CpuTimeExceeded {
        /// The limit that was exceeded.
        limit: Duration,
    },

    /// The call took longer than its wall-clock limit (e.g. waiting on `fetch`).
    #[error("script exceeded its wall-clock limit of {limit:?}")]
    WallTimeExceeded {
        /// The limit that was exceeded.
        limit: Duration,
    },

    /// The script allocated more than its memory limit.
    #[error("script exceeded its memory limit of {limit} bytes")]
    MemoryExceeded {
        /// The limit in bytes.
        limit: usize,
    },

    /// The script recursed deeper than the engine's stack allows.
    #[error("script exceeded the maximum stack depth")]
    StackOverflow,

    /// The script's promise can never settle: nothing is left that could resolve it.
    #[error("script returned a promise that never settles")]
    NeverSettled,

    /// The call was abandoned by its caller before it finished.
    #[error("script call was cancelled")]
    Cancelled,

    /// No worker became free in time (the tenant's or the pool's limit was reached).
    #[error("too many concurrent script calls; try again later")]
    Overloaded,

    /// The script made more `fetch` calls than one call may make.
    #[error("script exceeded its limit of {limit} fetch calls")]
    TooManyFetches {
        /// The limit per call.
        limit: usize,
    },

    /// A request was refused by the egress policy.
    #[error("egress to {host:?} denied: {reason}")]
    EgressDenied {
        /// The host that was refused (never the full URL).
        host: String,
        /// Why, e.g. `host is not in the allowlist`.
        reason: String,
    },

    /// A request references a secret the server does not declare.
    #[error("unknown secret {name:?}")]
    UnknownSecret {
        /// The secret's name (never its value).
        name: String,
    },

    /// A request is malformed (bad URL, method, header name or body).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },

    /// A request is larger than the egress policy allows.
    #[error("request exceeds {limit} bytes")]
    RequestTooLarge {
        /// The cap in bytes.
        limit: usize,
    },

    /// A response is larger than the egress policy allows.
    #[error("response exceeds {limit} bytes")]
    ResponseTooLarge {
        /// The cap in bytes.
        limit: usize,
    },

    /// An upstream request did not complete within the egress timeout.
    #[error("upstream request to {host:?} timed out")]
    UpstreamTimeout {
        /// The host that was being contacted.
        host: String,
    },

    /// An upstream request failed in transport (connection, TLS, protocol).
    #[error("upstream request to {host:?} failed")]
    Upstream {
        /// The host that was being contacted.
        host: String,
        /// The transport error, with its URL removed.
        #[source]
        source: reqwest::Error,
    },

    /// The script engine failed for a reason unrelated to the script's limits.
    #[error("script engine error: {message}")]
    Engine {
        /// What failed.
        message: String,
    },

    /// An http tool's template could not be rendered (a missing argument, a
    /// value that cannot go where the template puts it).
    #[error("cannot build the request: {reason}")]
    Template {
        /// What is wrong, naming the argument or slot; never a secret value.
        reason: String,
    },

    /// An upstream answered an http tool with a non-success status.
    #[error("upstream answered {status}: {body}")]
    UpstreamStatus {
        /// The HTTP status.
        status: u16,
        /// The start of the response body, secrets redacted.
        body: String,
    },

    /// No tool of this name is served.
    #[error("unknown tool {name:?}")]
    UnknownTool {
        /// The name asked for.
        name: String,
    },

    /// A tool's arguments do not match its input schema.
    #[error("invalid arguments: {problems}")]
    InvalidArguments {
        /// Every violation, each naming its field.
        problems: String,
    },

    /// An upstream's answer could not be shaped as the tool asks.
    #[error("cannot shape the upstream response: {reason}")]
    Response {
        /// What is wrong.
        reason: String,
    },
}

fn location(line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
        (Some(line), None) => format!(" at line {line}"),
        _ => String::new(),
    }
}

impl Error {
    /// Whether this error is a per-call limit being hit (time, memory, stack,
    /// output size, fetch count) rather than a script bug or a policy refusal.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            Self::CpuTimeExceeded { .. }
                | Self::WallTimeExceeded { .. }
                | Self::MemoryExceeded { .. }
                | Self::StackOverflow
                | Self::OutputTooLarge { .. }
                | Self::TooManyFetches { .. }
                | Self::NeverSettled
        )
    }
}
