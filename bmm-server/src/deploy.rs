//! `bmm deploy`, `bmm ps`, `bmm logs`, `bmm rm`: put a spec somewhere with a
//! [`bmm_deploy::Deployer`] and manage it from later invocations.
//!
//! `--target inprocess` serves in the foreground until interrupted. `process`
//! and `docker` detach: a process deployment lives under a detached
//! `bmm supervise` (recorded in the state folder, `$BMM_STATE_DIR` or
//! `~/.local/state/bmm`), a Docker deployment in labelled containers, so
//! `bmm ps`, `bmm logs` and `bmm rm` find them later. Secret values come from
//! `BMM_SECRET_<NAME>` variables and/or `--secrets-stdin`, as for `bmm run`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bmm_core::CheckOptions;
use bmm_deploy::coolify::{CoolifyConfig, CoolifyDeployer};
use bmm_deploy::{
    Bundle, DeployError, DeployOptions, Deployer, Deployment, DockerConfig, DockerDeployer,
    InProcessDeployer, LogSource, PortRange, ProcessConfig, ProcessDeployer,
};
use bmm_runtime::HostConfig;
use clap::{Args, ValueEnum};
use futures_util::StreamExt;

/// Deploy targets named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TargetArg {
    /// Serve in this process, in the foreground, until interrupted.
    Inprocess,
    /// A supervised local `bmm run` process (detached).
    Process,
    /// A hardened Docker container (detached).
    Docker,
    /// A Coolify application (configured by COOLIFY_URL, COOLIFY_TOKEN, … — see the book).
    Coolify,
}

/// Where deployments are recorded and reached; shared by every subcommand.
#[derive(Debug, Args)]
pub(crate) struct Place {
    /// State folder of process deployments [default: $BMM_STATE_DIR, else ~/.local/state/bmm].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Docker daemon socket [default: $DOCKER_HOST, else /var/run/docker.sock].
    #[arg(long, value_name = "SOCKET")]
    docker_host: Option<String>,
}

/// Arguments of `bmm deploy`.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// A bundle folder holding server.json, or a spec file (JSON or YAML).
    bundle: PathBuf,
    /// Where to deploy.
    #[arg(long, value_enum, default_value = "process")]
    target: TargetArg,
    /// Ports servers may listen on (host ports for Docker), `A-B`.
    #[arg(long, value_name = "A-B", default_value = "18000-18999")]
    port_range: String,
    /// Address servers (or published container ports) bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Organisation that owns the server (recorded, e.g. as a Docker label).
    #[arg(long)]
    org: Option<String>,
    /// Seconds the new version has to pass its health check.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    health_timeout: u64,
    /// Also accept this `Host` header (a public name behind a proxy); repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// Accept plain http URLs in the spec (local development only).
    #[arg(long)]
    allow_http: bool,
    /// Let tools reach this otherwise forbidden network (development only); repeatable.
    #[arg(long = "allow-network", value_name = "CIDR")]
    allow_networks: Vec<String>,
    /// Read secret values as a JSON object `{"NAME": "value"}` from standard input.
    #[arg(long)]
    secrets_stdin: bool,
    /// The static bmm binary Docker images carry [default: $BMM_STATIC_BINARY].
    #[arg(long, value_name = "FILE")]
    static_binary: Option<PathBuf>,
    /// Memory limit per container, MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    memory_mb: i64,
    /// CPU limit per container.
    #[arg(long, default_value_t = 1.0)]
    cpus: f64,
    /// Process limit per container.
    #[arg(long, default_value_t = 256)]
    pids_limit: i64,
    #[command(flatten)]
    place: Place,
}

/// Arguments of `bmm ps`.
#[derive(Debug, Args)]
pub(crate) struct PsArgs {
    /// Only this target [default: process, and docker when its daemon answers].
    #[arg(long, value_enum)]
    target: Option<TargetArg>,
    #[command(flatten)]
    place: Place,
}

/// Arguments of `bmm logs`.
#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// The server's slug.
    server: String,
    /// Keep printing new lines until interrupted.
    #[arg(short, long)]
    follow: bool,
    /// Only look on this target.
    #[arg(long, value_enum)]
    target: Option<TargetArg>,
    #[command(flatten)]
    place: Place,
}

/// Arguments of `bmm rm`.
#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// The server's slug.
    server: String,
    /// Only look on this target.
    #[arg(long, value_enum)]
    target: Option<TargetArg>,
    #[command(flatten)]
    place: Place,
}

/// Arguments of the hidden `bmm supervise`.
#[derive(Debug, Args)]
pub(crate) struct SuperviseArgs {
    /// The instance folder a process deployment wrote.
    dir: PathBuf,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs `bmm deploy`.
pub(crate) fn deploy(args: DeployArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(deploy_async(args))
}

/// Runs `bmm ps`.
pub(crate) fn ps(args: PsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let deployers = deployers(args.target, &args.place).await?;
        let mut rows: Vec<Deployment> = Vec::new();
        for deployer in &deployers {
            rows.extend(deployer.list().await?);
        }
        say!(
            "{:<24} {:<12} {:<10} {:<28} URL",
            "SERVER",
            "VERSION",
            "TARGET",
            "STATUS"
        );
        for d in rows {
            say!(
                "{:<24} {:<12} {:<10} {:<28} {}",
                d.server,
                d.version,
                d.target,
                d.status.to_string(),
                d.url
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `bmm logs`.
pub(crate) fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let deployer = find(&args.server, args.target, &args.place).await?;
        let mut lines = deployer.logs(&args.server, args.follow).await?;
        while let Some(line) = lines.next().await {
            let line = line?;
            match line.source {
                LogSource::Deployer => say!("bmm: {}", line.text),
                LogSource::Stdout | LogSource::Stderr => say!("{}", line.text),
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `bmm rm`.
pub(crate) fn rm(args: RmArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let deployer = find(&args.server, args.target, &args.place).await?;
        deployer.remove(&args.server).await?;
        say!("bmm: removed {} ({})", args.server, deployer.target());
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs the hidden `bmm supervise DIR` that process deployments start.
pub(crate) fn supervise(args: SuperviseArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(bmm_deploy::supervise(&args.dir))?;
    Ok(ExitCode::SUCCESS)
}

async fn deploy_async(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let port_range: PortRange = args.port_range.parse()?;
    let check = CheckOptions::default().allow_http(args.allow_http);
    let secrets = crate::run::secret_values(args.secrets_stdin)?;
    let progress = Arc::new(|event: bmm_deploy::DeployEvent| note!("bmm: {}", event.message));
    let options = DeployOptions {
        org: args.org.clone(),
        health_timeout: Duration::from_secs(args.health_timeout),
        allowed_hosts: args.allow_hosts.clone(),
        allow_http: args.allow_http,
        allow_networks: args.allow_networks.clone(),
        progress: Some(progress),
    };
    let bundle = Bundle::from_dir(&args.bundle, &check)?;
    let declared = crate::run::declared_secrets(&bundle.spec, &secrets);
    let bundle = bundle.with_secrets(declared).with_options(options);

    match args.target {
        TargetArg::Inprocess => serve_in_process(&args, port_range, bundle).await,
        TargetArg::Process => {
            let deployer = process_deployer(&args.place, Some((port_range, args.bind)))?;
            report_reconciled(&deployer).await?;
            finish(deployer.deploy(bundle).await?)
        }
        TargetArg::Docker => {
            let binary = args
                .static_binary
                .clone()
                .or_else(|| std::env::var_os("BMM_STATIC_BINARY").map(PathBuf::from))
                .context(
                    "the Docker target needs a static bmm binary: build it with \
                     scripts/build-static and pass --static-binary FILE or set BMM_STATIC_BINARY",
                )?;
            let mut config = DockerConfig::new(binary);
            config.socket = args.place.docker_host.clone();
            config.port_range = port_range;
            config.bind = args.bind;
            config.memory_bytes = args.memory_mb.saturating_mul(1 << 20);
            config.pids_limit = args.pids_limit;
            // Whole billionths of a CPU; the cast saturates on absurd input.
            config.nano_cpus = (args.cpus * 1e9) as i64;
            let deployer = DockerDeployer::connect(config).await?;
            report_reconciled(&deployer).await?;
            finish(deployer.deploy(bundle).await?)
        }
        TargetArg::Coolify => {
            let deployer = coolify()?;
            report_reconciled(&deployer).await?;
            finish(deployer.deploy(bundle).await?)
        }
    }
}

/// The Coolify deployer, configured from `COOLIFY_*` variables.
fn coolify() -> anyhow::Result<CoolifyDeployer> {
    Ok(CoolifyDeployer::new(CoolifyConfig::from_env()?)?)
}

fn finish(deployment: Deployment) -> anyhow::Result<ExitCode> {
    say!(
        "bmm: deployed {} v{} to {} at {} (id {})",
        deployment.server,
        deployment.version,
        deployment.target,
        deployment.url,
        deployment.id
    );
    Ok(ExitCode::SUCCESS)
}

async fn report_reconciled(deployer: &dyn Deployer) -> anyhow::Result<()> {
    let report = deployer.reconcile().await?;
    for id in &report.cleaned {
        note!("bmm: cleaned up {id}, left by an earlier run");
    }
    Ok(())
}

/// `--target inprocess`: one host in this process, in the foreground.
async fn serve_in_process(
    args: &DeployArgs,
    range: PortRange,
    bundle: Bundle,
) -> anyhow::Result<ExitCode> {
    let mut config = HostConfig::default();
    config
        .allowed_hosts
        .extend(args.allow_hosts.iter().cloned());
    config.serve.https_only = !args.allow_http;
    config.serve.allowed_networks = args.allow_networks.clone();
    let port = range.pick(args.bind, &Default::default())?;
    serve_until_interrupted(config, SocketAddr::new(args.bind, port), bundle).await?;
    Ok(ExitCode::SUCCESS)
}

/// Serves `bundle` from a host in this process at `addr` until Ctrl-C or
/// SIGTERM, printing the URL it serves at (`bmm deploy --target inprocess`,
/// `bmm generate --serve`).
pub(crate) async fn serve_until_interrupted(
    config: HostConfig,
    addr: SocketAddr,
    bundle: Bundle,
) -> anyhow::Result<()> {
    let deployer = InProcessDeployer::serve(config, addr).await?;
    let deployment = deployer.deploy(bundle).await?;
    say!(
        "bmm: serving {} v{} in this process at {} (Ctrl-C or SIGTERM stops it)",
        deployment.server,
        deployment.version,
        deployment.url
    );
    bmm_runtime::shutdown_signal().await;
    say!("bmm: shutting down");
    Ok(())
}

fn state_dir(place: &Place) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &place.state_dir {
        return Ok(dir.clone());
    }
    if let Some(dir) = std::env::var_os("BMM_STATE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return Ok(Path::new(&dir).join("bmm"));
    }
    let home = std::env::var_os("HOME").context("set BMM_STATE_DIR or HOME")?;
    Ok(Path::new(&home).join(".local/state/bmm"))
}

fn process_deployer(
    place: &Place,
    ports: Option<(PortRange, IpAddr)>,
) -> anyhow::Result<ProcessDeployer> {
    let binary = std::env::current_exe().context("cannot find the bmm binary")?;
    let mut config = ProcessConfig::new(binary, state_dir(place)?);
    if let Some((range, bind)) = ports {
        config.port_range = range;
        config.bind = bind;
    }
    Ok(ProcessDeployer::new(config)?)
}

/// The deployers `ps`, `logs` and `rm` look at: the one asked for, or
/// process and (when its daemon answers) Docker.
async fn deployers(
    target: Option<TargetArg>,
    place: &Place,
) -> anyhow::Result<Vec<Box<dyn Deployer>>> {
    let docker = || {
        let mut config = DockerConfig::new(PathBuf::new());
        config.socket = place.docker_host.clone();
        DockerDeployer::connect(config)
    };
    let mut out: Vec<Box<dyn Deployer>> = Vec::new();
    match target {
        Some(TargetArg::Process) => out.push(Box::new(process_deployer(place, None)?)),
        Some(TargetArg::Docker) => out.push(Box::new(docker().await?)),
        Some(TargetArg::Inprocess) => {
            bail!("in-process servers live in the `bmm deploy --target inprocess` that serves them")
        }
        Some(TargetArg::Coolify) => out.push(Box::new(coolify()?)),
        None => {
            out.push(Box::new(process_deployer(place, None)?));
            if let Ok(docker) = docker().await {
                out.push(Box::new(docker));
            }
            if std::env::var_os("COOLIFY_URL").is_some() {
                out.push(Box::new(coolify()?));
            }
        }
    }
    Ok(out)
}

/// The deployer that has `server`.
async fn find(
    server: &str,
    target: Option<TargetArg>,
    place: &Place,
) -> anyhow::Result<Box<dyn Deployer>> {
    for deployer in deployers(target, place).await? {
        match deployer.status(server).await {
            Ok(_) => return Ok(deployer),
            Err(DeployError::UnknownServer { .. }) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(DeployError::UnknownServer {
        server: server.to_owned(),
    }
    .into())
}
