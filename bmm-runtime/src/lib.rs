//! Serving a bmm `ServerSpec`: sandboxed script tools, the egress policy and secrets.
//!
//! This crate will own the MCP handler over Streamable HTTP, the executors for
//! `http` and `script` tools, the egress policy and the multi-tenant host. The
//! parts that do not depend on the spec types are here so far.
//!
//! # Module map
//!
//! | module | what it holds |
//! |---|---|
//! | [`sandbox`] | [`Sandbox`]: a worker pool running JavaScript tools in QuickJS on warm, hardened engines, a fresh module per call; [`check_script`], the compile-only check |
//! | [`egress`] | [`EgressPolicy`] (host allowlist, forbidden address ranges, caps) and [`EgressClient`], the reqwest client that enforces it |
//! | [`secret`] | [`SecretValue`] and [`Secrets`]: values a script can reference but never read |
//!
//! # The script contract
//!
//! A script tool is an ES module whose default export is a function, possibly
//! `async`. It receives the tool's arguments (already validated against the
//! tool's input schema) as one object and returns a JSON value or a string; a
//! returned promise is awaited. `undefined` becomes `null`.
//!
//! ```js
//! export default async function (args) {
//!   const res = await fetch("https://api.example.com/v1/items", {
//!     method: "GET",
//!     headers: { Authorization: { secret: "API_TOKEN" } },
//!     query: { q: args.query, limit: 10 },
//!   });
//!   if (!res.ok) throw new Error(`upstream said ${res.status}`);
//!   const data = await res.json();
//!   return data.items.map((item) => ({ id: item.id, name: item.name }));
//! }
//! ```
//!
//! An exception thrown (or a rejected promise) becomes [`Error::Script`] with
//! its message. Top-level code runs on every call; keep it to declarations.
//!
//! ## What a script has
//!
//! The language core (objects, arrays, strings, numbers, `BigInt`, `Math`,
//! `JSON`, `Date`, `RegExp`, `Map`/`Set`, typed arrays, `Proxy`, `Reflect`,
//! `Promise`, `async`/`await`), plus:
//!
//! - `console.log/info/warn/error/debug(...)`: collected (up to 16 KiB) into
//!   [`ScriptOutput::logs`];
//! - `fetch(url, options?)`, described below.
//!
//! It has no filesystem, process, environment, timers (`setTimeout` and
//! friends), sockets, module imports, `eval` or `Function` constructor (those
//! throw a `TypeError`), nor `performance`. Every call starts from a fresh
//! engine: nothing a call changes (globals, prototypes) is seen by another.
//!
//! ## `fetch(url, options?)`
//!
//! `url` is an absolute `http` or `https` URL string. `options` may have:
//!
//! - `method`: a string, default `"GET"`;
//! - `headers`: an object of header name to value;
//! - `query`: an object of query parameter to value, appended URL-encoded;
//! - `body`: a string (sent as is, `text/plain` unless a `Content-Type` header
//!   is given) or any other JSON value (sent as JSON, `application/json`).
//!
//! A header or query value is a string, number or boolean, or a secret
//! reference `{ secret: "NAME" }`: the host fills in the server's secret
//! `NAME` on the way out. The script never sees the value, and the value is
//! replaced by `[redacted]` if the upstream echoes it back.
//!
//! The promise resolves (for every status, 4xx and 5xx included) to
//!
//! ```text
//! { status: number, ok: boolean /* 2xx */, statusText: string, url: string /* after redirects */,
//!   headers: { [lower-case name]: string /* repeated headers joined with ", " */ },
//!   text(): Promise<string>, json(): Promise<any> /* rejects on invalid JSON */ }
//! ```
//!
//! and rejects with an `Error` whose message starts with `fetch failed:` on a
//! transport failure, a timeout or a response larger than the cap. Requests
//! the policy refuses — a host outside the allowlist, an address in a private
//! range, a redirect leaving the allowlist, an unknown secret, more than 16
//! fetches — end the whole call with that error ([`Error::EgressDenied`],
//! [`Error::UnknownSecret`], [`Error::TooManyFetches`]); a script cannot catch
//! them.
//!
//! ## Limits
//!
//! Per call, configurable in [`SandboxConfig`]: 2 s of JavaScript execution
//! ([`Error::CpuTimeExceeded`]), 10 s in all including waits on `fetch`
//! ([`Error::WallTimeExceeded`]), 32 MiB of memory ([`Error::MemoryExceeded`]),
//! a 1 MiB engine stack ([`Error::StackOverflow`]), 1 MiB of output
//! ([`Error::OutputTooLarge`]). A promise that can no longer settle (nothing
//! pending that could resolve it) fails at once with [`Error::NeverSettled`].
//! An exceeded limit ends that call only.
//!
//! QuickJS reports running out of memory either as an `InternalError` or, when
//! it cannot even allocate that, as a bare `null` exception; both become
//! [`Error::MemoryExceeded`] (so a script that itself throws `null` is reported
//! the same way).
//!
//! # Example
//!
//! ```
//! use bmm_runtime::{Sandbox, SandboxConfig, Script, ScriptEnv, TenantGate};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> bmm_runtime::Result<()> {
//! let sandbox = Sandbox::new(SandboxConfig::default())?;
//! let script = Script::new("export default (args) => ({ greeting: `hello, ${args.name}` })")?;
//! let tenant = TenantGate::new(4);
//! let args = serde_json::json!({ "name": "Ada" });
//! let output = sandbox.call(&tenant, &script, &args, &ScriptEnv::isolated()).await?;
//! assert_eq!(output.value, serde_json::json!({ "greeting": "hello, Ada" }));
//! # Ok(())
//! # }
//! ```
//!
//! # Choices and their reasons
//!
//! - QuickJS through rquickjs. A runtime and context (an engine) cost about
//!   100 µs of CPU to build, several times a whole call, so a fresh engine per
//!   call caps two cores at a few thousand calls per second. Workers keep warm
//!   engines instead, one per tenant and script: the global object and every
//!   reachable built-in are frozen once per engine, and each call evaluates
//!   the module afresh, so no state passes from one call to the next. Memory
//!   cap and interrupt deadline are per runtime in QuickJS, so an engine runs
//!   one call at a time, is set to that call's limits, and is discarded after
//!   a limit hit or work left behind. Freezing costs a few milliseconds, so a
//!   script's first call on a worker runs on a plain fresh engine and its
//!   second builds the warm one. `warm_engines: 0` restores a fresh engine
//!   per call. Both are measured by the `script_call` benchmark.
//! - A warm engine parses its script once: the first call's compiled module
//!   is written out as bytecode, and later calls load a fresh module from it
//!   (a 200-line script's call drops from about 0.64 ms to 0.08 ms). Loading
//!   bytecode is rquickjs's one `unsafe` call here (`Module::load`; QuickJS
//!   trusts bytecode), allowed in that one function: the bytes only ever come
//!   from this engine's own compile step in this process, never from outside,
//!   and live as long as the engine.

mod direct;
pub mod egress;
mod error;
pub mod host;
pub mod http;
pub mod mcp;
pub mod sandbox;
pub mod secret;

pub use egress::{
    EgressClient, EgressPolicy, EgressRequest, EgressResponse, HostPattern, OfflineResponder,
};
pub use error::{Error, Result};
pub use host::{Deployed, Host, HostConfig, not_served, serve, shutdown_signal};
pub use mcp::{ServeOptions, SpecServer};
pub use sandbox::{
    CHECK_TIME_LIMIT, Sandbox, SandboxConfig, Script, ScriptEnv, ScriptOutput, TenantGate,
    check_script,
};
pub use secret::{SecretValue, Secrets};
