//! The example specs: good ones validate, bad ones report exactly their planted errors.

use std::fs;

use bmm_core::{CheckOptions, Format, Severity, check, parse_document};

use crate::workspace;

fn load(name: &str) -> serde_json::Value {
    let path = workspace().join("examples/specs").join(name);
    let text = fs::read_to_string(&path).unwrap();
    parse_document(&text, Format::from_path(&path).unwrap()).unwrap()
}

#[test]
fn good_examples_validate_without_warnings() {
    for name in ["unit-converter.json", "weather.yaml"] {
        match check(&load(name), &CheckOptions::default()) {
            Ok(valid) => assert!(valid.warnings().is_empty(), "{name}:\n{}", valid.warnings()),
            Err(report) => panic!("{name} is invalid:\n{report}"),
        }
    }
}

#[test]
fn good_examples_round_trip_through_the_types() {
    for name in ["unit-converter.json", "weather.yaml"] {
        let spec = check(&load(name), &CheckOptions::default())
            .unwrap()
            .into_spec();
        let again = spec.check(&CheckOptions::default()).unwrap();
        assert_eq!(again.spec(), &spec, "{name}");
    }
}

/// Compares the diagnostics of one invalid example with its `.expected` file,
/// line for line (`severity[code] path`), duplicates included.
fn check_invalid(name: &str) {
    let dir = workspace().join("examples/specs/invalid");
    let stem = name.rsplit_once('.').unwrap().0;
    let expected = fs::read_to_string(dir.join(format!("{stem}.expected"))).unwrap();
    let mut expected: Vec<&str> = expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    expected.sort_unstable();

    let report = check(&load(&format!("invalid/{name}")), &CheckOptions::default()).unwrap_err();
    let mut actual: Vec<String> = report
        .diagnostics()
        .iter()
        .map(|d| {
            let level = if d.severity == Severity::Error {
                "error"
            } else {
                "warning"
            };
            format!("{level}[{}] {}", d.code, d.path)
        })
        .collect();
    actual.sort_unstable();
    assert_eq!(actual, expected, "{name}: full report:\n{report}");
    for d in report.diagnostics() {
        assert!(
            !d.message.is_empty() && d.message.len() < 600,
            "{name}: {d}"
        );
    }
}

#[test]
fn structure_errors_are_all_reported() {
    check_invalid("structure.json");
}

#[test]
fn reference_errors_are_all_reported() {
    check_invalid("references.yaml");
}

#[test]
fn poisoning_and_script_errors_are_all_reported() {
    check_invalid("poisoned.json");
}

#[test]
fn plain_http_needs_the_development_allowance() {
    let mut doc = load("weather.yaml");
    doc["tools"][0]["implementation"]["url"] =
        "http://api.openweathermap.org/data/2.5/weather".into();
    doc["egress"]
        .as_array_mut()
        .unwrap()
        .push("api.openweathermap.org:80".into());
    let report = check(&doc, &CheckOptions::default()).unwrap_err();
    assert!(
        report
            .errors()
            .all(|d| d.code == bmm_core::Code::InsecureUrl),
        "{report}"
    );
    let valid = check(&doc, &CheckOptions::default().allow_http(true)).unwrap();
    assert_eq!(valid.spec().tools.len(), 2);
}
