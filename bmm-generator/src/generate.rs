//! The [`Generator`]: a provider's drafts through checks and the repair loop
//! to a checked spec, with a preview and, when iterating, what changed.

use std::sync::Arc;

use bmm_core::{BuildStep, Level, ServerSpec, ValidatedSpec};
use serde::Serialize;
use serde_json::Value;

use crate::check::{CheckOptions, Checker, Rejection};
use crate::diff::Changes;
use crate::provider::{Conversation, ProviderError, Request, Round, SpecGenerator, Usage};

/// The longest prompt accepted, in characters.
pub const MAX_PROMPT_CHARS: usize = 20_000;

/// How a [`Generator`] works.
#[derive(Clone, Debug)]
pub struct GeneratorOptions {
    /// Follow-up rounds that send a draft's problems back (default 2).
    pub repair_rounds: u32,
    /// How drafts are checked.
    pub check: CheckOptions,
}

impl Default for GeneratorOptions {
    fn default() -> Self {
        Self {
            repair_rounds: 2,
            check: CheckOptions::default(),
        }
    }
}

/// One step of progress, for a terminal or a build's event stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The build step it belongs to.
    pub step: BuildStep,
    /// How to show it.
    pub level: Level,
    /// What happened, for a person. Never a secret.
    pub message: String,
}

/// Where progress goes. Any `Fn(Progress)` is one.
pub trait ProgressSink: Send + Sync {
    /// Takes one step of progress.
    fn report(&self, progress: Progress);
}

impl<F: Fn(Progress) + Send + Sync> ProgressSink for F {
    fn report(&self, progress: Progress) {
        self(progress);
    }
}

/// A sink that drops everything.
pub fn no_progress(_: Progress) {}

/// Why no spec came out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The prompt is empty.
    #[error("the prompt is empty; describe the server you want")]
    EmptyPrompt,
    /// The prompt is longer than [`MAX_PROMPT_CHARS`].
    #[error("the prompt is longer than {limit} characters")]
    PromptTooLong {
        /// The limit.
        limit: usize,
    },
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The last answer was not JSON, after every repair round.
    #[error(
        "the model's answer does not parse as JSON after {rounds} round(s):\n{}",
        list(problems)
    )]
    Unparseable {
        /// Answers drafted.
        rounds: u32,
        /// What the parser said.
        problems: Vec<String>,
    },
    /// The last answer still failed its checks, after every repair round.
    #[error("the spec still has {} problem(s) after {rounds} round(s):\n{}", problems.len(), list(problems))]
    Invalid {
        /// Answers drafted.
        rounds: u32,
        /// Every problem of the last answer.
        problems: Vec<String>,
    },
    /// The checker could not be set up.
    #[error("cannot set up the checks: {0}")]
    Setup(String),
}

fn list(problems: &[String]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a person reviews before building: the tools and the credentials
/// the server needs. No secrets means no credentials are needed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Preview {
    /// The tools, in the spec's order.
    pub tools: Vec<ToolPreview>,
    /// The secrets the tools use.
    pub secrets: Vec<SecretPreview>,
}

/// One tool of a [`Preview`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolPreview {
    /// The tool's name.
    pub name: String,
    /// Its title, if it has one.
    pub title: Option<String>,
    /// What it does.
    pub description: String,
    /// Its input schema.
    pub input_schema: Value,
}

/// One secret of a [`Preview`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretPreview {
    /// The secret's name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Where to get it.
    pub how_to_get: Option<String>,
    /// Whether the server refuses to start without it.
    pub required: bool,
}

impl Preview {
    /// The preview of `spec`.
    pub fn of(spec: &ServerSpec) -> Self {
        Self {
            tools: spec
                .tools
                .iter()
                .map(|t| ToolPreview {
                    name: t.name.as_str().to_owned(),
                    title: t.title.clone(),
                    description: t.description.clone(),
                    input_schema: Value::Object(t.input_schema.clone()),
                })
                .collect(),
            secrets: spec
                .secrets
                .iter()
                .map(|s| SecretPreview {
                    name: s.name.as_str().to_owned(),
                    description: s.description.clone(),
                    how_to_get: s.how_to_get.clone(),
                    required: s.required,
                })
                .collect(),
        }
    }
}

/// A checked spec and how it came to be.
#[derive(Debug)]
pub struct Generated {
    /// The spec, validated and dry-run.
    pub spec: ValidatedSpec,
    /// Tools and secrets, for review.
    pub preview: Preview,
    /// What the checks could not settle.
    pub warnings: Vec<String>,
    /// Who drafted it, e.g. `anthropic (claude-sonnet-4-6)` or `mock (offline)`.
    pub produced_by: String,
    /// Whether the offline mock drafted it (no model was asked).
    pub mock: bool,
    /// Answers drafted, the accepted one included.
    pub rounds: u32,
    /// Tokens per model call, in order.
    pub usage: Vec<Usage>,
    /// When iterating: what changed from the current spec.
    pub changes: Option<Changes>,
}

impl Generated {
    /// Tokens of every call together.
    pub fn total_usage(&self) -> Usage {
        let mut total = Usage::default();
        for usage in &self.usage {
            total += *usage;
        }
        total
    }
}

/// Drafts with a provider, checks, repairs.
pub struct Generator {
    provider: Arc<dyn SpecGenerator>,
    checker: Checker,
    options: GeneratorOptions,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("provider", &self.provider.describe())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Generator {
    /// A generator drafting with `provider`.
    pub fn new(
        provider: Arc<dyn SpecGenerator>,
        options: GeneratorOptions,
    ) -> Result<Self, GenerateError> {
        let checker =
            Checker::new(options.check.clone()).map_err(|e| GenerateError::Setup(e.to_string()))?;
        Ok(Self {
            provider,
            checker,
            options,
        })
    }

    /// The checker drafts go through (also usable on imported specs).
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// Generates a new spec, or with [`Request::current`] the next version
    /// of an existing one, reporting progress to `progress`.
    pub async fn generate(
        &self,
        request: Request,
        progress: &dyn ProgressSink,
    ) -> Result<Generated, GenerateError> {
        let prompt = request.prompt.trim();
        if prompt.is_empty() {
            return Err(GenerateError::EmptyPrompt);
        }
        if prompt.chars().count() > MAX_PROMPT_CHARS {
            return Err(GenerateError::PromptTooLong {
                limit: MAX_PROMPT_CHARS,
            });
        }
        let say = |step, level, message: String| {
            progress.report(Progress {
                step,
                level,
                message,
            });
        };
        let mut conversation = Conversation {
            request,
            rounds: Vec::new(),
        };
        let mut usage = Vec::new();
        let max_rounds = self.options.repair_rounds + 1;
        loop {
            let round = conversation.rounds.len() as u32 + 1;
            say(
                BuildStep::Generate,
                Level::Info,
                if round == 1 {
                    format!("asking {}", self.provider.describe())
                } else {
                    format!("asking for a repaired spec (round {round} of {max_rounds})")
                },
            );
            let mut draft = self.provider.draft(&conversation).await?;
            usage.push(draft.usage);
            let u = draft.usage;
            say(
                BuildStep::Generate,
                Level::Info,
                if u == Usage::default() {
                    "draft received".to_owned()
                } else {
                    format!(
                        "answer received ({} input tokens, {} of them from the cache; {} output tokens)",
                        u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens,
                        u.cache_read_input_tokens,
                        u.output_tokens
                    )
                },
            );
            impose(&mut draft.spec, &conversation.request);
            say(
                BuildStep::Validate,
                Level::Info,
                "validating and dry-running the spec".into(),
            );
            match self.checker.check(&draft.spec).await {
                Ok(checked) => {
                    for warning in &checked.warnings {
                        say(BuildStep::DryRun, Level::Warn, warning.clone());
                    }
                    let changes = conversation
                        .request
                        .current
                        .as_ref()
                        .map(|current| Changes::between(current, checked.spec.spec()));
                    say(
                        BuildStep::Validate,
                        Level::Info,
                        format!(
                            "spec accepted: {} tool(s), {} secret(s)",
                            checked.spec.spec().tools.len(),
                            checked.spec.spec().secrets.len()
                        ),
                    );
                    return Ok(Generated {
                        preview: Preview::of(checked.spec.spec()),
                        spec: checked.spec,
                        warnings: checked.warnings,
                        produced_by: self.provider.describe(),
                        mock: self.provider.is_mock(),
                        rounds: round,
                        usage,
                        changes,
                    });
                }
                Err(Rejection {
                    problems,
                    unparseable,
                }) => {
                    for problem in &problems {
                        say(BuildStep::Validate, Level::Error, problem.clone());
                    }
                    if round >= max_rounds {
                        return Err(if unparseable {
                            GenerateError::Unparseable {
                                rounds: round,
                                problems,
                            }
                        } else {
                            GenerateError::Invalid {
                                rounds: round,
                                problems,
                            }
                        });
                    }
                    conversation.rounds.push(Round { draft, problems });
                }
            }
        }
    }
}

/// Makes the draft keep what the person fixed: the name and slug they
/// chose, and when iterating the server's slug and a new version.
fn impose(draft: &mut Value, request: &Request) {
    let Some(object) = draft.as_object_mut() else {
        return;
    };
    if let Some(name) = &request.name {
        object.insert("name".into(), Value::String(name.clone()));
    }
    if let Some(slug) = &request.slug {
        object.insert("slug".into(), Value::String(slug.as_str().to_owned()));
    }
    if let Some(current) = &request.current {
        if request.slug.is_none() {
            object.insert(
                "slug".into(),
                Value::String(current.slug.as_str().to_owned()),
            );
        }
        object.insert(
            "version".into(),
            Value::String(next_version(&current.version)),
        );
    }
}

/// The next minor version: `1.2.3` → `1.3.0`; a version that is not semver
/// gets `.1` appended.
pub fn next_version(version: &str) -> String {
    match semver::Version::parse(version) {
        Ok(v) => semver::Version::new(v.major, v.minor + 1, 0).to_string(),
        Err(_) => format!("{version}.1"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::MockGenerator;

    #[test]
    fn versions_move_forward() {
        assert_eq!(next_version("1.2.3"), "1.3.0");
        assert_eq!(next_version("0.1.0-beta.1"), "0.2.0");
    }

    #[tokio::test]
    async fn the_mock_goes_through_the_whole_pipeline() {
        let generator =
            Generator::new(Arc::new(MockGenerator), GeneratorOptions::default()).unwrap();
        let events = std::sync::Mutex::new(Vec::new());
        let sink = |p: Progress| events.lock().unwrap().push(p);
        let generated = generator
            .generate(Request::new("convert units"), &sink)
            .await
            .unwrap();
        assert!(generated.mock);
        assert_eq!(generated.rounds, 1);
        assert_eq!(generated.preview.tools[0].name, "convert_length");
        assert!(generated.preview.secrets.is_empty());
        let events = events.into_inner().unwrap();
        assert!(events.iter().any(|e| e.step == BuildStep::Validate));

        let next = generator
            .generate(
                Request::iterate(generated.spec.spec().clone(), "add the weather"),
                &no_progress,
            )
            .await
            .unwrap();
        assert_eq!(next.spec.spec().version, "1.1.0");
        assert_eq!(next.spec.spec().slug, generated.spec.spec().slug);
        let changes = next.changes.unwrap();
        assert_eq!(changes.added, ["current_weather"]);
        assert!(changes.removed.is_empty());
    }

    #[tokio::test]
    async fn empty_and_oversized_prompts_are_refused() {
        let generator =
            Generator::new(Arc::new(MockGenerator), GeneratorOptions::default()).unwrap();
        let empty = generator.generate(Request::new("  "), &no_progress).await;
        assert!(matches!(empty, Err(GenerateError::EmptyPrompt)));
        let long = "x".repeat(MAX_PROMPT_CHARS + 1);
        let long = generator.generate(Request::new(long), &no_progress).await;
        assert!(matches!(long, Err(GenerateError::PromptTooLong { .. })));
    }
}
