//! Load script for the runtime over loopback: `tools/call` latency (p50, p99)
//! for a script tool and an http tool, calls per second with concurrency,
//! runner cold start, idle RSS of `bmm run`, and the RSS of one `Host` serving
//! 1,000 and 10,000 distinct specs.
//!
//! Run with `cargo bench -p bmm-server --bench load`. Every request goes to
//! 127.0.0.1; every loop is bounded in count and time. The figures are of
//! cargo's release build of `bmm`, or of the binary `BMM_BENCH_BINARY` names;
//! when `BMM_STATIC_BINARY` names the static binary container images carry
//! (`scripts/build-static`), its idle RSS is printed too.
//!
//! The load generator shares the machine's cores with the server, so it is
//! kept cheap, as wrk is: one thread, keep-alive HTTP/1.1 connections, each
//! request written from prepared bytes and each answer read by its
//! `Content-Length`. Every answer is still checked (status 200, a JSON-RPC
//! `result`, not a tool error). The local upstream of the http tool runs on a
//! thread of its own.

// A benchmark may stop on the first thing that goes wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const SEQUENTIAL_CALLS: usize = 2_000;
const CONCURRENCY: usize = 32;
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(5);
const COLD_STARTS: usize = 10;

fn main() {
    if let Some(count) = std::env::var("BMM_BENCH_HOST_SPECS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        host_child(count);
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let upstream = upstream();
    let spec = bench_spec(upstream);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.json");
    std::fs::write(&file, serde_json::to_vec(&spec).unwrap()).unwrap();

    let mut starts = Vec::with_capacity(COLD_STARTS);
    for _ in 0..COLD_STARTS {
        starts.push(cold_start(&file).await);
    }
    println!(
        "runner cold start (spawn to first tools/list): p50 {:.1} ms, max {:.1} ms over {COLD_STARTS} starts",
        ms(percentile(&starts, 50.0)),
        ms(*starts.iter().max().unwrap())
    );

    // The static binary container images carry (scripts/build-static), when
    // one is named, is measured idle as well.
    if let Ok(image_binary) = std::env::var("BMM_STATIC_BINARY") {
        let (mut child, addr) = spawn(std::path::Path::new(&image_binary), &file);
        let rss = idle_rss(&mut child, addr).await;
        println!("idle RSS of bmm run (1 spec), static image binary {image_binary}: {rss:.1} MiB");
        let _ = child.kill();
        let _ = child.wait();
    }
    let (mut child, addr) = spawn(&runner(), &file);
    let rss = idle_rss(&mut child, addr).await;
    println!("idle RSS of bmm run (1 spec): {rss:.1} MiB");
    let mut conn = Conn::open(addr).await;

    for (label, tool, args) in [
        (
            "tools/call add (script)",
            "add",
            Some(json!({"a": 1, "b": 2})),
        ),
        (
            "tools/call http_echo (http)",
            "http_echo",
            Some(json!({"q": "x"})),
        ),
        ("tools/list (no tool runs)", "list", None),
    ] {
        let request = prepare(addr, tool, args.as_ref());
        for _ in 0..100 {
            conn.call(&request).await;
        }
        let mut samples = Vec::with_capacity(SEQUENTIAL_CALLS);
        for _ in 0..SEQUENTIAL_CALLS {
            let started = Instant::now();
            conn.call(&request).await;
            samples.push(started.elapsed());
        }
        samples.sort();
        println!(
            "{label}: p50 {:.3} ms, p99 {:.3} ms over {SEQUENTIAL_CALLS} sequential calls",
            ms(percentile(&samples, 50.0)),
            ms(percentile(&samples, 99.0))
        );
    }

    for (label, tool, args) in [
        ("script tool", "add", Some(json!({"a": 1, "b": 2}))),
        ("http tool", "http_echo", Some(json!({"q": "x"}))),
        ("tools/list, no tool runs", "list", None),
    ] {
        let rate = throughput(addr, &prepare(addr, tool, args.as_ref())).await;
        println!(
            "throughput ({label}, {CONCURRENCY} concurrent clients, {}s): {rate:.0} calls/s",
            THROUGHPUT_WINDOW.as_secs()
        );
    }
    let _ = child.kill();
    let _ = child.wait();

    for count in [1_000, 10_000] {
        let (before, after, elapsed) = host_rss(count);
        println!(
            "Host with {count} specs: RSS {:.1} MiB (+{:.1} MiB over an empty host, {:.1} KiB per spec), deployed in {:.2} s",
            after as f64 / 1024.0,
            (after - before) as f64 / 1024.0,
            (after - before) as f64 / count as f64,
            elapsed.as_secs_f64()
        );
    }
}

/// Calls per second from `CONCURRENCY` connections over `THROUGHPUT_WINDOW`.
async fn throughput(addr: SocketAddr, request: &Arc<[u8]>) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + THROUGHPUT_WINDOW;
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (request, done) = (Arc::clone(request), Arc::clone(&done));
        let mut conn = Conn::open(addr).await;
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                conn.call(&request).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / THROUGHPUT_WINDOW.as_secs_f64()
}

/// Deploys `count` distinct specs into a fresh `Host` in a child process
/// (so each measurement starts clean) and returns RSS before and after, in KiB.
fn host_rss(count: usize) -> (u64, u64, Duration) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("BMM_BENCH_HOST_SPECS", count.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("host-rss "))
        .unwrap_or_else(|| panic!("{text}{}", String::from_utf8_lossy(&out.stderr)));
    let parts: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|p| p.parse().unwrap())
        .collect();
    (parts[0], parts[1], Duration::from_millis(parts[2]))
}

/// Child mode of [`host_rss`]: deploy `count` specs and print RSS before and after.
fn host_child(count: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let host = bmm_runtime::Host::new(bmm_runtime::HostConfig::default()).unwrap();
        let before = rss_kib(std::process::id());
        let started = Instant::now();
        for i in 0..count {
            let spec = json!({
                "bmm": "1", "name": format!("Tenant {i}"), "slug": format!("tenant-{i}"),
                "description": format!("Server number {i}."),
                "egress": [format!("api{i}.example.com")],
                "tools": [
                    {"name": "add", "description": format!("Adds two numbers for tenant {i}."),
                     "input_schema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]},
                     "implementation": {"kind": "script", "source": format!("export default (args) => ({{ sum: args.a + args.b + {i} }})")}},
                    {"name": "lookup", "description": "Looks an item up.",
                     "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
                     "implementation": {"kind": "http", "method": "GET", "url": format!("https://api{i}.example.com/items/{{{{args.id}}}}")}}
                ]
            });
            let spec = bmm_core::check(&spec, &bmm_core::CheckOptions::default()).unwrap();
            host.deploy(&spec, bmm_runtime::Secrets::new()).unwrap();
        }
        let elapsed = started.elapsed();
        let after = rss_kib(std::process::id());
        assert_eq!(host.list().len(), count);
        println!("host-rss {before} {after} {}", elapsed.as_millis());
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let mut v = sorted.to_vec();
    v.sort();
    let index = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[index]
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The `bmm` every figure but the image binary's idle RSS is taken from:
/// `BMM_BENCH_BINARY`, else cargo's build of this package.
fn runner() -> std::path::PathBuf {
    std::env::var_os("BMM_BENCH_BINARY")
        .map_or_else(|| env!("CARGO_BIN_EXE_bmm").into(), Into::into)
}

/// RSS in MiB of a just-started `bmm run` after one tools/list and a pause.
async fn idle_rss(child: &mut Child, addr: SocketAddr) -> f64 {
    Conn::open(addr)
        .await
        .call(&prepare(addr, "list", None))
        .await;
    std::thread::sleep(Duration::from_millis(300));
    rss_kib(child.id()) as f64 / 1024.0
}

fn spawn(binary: &std::path::Path, file: &std::path::Path) -> (Child, SocketAddr) {
    let mut child = Command::new(binary)
        .args([
            "run",
            "--spec",
            file.to_str().unwrap(),
            "--port",
            "0",
            "--allow-http",
            "--allow-network",
            "127.0.0.1/32",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("bmm run exited").unwrap();
        if let Some(addr) = line.strip_prefix("bmm: listening on ") {
            break addr.parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// Time from spawning `bmm run` to its first successful `tools/list`.
async fn cold_start(file: &std::path::Path) -> Duration {
    let started = Instant::now();
    let (mut child, addr) = spawn(&runner(), file);
    let mut conn = loop {
        if let Ok(stream) = tokio::net::TcpStream::connect(addr).await {
            break Conn::new(stream);
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "bmm run did not answer"
        );
    };
    conn.call(&prepare(addr, "list", None)).await;
    let elapsed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn request_body(tool: &str, args: Option<&Value>) -> Value {
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    match args {
        None => {
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}})
        }
        Some(args) => {
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args, "_meta": meta}})
        }
    }
}

/// A stateless (2026-07-28) request for `tool` (`list` for `tools/list`), as
/// the bytes to write.
fn prepare(addr: SocketAddr, tool: &str, args: Option<&Value>) -> Arc<[u8]> {
    let body = request_body(tool, args).to_string();
    let name = match args {
        Some(_) => format!("Mcp-Method: tools/call\r\nMcp-Name: {tool}\r\n"),
        None => "Mcp-Method: tools/list\r\n".to_owned(),
    };
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n{name}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
    .into()
}

/// One keep-alive HTTP/1.1 connection to the server.
struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Self {
        Self::new(tokio::net::TcpStream::connect(addr).await.unwrap())
    }

    fn new(stream: tokio::net::TcpStream) -> Self {
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends `request` and reads its answer; panics unless the call succeeded.
    async fn call(&mut self, request: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(request).await.unwrap();
        self.buf.clear();
        let (head_len, body_len) = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).unwrap();
                assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or_else(|| panic!("no Content-Length: {head}"));
                break (end + 4, length);
            }
            self.read_more().await;
        };
        while self.buf.len() < head_len + body_len {
            self.read_more().await;
        }
        let body = &self.buf[head_len..head_len + body_len];
        assert!(
            find(body, b"\"result\"").is_some() && find(body, b"\"isError\":true").is_none(),
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(
            self.buf.len(),
            head_len + body_len,
            "unexpected bytes after the answer"
        );
    }

    async fn read_more(&mut self) {
        use tokio::io::AsyncReadExt;
        let n = self.stream.read_buf(&mut self.buf).await.unwrap();
        assert!(n > 0, "the server closed the connection");
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

fn upstream() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().route(
                "/echo",
                axum::routing::get(|| async { axum::Json(json!({"ok": true})) }),
            );
            axum::serve(listener, app).await.unwrap();
        });
    });
    addr
}

fn bench_spec(upstream: SocketAddr) -> Value {
    json!({
        "bmm": "1", "name": "Bench", "slug": "bench", "description": "Benchmark server.",
        "egress": [upstream.to_string()],
        "tools": [
            {"name": "add", "description": "Adds two numbers.",
             "input_schema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]},
             "implementation": {"kind": "script", "source": "export default (args) => ({ sum: args.a + args.b })"}},
            {"name": "http_echo", "description": "Calls a local upstream.",
             "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
             "implementation": {"kind": "http", "method": "GET", "url": format!("http://{upstream}/echo"), "query": {"q": "{{args.q}}"}}}
        ]
    })
}
