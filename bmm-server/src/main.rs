//! The `bmm` binary: build, check and (as the project grows) serve MCP servers.
//!
//! Subcommands are grouped by noun (`bmm spec …`); each group lives in its own
//! module with a clap `Subcommand` enum and a `run` function returning the
//! process exit code, so later groups (`serve`, `run`, `generate`, `deploy`)
//! slot in as one enum variant and one module each.

/// Prints a line on standard output. A runner must keep serving when nobody
/// reads its output (a closed pipe), so write errors are ignored.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Like `say!`, on standard error.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod auth;
mod deploy;
mod generate;
mod run;
mod spec;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// bmm — build my MCP server.
#[derive(Debug, Parser)]
#[command(name = "bmm", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with ServerSpec documents: validate them, print their JSON Schema.
    #[command(subcommand)]
    Spec(spec::SpecCommand),
    /// Serve one spec, or every spec in a folder, as MCP servers over Streamable HTTP.
    Run(run::RunArgs),
    /// Draft a spec from a sentence (Claude, or the offline mock) or import an
    /// OpenAPI document; check it and write a deploy bundle.
    Generate(generate::GenerateArgs),
    /// Deploy a bundle (or spec) in-process, as a local process or to Docker.
    Deploy(deploy::DeployArgs),
    /// List deployed servers (process and Docker targets).
    Ps(deploy::PsArgs),
    /// Print a deployed server's log.
    Logs(deploy::LogsArgs),
    /// Stop a deployed server and remove everything deployed for it.
    Rm(deploy::RmArgs),
    /// Supervise one process deployment (started by `bmm deploy --target process`).
    #[command(hide = true)]
    Supervise(deploy::SuperviseArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Spec(command) => spec::run(command),
        Command::Run(args) => run::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Deploy(args) => deploy::deploy(args),
        Command::Ps(args) => deploy::ps(args),
        Command::Logs(args) => deploy::logs(args),
        Command::Rm(args) => deploy::rm(args),
        Command::Supervise(args) => deploy::supervise(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
