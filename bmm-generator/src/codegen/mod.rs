//! Rendering a spec into a deploy bundle, install snippets and an ejected project (in progress).
