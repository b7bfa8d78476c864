//! Turning a sentence or an OpenAPI document into a checked `ServerSpec`,
//! and a checked spec into a deployable bundle.
//!
//! # Module map
//!
//! | module | what it holds |
//! |---|---|
//! | [`provider`] | [`SpecGenerator`], the trait every drafting provider implements, and its vocabulary ([`Request`], [`Conversation`], [`Draft`], [`Usage`], [`ProviderError`]) |
//! | [`anthropic`] | [`AnthropicGenerator`]: Claude over the Messages API, with forced tool use, prompt caching and retries |
//! | [`mock`] | [`MockGenerator`]: deterministic offline drafts for demos and tests |
//! | [`prompt`] | the one system prompt and the turns every provider sends |
//! | [`check`] | [`Checker`]: validation, static checks and the offline dry run of every tool |
//! | [`generate`] | [`Generator`]: drafts through checks and the repair loop to a [`Generated`] spec with its [`Preview`] |
//! | [`diff`] | [`Changes`] between two versions of a spec |
//! | [`openapi`] | importing an OpenAPI 3.0/3.1 document as one `http` tool per operation |
//! | [`codegen`] | rendering a spec into a deploy bundle, install snippets and an ejected cargo project |
//!
//! # Generating a spec
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use bmm_generator::{Generator, GeneratorOptions, MockGenerator, Request, no_progress};
//!
//! let generator = Generator::new(Arc::new(MockGenerator), GeneratorOptions::default())?;
//! let generated = generator.generate(Request::new("convert units"), &no_progress).await?;
//! assert!(generated.mock);
//! assert_eq!(generated.preview.tools[0].name, "convert_length");
//! assert!(generated.preview.secrets.is_empty()); // no credentials needed
//! # Ok(())
//! # }
//! ```

pub mod anthropic;
pub mod check;
pub mod codegen;
pub mod diff;
pub mod generate;
pub mod mock;
pub mod openapi;
pub mod prompt;
pub mod provider;

pub use anthropic::{AnthropicConfig, AnthropicGenerator, DEFAULT_MODEL};
pub use check::{CheckOptions, Checked, Checker, DryRun, Rejection};
pub use diff::{Changes, ToolChange};
pub use generate::{
    GenerateError, Generated, Generator, GeneratorOptions, MAX_PROMPT_CHARS, Preview, Progress,
    ProgressSink, SecretPreview, ToolPreview, no_progress,
};
pub use mock::{MOCK_NOTICE, MockGenerator};
pub use provider::{Conversation, Draft, ProviderError, Request, Round, SpecGenerator, Usage};
