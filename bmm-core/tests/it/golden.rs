//! The exported JSON Schema of `ServerSpec` is a golden file: it is what a model
//! is asked to fill, so every change to it is reviewed. Re-bless with `BMM_BLESS=1`.

use std::fs;

use bmm_core::ServerSpec;

use crate::{bless, workspace};

#[test]
fn server_spec_schema_matches_its_golden_file() {
    let path = workspace().join("bmm-core/schema/server-spec.schema.json");
    let actual = format!("{:#}\n", ServerSpec::json_schema());
    if bless() {
        fs::write(&path, &actual).unwrap();
        return;
    }
    let golden = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        golden == actual,
        "the ServerSpec schema changed; review the diff and re-bless with BMM_BLESS=1 cargo nextest run -p bmm-core\n--- golden\n{golden}\n--- actual\n{actual}"
    );
}

#[test]
fn the_schema_is_a_valid_json_schema() {
    let schema = ServerSpec::json_schema();
    jsonschema::meta::validate(&schema).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

#[test]
fn every_diagnostic_code_is_documented_in_the_book() {
    let page = fs::read_to_string(workspace().join("book/src/diagnostics.md")).unwrap();
    for code in bmm_core::Code::ALL {
        assert!(
            page.contains(&format!("| `{code}` |")),
            "book/src/diagnostics.md lacks `{code}`"
        );
    }
}
