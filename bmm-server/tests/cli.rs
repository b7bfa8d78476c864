//! The `bmm` binary, driven as a user drives it: arguments in, text and exit code out.

// A panic in a test is a failed test, not a crash on input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bmm"))
        .args(args)
        .current_dir(workspace())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn good_examples_exit_zero() {
    for file in [
        "examples/specs/unit-converter.json",
        "examples/specs/weather.yaml",
    ] {
        let out = bmm(&["spec", "validate", file]);
        assert!(
            out.status.success(),
            "{file}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains(": valid"),
            "{}",
            text(&out.stdout)
        );
    }
}

#[test]
fn bad_examples_exit_one_and_print_every_planted_error_with_its_path() {
    for (file, expected) in [
        ("structure.json", "structure.expected"),
        ("references.yaml", "references.expected"),
        ("poisoned.json", "poisoned.expected"),
    ] {
        let dir = workspace().join("examples/specs/invalid");
        let out = bmm(&["spec", "validate", dir.join(file).to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        let stdout = text(&out.stdout);
        let expected = fs::read_to_string(dir.join(expected)).unwrap();
        let mut wanted: Vec<&str> = expected
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .collect();
        let mut printed: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("error[") || l.starts_with("warning["))
            .map(|l| l.split_once(": ").map_or(l, |(head, _)| head))
            .collect();
        wanted.sort_unstable();
        printed.sort_unstable();
        assert_eq!(printed, wanted, "{file}:\n{stdout}");
        let errors = wanted.iter().filter(|l| l.starts_with("error")).count();
        assert!(
            stdout.contains(&format!("invalid — {errors} error(s)")),
            "{stdout}"
        );
    }
}

#[test]
fn json_output_is_machine_readable() {
    let out = bmm(&[
        "spec",
        "validate",
        "--json",
        "examples/specs/invalid/references.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    let diagnostics = report["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 15);
    assert!(
        diagnostics
            .iter()
            .any(|d| d["path"] == "tools[0].implementation.url"
                && d["code"] == "unknown_argument"
                && d["severity"] == "error")
    );

    let out = bmm(&["spec", "validate", "--json", "examples/specs/weather.yaml"]);
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
}

#[test]
fn warnings_alone_exit_zero_and_are_printed() {
    let dir = tempfile::tempdir().unwrap();
    let source =
        fs::read_to_string(workspace().join("examples/specs/unit-converter.json")).unwrap();
    let warned = source.replacen(
        "Converts lengths, temperatures",
        "Never reads ~/.ssh. Converts lengths, temperatures",
        1,
    );
    let file = dir.path().join("warned.json");
    fs::write(&file, warned).unwrap();
    let out = bmm(&["spec", "validate", file.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("warning[sensitive_reference] description:"),
        "{stdout}"
    );
    assert!(stdout.contains("1 warning(s)"), "{stdout}");
}

#[test]
fn schema_prints_the_golden_schema() {
    let out = bmm(&["spec", "schema"]);
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let golden: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(workspace().join("bmm-core/schema/server-spec.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(printed, golden);
}

#[test]
fn unreadable_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let check = |args: &[&str], needle: &str| {
        let out = bmm(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };

    let malformed = dir.path().join("bad.json");
    fs::write(&malformed, "{\"bmm\": \"1\",\n  \"name\": }").unwrap();
    check(
        &["spec", "validate", malformed.to_str().unwrap()],
        "invalid JSON: expected value at line 2 column 11",
    );

    let yaml = dir.path().join("bad.yaml");
    fs::write(&yaml, "bmm: \"1\"\ntools: [\n").unwrap();
    check(
        &["spec", "validate", yaml.to_str().unwrap()],
        "invalid YAML",
    );

    let huge = dir.path().join("huge.json");
    let mut f = fs::File::create(&huge).unwrap();
    f.write_all(b"{\"name\": \"").unwrap();
    f.write_all(&vec![b'x'; 50 * 1024 * 1024]).unwrap();
    f.write_all(b"\"}").unwrap();
    drop(f);
    check(
        &["spec", "validate", huge.to_str().unwrap()],
        "more than the limit of 4194304 bytes",
    );

    let binary = dir.path().join("bin.json");
    fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    check(&["spec", "validate", binary.to_str().unwrap()], "not UTF-8");

    check(
        &["spec", "validate", "/definitely/not/here.json"],
        "cannot open /definitely/not/here.json",
    );
}

#[test]
fn reads_standard_input() {
    let spec = fs::read(workspace().join("examples/specs/weather.yaml")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bmm"))
        .args(["spec", "validate", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&spec).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
}

#[test]
fn usage_errors_name_the_problem() {
    let out = bmm(&["spec", "validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("<FILE>"));
}
