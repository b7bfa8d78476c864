//! `bmm generate`: a sentence or an OpenAPI document in, a checked spec and
//! a deploy bundle out.
//!
//! With `--prompt`, the spec is drafted by Claude when `ANTHROPIC_API_KEY`
//! is set (model from `--model` or `ANTHROPIC_MODEL`), otherwise — or with
//! `--mock` — by the offline mock generator, which says so. `--iterate SPEC`
//! changes an existing spec as the prompt says and lists what changed. With
//! `--openapi FILE`, the document is imported as one `http` tool per
//! operation. Either way the spec is validated, statically checked and
//! dry-run before anything is written, and the bundle (spec, Dockerfile,
//! compose file, README with install snippets) goes to `--out`.
//!
//! Progress goes to standard error; the summary to standard output, as text
//! or, with `--json`, as one JSON document. `--serve` then serves the new
//! server in this process until Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use bmm_core::{BuildStep, Level, ServerSpec, Slug, ValidatedSpec};
use bmm_deploy::Bundle;
use bmm_generator::codegen::{BundleOptions, Renderer};
use bmm_generator::openapi::{self, ImportOptions};
use bmm_generator::{
    AnthropicConfig, AnthropicGenerator, CheckOptions, Checker, Generated, Generator,
    GeneratorOptions, MockGenerator, Preview, Progress, Rejection, Request, SpecGenerator,
};
use bmm_runtime::HostConfig;
use clap::{ArgGroup, Args};
use serde_json::{Value, json};

use crate::spec::read_limited;

/// Arguments of `bmm generate`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["prompt", "openapi"])))]
pub(crate) struct GenerateArgs {
    /// Describe the server (or, with --iterate, the change) in a sentence or two.
    #[arg(long, value_name = "TEXT")]
    prompt: Option<String>,
    /// Import this OpenAPI 3.0/3.1 document (JSON or YAML) instead.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["iterate", "mock", "model"])]
    openapi: Option<PathBuf>,
    /// Change this existing spec as --prompt says, producing its next version.
    #[arg(long, value_name = "SPEC", requires = "prompt")]
    iterate: Option<PathBuf>,
    /// Write the bundle (server.json, Dockerfile, compose.yaml, README.md) here.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace what --out already holds.
    #[arg(long)]
    force: bool,
    /// The server's name.
    #[arg(long)]
    name: Option<String>,
    /// The server's slug (lowercase letters, digits and hyphens).
    #[arg(long)]
    slug: Option<String>,
    /// Use the offline mock generator even when ANTHROPIC_API_KEY is set.
    #[arg(long)]
    mock: bool,
    /// The Claude model to ask (default: ANTHROPIC_MODEL, else the built-in default).
    #[arg(long)]
    model: Option<String>,
    /// Follow-up rounds that send a draft's problems back to the model.
    #[arg(long, default_value_t = 2, value_name = "N")]
    repair_rounds: u32,
    /// OpenAPI: the API's base URL, when the document's server URL is relative or missing.
    #[arg(long, value_name = "URL", requires = "openapi")]
    base_url: Option<String>,
    /// OpenAPI: import only operations with this tag; repeatable.
    #[arg(long = "include-tag", value_name = "TAG", requires = "openapi")]
    include_tags: Vec<String>,
    /// OpenAPI: skip operations with this tag; repeatable.
    #[arg(long = "exclude-tag", value_name = "TAG", requires = "openapi")]
    exclude_tags: Vec<String>,
    /// OpenAPI: import only this operationId; repeatable.
    #[arg(long = "include-operation", value_name = "ID", requires = "openapi")]
    include_operations: Vec<String>,
    /// OpenAPI: skip this operationId; repeatable.
    #[arg(long = "exclude-operation", value_name = "ID", requires = "openapi")]
    exclude_operations: Vec<String>,
    /// Accept plain http URLs (local development only).
    #[arg(long)]
    allow_http: bool,
    /// The URL the server will be reached at, for the README's install snippets.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Render the bundle from these templates where a file of the same name exists.
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Then serve the server in this process until Ctrl-C (secrets from
    /// `BMM_SECRET_<NAME>` variables).
    #[arg(long)]
    serve: bool,
    /// With --serve: the port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080, requires = "serve")]
    port: u16,
}

/// Runs `bmm generate`.
pub(crate) fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(generate(args))
}

async fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    if let Some(slug) = &args.slug {
        Slug::new(slug.clone()).map_err(|e| anyhow::anyhow!("--slug: {e}"))?;
    }
    check_out_dir(&args.out, args.force)?;
    let renderer = match &args.templates {
        Some(dir) => Renderer::with_overrides(dir),
        None => Renderer::new(),
    }
    .context("cannot load the bundle templates")?;
    let options = GeneratorOptions {
        repair_rounds: args.repair_rounds,
        check: CheckOptions {
            allow_http: args.allow_http,
            ..CheckOptions::default()
        },
    };
    let outcome = match &args.openapi {
        Some(file) => import(&args, file, options).await?,
        None => draft(&args, options).await?,
    };

    progress(&Progress {
        step: BuildStep::Bundle,
        level: Level::Info,
        message: format!("writing the bundle to {}", args.out.display()),
    });
    let bundle_options = BundleOptions {
        public_url: args.public_url.clone(),
        ..BundleOptions::default()
    };
    let bundle = renderer
        .bundle(&outcome.spec, &bundle_options)
        .context("cannot render the bundle")?;
    bundle
        .write_to(&args.out, args.force)
        .with_context(|| format!("cannot write the bundle to {}", args.out.display()))?;
    let files: Vec<String> = bundle.files.iter().map(|f| f.path.clone()).collect();

    if args.json {
        print_json(&outcome, &args.out, &files)?;
    } else {
        print_summary(&outcome, &args.out, &files);
    }
    if args.serve {
        serve(&args, outcome.spec).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--serve`: the new server in this process, in the foreground.
async fn serve(args: &GenerateArgs, spec: ValidatedSpec) -> anyhow::Result<()> {
    let secrets = crate::run::declared_secrets(&spec, &crate::run::secret_values(false)?);
    let mut config = HostConfig::default();
    config.serve.https_only = !args.allow_http;
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let bundle = Bundle::from_spec(spec).with_secrets(secrets);
    crate::deploy::serve_until_interrupted(config, addr, bundle).await
}

/// Refuses an output folder that has files in it, unless `force`.
fn check_out_dir(out: &Path, force: bool) -> anyhow::Result<()> {
    if force || !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        bail!("--out {} exists and is not a folder", out.display());
    }
    let mut entries =
        std::fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))?;
    if entries.next().is_some() {
        bail!(
            "--out {} is not empty; choose another folder or add --force to replace its bundle",
            out.display()
        );
    }
    Ok(())
}

fn provider(args: &GenerateArgs) -> anyhow::Result<Arc<dyn SpecGenerator>> {
    if args.mock {
        return Ok(Arc::new(MockGenerator));
    }
    let has_key = std::env::var("ANTHROPIC_API_KEY").is_ok_and(|k| !k.trim().is_empty());
    if !has_key {
        if args.model.is_some() {
            bail!(
                "--model needs ANTHROPIC_API_KEY (it is not set); or drop --model to use the mock"
            );
        }
        eprintln!(
            "bmm: ANTHROPIC_API_KEY is not set; using the offline mock generator \
             (its servers are examples, not what you described)"
        );
        return Ok(Arc::new(MockGenerator));
    }
    let mut config = AnthropicConfig::from_env()?;
    if let Some(model) = &args.model {
        config.model = model.clone();
    }
    Ok(Arc::new(AnthropicGenerator::new(config)?))
}

async fn draft(args: &GenerateArgs, options: GeneratorOptions) -> anyhow::Result<Generated> {
    let prompt = args.prompt.clone().unwrap_or_default();
    let mut request = match &args.iterate {
        Some(file) => Request::iterate(load_spec(file)?, prompt),
        None => Request::new(prompt),
    };
    request.name = args.name.clone();
    request.slug = args.slug.clone().map(Slug::new).transpose()?;
    let generator = Generator::new(provider(args)?, options)?;
    Ok(generator
        .generate(request, &|p: Progress| progress(&p))
        .await?)
}

async fn import(
    args: &GenerateArgs,
    file: &Path,
    options: GeneratorOptions,
) -> anyhow::Result<Generated> {
    let text = read_limited(file)?;
    let mut import = ImportOptions::new().allow_http(args.allow_http);
    import.name = args.name.clone();
    import.slug = args.slug.clone();
    import.base_url = args.base_url.clone();
    import.include_tags = args.include_tags.clone();
    import.exclude_tags = args.exclude_tags.clone();
    import.include_operations = args.include_operations.clone();
    import.exclude_operations = args.exclude_operations.clone();
    progress(&Progress {
        step: BuildStep::Generate,
        level: Level::Info,
        message: format!("importing {}", file.display()),
    });
    let imported = openapi::import(&text, &import)
        .with_context(|| format!("cannot import {}", file.display()))?;
    let mut warnings: Vec<String> = imported.warnings.iter().map(ToString::to_string).collect();
    for warning in &warnings {
        progress(&Progress {
            step: BuildStep::Generate,
            level: Level::Warn,
            message: warning.clone(),
        });
    }
    progress(&Progress {
        step: BuildStep::Validate,
        level: Level::Info,
        message: "validating and dry-running the spec".into(),
    });
    let checker = Checker::new(options.check)?;
    let draft = serde_json::to_value(&imported.spec)?;
    let checked = match checker.check(&draft).await {
        Ok(checked) => checked,
        Err(Rejection { problems, .. }) => bail!(
            "the imported spec has {} problem(s):\n{}",
            problems.len(),
            problems
                .iter()
                .map(|p| format!("  - {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    warnings.extend(checked.warnings);
    Ok(Generated {
        preview: Preview::of(checked.spec.spec()),
        spec: checked.spec,
        warnings,
        produced_by: "openapi importer".into(),
        mock: false,
        rounds: 1,
        usage: Vec::new(),
        changes: None,
    })
}

fn load_spec(file: &Path) -> anyhow::Result<ServerSpec> {
    let options = bmm_core::CheckOptions::default().allow_http(true);
    Ok(crate::run::load(file, &options)?.into_spec())
}

fn progress(progress: &Progress) {
    let step = match progress.step {
        BuildStep::Generate => "generate",
        BuildStep::Validate => "validate",
        BuildStep::DryRun => "dry run",
        BuildStep::Bundle => "bundle",
        _ => "build",
    };
    let level = match progress.level {
        Level::Info => "",
        Level::Warn => "warning: ",
        Level::Error => "problem: ",
    };
    eprintln!("[{step}] {level}{}", progress.message);
}

fn print_summary(outcome: &Generated, out: &Path, files: &[String]) {
    let spec = outcome.spec.spec();
    println!(
        "{} ({}) v{}: {} tool(s), drafted by {}{}",
        spec.name,
        spec.slug.as_str(),
        spec.version,
        spec.tools.len(),
        outcome.produced_by,
        if outcome.rounds > 1 {
            format!(" in {} rounds", outcome.rounds)
        } else {
            String::new()
        }
    );
    if outcome.mock {
        println!(
            "note: the offline mock generator drafted this; set ANTHROPIC_API_KEY to ask Claude"
        );
    }
    println!("\nTools:");
    for tool in &outcome.preview.tools {
        println!("  {}: {}", tool.name, first_line(&tool.description));
    }
    if outcome.preview.secrets.is_empty() {
        println!("\nSecrets: none needed");
    } else {
        println!("\nSecrets (give each as BMM_SECRET_<NAME> when running):");
        for secret in &outcome.preview.secrets {
            let how = secret
                .how_to_get
                .as_deref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            println!(
                "  {}: {}{how}",
                secret.name,
                first_line(&secret.description)
            );
        }
    }
    if let Some(changes) = &outcome.changes {
        println!("\nChanges:");
        for line in changes.summary() {
            println!("  {line}");
        }
    }
    if !outcome.warnings.is_empty() {
        println!("\nWarnings:");
        for warning in &outcome.warnings {
            println!("  {warning}");
        }
    }
    if !outcome.usage.is_empty() && !outcome.mock {
        let t = outcome.total_usage();
        println!(
            "\nTokens: {} input ({} from cache), {} output",
            t.input_tokens + t.cache_read_input_tokens + t.cache_creation_input_tokens,
            t.cache_read_input_tokens,
            t.output_tokens
        );
    }
    println!("\nWrote {} to {}", files.join(", "), out.display());
    println!(
        "Serve it: bmm run --spec {}",
        out.join("server.json").display()
    );
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn print_json(outcome: &Generated, out: &Path, files: &[String]) -> anyhow::Result<()> {
    let spec = outcome.spec.spec();
    let value: Value = json!({
        "name": spec.name,
        "slug": spec.slug.as_str(),
        "version": spec.version,
        "produced_by": outcome.produced_by,
        "mock": outcome.mock,
        "rounds": outcome.rounds,
        "usage": outcome.usage,
        "total_usage": outcome.total_usage(),
        "tools": outcome.preview.tools,
        "secrets": outcome.preview.secrets,
        "warnings": outcome.warnings,
        "changes": outcome.changes,
        "out": out.display().to_string(),
        "files": files,
    });
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}
