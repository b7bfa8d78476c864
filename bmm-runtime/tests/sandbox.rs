//! Sandbox and egress integration tests: the script contract, `fetch` against a
//! local upstream, and the sandbox escape suite (every attempt must fail with
//! its typed error and leave the sandbox serving the next call).

// Fixtures outside `#[test]` functions may fail loudly: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bmm_runtime::{
    EgressClient, EgressPolicy, EgressRequest, Error, Sandbox, SandboxConfig, Script, ScriptEnv,
    ScriptOutput, SecretValue, Secrets, TenantGate,
};
use serde_json::{Value, json};

const SECRET: &str = "sk-test-0123456789abcdef";

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// A local upstream on 127.0.0.1 with an echo endpoint and misbehaving ones.
async fn upstream() -> SocketAddr {
    async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let headers: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), json!(String::from_utf8_lossy(v.as_bytes()))))
            .collect();
        let payload = json!({
            "method": method.as_str(),
            "path": uri.path(),
            "query": uri.query().unwrap_or(""),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        });
        let echoed_key = headers_value(&payload, "x-api-key");
        ([("x-echo-key", echoed_key)], axum::Json(payload)).into_response()
    }
    fn headers_value(payload: &Value, name: &str) -> String {
        payload["headers"][name].as_str().unwrap_or("").to_owned()
    }
    async fn redirect(Query(q): Query<std::collections::HashMap<String, String>>) -> Response {
        let to = q.get("to").cloned().unwrap_or_default();
        (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
    }
    async fn big() -> Vec<u8> {
        vec![b'x'; 256 << 10]
    }
    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "late"
    }
    async fn status(axum::extract::Path(code): axum::extract::Path<u16>) -> Response {
        let code = StatusCode::from_u16(code).unwrap();
        (code, "status body").into_response()
    }
    async fn items() -> axum::Json<Value> {
        axum::Json(json!({ "items": [{ "id": 1, "name": "one" }, { "id": 2, "name": "two" }] }))
    }
    async fn self_loop(State(addr): State<SocketAddr>) -> Response {
        (
            StatusCode::FOUND,
            [(header::LOCATION, format!("http://{addr}/loop"))],
        )
            .into_response()
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/echo", any(echo))
        .route("/redirect", get(redirect))
        .route("/big", get(big))
        .route("/slow", get(slow))
        .route("/status/{code}", get(status))
        .route("/items", get(items))
        .route("/loop", get(self_loop))
        .with_state(addr);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn config() -> SandboxConfig {
    SandboxConfig {
        workers: 2,
        memory_limit: 16 << 20,
        cpu_time_limit: Duration::from_millis(300),
        wall_time_limit: Duration::from_secs(2),
        max_output_bytes: 64 << 10,
        max_fetches: 4,
        ..SandboxConfig::default()
    }
}

fn secrets() -> Secrets {
    [("API_KEY", SecretValue::new(SECRET))]
        .into_iter()
        .collect()
}

/// Egress to the upstream only, with the allowance tests need for 127.0.0.1.
fn env_for(addr: SocketAddr) -> ScriptEnv {
    let mut policy = EgressPolicy::new([format!("127.0.0.1:{}", addr.port())])
        .unwrap()
        .allow_network("127.0.0.1/32")
        .unwrap();
    policy.max_response_bytes = 64 << 10;
    ScriptEnv::new(EgressClient::new(policy).unwrap(), secrets())
}

struct Harness {
    sandbox: Sandbox,
    tenant: TenantGate,
    env: ScriptEnv,
    addr: SocketAddr,
}

async fn harness() -> Harness {
    harness_with(config()).await
}

/// A longer CPU limit, for tests that time how long a spinning script holds
/// its slot: the margins then stay wide on a loaded machine.
fn slow_config() -> SandboxConfig {
    SandboxConfig {
        cpu_time_limit: Duration::from_secs(1),
        ..config()
    }
}

async fn harness_with(config: SandboxConfig) -> Harness {
    let addr = upstream().await;
    Harness {
        sandbox: Sandbox::new(config).unwrap(),
        tenant: TenantGate::new(4),
        env: env_for(addr),
        addr,
    }
}

impl Harness {
    /// Runs `source` with `{{ADDR}}` replaced by the upstream's address.
    async fn run(&self, source: &str, args: Value) -> Result<Value, Error> {
        self.run_in(source, args, &self.env).await
    }

    async fn run_in(&self, source: &str, args: Value, env: &ScriptEnv) -> Result<Value, Error> {
        let source = source.replace("{{ADDR}}", &self.addr.to_string());
        let script = Script::new(source)?;
        let output = self.sandbox.call(&self.tenant, &script, &args, env).await?;
        Ok(output.value)
    }

    /// The sandbox still answers an ordinary call correctly.
    async fn still_serving(&self) {
        let value = self
            .run(
                "export default (a) => ({ sum: a.x + a.y })",
                json!({ "x": 2, "y": 3 }),
            )
            .await
            .unwrap();
        assert_eq!(value, json!({ "sum": 5 }));
    }

    /// `source` must fail as `expected` says, and the sandbox keep serving.
    async fn escape(&self, source: &str, expected: impl Fn(&Error) -> bool) {
        let result = self.run(source, json!({})).await;
        match &result {
            Err(error) if expected(error) => {}
            other => panic!("unexpected outcome for\n{source}\n=> {other:?}"),
        }
        let message = result.unwrap_err().to_string();
        assert!(
            !message.contains(SECRET),
            "error leaks the secret: {message}"
        );
        self.still_serving().await;
    }
}

fn script_error(fragment: &'static str) -> impl Fn(&Error) -> bool {
    move |e| matches!(e, Error::Script { message } if message.contains(fragment))
}

fn denied(e: &Error) -> bool {
    matches!(e, Error::EgressDenied { .. })
}

// ---------------------------------------------------------------------------
// The script contract
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_async_and_string_results() {
    let h = harness().await;
    let cases = [
        (
            "export default (a) => a.n * 2",
            json!({ "n": 21 }),
            json!(42),
        ),
        (
            "export default async (a) => { await null; return [a.n, 'x']; }",
            json!({ "n": 1 }),
            json!([1, "x"]),
        ),
        (
            "export default function (a) { return `hi ${a.name}`; }",
            json!({ "name": "Ada" }),
            json!("hi Ada"),
        ),
        ("export default () => undefined", json!({}), Value::Null),
        (
            "const k = 3; export default async function (a) { return { k }; }",
            json!({}),
            json!({ "k": 3 }),
        ),
        (
            "export default () => new Date(0).toISOString()",
            json!({}),
            json!("1970-01-01T00:00:00.000Z"),
        ),
        (
            "export default () => [...new Set([1, 1, 2])].concat([...'ab'.matchAll(/./g)].length)",
            json!({}),
            json!([1, 2, 2]),
        ),
    ];
    for (source, args, expected) in cases {
        assert_eq!(h.run(source, args).await.unwrap(), expected, "{source}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_output_is_collected() {
    let h = harness().await;
    let script = Script::new(
        "export default () => { console.log('a', { b: 1 }, 2); console.warn('w'); return 1; }",
    )
    .unwrap();
    let output = h
        .sandbox
        .call(&h.tenant, &script, &json!({}), &h.env)
        .await
        .unwrap();
    assert_eq!(
        output.logs,
        vec!["a {\"b\":1} 2".to_owned(), "[warn] w".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_errors_are_typed() {
    let h = harness().await;
    let err = h
        .run(
            "export default () => { throw new TypeError('bad input'); }",
            json!({}),
        )
        .await;
    assert!(
        matches!(err, Err(Error::Script { ref message }) if message == "TypeError: bad input"),
        "{err:?}"
    );
    let err = h
        .run(
            "export default async () => { await null; throw new Error('late'); }",
            json!({}),
        )
        .await;
    assert!(
        matches!(err, Err(Error::Script { ref message }) if message == "Error: late"),
        "{err:?}"
    );
    let err = h.run("export default () => 10n", json!({})).await;
    assert!(matches!(err, Err(Error::Script { .. })), "{err:?}");
    let err = h.run("export default () => () => 1", json!({})).await;
    assert!(matches!(err, Err(Error::InvalidOutput { .. })), "{err:?}");
    h.still_serving().await;
}

#[test]
fn the_check_bounds_the_time_a_top_level_may_take() {
    // The check runs on its caller's thread (a Host's deploy): a module whose
    // top level spins is refused within the check's own limit, not the 2 s a
    // call may take; a top level that does a little work is fine.
    for source in [
        "for (;;) {}\nexport default () => 1;",
        "while (true) { [1, 2, 3].map((x) => x * 2); }\nexport default () => 1;",
    ] {
        let started = Instant::now();
        let err = bmm_runtime::check_script(source).unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(err, Error::TopLevelTooSlow { limit } if limit == bmm_runtime::CHECK_TIME_LIMIT),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("inside the default export"),
            "{err}"
        );
        assert!(took < Duration::from_millis(500), "{source}: {took:?}");
    }
    bmm_runtime::check_script(
        "const table = Array.from({ length: 1000 }, (_, i) => i * i);\nexport default (a) => table[a.i];",
    )
    .unwrap();
}

#[test]
fn compile_check_reports_line_and_column() {
    let err =
        bmm_runtime::check_script("export default function (a) {\n  return a +;\n}").unwrap_err();
    match err {
        Error::Compile {
            message,
            line,
            column,
        } => {
            assert!(message.starts_with("SyntaxError"), "{message}");
            assert_eq!(line, Some(2));
            assert!(column.is_some());
        }
        other => panic!("{other:?}"),
    }
    let err = bmm_runtime::check_script("export const x = 1;").unwrap_err();
    assert!(
        matches!(err, Error::MissingEntryPoint { ref found } if found == "undefined"),
        "{err:?}"
    );
    let err = bmm_runtime::check_script("export default 42;").unwrap_err();
    assert!(matches!(err, Error::MissingEntryPoint { .. }), "{err:?}");
    // Early errors (not just the grammar) are caught too.
    let err = bmm_runtime::check_script("'use strict'; let a; let a; export default () => 1;")
        .unwrap_err();
    assert!(
        matches!(err, Error::Compile { line: Some(1), .. }),
        "{err:?}"
    );
    bmm_runtime::check_script("export default async function (args) { return args; }").unwrap();
}

// ---------------------------------------------------------------------------
// fetch
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_get_json_and_status() {
    let h = harness().await;
    let source = r#"export default async function () {
        const res = await fetch("http://{{ADDR}}/items");
        const data = await res.json();
        const missing = await fetch("http://{{ADDR}}/status/404");
        return { status: res.status, ok: res.ok, type: res.headers["content-type"],
                 names: data.items.map((i) => i.name),
                 missing: [missing.status, missing.ok, missing.statusText, await missing.text()] };
    }"#;
    let value = h.run(source, json!({})).await.unwrap();
    assert_eq!(
        value,
        json!({ "status": 200, "ok": true, "type": "application/json", "names": ["one", "two"],
                "missing": [404, false, "Not Found", "status body"] })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_post_with_query_headers_and_json_body() {
    let h = harness().await;
    let source = r#"export default async function (a) {
        const res = await fetch("http://{{ADDR}}/echo", {
            method: "post", headers: { "X-Trace": "t1", "X-Count": 3 },
            query: { q: a.q, page: 2, flag: true }, body: { name: a.q },
        });
        return await res.json();
    }"#;
    let value = h.run(source, json!({ "q": "a b&c=d" })).await.unwrap();
    assert_eq!(value["method"], "POST");
    assert_eq!(value["query"], "q=a+b%26c%3Dd&page=2&flag=true");
    assert_eq!(value["headers"]["x-trace"], "t1");
    assert_eq!(value["headers"]["x-count"], "3");
    assert_eq!(value["headers"]["content-type"], "application/json");
    assert_eq!(value["body"], r#"{"name":"a b&c=d"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_the_upstream_but_never_the_script() {
    let h = harness().await;
    let source = r#"export default async function () {
        const res = await fetch("http://{{ADDR}}/echo", {
            headers: { "X-Api-Key": { secret: "API_KEY" } }, query: { key: { secret: "API_KEY" } },
        });
        const text = await res.text();
        return { text, url: res.url, echoed: res.headers["x-echo-key"], json: await res.json() };
    }"#;
    let value = h.run(source, json!({})).await.unwrap();
    let shown = value.to_string();
    assert!(
        !shown.contains(SECRET),
        "secret reached the script: {shown}"
    );
    // The upstream did receive it: the echo holds the redaction marker where it was.
    assert_eq!(value["json"]["headers"]["x-api-key"], "[redacted]");
    assert_eq!(value["json"]["query"], "key=[redacted]");
    assert_eq!(value["echoed"], "[redacted]");
    assert!(value["url"].as_str().unwrap().ends_with("key=[redacted]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_failures_reject_catchably() {
    let h = harness().await;
    let source = r#"export default async function () {
        const out = [];
        for (const path of ["/big"]) {
            try { await fetch(`http://{{ADDR}}${path}`); out.push("no error"); }
            catch (e) { out.push(e.message); }
        }
        return out;
    }"#;
    let value = h.run(source, json!({})).await.unwrap();
    assert_eq!(value, json!(["fetch failed: response exceeds 65536 bytes"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_fetch_arguments_are_type_errors() {
    let h = harness().await;
    let cases = [
        "fetch(42)",
        "fetch('not a url')",
        "fetch('http://{{ADDR}}/echo', 5)",
        "fetch('http://{{ADDR}}/echo', { headers: { 'bad name': 'x' } })",
        "fetch('http://{{ADDR}}/echo', { headers: { 'X-A': 'a\\r\\nX-Injected: 1' } })",
        "fetch('http://{{ADDR}}/echo', { query: { a: [1] } })",
        "fetch('http://{{ADDR}}/echo', { method: 'GE T' })",
    ];
    for call in cases {
        let source = format!(
            "export default async () => {{ try {{ await {call}; return 'sent'; }} catch (e) {{ return e.name; }} }}"
        );
        assert_eq!(
            h.run(&source, json!({})).await.unwrap(),
            json!("TypeError"),
            "{call}"
        );
    }
}

// ---------------------------------------------------------------------------
// Sandbox escape suite
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_filesystem() {
    let h = harness().await;
    h.escape(
        "export default async () => (await import('fs')).readFileSync('/etc/passwd', 'utf8')",
        script_error("could not load module"),
    )
    .await;
    h.escape(
        "export default async () => (await import('/etc/passwd'))",
        script_error("could not load module"),
    )
    .await;
    h.escape(
        "export default () => std.loadFile('/etc/passwd')",
        script_error("std is not defined"),
    )
    .await;
    h.escape(
        "export default () => require('fs')",
        script_error("require is not defined"),
    )
    .await;
    // A static import fails the compile-only check already.
    let err = Script::new("import * as os from 'os';\nexport default () => os.open('/etc/passwd')")
        .unwrap_err();
    assert!(
        matches!(err, Error::Script { ref message } if message.contains("could not load module")),
        "{err:?}"
    );
    // fetch cannot read files either.
    h.escape("export default () => fetch('file:///etc/passwd')", denied)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_environment_and_process() {
    let h = harness().await;
    h.escape(
        "export default () => process.env.HOME",
        script_error("process is not defined"),
    )
    .await;
    h.escape(
        "export default () => Deno.env.get('HOME')",
        script_error("Deno is not defined"),
    )
    .await;
    h.escape(
        "export default () => os.exec(['/bin/sh', '-c', 'id'])",
        script_error("os is not defined"),
    )
    .await;
    h.escape(
        "export default () => scriptArgs[0]",
        script_error("scriptArgs is not defined"),
    )
    .await;
    h.escape(
        "export default () => setTimeout(() => {}, 1)",
        script_error("setTimeout is not defined"),
    )
    .await;
    h.escape(
        "export default () => performance.now()",
        script_error("performance is not defined"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_globals_and_code_generation() {
    let h = harness().await;
    let names = h
        .run(
            "export default () => Object.getOwnPropertyNames(globalThis)",
            json!({}),
        )
        .await
        .unwrap();
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for forbidden in [
        "eval",
        "require",
        "process",
        "os",
        "std",
        "print",
        "scriptArgs",
        "Deno",
        "Bun",
        "setTimeout",
        "setInterval",
        "performance",
        "XMLHttpRequest",
        "WebSocket",
        "WeakRef",
        "FinalizationRegistry",
        "__loadScript",
        "gc",
    ] {
        assert!(!names.contains(&forbidden), "global {forbidden} is present");
    }
    assert!(names.contains(&"fetch") && names.contains(&"console"));
    // The replacement throws when called and is not a constructor at all.
    let no_codegen = |e: &Error| {
        matches!(e, Error::Script { message }
            if message == "TypeError: code generation from strings is disabled"
                || message == "TypeError: not a constructor")
    };
    for attempt in [
        "Function('return 1')()",
        "(function () {}).constructor('return 1')()",
        "(async function () {}).constructor('return 1')()",
        "(function* () {}).constructor('yield 1')().next()",
        "(async function* () {}).constructor('yield 1')()",
        "Reflect.construct(Object.getPrototypeOf(function () {}).constructor, ['return 1'])()",
        "(() => 1).constructor.call(null, 'return 1')()",
    ] {
        h.escape(&format!("export default () => {attempt}"), &no_codegen)
            .await;
    }
    h.escape(
        "export default () => new Function('return 1')()",
        script_error("TypeError: not a constructor"),
    )
    .await;
    h.escape(
        "export default () => eval('1')",
        script_error("eval is not defined"),
    )
    .await;
    h.escape(
        "export default () => globalThis['ev' + 'al']('1')",
        script_error("not a function"),
    )
    .await;
    // Removing the replacement does not uncover the original: the lookup falls
    // through to `Object`, which makes a wrapper object, not code.
    h.escape(
        "export default () => { delete Function.prototype.constructor; return (function () {}).constructor('return 1')(); }",
        script_error("TypeError: not a function"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_prototype_pollution_across_calls_and_tenants() {
    let h = harness().await;
    let pollute = r#"export default () => {
        Object.prototype.polluted = "yes";
        Array.prototype.map = () => "hijacked";
        JSON.parse = () => "hijacked";
        globalThis.fetch = () => "hijacked";
        globalThis.leak = "from call one";
        return "done";
    }"#;
    let probe = r#"export default () => ({
        polluted: ({}).polluted ?? null, map: [1].map((x) => x + 1),
        parse: JSON.parse("[1]"), fetch: typeof fetch("http://{{ADDR}}/items").then,
        leak: globalThis.leak ?? null,
    })"#;
    let clean =
        json!({ "polluted": null, "map": [2], "parse": [1], "fetch": "function", "leak": null });
    // The first call of a script runs on a fresh engine, where these writes
    // succeed; the engine is dropped with them.
    assert_eq!(h.run(pollute, json!({})).await.unwrap(), json!("done"));
    assert_eq!(h.run(probe, json!({})).await.unwrap(), clean);
    // Another tenant on the same pool sees a clean world too.
    let other = TenantGate::new(1);
    let script = Script::new(probe.replace("{{ADDR}}", &h.addr.to_string())).unwrap();
    let output = h
        .sandbox
        .call(&other, &script, &json!({}), &h.env)
        .await
        .unwrap();
    assert_eq!(output.value, clean);
}

/// Calls one `Script` (one source, one tenant) `times` times, so that after
/// its first calls on each worker it runs on a reused, hardened engine.
async fn repeat(
    h: &Harness,
    source: &str,
    times: usize,
    args: impl Fn(usize) -> Value,
) -> Vec<ScriptOutput> {
    let script = Script::new(source.replace("{{ADDR}}", &h.addr.to_string())).unwrap();
    let mut outputs = Vec::new();
    for i in 0..times {
        let output = h
            .sandbox
            .call(&h.tenant, &script, &args(i), &h.env)
            .await
            .unwrap();
        outputs.push(output);
    }
    outputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_state_across_calls_of_one_script() {
    let h = harness().await;
    // Every write a call could leave for the next one, tried on each call;
    // what the call found on arrival must always be the clean world.
    let probe = r#"let calls = 0;
    export default (args) => {
        calls += 1;
        const found = {
            calls, polluted: ({}).polluted ?? null, leak: globalThis.leak ?? null,
            map: [1].map((x) => x + 1), parse: JSON.parse("[1]"),
            stash: Array.prototype.map.stash ?? null,
            iterator: [...[7]], symbol: Symbol.for("bmm").description,
            frozen: Object.isFrozen(Object.prototype),
        };
        const attempts = [
            () => { Object.prototype.polluted = args.n; },
            () => { Array.prototype.map = () => "hijacked"; },
            () => { JSON.parse = () => "hijacked"; },
            () => { globalThis.leak = args.n; },
            () => { Array.prototype.map.stash = args.n; },
            () => { Object.getPrototypeOf([][Symbol.iterator]()).next = () => ({ done: true }); },
            () => { Object.defineProperty(globalThis, "leak", { value: args.n }); },
            () => { delete Array.prototype.map; },
            () => { Object.setPrototypeOf(Array.prototype, null); },
        ];
        for (const attempt of attempts) {
            try { attempt(); } catch (e) { if (!(e instanceof TypeError)) throw e; }
        }
        return found;
    }"#;
    let outputs = repeat(&h, probe, 12, |i| json!({ "n": i })).await;
    let mut reused = 0;
    for output in &outputs {
        let mut found = output.value.clone();
        if found["frozen"] == json!(true) {
            reused += 1;
        }
        found.as_object_mut().unwrap().remove("frozen");
        assert_eq!(
            found,
            json!({ "calls": 1, "polluted": null, "leak": null, "map": [2], "parse": [1],
                    "stash": null, "iterator": [7], "symbol": "bmm" })
        );
    }
    // The calls after the first two on each worker ran on warm engines.
    assert!(
        reused >= 8,
        "only {reused} of 12 calls ran on a warm engine"
    );
    h.still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_left_behind_never_reaches_a_later_call() {
    let h = harness().await;
    // A job queued after the result and a fetch never awaited: either could
    // run during a later call on the same engine and write into its logs.
    let source = r#"export default (args) => {
        Promise.resolve().then(() => console.log("late from call " + args.n));
        if (args.n % 2 === 0) fetch("http://{{ADDR}}/slow");
        console.log("call " + args.n);
        return args.n;
    }"#;
    let outputs = repeat(&h, source, 10, |i| json!({ "n": i })).await;
    for (i, output) in outputs.iter().enumerate() {
        assert_eq!(output.value, json!(i));
        assert_eq!(output.logs, vec![format!("call {i}")]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_engines_are_replaced_before_old_modules_fill_them() {
    // Every call's module stays in its engine; with a big script and a small
    // memory limit, an engine that were never replaced would run out.
    let h = harness_with(SandboxConfig {
        memory_limit: 4 << 20,
        ..config()
    })
    .await;
    let table: Vec<String> = (0..2000).map(|i| format!("k{i}: {i}")).collect();
    let source = format!(
        "const table = {{ {} }};\nexport default (args) => table['k' + args.n];",
        table.join(", ")
    );
    let outputs = repeat(&h, &source, 400, |i| json!({ "n": i })).await;
    for (i, output) in outputs.iter().enumerate() {
        assert_eq!(output.value, json!(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_scripts_work_on_hardened_engines() {
    let h = harness().await;
    // Assignments that shadow a frozen built-in's property on an object of
    // the script's own (the "override mistake") still work.
    let source = r#"class Custom extends Error {}
    export default async (args) => {
        const error = new Custom("boom");
        error.name = "CustomError";
        error.message = "changed";
        const object = { a: 1 };
        object.toString = () => "custom";
        object.valueOf = () => 41;
        function Point(x) { this.x = x; }
        Point.prototype.toString = function () { return "P" + this.x; };
        const response = await fetch("http://{{ADDR}}/items");
        const items = await response.json();
        const map = new Map([[1, "one"]]);
        return {
            error: String(error), object: String(object), sum: object + 1,
            point: String(new Point(args.n)), items: JSON.stringify(items).length > 2,
            map: [...map.entries()], date: typeof Date.now(), regex: /b+/.exec("abbc")[0],
            sorted: [3, 1, 2].sort(), json: JSON.stringify({ x: [1] }),
        };
    }"#;
    let outputs = repeat(&h, source, 8, |i| json!({ "n": i })).await;
    for (i, output) in outputs.iter().enumerate() {
        assert_eq!(
            output.value,
            json!({ "error": "CustomError: changed", "object": "custom", "sum": 42,
                    "point": format!("P{i}"), "items": true, "map": [[1, "one"]],
                    "date": "number", "regex": "bb", "sorted": [1, 2, 3], "json": "{\"x\":[1]}" })
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_reading_secrets() {
    let h = harness().await;
    // Unknown secrets end the call; catching does not help.
    h.escape(
        "export default async () => { try { await fetch('http://{{ADDR}}/echo', { headers: { a: { secret: 'OTHER' } } }); } catch (e) {} return 'caught'; }",
        |e| matches!(e, Error::UnknownSecret { name } if name == "OTHER"),
    )
    .await;
    // A secret reference in the body is sent as the literal object, not the value.
    let value = h
        .run(
            "export default async () => (await (await fetch('http://{{ADDR}}/echo', { method: 'POST', body: { secret: 'API_KEY' } })).json()).body",
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(value, json!(r#"{"secret":"API_KEY"}"#));
    // No global, argument or error exposes it.
    let value = h
        .run(
            r#"export default async () => {
                let found = [];
                for (const k of Object.getOwnPropertyNames(globalThis)) {
                    try { if (JSON.stringify(globalThis[k]).includes("sk-test")) found.push(k); } catch (e) {}
                }
                return found;
            }"#,
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(value, json!([]));
    // Debug output of the environment names secrets, never their values.
    assert!(!format!("{:?}", h.env).contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_ssrf_to_forbidden_ranges() {
    let h = harness().await;
    let targets = [
        "127.0.0.1",
        "127.0.0.2",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "[::1]",
        "[fc00::1]",
        "[fd00:ec2::254]",
        "[fe80::1]",
        "[::]",
        "[::ffff:127.0.0.1]",
        "[::ffff:169.254.169.254]",
        "[64:ff9b::a9fe:a9fe]",
        "[2002:7f00:1::]",
    ];
    // Every target is in the allowlist, so only the address check can refuse it.
    let policy = EgressPolicy::new(targets.iter().map(|t| format!("{t}:80"))).unwrap();
    let env = ScriptEnv::new(EgressClient::new(policy).unwrap(), secrets());
    for target in targets {
        let source = format!("export default () => fetch('http://{target}:80/latest/meta-data/')");
        let err = h.run_in(&source, json!({}), &env).await.unwrap_err();
        assert!(
            matches!(&err, Error::EgressDenied { reason, .. } if reason.contains("address")),
            "{target}: {err:?}"
        );
    }
    // Hosts outside the allowlist, other schemes and credentials in the URL.
    for url in [
        "http://example.com/",
        "http://127.0.0.1.nip.io/",
        "http://user:pw@{{ADDR}}/echo",
        "ftp://{{ADDR}}/",
    ] {
        h.escape(&format!("export default () => fetch('{url}')"), denied)
            .await;
    }
    // Only the allowed port is reachable on an allowed host.
    h.escape("export default () => fetch('http://127.0.0.1:22/')", denied)
        .await;
    h.still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_names_resolving_to_loopback() {
    let h = harness().await;
    let port = h.addr.port();
    // `localhost` is allowlisted but resolves to loopback without an allowance:
    // the resolver refuses it, at the address that would be connected to.
    let policy = EgressPolicy::new([format!("localhost:{port}")]).unwrap();
    let env = ScriptEnv::new(EgressClient::new(policy).unwrap(), secrets());
    let source = format!("export default () => fetch('http://localhost:{port}/echo')");
    let err = h.run_in(&source, json!({}), &env).await.unwrap_err();
    assert!(
        matches!(&err, Error::EgressDenied { reason, .. } if reason.contains("loopback")),
        "{err:?}"
    );
    // With the allowance the same name works, so the refusal above was the address check.
    let policy = EgressPolicy::new([format!("localhost:{port}")])
        .unwrap()
        .allow_network("127.0.0.1/32")
        .unwrap()
        .allow_network("::1/128")
        .unwrap();
    let env = ScriptEnv::new(EgressClient::new(policy).unwrap(), secrets());
    let source =
        format!("export default async () => (await fetch('http://localhost:{port}/items')).status");
    assert_eq!(
        h.run_in(&source, json!({}), &env).await.unwrap(),
        json!(200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_ssrf_via_redirect() {
    let h = harness().await;
    // Out of the allowlist.
    h.escape(
        "export default () => fetch('http://{{ADDR}}/redirect?to=http://169.254.169.254/latest/meta-data/')",
        |e| matches!(e, Error::EgressDenied { host, .. } if host == "169.254.169.254"),
    )
    .await;
    // Into the allowlist but to a forbidden address.
    let port = h.addr.port();
    let policy = EgressPolicy::new([format!("127.0.0.1:{port}"), "10.0.0.1".to_owned()])
        .unwrap()
        .allow_network("127.0.0.1/32")
        .unwrap();
    let env = ScriptEnv::new(EgressClient::new(policy).unwrap(), secrets());
    let source = format!(
        "export default () => fetch('http://127.0.0.1:{port}/redirect?to=http://10.0.0.1/')"
    );
    let err = h.run_in(&source, json!({}), &env).await.unwrap_err();
    assert!(
        matches!(&err, Error::EgressDenied { reason, .. } if reason.contains("private")),
        "{err:?}"
    );
    // Redirect loops end.
    h.escape("export default () => fetch('http://{{ADDR}}/loop')", |e| {
        matches!(e, Error::EgressDenied { reason, .. } if reason.contains("too many redirects"))
    })
    .await;
    // Redirects inside the allowlist are followed.
    let value = h
        .run(
            "export default async () => (await fetch('http://{{ADDR}}/redirect?to=/items')).url",
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(value, json!(format!("http://{}/items", h.addr)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_to_another_origin_drops_secret_headers() {
    let h = harness().await;
    let port = h.addr.port();
    let policy = EgressPolicy::new([format!("127.0.0.1:{port}"), format!("localhost:{port}")])
        .unwrap()
        .allow_network("127.0.0.0/8")
        .unwrap()
        .allow_network("::1/128")
        .unwrap();
    let env = ScriptEnv::new(EgressClient::new(policy).unwrap(), secrets());
    let source = format!(
        "export default async () => (await (await fetch('http://127.0.0.1:{port}/redirect?to=http://localhost:{port}/echo', \
         {{ headers: {{ 'X-Api-Key': {{ secret: 'API_KEY' }}, 'X-Plain': 'p' }} }})).json()).headers"
    );
    let headers = h.run_in(&source, json!({}), &env).await.unwrap();
    assert_eq!(headers.get("x-api-key"), None, "{headers}");
    assert_eq!(headers.get("x-plain"), None, "{headers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_policy_errors_cannot_be_caught() {
    let h = harness().await;
    h.escape(
        "export default async () => { try { await fetch('http://example.com/'); } catch (e) {} return 'caught'; }",
        denied,
    )
    .await;
    h.escape(
        "export default async () => { for (let i = 0; i < 10; i++) { try { await fetch('http://{{ADDR}}/items'); } catch (e) {} } return 'done'; }",
        |e| matches!(e, Error::TooManyFetches { limit: 4 }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_infinite_loops() {
    let h = harness().await;
    let cpu = |e: &Error| matches!(e, Error::CpuTimeExceeded { .. });
    let started = Instant::now();
    h.escape("export default () => { for (;;) {} }", cpu).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    h.escape(
        "export default () => { try { for (;;) {} } catch (e) { return 'escaped'; } }",
        cpu,
    )
    .await;
    h.escape(
        "export default async () => { await null; while (true) {} }",
        cpu,
    )
    .await;
    // A spinning top level is refused by the check, before any call.
    h.escape("for (;;) {}\nexport default () => 1", |e| {
        matches!(e, Error::TopLevelTooSlow { .. })
    })
    .await;
    h.escape(
        "export default () => { const s = []; for (;;) { s.sort(); } }",
        cpu,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_memory_bombs() {
    let h = harness().await;
    let memory = |e: &Error| matches!(e, Error::MemoryExceeded { .. });
    h.escape(
        "export default () => { const a = []; for (;;) a.push(new Array(1e5).fill(1)); }",
        memory,
    )
    .await;
    h.escape(
        "export default () => { let s = 'x'; for (;;) s += s; }",
        memory,
    )
    .await;
    h.escape(
        "export default () => { const m = new Map(); for (let i = 0; ; i++) m.set(i, { i, pad: new Array(1000).fill(i) }); }",
        memory,
    )
    .await;
    h.escape("export default () => new ArrayBuffer(1 << 30)", |e| {
        matches!(e, Error::MemoryExceeded { .. } | Error::Script { .. })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_giant_output_and_deep_recursion() {
    let h = harness().await;
    let too_large = |e: &Error| matches!(e, Error::OutputTooLarge { limit } if *limit == 64 << 10);
    h.escape("export default () => 'x'.repeat(1 << 20)", too_large)
        .await;
    h.escape(
        "export default () => Array.from({ length: 1e5 }, (_, i) => i)",
        too_large,
    )
    .await;
    let stack = |e: &Error| matches!(e, Error::StackOverflow);
    h.escape(
        "export default () => { const f = (n) => f(n + 1) + 1; return f(0); }",
        stack,
    )
    .await;
    h.escape(
        "export default () => { let o = {}; const root = o; for (let i = 0; i < 1e5; i++) { o.a = {}; o = o.a; } return root; }",
        |e| matches!(e, Error::StackOverflow | Error::InvalidOutput { .. }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_promises_that_never_settle() {
    let h = harness().await;
    h.escape("export default () => new Promise(() => {})", |e| {
        matches!(e, Error::NeverSettled)
    })
    .await;
    h.escape(
        "await new Promise(() => {});\nexport default () => 1",
        |e| matches!(e, Error::NeverSettled),
    )
    .await;
    // Pending on an upstream that answers too late: the wall-clock limit ends it.
    let started = Instant::now();
    h.escape(
        "export default async () => { await fetch('http://{{ADDR}}/slow'); return 'late'; }",
        |e| matches!(e, Error::WallTimeExceeded { .. }),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

/// Starts `count` calls of a script that spins forever, all through `gate`.
fn spin_calls(
    h: &Harness,
    gate: &TenantGate,
    count: usize,
) -> Vec<tokio::task::JoinHandle<Result<ScriptOutput, Error>>> {
    let spin = Script::new("export default () => { for (;;) {} }").unwrap();
    (0..count)
        .map(|_| {
            let (sandbox, gate, spin, env) =
                (h.sandbox.clone(), gate.clone(), spin.clone(), h.env.clone());
            tokio::spawn(async move { sandbox.call(&gate, &spin, &json!({}), &env).await })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_tenant_cannot_starve_another() {
    let h = harness_with(slow_config()).await;
    let hogs = spin_calls(&h, &TenantGate::new(1), 3);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The hog holds one worker at most; the other tenant gets the other one at once.
    let started = Instant::now();
    h.still_serving().await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    for hog in hogs {
        let result = hog.await.unwrap();
        assert!(
            matches!(result, Err(Error::CpuTimeExceeded { .. })),
            "{result:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_tenant_with_a_wide_gate_cannot_starve_another() {
    // A Host's default gate lets 32 calls of one server in: far more than
    // there are workers. A server flooding the pool with spinning calls may
    // queue no more than one call per worker, so another server's call waits
    // behind at most that many, not behind the whole flood.
    let h = harness_with(slow_config()).await;
    let hogs = spin_calls(&h, &TenantGate::new(32), 10);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    h.still_serving().await;
    // Two spinning calls run and at most two more wait: the call starts when
    // the second pair ends, at 2 s (CPU limit 1 s), not after all ten (5 s).
    assert!(
        started.elapsed() < Duration::from_millis(3_000),
        "{:?}",
        started.elapsed()
    );
    for hog in hogs {
        let result = hog.await.unwrap();
        assert!(
            matches!(
                result,
                Err(Error::CpuTimeExceeded { .. } | Error::Overloaded)
            ),
            "{result:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// EgressClient directly
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_client_caps_and_timeouts() {
    let addr = upstream().await;
    let mut policy = EgressPolicy::new([format!("127.0.0.1:{}", addr.port())])
        .unwrap()
        .allow_network("127.0.0.1/32")
        .unwrap();
    policy.max_request_bytes = 1024;
    policy.max_response_bytes = 1024;
    policy.timeout = Duration::from_millis(300);
    let client = EgressClient::new(policy).unwrap();
    let get = |path: &str| EgressRequest {
        method: reqwest::Method::GET,
        url: format!("http://{addr}{path}").parse().unwrap(),
        headers: reqwest::header::HeaderMap::new(),
        body: None,
    };

    let ok = client.send(get("/items")).await.unwrap();
    assert_eq!(ok.status, 200);
    assert!(String::from_utf8(ok.body).unwrap().contains("\"one\""));

    let err = client.send(get("/big")).await.unwrap_err();
    assert!(
        matches!(err, Error::ResponseTooLarge { limit: 1024 }),
        "{err:?}"
    );

    let mut large = get("/echo");
    large.method = reqwest::Method::POST;
    large.body = Some(vec![b'x'; 2048]);
    let err = client.send(large).await.unwrap_err();
    assert!(
        matches!(err, Error::RequestTooLarge { limit: 1024 }),
        "{err:?}"
    );

    let err = client.send(get("/slow")).await.unwrap_err();
    assert!(matches!(err, Error::UpstreamTimeout { .. }), "{err:?}");

    // A closed port is a transport error that names the host, not the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut policy = EgressPolicy::new([format!("127.0.0.1:{}", closed.port())])
        .unwrap()
        .allow_network("127.0.0.1/32")
        .unwrap();
    policy.connect_timeout = Duration::from_millis(500);
    let client = EgressClient::new(policy).unwrap();
    let mut request = get("/x");
    request.url = format!("http://{closed}/x?token={SECRET}").parse().unwrap();
    let err = client.send(request).await.unwrap_err();
    assert!(matches!(err, Error::Upstream { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(SECRET), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_call_stops_it_and_frees_its_slot() {
    let h = harness_with(slow_config()).await;
    let gate = TenantGate::new(1);
    let spin = Script::new("export default () => { for (;;) {} }").unwrap();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(50),
        h.sandbox.call(&gate, &spin, &json!({}), &h.env),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "the spinning call should still be running"
    );
    // The tenant's only slot comes back long before the 1 s CPU limit would
    // have ended the abandoned call: it was stopped when its caller went away.
    let started = Instant::now();
    let quick = Script::new("export default () => 'ok'").unwrap();
    let output = h
        .sandbox
        .call(&gate, &quick, &json!({}), &h.env)
        .await
        .unwrap();
    assert_eq!(output.value, json!("ok"));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn scripts_do_not_block_the_async_runtime() {
    // One async thread only: if scripts ran on it, nothing else could run
    // while one spins.
    let sandbox = Sandbox::new(slow_config()).unwrap();
    let spin = Script::new("export default () => { for (;;) {} }").unwrap();
    let gate = TenantGate::new(1);
    let call = tokio::spawn(async move {
        sandbox
            .call(&gate, &spin, &json!({}), &ScriptEnv::isolated())
            .await
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert!(!call.is_finished(), "the script should still be spinning");
    let result = call.await.unwrap();
    assert!(
        matches!(result, Err(Error::CpuTimeExceeded { .. })),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_engine_level_stalls() {
    let h = harness().await;
    // Catastrophic regex backtracking is interrupted like any other loop.
    h.escape(
        "export default () => /^(a+)+$/.test('a'.repeat(64) + 'b')",
        |e| matches!(e, Error::CpuTimeExceeded { .. }),
    )
    .await;
    // A worker thread can never be parked by Atomics.wait.
    h.escape(
        "export default () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)",
        script_error("TypeError"),
    )
    .await;
    // Engine size caps on strings and arrays count as memory exhaustion.
    h.escape("export default () => 'x'.repeat(2 ** 30).length", |e| {
        matches!(e, Error::MemoryExceeded { .. })
    })
    .await;
    // Deeply nested input to the JSON parser hits the stack limit, not the C stack.
    h.escape("export default () => JSON.parse('['.repeat(1e6))", |e| {
        matches!(e, Error::StackOverflow | Error::Script { .. })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_worker_queues_one_call_behind_the_one_it_runs() {
    let h = harness_with(SandboxConfig {
        workers: 1,
        queue_timeout: Duration::from_millis(200),
        ..slow_config()
    })
    .await;
    let h = std::sync::Arc::new(h);
    let spin = "export default () => { const end = Date.now() + 700; while (Date.now() < end) {} return 'slow'; }";
    let running = tokio::spawn({
        let h = std::sync::Arc::clone(&h);
        async move { h.run(spin, json!({})).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The worker took the first call off the queue: the second waits there…
    let queued = tokio::spawn({
        let h = std::sync::Arc::clone(&h);
        async move {
            let started = Instant::now();
            (
                h.run("export default () => 'next'", json!({})).await,
                started.elapsed(),
            )
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // …and a third finds no place in the queue within its queue timeout.
    let refused = h.run("export default () => 'third'", json!({})).await;
    assert!(matches!(refused, Err(Error::Overloaded)), "{refused:?}");
    assert_eq!(running.await.unwrap().unwrap(), json!("slow"));
    let (next, waited) = queued.await.unwrap();
    // The queued call ran once the first ended, with its own limits intact.
    assert_eq!(next.unwrap(), json!("next"));
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    h.still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_reads_the_same_on_every_call() {
    // The first call on a worker runs the source on a fresh engine, the second
    // compiles it on a warm engine, and later ones load that engine's
    // compiled bytecode: the outcomes must not differ.
    let h = harness_with(SandboxConfig {
        workers: 1,
        ..config()
    })
    .await;
    let script = Script::new(
        "const table = { one: 1, two: 2 };\nexport default (a) => {\n  if (a.fail) {\n    null.boom;\n  }\n  return { n: table[a.key] ?? 0, text: `${a.key}!` };\n};",
    )
    .unwrap();
    let mut seen = Vec::new();
    for i in 0..12 {
        let args = if i % 2 == 0 {
            json!({ "key": "two" })
        } else {
            json!({ "fail": true })
        };
        let outcome = match h.sandbox.call(&h.tenant, &script, &args, &h.env).await {
            Ok(output) => output.value.to_string(),
            Err(error) => error.to_string(),
        };
        seen.push(outcome);
    }
    assert_eq!(seen[0], json!({ "n": 2, "text": "two!" }).to_string());
    assert!(
        seen[1].contains("TypeError") && seen[1].contains("boom"),
        "{}",
        seen[1]
    );
    for (i, outcome) in seen.iter().enumerate() {
        assert_eq!(outcome, &seen[i % 2], "call {i}");
    }
}
