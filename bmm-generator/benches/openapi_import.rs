//! Benchmarks of the OpenAPI importer (filled in below).
fn main() {}
