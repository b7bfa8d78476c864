//! `bmm run --dir`: every valid spec of a folder is served at `/mcp/{slug}`;
//! an invalid one is reported and skipped without taking the others down.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::harness::{block_on, get_json, workspace};

#[test]
fn serves_every_valid_spec_of_a_folder_and_skips_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let specs = workspace().join("examples/specs");
    std::fs::copy(specs.join("unit-converter.json"), dir.path().join("a.json")).unwrap();
    std::fs::copy(
        specs.join("invalid/poisoned.json"),
        dir.path().join("b.json"),
    )
    .unwrap();
    let second = std::fs::read_to_string(specs.join("unit-converter.json"))
        .unwrap()
        .replace("\"slug\": \"unit-converter\"", "\"slug\": \"units-two\"");
    std::fs::write(dir.path().join("c.yaml"), second).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a spec").unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_bmm"))
        .args(["run", "--dir", dir.path().to_str().unwrap(), "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // Read all of stderr, as a supervisor would; look for the report at its end.
    let skipped = std::thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect();
        lines.into_iter().find(|l| l.contains("skipping"))
    });
    let mut served = Vec::new();
    let mut addr = None;
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        if let Some(rest) = line.strip_prefix("bmm: serving ") {
            served.push(rest.split_whitespace().next().unwrap().to_owned());
        }
        if let Some(a) = line.strip_prefix("bmm: listening on ") {
            addr = Some(a.to_owned());
            break;
        }
    }
    let addr = addr.expect("bmm run --dir did not start");
    assert_eq!(served, ["unit-converter", "units-two"]);

    block_on(async {
        let client = reqwest::Client::new();
        let ready = get_json(&client, &format!("http://{addr}/readyz")).await;
        assert_eq!(ready["servers"].as_array().unwrap().len(), 2, "{ready}");
        for slug in ["unit-converter", "units-two"] {
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}}}});
            let text = client
                .post(format!("http://{addr}/mcp/{slug}"))
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/list")
                .json(&body)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(text.contains("convert_length"), "{slug}: {text}");
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    let skipped = skipped
        .join()
        .unwrap()
        .expect("the invalid spec was not reported");
    assert!(
        skipped.contains("b.json") && skipped.contains("not a valid spec"),
        "{skipped}"
    );
}

#[test]
fn a_folder_without_a_valid_spec_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        workspace().join("examples/specs/invalid/structure.json"),
        dir.path().join("x.json"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bmm"))
        .args(["run", "--dir", dir.path().to_str().unwrap(), "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds no valid spec"), "{stderr}");
}

#[test]
fn a_closed_output_pipe_does_not_stop_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let specs = workspace().join("examples/specs");
    std::fs::copy(specs.join("unit-converter.json"), dir.path().join("a.json")).unwrap();
    std::fs::copy(
        specs.join("invalid/poisoned.json"),
        dir.path().join("b.json"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bmm"))
        .args(["run", "--dir", dir.path().to_str().unwrap(), "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads standard error: the report of the skipped spec meets a closed pipe.
    drop(child.stderr.take());
    let started = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|line| line.starts_with("bmm: listening on "));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        started,
        "bmm run stopped when its standard error was closed"
    );
}
