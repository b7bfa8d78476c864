//! The bmm vocabulary (work in progress).
