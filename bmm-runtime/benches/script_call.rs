//! Run with `cargo bench -p bmm-runtime --bench script_call`: the latency of one
//! script call (fresh QuickJS runtime and context per call) through the sandbox pool.
//!
//! Prints p50 and p99 over a fixed number of calls (the issue's target is
//! p50 <= 0.25 ms), the p50 of the compile-only check and the throughput with
//! 32 calls in flight, then lets criterion measure the single call.

// A benchmark that cannot set up has nothing to measure: failing loudly is right.
#![allow(clippy::expect_used)]

use std::time::{Duration, Instant};

use bmm_runtime::{Sandbox, SandboxConfig, Script, ScriptEnv, TenantGate};
use criterion::Criterion;

const SCRIPT: &str = r#"export default function (args) {
  const words = args.text.split(" ");
  return { count: words.length, upper: words.map((w) => w.toUpperCase()) };
}"#;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let sandbox = runtime
        .block_on(async { Sandbox::new(SandboxConfig::default()) })
        .expect("sandbox");
    let script = Script::new(SCRIPT).expect("script compiles");
    let tenant = TenantGate::new(64);
    let env = ScriptEnv::isolated();
    let args = serde_json::json!({ "text": "the quick brown fox jumps over the lazy dog" });
    let call = || {
        runtime
            .block_on(sandbox.call(&tenant, &script, &args, &env))
            .expect("script call succeeds")
    };

    // Warm up, then measure individual calls for percentiles.
    for _ in 0..200 {
        call();
    }
    let mut samples: Vec<Duration> = (0..2000)
        .map(|_| {
            let start = Instant::now();
            call();
            start.elapsed()
        })
        .collect();
    samples.sort_unstable();
    let p50 = samples[samples.len() / 2];
    let p99 = samples[samples.len() * 99 / 100];
    println!(
        "script_call: p50 {:.3} ms, p99 {:.3} ms over {} calls (target p50 <= 0.25 ms)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        samples.len()
    );

    // The compile-only check, as the generator's checks run it (calling thread).
    let mut checks: Vec<Duration> = (0..2000)
        .map(|_| {
            let start = Instant::now();
            bmm_runtime::check_script(SCRIPT).expect("script compiles");
            start.elapsed()
        })
        .collect();
    checks.sort_unstable();
    println!(
        "check_script: p50 {:.3} ms over {} checks",
        checks[checks.len() / 2].as_secs_f64() * 1e3,
        checks.len()
    );

    // Throughput with many calls in flight: bounded by the worker pool.
    let in_flight = 32;
    let total = 8000;
    let start = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..in_flight {
            let (sandbox, script, tenant, env, args) = (
                sandbox.clone(),
                script.clone(),
                tenant.clone(),
                env.clone(),
                args.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for _ in 0..total / in_flight {
                    sandbox
                        .call(&tenant, &script, &args, &env)
                        .await
                        .expect("script call succeeds");
                }
            }));
        }
        for task in tasks {
            task.await.expect("task completes");
        }
    });
    let elapsed = start.elapsed();
    println!(
        "script_call throughput: {:.0} calls/s with {in_flight} in flight on {} workers",
        total as f64 / elapsed.as_secs_f64(),
        sandbox.config().workers
    );

    let mut criterion = Criterion::default().configure_from_args();
    criterion.bench_function("script_call_fresh_runtime", |b| b.iter(call));
    criterion.final_summary();
}
