//! The generator's pipeline without the model: validation, static checks,
//! the offline dry run of every tool and codegen of the deploy bundle, for a
//! 20-tool spec (half script tools, half http tools). Target: ≤ 20 ms.
//!
//! `cargo bench -p bmm-generator --bench pipeline`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bmm_generator::codegen::{BundleOptions, Renderer};
use bmm_generator::{CheckOptions, Checker};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

/// A spec with `n` tools, alternating script and http tools.
fn spec(n: usize) -> Value {
    let tools: Vec<Value> = (0..n)
        .map(|i| {
            let schema = json!({
                "type": "object",
                "properties": {
                    "value": {"type": "number", "description": "A number."},
                    "unit": {"type": "string", "enum": ["m", "km", "mi"]},
                    "label": {"type": "string", "minLength": 1}
                },
                "required": ["value", "unit", "label"],
                "additionalProperties": false
            });
            let implementation = if i % 2 == 0 {
                json!({"kind": "script", "source": format!(
                    "const F = {{ m: 1, km: 1000, mi: 1609.344 }};\nexport default function (args) {{\n  return {{ tool: {i}, value: args.value * F[args.unit], label: args.label.toUpperCase() }};\n}}\n"
                )})
            } else {
                json!({
                    "kind": "http",
                    "method": "GET",
                    "url": format!("https://api.example.com/v1/items/{{{{url args.label}}}}/{i}"),
                    "headers": {"Authorization": "Bearer {{secrets.API_TOKEN}}"},
                    "query": {"value": "{{args.value}}", "unit": "{{args.unit}}"},
                    "response": {"fields": ["id", "name"]}
                })
            };
            json!({
                "name": format!("tool_{i:02}"),
                "description": format!("Tool number {i}: converts a value and labels it."),
                "input_schema": schema,
                "annotations": {"read_only": true},
                "implementation": implementation
            })
        })
        .collect();
    json!({
        "bmm": "1",
        "name": "Twenty Tools",
        "slug": "twenty-tools",
        "description": "A spec with twenty tools, for the pipeline benchmark.",
        "version": "1.0.0",
        "egress": ["api.example.com"],
        "secrets": [{"name": "API_TOKEN", "description": "The API's token.", "required": true}],
        "tools": tools
    })
}

fn pipeline(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let checker = {
        let _runtime = runtime.enter();
        Checker::new(CheckOptions::default()).unwrap()
    };
    let renderer = Renderer::new().unwrap();
    let draft = spec(20);
    let options = BundleOptions::default();
    let run = || {
        runtime.block_on(async {
            let checked = checker.check(&draft).await.unwrap();
            assert!(checked.warnings.is_empty(), "{:?}", checked.warnings);
            renderer.bundle(&checked.spec, &options).unwrap()
        })
    };
    run();

    // A plain figure first, so the number is printed whatever criterion does.
    let rounds = 50;
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(run());
            start.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "pipeline, 20 tools (validate + static checks + dry run + bundle): p50 {:.2} ms, p95 {:.2} ms over {rounds} runs (target <= 20 ms)",
        times[rounds / 2].as_secs_f64() * 1e3,
        times[rounds * 95 / 100].as_secs_f64() * 1e3,
    );

    // Where the time goes.
    let median = |f: &dyn Fn()| {
        let mut t: Vec<Duration> = (0..30)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect();
        t.sort();
        t[15].as_secs_f64() * 1e3
    };
    let validated = bmm_core::check(&draft, &bmm_core::CheckOptions::default()).unwrap();
    println!(
        "  of which: validate + static checks {:.2} ms, dry run {:.2} ms, bundle {:.2} ms",
        median(&|| {
            std::hint::black_box(
                bmm_core::check(&draft, &bmm_core::CheckOptions::default()).unwrap(),
            );
        }),
        median(&|| {
            std::hint::black_box(runtime.block_on(checker.dry_run(&validated)));
        }),
        median(&|| {
            std::hint::black_box(renderer.bundle(&validated, &options).unwrap());
        }),
    );

    let mut group = c.benchmark_group("pipeline");
    group.sample_size(30);
    group.bench_function("twenty_tools", |b| b.iter(run));
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
