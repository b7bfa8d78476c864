//! What changed between two versions of a spec, for the summary a person
//! reads after iterating.

use std::collections::BTreeSet;

use bmm_core::{ServerSpec, ToolSpec};
use serde::Serialize;

/// Tools, secrets and hosts added, removed or changed between two specs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// Tools only the new spec has.
    pub added: Vec<String>,
    /// Tools only the old spec has.
    pub removed: Vec<String>,
    /// Tools both have that differ, with the parts that differ.
    pub changed: Vec<ToolChange>,
    /// Secrets only the new spec declares.
    pub secrets_added: Vec<String>,
    /// Secrets only the old spec declares.
    pub secrets_removed: Vec<String>,
    /// Hosts only the new spec may reach.
    pub egress_added: Vec<String>,
    /// Hosts only the old spec could reach.
    pub egress_removed: Vec<String>,
}

/// One changed tool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ToolChange {
    /// The tool's name.
    pub name: String,
    /// What differs: `title`, `description`, `input_schema`, `output_schema`,
    /// `annotations`, `implementation`.
    pub parts: Vec<&'static str>,
}

impl Changes {
    /// What changed from `old` to `new`; names keep `new`'s order (`old`'s
    /// for removals).
    pub fn between(old: &ServerSpec, new: &ServerSpec) -> Self {
        let names = |spec: &ServerSpec| -> Vec<String> {
            spec.tools
                .iter()
                .map(|t| t.name.as_str().to_owned())
                .collect()
        };
        let (old_names, new_names) = (names(old), names(new));
        let find = |spec: &'_ ServerSpec, name: &str| -> Option<ToolSpec> {
            spec.tools.iter().find(|t| t.name.as_str() == name).cloned()
        };
        let mut changes = Changes {
            added: minus(&new_names, &old_names),
            removed: minus(&old_names, &new_names),
            ..Changes::default()
        };
        for name in new_names.iter().filter(|n| old_names.contains(n)) {
            let (Some(a), Some(b)) = (find(old, name), find(new, name)) else {
                continue;
            };
            let mut parts = Vec::new();
            if a.title != b.title {
                parts.push("title");
            }
            if a.description != b.description {
                parts.push("description");
            }
            if a.input_schema != b.input_schema {
                parts.push("input_schema");
            }
            if a.output_schema != b.output_schema {
                parts.push("output_schema");
            }
            if a.annotations != b.annotations {
                parts.push("annotations");
            }
            if a.implementation != b.implementation {
                parts.push("implementation");
            }
            if !parts.is_empty() {
                changes.changed.push(ToolChange {
                    name: name.clone(),
                    parts,
                });
            }
        }
        let secrets = |spec: &ServerSpec| -> Vec<String> {
            spec.secrets
                .iter()
                .map(|s| s.name.as_str().to_owned())
                .collect()
        };
        changes.secrets_added = minus(&secrets(new), &secrets(old));
        changes.secrets_removed = minus(&secrets(old), &secrets(new));
        changes.egress_added = minus(&new.egress, &old.egress);
        changes.egress_removed = minus(&old.egress, &new.egress);
        changes
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self == &Changes::default()
    }

    /// One line per kind of change, for a terminal.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = |label: &str, items: &[String]| {
            if !items.is_empty() {
                lines.push(format!("{label}: {}", items.join(", ")));
            }
        };
        line("tools added", &self.added);
        line("tools removed", &self.removed);
        let changed: Vec<String> = self
            .changed
            .iter()
            .map(|c| format!("{} ({})", c.name, c.parts.join(", ")))
            .collect();
        line("tools changed", &changed);
        line("secrets added", &self.secrets_added);
        line("secrets removed", &self.secrets_removed);
        line("hosts added", &self.egress_added);
        line("hosts removed", &self.egress_removed);
        if lines.is_empty() {
            lines.push("no changes".into());
        }
        lines
    }
}

fn minus(a: &[String], b: &[String]) -> Vec<String> {
    let b: BTreeSet<&String> = b.iter().collect();
    a.iter().filter(|x| !b.contains(x)).cloned().collect()
}
