//! Run with `cargo bench -p bmm-runtime --bench script_call`: the latency of one
//! script call through the sandbox pool, on warm engines (the default) and on a
//! fresh engine per call (`warm_engines: 0`).
//!
//! Prints, for each, p50 and p99 over a fixed number of calls (the issue's
//! target is p50 <= 0.25 ms) and the throughput with 32 calls in flight; then
//! the p50 of a longer (12 KiB) script's calls both ways, the compile-only
//! check and the cost of a script's first call on a worker; then lets
//! criterion measure the single warm call.

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
    let script = Script::new(SCRIPT).expect("script compiles");
    let env = ScriptEnv::isolated();
    let args = serde_json::json!({ "text": "the quick brown fox jumps over the lazy dog" });
    for (label, warm_engines) in [("fresh engine per call", 0), ("warm engines", 16)] {
        let config = SandboxConfig {
            warm_engines,
            ..SandboxConfig::default()
        };
        let sandbox = runtime
            .block_on(async { Sandbox::new(config) })
            .expect("sandbox");
        measure(&runtime, &sandbox, label, &script, &args, &env);
    }

    // A longer script, as generated tools often are: a warm engine parses it
    // once and loads the compiled bytecode on later calls.
    let long = Script::new(long_script()).expect("long script compiles");
    let long_args = serde_json::json!({ "k": 150, "a": 1, "b": 2 });
    for (label, warm_engines) in [("fresh engine per call", 0), ("warm engines", 16)] {
        let sandbox = runtime
            .block_on(async {
                Sandbox::new(SandboxConfig {
                    warm_engines,
                    ..SandboxConfig::default()
                })
            })
            .expect("sandbox");
        let tenant = TenantGate::new(64);
        let mut samples: Vec<Duration> = (0..400)
            .map(|_| {
                let start = Instant::now();
                runtime
                    .block_on(sandbox.call(&tenant, &long, &long_args, &env))
                    .expect("long script call succeeds");
                start.elapsed()
            })
            .skip(100)
            .collect();
        samples.sort_unstable();
        println!(
            "script_call, {} KiB script ({label}): p50 {:.3} ms over {} calls",
            long_script().len() / 1024,
            samples[samples.len() / 2].as_secs_f64() * 1e3,
            samples.len()
        );
    }

    let sandbox = runtime
        .block_on(async { Sandbox::new(SandboxConfig::default()) })
        .expect("sandbox");
    let tenant = TenantGate::new(64);
    let call = || {
        runtime
            .block_on(sandbox.call(&tenant, &script, &args, &env))
            .expect("script call succeeds")
    };

    // A script's first calls on a worker: a fresh engine, then the warm one
    // being built (each tenant is new, so nothing is warm yet).
    let workers = SandboxConfig::default().workers;
    let mut first = Vec::new();
    let mut building = Vec::new();
    for _ in 0..100 {
        let tenant = TenantGate::new(1);
        let single = runtime
            .block_on(async {
                Sandbox::new(SandboxConfig {
                    workers: 1,
                    ..SandboxConfig::default()
                })
            })
            .expect("sandbox");
        for samples in [&mut first, &mut building] {
            let start = Instant::now();
            runtime
                .block_on(single.call(&tenant, &script, &args, &env))
                .expect("script call succeeds");
            samples.push(start.elapsed());
        }
    }
    first.sort_unstable();
    building.sort_unstable();
    println!(
        "first call of a script on a worker: p50 {:.3} ms; second (builds the warm engine): p50 {:.3} ms ({workers} workers by default)",
        first[first.len() / 2].as_secs_f64() * 1e3,
        building[building.len() / 2].as_secs_f64() * 1e3,
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

    let mut criterion = Criterion::default().configure_from_args();
    criterion.bench_function("script_call_warm", |b| b.iter(call));
    criterion.final_summary();
}

/// A 200-branch tool of about 12 KiB.
fn long_script() -> String {
    let branches: String = (0..200)
        .map(|i| {
            format!("  if (args.k === {i}) {{ out.push({{ i: {i}, label: 'value {i}' }}); }}\n")
        })
        .collect();
    format!(
        "export default (args) => {{\n  const out = [];\n{branches}  return {{ sum: args.a + args.b, out }};\n}}"
    )
}

/// Percentiles of sequential calls, then throughput with 32 calls in flight.
fn measure(
    runtime: &tokio::runtime::Runtime,
    sandbox: &Sandbox,
    label: &str,
    script: &Script,
    args: &serde_json::Value,
    env: &ScriptEnv,
) {
    let tenant = TenantGate::new(64);
    let call = || {
        runtime
            .block_on(sandbox.call(&tenant, script, args, env))
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
        "script_call ({label}): p50 {:.3} ms, p99 {:.3} ms over {} calls (target p50 <= 0.25 ms)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        samples.len()
    );

    // Throughput with many calls in flight: bounded by the worker pool.
    let in_flight = 32;
    let total = 16_000;
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
        "script_call throughput ({label}): {:.0} calls/s with {in_flight} in flight on {} workers",
        total as f64 / elapsed.as_secs_f64(),
        sandbox.config().workers
    );
}
