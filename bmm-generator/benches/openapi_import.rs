//! Benchmarks of the OpenAPI importer: the Open-Meteo forecast document, and a
//! synthetic document of 1,000 operations.
//!
//! Run with `cargo bench -p bmm-generator --bench openapi_import`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use bmm_generator::openapi::{ImportError, ImportOptions, import};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, json};

/// Operations in the synthetic document.
const OPERATIONS: usize = 1_000;
/// Tags the operations are spread over (50 operations each).
const TAGS: usize = 20;

/// A 3.0 document of [`OPERATIONS`] operations: each with a path parameter,
/// query parameters (one an enumerated array), a header, security, and for
/// writes a JSON body referring to shared, partly recursive components.
fn synthetic() -> String {
    let mut paths = Map::new();
    for i in 0..OPERATIONS / 2 {
        let tag = format!("tag{}", i % TAGS);
        let params = json!([
            {"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}},
            {"name": "fields", "in": "query", "explode": false, "schema": {"type": "array", "items": {"type": "string", "enum": ["a", "b", "c", "d"]}}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 100, "nullable": true}},
            {"name": "X-Request-Id", "in": "header", "schema": {"type": "string", "format": "uuid"}}
        ]);
        let item = json!({
            "get": {
                "operationId": format!("getResource{i}"),
                "summary": format!("Get resource {i}"),
                "description": "Returns one resource with its attributes and links.",
                "tags": [tag],
                "parameters": params,
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Resource"}}}}}
            },
            "put": {
                "operationId": format!("putResource{i}"),
                "summary": format!("Replace resource {i}"),
                "tags": [tag],
                "parameters": [{"$ref": "#/components/parameters/Id"}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Resource"}}}},
                "responses": {"200": {"description": "ok"}}
            }
        });
        paths.insert(format!("/resources{i}/{{id}}"), item);
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Synthetic", "version": "1.0.0", "description": "A large generated API."},
        "servers": [{"url": "https://{env}.example.com/api", "variables": {"env": {"default": "prod"}}}],
        "security": [{"key": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "parameters": {"Id": {"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}},
            "schemas": {
                "Resource": {"type": "object", "required": ["name"], "properties": {
                    "id": {"type": "integer", "readOnly": true},
                    "name": {"type": "string", "maxLength": 200},
                    "kind": {"type": "string", "enum": ["small", "medium", "large"]},
                    "owner": {"$ref": "#/components/schemas/Person"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "parent": {"$ref": "#/components/schemas/Resource"}
                }},
                "Person": {"type": "object", "properties": {
                    "name": {"type": "string"},
                    "email": {"type": "string", "format": "email"},
                    "manager": {"$ref": "#/components/schemas/Person"}
                }}
            }
        }
    })
    .to_string()
}

fn benches(c: &mut Criterion) {
    let forecast = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/openapi/open-meteo-forecast.yml"
    ))
    .unwrap();
    let none = ImportOptions::default();
    assert_eq!(import(&forecast, &none).unwrap().spec.tools.len(), 1);
    c.bench_function(
        "open-meteo forecast (3.1 YAML, 1 operation, 23 parameters)",
        |b| {
            b.iter(|| import(black_box(&forecast), &none).unwrap());
        },
    );

    let document = synthetic();
    let filtered = ImportOptions::new().include_tag("tag7");
    assert_eq!(import(&document, &filtered).unwrap().spec.tools.len(), 50);
    c.bench_function(
        "synthetic 1,000 operations, filtered to one tag (50 tools, checked)",
        |b| {
            b.iter(|| import(black_box(&document), &filtered).unwrap());
        },
    );

    // The most tools a server may hold, chosen by operationId across the document.
    let mut chosen = ImportOptions::new();
    for i in 0..64 {
        chosen = chosen.include_operation(format!("putResource{}", i * 7));
    }
    assert_eq!(import(&document, &chosen).unwrap().spec.tools.len(), 64);
    c.bench_function(
        "synthetic 1,000 operations, 64 chosen by operationId (64 tools, checked)",
        |b| {
            b.iter(|| import(black_box(&document), &chosen).unwrap());
        },
    );

    // Without a filter every operation is converted before the importer
    // finds that they are more than a server may hold.
    assert!(matches!(
        import(&document, &none),
        Err(ImportError::TooManyOperations {
            count: OPERATIONS,
            ..
        })
    ));
    c.bench_function("synthetic 1,000 operations, all converted", |b| {
        b.iter(|| {
            let result = import(black_box(&document), &none);
            assert!(result.is_err());
        });
    });
}

criterion_group! {
    name = openapi_import;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(openapi_import);
