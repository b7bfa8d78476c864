//! Bad input never panics: property tests over parse + validate, and hostile documents.

use bmm_core::{
    CheckOptions, Error, Format, MAX_DOCUMENT_BYTES, check, check_text, parse_document,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        prop::sample::select(vec![
            "1",
            "http",
            "script",
            "GET",
            "{{args.x}}",
            "{{secrets.K}}",
            "{{#if",
            "https://a.b/{{x}}",
            "export default () => 1",
            "object",
            "eval(",
            "\u{202e}",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "bmm",
                    "name",
                    "slug",
                    "description",
                    "version",
                    "egress",
                    "secrets",
                    "tools",
                    "input_schema",
                    "output_schema",
                    "implementation",
                    "kind",
                    "source",
                    "url",
                    "method",
                    "headers",
                    "query",
                    "body",
                    "type",
                    "properties",
                    "required",
                    "$ref",
                    "response",
                    "pointer",
                    "fields",
                    "annotations",
                    "x",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn valid_document() -> Value {
    json!({
        "bmm": "1", "name": "P", "slug": "p", "description": "d",
        "egress": ["api.example.com"],
        "secrets": [{"name": "K", "description": "k"}],
        "tools": [
            {"name": "h", "description": "d",
             "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}},
             "implementation": {"kind": "http", "method": "GET",
                "url": "https://api.example.com/{{args.x}}", "headers": {"A": "{{secrets.K}}"}}},
            {"name": "s", "description": "d", "input_schema": {"type": "object"},
             "implementation": {"kind": "script", "source": "export default () => 1"}}
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_documents_never_panic(doc in arb_json()) {
        let _ = check(&doc, &CheckOptions::default());
    }

    #[test]
    fn mutated_valid_documents_never_panic(
        pointer in prop::sample::select(vec![
            "", "/tools", "/tools/0", "/tools/0/input_schema", "/tools/0/implementation",
            "/tools/0/implementation/url", "/tools/0/implementation/headers", "/tools/1/implementation/source",
            "/secrets/0", "/egress/0", "/tools/0/input_schema/properties",
        ]),
        replacement in arb_json(),
    ) {
        let mut doc = valid_document();
        if let Some(slot) = doc.pointer_mut(pointer) {
            *slot = replacement;
        }
        let _ = check(&doc, &CheckOptions::default());
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = check_text(&text, Format::Json, &CheckOptions::default());
        let _ = check_text(&text, Format::Yaml, &CheckOptions::default());
    }

    #[test]
    fn arbitrary_scripts_and_templates_never_panic(src in ".{0,300}") {
        let mut doc = valid_document();
        doc["tools"][1]["implementation"]["source"] = Value::from(src.clone());
        doc["tools"][0]["implementation"]["url"] = Value::from(format!("https://api.example.com/{src}"));
        doc["tools"][0]["implementation"]["headers"]["A"] = Value::from(src);
        let _ = check(&doc, &CheckOptions::default());
    }
}

#[test]
fn the_valid_base_document_is_valid() {
    check(&valid_document(), &CheckOptions::default()).unwrap();
}

#[test]
fn a_fifty_megabyte_document_is_refused_without_parsing() {
    let text = format!("{{\"name\": \"{}\"}}", "x".repeat(50 * 1024 * 1024));
    let err = check_text(&text, Format::Json, &CheckOptions::default()).unwrap_err();
    match err {
        Error::TooLarge { size, limit } => {
            assert!(size > 50 * 1024 * 1024);
            assert_eq!(limit, MAX_DOCUMENT_BYTES as u64);
        }
        other => panic!("expected TooLarge, got {other}"),
    }
}

#[test]
fn deeply_nested_schemas_are_a_located_error() {
    let mut schema = json!({"type": "object"});
    for _ in 0..60 {
        schema = json!({"type": "object", "properties": {"n": schema}});
    }
    let mut doc = valid_document();
    doc["tools"][1]["input_schema"] = schema;
    let report = check(&doc, &CheckOptions::default()).unwrap_err();
    let errors: Vec<_> = report.errors().collect();
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0].code, bmm_core::Code::LimitExceeded);
    assert_eq!(errors[0].path.to_string(), "tools[1].input_schema");
}

#[test]
fn hostile_yaml_is_an_error() {
    // Exponential alias expansion ("billion laughs").
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        yaml.push_str(&format!(
            "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    assert!(matches!(
        parse_document(&yaml, Format::Yaml),
        Err(Error::Yaml(_))
    ));
    // Keys that are collections have no JSON equivalent.
    assert!(matches!(
        parse_document("[1, 2]: a", Format::Yaml),
        Err(Error::Yaml(_))
    ));
    assert!(matches!(
        parse_document("{a: 1}: b", Format::Yaml),
        Err(Error::Yaml(_))
    ));
}

#[test]
fn remote_and_file_refs_are_not_fetched() {
    for r in ["https://example.com/schema.json", "file:///etc/passwd"] {
        let mut doc = valid_document();
        doc["tools"][1]["input_schema"] =
            json!({"type": "object", "properties": {"a": {"$ref": r}}});
        let report = check(&doc, &CheckOptions::default()).unwrap_err();
        assert!(
            report
                .errors()
                .any(|d| d.code == bmm_core::Code::InvalidJsonSchema),
            "{r}: {report}"
        );
    }
}
