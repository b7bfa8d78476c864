//! Build vocabulary: the status of a build and the events it emits.
//!
//! Every step of a build emits a [`BuildEvent`]; the server persists each one,
//! then fans it out to subscribers, who can replay a build from its first event.
//! Messages are written for the person watching: they never carry a secret.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where a build is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BuildStatus {
    /// Waiting in the queue.
    Queued,
    /// A worker is on it.
    Running,
    /// The server is live.
    Succeeded,
    /// The build stopped on an error; its events say why.
    Failed,
    /// Someone cancelled it.
    Cancelled,
}

impl BuildStatus {
    /// Whether the build has ended and no event will follow.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            BuildStatus::Succeeded | BuildStatus::Failed | BuildStatus::Cancelled
        )
    }

    /// Whether a build in this status may move to `next`.
    pub fn can_become(self, next: BuildStatus) -> bool {
        use BuildStatus::*;
        matches!(
            (self, next),
            (Queued, Running)
                | (Queued, Cancelled)
                | (Running, Succeeded)
                | (Running, Failed)
                | (Running, Cancelled)
        )
    }
}

/// The step of a build an event belongs to, in the order a build runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BuildStep {
    /// Waiting for a worker.
    Queue,
    /// A model or an importer writes the spec.
    Generate,
    /// The spec is validated and statically checked.
    Validate,
    /// Every tool runs once in the sandbox with synthesised arguments.
    DryRun,
    /// The deploy bundle is rendered.
    Bundle,
    /// The bundle goes to its target.
    Deploy,
    /// The deployed server must answer before traffic moves.
    HealthCheck,
    /// The build is over.
    Done,
}

/// How an event should be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Progress.
    Info,
    /// Something to look at; the build goes on.
    Warn,
    /// The step failed.
    Error,
}

/// One line of a build's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildEvent {
    /// Position in the build's event stream, from 0, without gaps.
    pub seq: u64,
    /// The step that emitted it.
    pub step: BuildStep,
    /// How to show it.
    pub level: Level,
    /// What happened, for a person. Never a secret.
    pub message: String,
    /// When it happened (RFC 3339 on the wire).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_transitions() {
        assert!(BuildStatus::Queued.can_become(BuildStatus::Running));
        assert!(!BuildStatus::Succeeded.can_become(BuildStatus::Running));
        assert!(!BuildStatus::Queued.can_become(BuildStatus::Succeeded));
        assert!(BuildStatus::Failed.is_terminal());
        assert!(!BuildStatus::Running.is_terminal());
    }

    #[test]
    fn event_wire_format_is_stable() {
        let event = BuildEvent {
            seq: 3,
            step: BuildStep::DryRun,
            level: Level::Warn,
            message: "tool `x` took 1.2 s".into(),
            at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"seq":3,"step":"dry_run","level":"warn","message":"tool `x` took 1.2 s","at":"2023-11-14T22:13:20Z"}"#
        );
        assert_eq!(serde_json::from_str::<BuildEvent>(&json).unwrap(), event);
    }
}
