//! The official MCP conformance suite (`@modelcontextprotocol/conformance`)
//! against `bmm run` serving the conformance fixture spec, for both protocol
//! revisions bmm speaks. Expected failures are baselined with their reasons;
//! the suite fails on a new failure and on a stale baseline entry.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{Runner, workspace};

fn fixture_dir() -> PathBuf {
    workspace().join("bmm-server/tests/conformance")
}

fn run_suite(revision: &str) {
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture_dir().join("fixture.json")).unwrap())
            .unwrap();
    let runner = Runner::start(&spec, &[]);
    let bin = workspace().join("tools/node/node_modules/.bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let baseline = fixture_dir().join(format!("expected-failures-{revision}.yaml"));
    let output = Command::new(bin.join("conformance"))
        .args([
            "server",
            "--url",
            &runner.url(),
            "--requirements",
            revision,
            "--expected-failures",
        ])
        .arg(&baseline)
        .env("PATH", path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the conformance suite ({e}); `bash scripts/test` installs tools/node"
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "conformance {revision} failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("Baseline check passed"), "{stdout}");
    // The tool scenarios the fixture implements must have run and passed.
    for scenario in [
        "tools-list",
        "tools-call-simple-text",
        "tools-call-image",
        "tools-call-error",
        "json-schema-2020-12",
    ] {
        assert!(
            stdout.contains(&format!("✓ {scenario}:")),
            "{scenario} did not pass:\n{stdout}"
        );
    }
}

#[test]
fn conformance_2025_11_25() {
    run_suite("2025-11-25");
}

#[test]
fn conformance_2026_07_28() {
    run_suite("2026-07-28");
}
