//! `bmm spec`: validate ServerSpec documents and print the format's JSON Schema.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use bmm_core::{
    CheckOptions, Diagnostic, Format, MAX_DOCUMENT_BYTES, Report, ServerSpec, check, parse_document,
};
use clap::{Subcommand, ValueEnum};
use serde_json::json;

/// Subcommands of `bmm spec`.
#[derive(Debug, Subcommand)]
pub(crate) enum SpecCommand {
    /// Check a spec: print every error and warning with its path.
    ///
    /// Exits 0 when the spec is valid (warnings are printed), 1 when it has
    /// errors or cannot be read.
    Validate {
        /// The spec file (JSON or YAML), or `-` for standard input.
        file: PathBuf,
        /// The file's format; by default from its extension, else guessed from its text.
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// Accept plain http URLs (local development only).
        #[arg(long)]
        allow_http: bool,
        /// Print the result as JSON on standard output.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the ServerSpec format.
    Schema,
}

/// A spec file format named on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum FormatArg {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Runs one `bmm spec` subcommand.
pub(crate) fn run(command: SpecCommand) -> anyhow::Result<ExitCode> {
    match command {
        SpecCommand::Schema => {
            let mut out = io::stdout().lock();
            writeln!(out, "{:#}", ServerSpec::json_schema())?;
            Ok(ExitCode::SUCCESS)
        }
        SpecCommand::Validate {
            file,
            format,
            allow_http,
            json,
        } => validate(
            &file,
            format,
            CheckOptions::default().allow_http(allow_http),
            json,
        ),
    }
}

fn validate(
    file: &Path,
    format: Option<FormatArg>,
    options: CheckOptions,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let text = read_limited(file)?;
    let format = match format {
        Some(FormatArg::Json) => Format::Json,
        Some(FormatArg::Yaml) => Format::Yaml,
        None => Format::from_path(file).unwrap_or_else(|| Format::sniff(&text)),
    };
    let shown = file.display();
    let document = match parse_document(&text, format) {
        Ok(document) => document,
        Err(error) if as_json => {
            print_json(
                &json!({"file": shown.to_string(), "valid": false, "error": error.to_string(), "diagnostics": []}),
            )?;
            return Ok(ExitCode::FAILURE);
        }
        Err(error) => bail!("{shown}: {error}"),
    };
    let (report, summary) = match check(&document, &options) {
        Ok(valid) => {
            let spec = valid.spec();
            let summary = format!(
                "{shown}: valid — server `{}` v{}, {} tool(s), {} secret(s), {} warning(s)",
                spec.slug,
                spec.version,
                spec.tools.len(),
                spec.secrets.len(),
                valid.warnings().warnings().count()
            );
            (valid.warnings().clone(), summary)
        }
        Err(report) => {
            let summary = format!(
                "{shown}: invalid — {} error(s), {} warning(s)",
                report.errors().count(),
                report.warnings().count()
            );
            (report, summary)
        }
    };
    let valid = !report.has_errors();
    if as_json {
        print_json(&json!({
            "file": shown.to_string(),
            "valid": valid,
            "diagnostics": report.diagnostics(),
        }))?;
    } else {
        print_report(&report, &summary)?;
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(report: &Report, summary: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    for diagnostic in report.diagnostics() {
        writeln!(out, "{}", render(diagnostic))?;
    }
    writeln!(out, "{summary}")
}

fn render(diagnostic: &Diagnostic) -> String {
    diagnostic.to_string()
}

fn print_json(value: &serde_json::Value) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{value:#}")
}

/// Reads a file (or standard input for `-`), refusing anything over the
/// document limit before it is all in memory.
pub(crate) fn read_limited(file: &Path) -> anyhow::Result<String> {
    let limit = MAX_DOCUMENT_BYTES as u64;
    let shown = file.display();
    let reader: Box<dyn Read> = if file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        let handle = File::open(file).with_context(|| format!("cannot open {shown}"))?;
        let size = handle.metadata().map(|m| m.len()).unwrap_or(0);
        if size > limit {
            bail!("{shown} is {size} bytes, more than the limit of {limit} bytes for a spec");
        }
        Box::new(handle)
    };
    let mut bytes = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {shown}"))?;
    if bytes.len() as u64 > limit {
        bail!("{shown} is more than the limit of {limit} bytes for a spec");
    }
    String::from_utf8(bytes).with_context(|| format!("{shown} is not UTF-8 text"))
}
