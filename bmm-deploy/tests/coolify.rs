//! Coolify adapter tests against the fake.
