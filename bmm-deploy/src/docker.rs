//! The Docker target (written next).
