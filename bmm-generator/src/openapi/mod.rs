//! Importing an OpenAPI 3.0/3.1 document as a `ServerSpec` (in progress).
