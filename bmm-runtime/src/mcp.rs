//! The MCP handler for one `ServerSpec`: its tool list comes from the spec at
//! run time, arguments are validated before anything runs, and calls go to the
//! tool's executor.
//!
//! Errors a user should read (bad arguments, an upstream failure, a script
//! that threw or hit a limit) are tool errors (`isError: true`) whose text
//! names the problem; protocol errors (an unknown tool) stay protocol errors.
//!
//! # Results
//!
//! A tool's value becomes an MCP result this way:
//!
//! - a string is one text block;
//! - an object of the single key `$content`, holding a list of MCP content
//!   blocks (`{"type": "text", "text": …}`, `{"type": "image", "data": base64,
//!   "mimeType": …}`, `audio`, `resource`), is returned as those blocks — the
//!   way a script returns an image or an embedded resource;
//! - any other JSON value is one text block of its JSON text, and also
//!   `structuredContent` when the tool declares an `output_schema` (the value
//!   is checked against it first).
//!
//! A script's `console` output is sent to the client as log notifications
//! (`notifications/message`, logger = the tool's name) before the result, at
//! or above the level the client chose with `logging/setLevel` (default
//! `info`; `console.debug` is `debug`, `console.warn` is `warning`,
//! `console.error` is `error`). On the 2026-07-28 lane a request gets logs
//! only when its `_meta` names a `logLevel`.

// MCP logging is deprecated by the 2026-07-28 revision (SEP-2577) but is part of
// 2025-11-25, which clients still speak; rmcp marks its types deprecated.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use bmm_core::{Implementation, ToolSpec, ValidatedSpec};
use jsonschema::{Draft, Validator};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation as Info,
    InitializeResult, ListToolsResult, LoggingLevel, LoggingMessageNotificationParam,
    PaginatedRequestParams, ServerCapabilities, ServerResult, SetLevelRequestParams, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::egress::{EgressClient, EgressPolicy, HostPattern};
use crate::http::HttpTool;
use crate::sandbox::{Sandbox, Script, ScriptEnv, TenantGate};
use crate::secret::Secrets;
use crate::{Error, Result};

/// How one served spec may reach the network, and how much of the host it may use.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Calls of this server that may run at once, all tools together (default 32).
    pub max_concurrent_calls: usize,
    /// How long a call waits for a free slot before it fails as busy (default 5 s).
    pub queue_timeout: Duration,
    /// Networks exempt from the forbidden-address check (development and tests
    /// only, e.g. `127.0.0.1/32` for a local upstream).
    pub allowed_networks: Vec<String>,
    /// Refuse plain `http` upstreams (default true; turn off only for local development).
    pub https_only: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 32,
            queue_timeout: Duration::from_secs(5),
            allowed_networks: Vec::new(),
            https_only: true,
        }
    }
}

/// An MCP server for one validated spec. Cheap to clone: clones share the
/// compiled spec; [`SpecServer::for_session`] gives a session its own log level.
#[derive(Clone, Debug)]
pub struct SpecServer {
    inner: Arc<Served>,
    log_level: Arc<AtomicU8>,
}

#[derive(Debug)]
struct Served {
    info: InitializeResult,
    tools: Vec<Tool>,
    /// The `tools/list` result, serialised once for the direct lane.
    tools_json: Option<String>,
    entries: HashMap<String, Entry>,
    sandbox: Sandbox,
    gate: TenantGate,
    script_env: ScriptEnv,
    egress: EgressClient,
    secrets: Secrets,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
}

struct Entry {
    /// Whether the direct lane may answer calls of this tool: its input
    /// schema names no `x-mcp-header` parameters for rmcp to check.
    direct: bool,
    input: Validator,
    output: Option<Validator>,
    runner: Runner,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("runner", &self.runner)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum Runner {
    Script(Script),
    Http(Box<HttpTool>),
}

impl SpecServer {
    /// Prepares `spec` for serving: compiles every tool's schemas and script,
    /// and binds its egress allowlist and secrets.
    ///
    /// Fails when a required secret is missing, when a script does not compile
    /// or when the egress configuration is invalid.
    pub fn new(
        spec: &ValidatedSpec,
        secrets: Secrets,
        sandbox: Sandbox,
        options: &ServeOptions,
    ) -> Result<Self> {
        Self::with_egress(spec, secrets, sandbox, &base_egress(options)?, options)
    }

    /// Like [`SpecServer::new`], deriving the spec's egress client from
    /// `base` (built with [`base_egress`]) so that many servers share one
    /// connection pool.
    pub fn with_egress(
        spec: &ValidatedSpec,
        secrets: Secrets,
        sandbox: Sandbox,
        base: &EgressClient,
        options: &ServeOptions,
    ) -> Result<Self> {
        let spec = spec.spec();
        for secret in &spec.secrets {
            if secret.required && secrets.get(secret.name.as_str()).is_none() {
                return Err(Error::InvalidConfig {
                    reason: format!("required secret {} has no value", secret.name),
                });
            }
        }
        let hosts = spec
            .egress
            .iter()
            .map(|h| h.parse::<HostPattern>())
            .collect::<Result<Vec<_>>>()?;
        let egress = base.with_allowed_hosts(hosts);
        let mut tools = Vec::with_capacity(spec.tools.len());
        let mut entries = HashMap::with_capacity(spec.tools.len());
        for tool in &spec.tools {
            tools.push(mcp_tool(tool));
            entries.insert(tool.name.as_str().to_owned(), entry(tool)?);
        }
        let mut server_info = Info::new(spec.slug.as_str(), spec.version.as_str());
        server_info.title = Some(spec.name.clone());
        server_info.description = Some(spec.description.clone());
        let mut info = InitializeResult::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_logging()
                .build(),
        );
        info.server_info = server_info;
        info.instructions = Some(spec.description.clone());
        let slots = options.max_concurrent_calls.max(1);
        let tools_json = direct_tools_json(&tools);
        Ok(Self {
            log_level: Arc::new(AtomicU8::new(rank(LoggingLevel::Info))),
            inner: Arc::new(Served {
                info,
                tools,
                tools_json,
                entries,
                script_env: ScriptEnv::new(egress.clone(), secrets.clone()),
                sandbox,
                gate: TenantGate::new(slots),
                egress,
                secrets,
                slots: Arc::new(Semaphore::new(slots)),
                queue_timeout: options.queue_timeout,
            }),
        })
    }

    /// The same server with a log level of its own, for one client session.
    pub fn for_session(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            log_level: Arc::new(AtomicU8::new(rank(LoggingLevel::Info))),
        }
    }

    /// The tools as MCP lists them.
    pub fn tools(&self) -> &[Tool] {
        &self.inner.tools
    }

    /// The `tools/list` result as JSON text, if it could be serialised.
    pub(crate) fn tools_list_json(&self) -> Option<&str> {
        self.inner.tools_json.as_deref()
    }

    /// Whether the direct lane may answer a call of `name` (see [`crate::direct`]).
    pub(crate) fn answers_directly(&self, name: &str) -> bool {
        self.inner.entries.get(name).is_some_and(|e| e.direct)
    }

    /// Calls a tool as `tools/call` would, returning the MCP result.
    ///
    /// An unknown tool is a protocol error (`-32602`); everything that goes
    /// wrong after that is a tool error in the result.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<serde_json::Map<String, Value>>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call_with_logs(name, arguments)
            .await
            .map(|(result, _)| result)
    }

    /// Like [`SpecServer::call`], also returning the lines the tool logged.
    async fn call_with_logs(
        &self,
        name: &str,
        arguments: Option<serde_json::Map<String, Value>>,
    ) -> Result<(CallToolResult, Vec<String>), ErrorData> {
        let served = &self.inner;
        let Some(entry) = served.entries.get(name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool: {name}"),
                None,
            ));
        };
        let args = Value::Object(arguments.unwrap_or_default());
        if let Some(problems) = argument_errors(&entry.input, &args) {
            return Ok((
                tool_error(format!("invalid arguments: {problems}")),
                Vec::new(),
            ));
        }
        let Ok(Ok(_slot)) = tokio::time::timeout(
            served.queue_timeout,
            Arc::clone(&served.slots).acquire_owned(),
        )
        .await
        else {
            return Ok((
                tool_error("the server is busy; try again shortly".to_owned()),
                Vec::new(),
            ));
        };
        let (value, logs) = self.run(entry, &args).await;
        let result = match value {
            Ok(value) => shape_result(value, entry.output.as_ref()),
            Err(error) => tool_error(error.to_string()),
        };
        Ok((result, logs))
    }
}

impl SpecServer {
    /// Runs one tool's executor on `args` and returns what it produced, as a
    /// typed result rather than an MCP one, with the lines it logged.
    ///
    /// Arguments are checked against the input schema first. Unlike
    /// [`SpecServer::call`], this does not take one of the server's call
    /// slots; it is meant for checks such as a generator's dry run, not for
    /// serving traffic.
    pub async fn execute(&self, name: &str, args: &Value) -> (Result<Value>, Vec<String>) {
        let Some(entry) = self.inner.entries.get(name) else {
            let name = name.to_owned();
            return (Err(Error::UnknownTool { name }), Vec::new());
        };
        if let Some(problems) = argument_errors(&entry.input, args) {
            return (Err(Error::InvalidArguments { problems }), Vec::new());
        }
        self.run(entry, args).await
    }

    async fn run(&self, entry: &Entry, args: &Value) -> (Result<Value>, Vec<String>) {
        let served = &self.inner;
        match &entry.runner {
            Runner::Script(script) => match served
                .sandbox
                .call(&served.gate, script, args, &served.script_env)
                .await
            {
                Ok(out) => (Ok(out.value), out.logs),
                Err(error) => (Err(error), Vec::new()),
            },
            Runner::Http(http) => (
                http.call(args, &served.egress, &served.secrets).await,
                Vec::new(),
            ),
        }
    }
}

/// The egress client every server of one host derives its own from: the
/// network-wide part of [`ServeOptions`], with no host allowed yet.
pub fn base_egress(options: &ServeOptions) -> Result<EgressClient> {
    let mut policy = EgressPolicy::deny_all();
    for network in &options.allowed_networks {
        policy = policy.allow_network(network)?;
    }
    policy.https_only = options.https_only;
    EgressClient::new(policy)
}

/// The `tools/list` result as the 2026-07-28 lane sends it (with rmcp's
/// default cache hints), serialised once for the direct lane.
fn direct_tools_json(tools: &[Tool]) -> Option<String> {
    let mut result = ServerResult::ListToolsResult(ListToolsResult::with_all_items(tools.to_vec()));
    result.fill_missing_cache_hints();
    serde_json::to_string(&result).ok()
}

fn entry(tool: &ToolSpec) -> Result<Entry> {
    let compile = |schema: &serde_json::Map<String, Value>, which: &str| {
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .build(&Value::Object(schema.clone()))
            .map_err(|e| Error::InvalidConfig {
                reason: format!("tool {}: {which} schema: {e}", tool.name),
            })
    };
    let input = compile(&tool.input_schema, "input")?;
    let output = tool
        .output_schema
        .as_ref()
        .map(|s| compile(s, "output"))
        .transpose()?;
    let runner = match &tool.implementation {
        Implementation::Script(script) => Runner::Script(Script::new(script.source.as_str())?),
        Implementation::Http(http) => Runner::Http(Box::new(HttpTool::new(http)?)),
    };
    let direct = !Value::Object(tool.input_schema.clone())
        .to_string()
        .contains("x-mcp-header");
    Ok(Entry {
        direct,
        input,
        output,
        runner,
    })
}

fn mcp_tool(tool: &ToolSpec) -> Tool {
    let mut out = Tool::new(
        tool.name.as_str().to_owned(),
        tool.description.clone(),
        Arc::new(tool.input_schema.clone()),
    );
    out.title = tool.title.clone();
    out.output_schema = tool.output_schema.clone().map(Arc::new);
    let a = &tool.annotations;
    if !a.is_empty() || tool.title.is_some() {
        let mut annotations = ToolAnnotations::new();
        annotations.title = tool.title.clone();
        annotations.read_only_hint = a.read_only;
        annotations.destructive_hint = a.destructive;
        annotations.idempotent_hint = a.idempotent;
        annotations.open_world_hint = a.open_world;
        out.annotations = Some(annotations);
    }
    out
}

/// Every way `args` breaks the input schema, each naming its field, or `None`.
fn argument_errors(validator: &Validator, args: &Value) -> Option<String> {
    let problems: Vec<String> = validator
        .iter_errors(args)
        .take(10)
        .map(|e| {
            let at = e
                .instance_path()
                .as_str()
                .trim_start_matches('/')
                .replace('/', ".");
            let what = describe(&e);
            if at.is_empty() {
                what
            } else {
                format!("`{at}`: {what}")
            }
        })
        .collect();
    if problems.is_empty() {
        None
    } else {
        Some(problems.join("; "))
    }
}

/// A short description of a schema violation that does not echo large values.
fn describe(error: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as K;
    match error.kind() {
        K::Required { property } => format!("missing required argument {property}"),
        K::AdditionalProperties { unexpected } => {
            format!("unexpected argument(s) {}", unexpected.join(", "))
        }
        K::Type { kind } => format!("wrong type, expected {kind:?}")
            .replace("Single(", "")
            .replace(')', ""),
        _ => {
            let text = error.to_string();
            if text.chars().count() > 200 {
                format!("{}…", text.chars().take(200).collect::<String>())
            } else {
                text
            }
        }
    }
}

fn tool_error(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// Turns what a tool produced into an MCP result (see the module docs).
fn shape_result(value: Value, output: Option<&Validator>) -> CallToolResult {
    if let Value::Object(map) = &value
        && map.len() == 1
        && let Some(blocks) = map.get("$content")
    {
        return match serde_json::from_value::<Vec<ContentBlock>>(blocks.clone()) {
            Ok(blocks) if !blocks.is_empty() => CallToolResult::success(blocks),
            Ok(_) => tool_error("the tool returned an empty `$content` list".to_owned()),
            Err(e) => tool_error(format!(
                "the tool returned `$content` that is not a list of MCP content blocks: {e}"
            )),
        };
    }
    let text = match &value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let Some(validator) = output else {
        return CallToolResult::success(vec![ContentBlock::text(text)]);
    };
    if let Some(problems) = argument_errors(validator, &value) {
        return tool_error(format!(
            "the tool's result does not match its output_schema: {problems}"
        ));
    }
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}

impl ServerHandler for SpecServer {
    fn get_info(&self) -> InitializeResult {
        self.inner.info.clone()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.inner.tools.clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (result, logs) = self
            .call_with_logs(&request.name, request.arguments)
            .await?;
        // 2026-07-28 requests carry their protocol version in `_meta` and ask for
        // logs there, per request; without a `logLevel` they get none. Older
        // sessions use the level set with `logging/setLevel`.
        let threshold = if context.meta.protocol_version().is_some() {
            context.meta.log_level().map(rank)
        } else {
            Some(self.log_level.load(Ordering::Relaxed))
        };
        for line in logs {
            let (level, text) = log_level_of(&line);
            if threshold.is_none_or(|t| rank(level) < t) {
                continue;
            }
            let mut message =
                LoggingMessageNotificationParam::new(level, Value::String(text.to_owned()));
            message.logger = Some(request.name.to_string());
            // A client that went away misses its logs; the result still goes out.
            let _ = context.peer.notify_logging_message(message).await;
        }
        Ok(CallToolResponse::from(result))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.log_level.store(rank(request.level), Ordering::Relaxed);
        Ok(())
    }
}

/// The order of MCP log levels, least severe first.
fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// The MCP level and text of a line the sandbox collected from `console`.
fn log_level_of(line: &str) -> (LoggingLevel, &str) {
    for (prefix, level) in [
        ("[debug] ", LoggingLevel::Debug),
        ("[info] ", LoggingLevel::Info),
        ("[warn] ", LoggingLevel::Warning),
        ("[error] ", LoggingLevel::Error),
    ] {
        if let Some(text) = line.strip_prefix(prefix) {
            return (level, text);
        }
    }
    (LoggingLevel::Info, line)
}
