//! `bmm generate` as a user runs it: the mock generator without a key, an
//! OpenAPI import, iteration, JSON output and the refusals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `bmm` with no Anthropic configuration in its environment.
fn bmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bmm"))
        .args(args)
        .current_dir(workspace())
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("ANTHROPIC_MODEL")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: &Output) -> (String, String) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    (stdout, stderr)
}

#[test]
fn without_a_key_the_mock_drafts_a_bundle_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("bundle");
    let out_arg = out_dir.to_str().unwrap();
    let (stdout, stderr) = ok(&bmm(&[
        "generate",
        "--prompt",
        "convert units and look up github issues",
        "--out",
        out_arg,
    ]));
    assert!(stderr.contains("ANTHROPIC_API_KEY is not set"), "{stderr}");
    assert!(stderr.contains("[validate]"), "{stderr}");
    assert!(stdout.contains("mock generator drafted this"), "{stdout}");
    assert!(stdout.contains("convert_length"), "{stdout}");
    assert!(stdout.contains("GITHUB_TOKEN"), "{stdout}");
    for file in ["server.json", "Dockerfile", "compose.yaml", "README.md"] {
        assert!(out_dir.join(file).is_file(), "{file} missing");
    }
    // The bundle's spec is one `bmm run` accepts.
    let check = bmm(&["spec", "validate", out_dir.join("server.json").to_str().unwrap()]);
    ok(&check);

    // A second run into the same folder is refused, then allowed with --force.
    let again = bmm(&["generate", "--prompt", "convert units", "--out", out_arg]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("--force"), "{}", text(&again.stderr));
    ok(&bmm(&[
        "generate", "--prompt", "convert units", "--out", out_arg, "--force",
    ]));
}

#[test]
fn json_output_carries_the_preview_and_iteration_lists_changes() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("v1");
    let (stdout, _) = ok(&bmm(&[
        "generate",
        "--prompt",
        "count words",
        "--name",
        "Word Tools",
        "--slug",
        "word-tools",
        "--out",
        first.to_str().unwrap(),
        "--json",
    ]));
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["slug"], "word-tools");
    assert_eq!(summary["name"], "Word Tools");
    assert_eq!(summary["mock"], true);
    assert_eq!(summary["tools"][0]["name"], "count_words");
    assert_eq!(summary["tools"][0]["input_schema"]["type"], "object");
    assert_eq!(summary["secrets"], serde_json::json!([]));

    let second = dir.path().join("v2");
    let (stdout, _) = ok(&bmm(&[
        "generate",
        "--iterate",
        first.join("server.json").to_str().unwrap(),
        "--prompt",
        "also reverse text",
        "--out",
        second.to_str().unwrap(),
        "--json",
    ]));
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["slug"], "word-tools");
    assert_eq!(summary["version"], "1.1.0");
    assert_eq!(summary["changes"]["added"], serde_json::json!(["reverse_text"]));
}

#[test]
fn an_openapi_document_becomes_a_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("petstore");
    let (stdout, _) = ok(&bmm(&[
        "generate",
        "--openapi",
        "fixtures/openapi/petstore.yaml",
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
    ]));
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["produced_by"], "openapi importer");
    let names: Vec<&str> = summary["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["listPets", "createPets", "showPetById"]);
    assert!(out_dir.join("server.json").is_file());
}

#[test]
fn bad_requests_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out_arg = dir.path().join("x");
    let out_arg = out_arg.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["generate", "--prompt", "  ", "--out", out_arg], "prompt is empty"),
        (&["generate", "--prompt", "x", "--slug", "Bad Slug", "--out", out_arg], "--slug"),
        (&["generate", "--openapi", "missing.yaml", "--out", out_arg], "missing.yaml"),
        (&["generate", "--prompt", "x", "--model", "claude-x", "--out", out_arg], "ANTHROPIC_API_KEY"),
    ];
    for (args, expected) in cases {
        let out = bmm(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert!(!Path::new(out_arg).exists(), "a failed run wrote its output folder");
}
