//! The Python `mcp` client against `bmm run`.

use std::process::Command;

use crate::harness::{Runner, e2e_spec, python, upstream};

#[test]
fn python_client_drives_every_tool_kind() {
    let upstream = upstream();
    let runner = Runner::start(
        &e2e_spec(upstream),
        &["--allow-http", "--allow-network", "127.0.0.1/32"],
    );
    let interpreter = python();
    let output = Command::new(&interpreter)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/client.py"))
        .arg(runner.url())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); `bash scripts/test` creates the venv",
                interpreter.display()
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python client failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count() >= 20,
        "{stdout}"
    );
}
