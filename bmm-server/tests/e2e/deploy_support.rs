//! Shared scaffolding of the deploy tests: bundles of the unit-converter
//! example, a Python MCP call, and small waits.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bmm_core::{CheckOptions, check};
use bmm_deploy::Bundle;
use serde_json::{Value, json};

use crate::harness::{python, workspace};

/// The secret value the "with secret" bundles carry.
pub(crate) const TOKEN: &str = "tok-deploy-secret-8472";

/// The unit-converter example spec at `version`. With `secret`, it declares a
/// required secret `TOKEN` (used by an extra http tool): deploying it without
/// the value fails, as a broken release would.
pub(crate) fn converter(version: &str, secret: bool) -> Bundle {
    let text =
        std::fs::read_to_string(workspace().join("examples/specs/unit-converter.json")).unwrap();
    let mut document: Value = serde_json::from_str(&text).unwrap();
    document["version"] = json!(version);
    if secret {
        document["egress"] = json!(["api.example.com"]);
        document["secrets"] =
            json!([{"name": "TOKEN", "description": "A token.", "required": true}]);
        document["tools"].as_array_mut().unwrap().push(json!({
            "name": "whoami", "description": "Asks the API who the token belongs to.",
            "input_schema": {"type": "object"},
            "implementation": {"kind": "http", "method": "GET", "url": "https://api.example.com/me",
                "headers": {"Authorization": "Bearer {{secrets.TOKEN}}"}}
        }));
    }
    Bundle::from_spec(check(&document, &CheckOptions::default()).unwrap())
}

/// Converts 2 km to m through `url` with the Python MCP client; returns
/// (server name, structured result).
pub(crate) fn convert(url: &str) -> (String, Value) {
    let output = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/deploy_client.py"
        ))
        .arg(url)
        .arg("convert_length")
        .arg(r#"{"value": 2, "from": "km", "to": "m"}"#)
        .output()
        .expect("the venv's python runs; `bash scripts/test` creates it");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python client failed against {url}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = stdout.lines();
    let name = lines.next().unwrap().to_owned();
    let result: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    (name, result)
}

/// Asserts the converter's answer for 2 km.
pub(crate) fn assert_converts(url: &str) {
    let (name, result) = convert(url);
    assert_eq!(name, "unit-converter");
    assert_eq!(result["value"].as_f64(), Some(2000.0), "{result}");
}

/// Polls `condition` every 50 ms until it holds or `limit` passes.
pub(crate) async fn eventually(limit: Duration, mut condition: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The bmm binary under test.
pub(crate) fn bmm() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bmm"))
}
