//! The local-process target: each server is a `bmm run` child of a detached
//! supervisor process (`bmm supervise DIR`), both recorded in a state folder
//! so a later invocation (`bmm ps`, `bmm logs`, `bmm rm`) finds them.
//!
//! # State
//!
//! ```text
//! STATE_DIR/servers/SLUG/current          id of the instance that serves
//! STATE_DIR/servers/SLUG/ID/server.json   the spec
//! STATE_DIR/servers/SLUG/ID/instance.json how to run it (port, bind, flags; no secrets)
//! STATE_DIR/servers/SLUG/ID/status.json   the supervisor's view (child pid, ready, restarts)
//! STATE_DIR/servers/SLUG/ID/supervisor.pid
//! STATE_DIR/servers/SLUG/ID/log           stdout/stderr of the runner, supervisor notes
//! STATE_DIR/servers/SLUG/ID/stopped       present once stopped on request
//! ```
//!
//! Secret values are never written there: the deployer hands them to the
//! supervisor as `BMM_SECRET_<NAME>` environment variables (its environment
//! is otherwise cleared), and the supervisor hands them on to each runner.
//! A supervisor that dies therefore takes the values with it; reconciling
//! cleans its record and the server must be deployed again.
//!
//! # Blue/green
//!
//! A redeploy starts a new instance on another port of the range, waits for
//! its health check, then points `current` at it and stops the old one. The
//! server's URL moves to the new port; a stable address in front is a
//! reverse proxy's job. When the new instance fails, it is stopped and
//! removed, and the error quotes the end of its log.

use std::collections::HashSet;
use std::fs;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bmm_core::BuildStep;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Mutex;
use url::Url;

use crate::{
    Bundle, DeployError, Deployer, Deployment, LogLine, LogSource, LogStream, PortRange,
    Reconciled, Result, Status, Target, check_health,
};

/// The log file is rotated (to `log.1`) when it grows past this size.
const LOG_ROTATE_BYTES: u64 = 8 << 20;

/// How a [`ProcessDeployer`] runs servers. A `Config` struct with public fields.
#[derive(Clone, Debug)]
pub struct ProcessConfig {
    /// The `bmm` binary (it must have the `run` and `supervise` subcommands);
    /// the CLI passes `std::env::current_exe()`.
    pub binary: PathBuf,
    /// Where deployments are recorded (the CLI's default: `$BMM_STATE_DIR`
    /// or `~/.local/state/bmm`).
    pub state_dir: PathBuf,
    /// Ports servers listen on.
    pub port_range: PortRange,
    /// Address servers bind (default `127.0.0.1`).
    pub bind: IpAddr,
    /// First delay before restarting a dead runner; it doubles up to
    /// `restart_max` and starts over after a minute of uptime.
    pub restart_initial: Duration,
    /// Longest delay between restarts.
    pub restart_max: Duration,
}

impl ProcessConfig {
    /// The defaults for `binary` and `state_dir`: ports 18000-18999 on
    /// 127.0.0.1, restarts after 200 ms doubling up to 30 s.
    pub fn new(binary: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            state_dir: state_dir.into(),
            port_range: PortRange::DEFAULT,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            restart_initial: Duration::from_millis(200),
            restart_max: Duration::from_secs(30),
        }
    }
}

/// Deploys servers as supervised local `bmm run` processes.
#[derive(Debug)]
pub struct ProcessDeployer {
    config: ProcessConfig,
    /// Deploys, stops and removals one at a time (ports, `current`).
    lock: Mutex<()>,
}

/// How the supervisor runs one instance: written by the deployer, read by
/// the supervisor and by later invocations. Holds no secret.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Instance {
    id: String,
    server: String,
    version: String,
    binary: PathBuf,
    port: u16,
    bind: IpAddr,
    allowed_hosts: Vec<String>,
    allow_http: bool,
    allow_networks: Vec<String>,
    org: Option<String>,
    restart_initial_ms: u64,
    restart_max_ms: u64,
}

/// What the supervisor reports about its runner.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Supervised {
    child_pid: Option<u32>,
    ready: bool,
    restarts: u32,
    last_exit: Option<String>,
}

impl ProcessDeployer {
    /// A deployer with `config`; creates the state folder.
    pub fn new(config: ProcessConfig) -> Result<Self> {
        let servers = config.state_dir.join("servers");
        fs::create_dir_all(&servers)
            .map_err(|e| DeployError::io(format!("cannot create {}", servers.display()), e))?;
        Ok(Self {
            config,
            lock: Mutex::new(()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ProcessConfig {
        &self.config
    }

    /// The process ids of `server`'s supervisor and of its current runner
    /// (none while it restarts), e.g. to measure memory.
    pub fn pids(&self, server: &str) -> Result<(u32, Option<u32>)> {
        let dir = self.current_dir(server)?;
        let supervisor = alive_supervisor(&dir).ok_or_else(|| DeployError::State {
            path: dir.clone(),
            reason: "its supervisor is not running".into(),
        })?;
        let child = read_status(&dir).child_pid.filter(|pid| is_alive(*pid));
        Ok((supervisor, child))
    }

    fn server_dir(&self, server: &str) -> PathBuf {
        self.config.state_dir.join("servers").join(server)
    }

    fn current_dir(&self, server: &str) -> Result<PathBuf> {
        let unknown = || DeployError::UnknownServer {
            server: server.to_owned(),
        };
        // A slug is a validated identifier, but a name typed on the command
        // line is not: never let it leave the state folder.
        if server.is_empty()
            || !server
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(unknown());
        }
        let base = self.server_dir(server);
        let id = fs::read_to_string(base.join("current")).map_err(|_| unknown())?;
        let dir = base.join(id.trim());
        if !dir.join("instance.json").is_file() {
            return Err(unknown());
        }
        Ok(dir)
    }

    fn deployment(&self, dir: &Path) -> Result<Deployment> {
        let instance = read_instance(dir)?;
        let status = if dir.join("stopped").exists() {
            Status::Stopped
        } else if alive_supervisor(dir).is_none() {
            Status::Failed {
                reason: "its supervisor is not running (reconcile cleans it; deploy again)".into(),
            }
        } else {
            let seen = read_status(dir);
            match (seen.ready, seen.restarts) {
                (true, _) => Status::Running,
                (false, 0) => Status::Starting,
                (false, attempt) => Status::Restarting { attempt },
            }
        };
        Ok(Deployment {
            id: instance.id.clone(),
            server: instance.server.clone(),
            version: instance.version.clone(),
            target: Target::Process,
            url: instance_url(&instance)?,
            status,
        })
    }

    /// Ports held by every instance whose supervisor lives.
    fn taken_ports(&self) -> HashSet<u16> {
        let mut taken = HashSet::new();
        for server in list_dirs(&self.config.state_dir.join("servers")) {
            for dir in list_dirs(&server) {
                if alive_supervisor(&dir).is_some()
                    && let Ok(instance) = read_instance(&dir)
                {
                    taken.insert(instance.port);
                }
            }
        }
        taken
    }

    fn spawn_supervisor(&self, dir: &Path, bundle: &Bundle) -> Result<()> {
        let log = fs::File::create(dir.join("supervisor.err"))
            .map_err(|e| DeployError::io("cannot create the supervisor's error file", e))?;
        let mut command = tokio::process::Command::new(&self.config.binary);
        command
            .arg("supervise")
            .arg(dir)
            .env_clear()
            .envs(bundle.secret_env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group: a Ctrl-C meant for the CLI does not reach it.
            .process_group(0);
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let mut child = command.spawn().map_err(|e| {
            DeployError::io(
                format!("cannot start {} supervise", self.config.binary.display()),
                e,
            )
        })?;
        // Reap it when it ends, so a long-lived deployer leaves no zombie.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(())
    }

    /// Stops the instance in `dir` and waits until its processes are gone.
    async fn stop_instance(dir: &Path) {
        let supervisor = alive_supervisor(dir);
        let child = read_status(dir).child_pid.filter(|pid| is_alive(*pid));
        if let Some(pid) = supervisor {
            signal(pid, rustix::process::Signal::TERM);
        } else if let Some(pid) = child {
            signal(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let gone = |pid: Option<u32>| pid.is_none_or(|pid| !is_alive(pid));
        while Instant::now() < deadline && !(gone(supervisor) && gone(child)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for pid in [supervisor, child].into_iter().flatten() {
            if is_alive(pid) {
                signal(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

#[async_trait]
impl Deployer for ProcessDeployer {
    fn target(&self) -> Target {
        Target::Process
    }

    async fn deploy(&self, bundle: Bundle) -> Result<Deployment> {
        let _guard = self.lock.lock().await;
        let slug = bundle.slug().to_owned();
        let version = bundle.version().to_owned();
        if !self.config.binary.is_file() {
            return Err(DeployError::InvalidConfig {
                reason: format!(
                    "the bmm binary {} does not exist",
                    self.config.binary.display()
                ),
            });
        }
        let port = self
            .config
            .port_range
            .pick(self.config.bind, &self.taken_ports())?;
        let id = format!("{slug}-{}", unique_suffix());
        let base = self.server_dir(&slug);
        let dir = base.join(&id);
        fs::create_dir_all(&dir)
            .map_err(|e| DeployError::io(format!("cannot create {}", dir.display()), e))?;
        let options = &bundle.options;
        let instance = Instance {
            id: id.clone(),
            server: slug.clone(),
            version: version.clone(),
            binary: self.config.binary.clone(),
            port,
            bind: self.config.bind,
            allowed_hosts: options.allowed_hosts.clone(),
            allow_http: options.allow_http,
            allow_networks: options.allow_networks.clone(),
            org: options.org.clone(),
            restart_initial_ms: millis(self.config.restart_initial),
            restart_max_ms: millis(self.config.restart_max),
        };
        write_atomic(&dir.join("server.json"), &bundle.spec_json()?)?;
        write_json(&dir.join("instance.json"), &instance)?;
        let url = instance_url(&instance)?;
        bundle.progress(
            BuildStep::Deploy,
            format!("starting {slug} v{version} on port {port}"),
        );
        self.spawn_supervisor(&dir, &bundle)?;

        let started = Instant::now();
        let watched = dir.clone();
        let checked = check_health(&url, options.health_timeout, move || {
            let seen = read_status(&watched);
            if !seen.ready && seen.restarts > 0 {
                return Some(format!(
                    "the runner exited ({})",
                    seen.last_exit.as_deref().unwrap_or("unknown status")
                ));
            }
            if started.elapsed() > Duration::from_secs(2) && alive_supervisor(&watched).is_none() {
                return Some("the supervisor exited".into());
            }
            None
        })
        .await;
        if let Err(reason) = checked {
            Self::stop_instance(&dir).await;
            let tail = log_tail(&dir, 5);
            let _ = fs::remove_dir_all(&dir);
            if list_dirs(&base).is_empty() {
                let _ = fs::remove_dir_all(&base);
            }
            return Err(bundle.health_failed(reason, &tail));
        }
        bundle.progress(BuildStep::HealthCheck, format!("healthy; serving at {url}"));

        let previous = fs::read_to_string(base.join("current")).ok();
        write_atomic(&base.join("current"), id.as_bytes())?;
        if let Some(old) = previous.map(|p| base.join(p.trim())).filter(|p| *p != dir) {
            bundle.progress(BuildStep::Deploy, "stopping the previous version");
            Self::stop_instance(&old).await;
            let _ = fs::remove_dir_all(&old);
        }
        self.deployment(&dir)
    }

    async fn status(&self, server: &str) -> Result<Deployment> {
        self.deployment(&self.current_dir(server)?)
    }

    async fn logs(&self, server: &str, follow: bool) -> Result<LogStream> {
        let dir = self.current_dir(server)?;
        let file = dir.join("log");
        let text = fs::read(&file).unwrap_or_default();
        let lines: Vec<Result<LogLine>> = String::from_utf8_lossy(&text)
            .lines()
            .map(|line| Ok(parse_log_line(line)))
            .collect();
        let past = futures_util::stream::iter(lines);
        if !follow {
            return Ok(past.boxed());
        }
        let state = (file, text.len() as u64, String::new());
        let live =
            futures_util::stream::unfold(state, |(file, mut offset, mut partial)| async move {
                loop {
                    if !file.parent().is_some_and(Path::exists) {
                        return None;
                    }
                    if let Some(pos) = partial.find('\n') {
                        let line: String = partial.drain(..=pos).collect();
                        let line = parse_log_line(line.trim_end_matches('\n'));
                        return Some((Ok(line), (file, offset, partial)));
                    }
                    let length = fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                    if length < offset {
                        // Rotated: start over on the new file.
                        offset = 0;
                    }
                    if length > offset
                        && let Ok(bytes) = read_from(&file, offset)
                    {
                        offset += bytes.len() as u64;
                        partial.push_str(&String::from_utf8_lossy(&bytes));
                        continue;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        Ok(past.chain(live).boxed())
    }

    async fn stop(&self, server: &str) -> Result<()> {
        let _guard = self.lock.lock().await;
        let dir = self.current_dir(server)?;
        Self::stop_instance(&dir).await;
        fs::write(dir.join("stopped"), b"")
            .map_err(|e| DeployError::io("cannot record the stop", e))?;
        append_log(&dir.join("log"), "sup", "stopped on request");
        Ok(())
    }

    async fn remove(&self, server: &str) -> Result<()> {
        let _guard = self.lock.lock().await;
        self.current_dir(server)?;
        let base = self.server_dir(server);
        for dir in list_dirs(&base) {
            Self::stop_instance(&dir).await;
        }
        fs::remove_dir_all(&base)
            .map_err(|e| DeployError::io(format!("cannot remove {}", base.display()), e))
    }

    async fn list(&self) -> Result<Vec<Deployment>> {
        let mut out = Vec::new();
        for base in list_dirs(&self.config.state_dir.join("servers")) {
            let Some(name) = base.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Ok(dir) = self.current_dir(name) {
                out.push(self.deployment(&dir)?);
            }
        }
        out.sort_by(|a, b| a.server.cmp(&b.server));
        Ok(out)
    }

    /// Adopts every current instance whose supervisor is alive; stops and
    /// removes instances left by an unfinished deploy, and records whose
    /// supervisor died (the secret values died with it).
    async fn reconcile(&self) -> Result<Reconciled> {
        let _guard = self.lock.lock().await;
        let mut report = Reconciled::default();
        for base in list_dirs(&self.config.state_dir.join("servers")) {
            let current = fs::read_to_string(base.join("current"))
                .ok()
                .map(|id| base.join(id.trim()));
            for dir in list_dirs(&base) {
                let id = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let is_current = current.as_deref() == Some(dir.as_path());
                let alive = alive_supervisor(&dir).is_some();
                if is_current && (alive || dir.join("stopped").exists()) {
                    if alive {
                        report.adopted.push(id);
                    }
                    continue;
                }
                Self::stop_instance(&dir).await;
                let _ = fs::remove_dir_all(&dir);
                report.cleaned.push(id);
            }
            if list_dirs(&base).is_empty() {
                let _ = fs::remove_dir_all(&base);
            }
        }
        Ok(report)
    }
}

/// Runs the supervisor of the instance in `dir` until it receives `SIGTERM`
/// or `SIGINT`: starts `bmm run` for it, copies the runner's output into
/// `dir/log`, records its state in `dir/status.json`, and restarts it with
/// exponential backoff when it dies. It also stops when `dir` loses its
/// `instance.json` (the record was deleted). This is `bmm supervise DIR`.
pub async fn supervise(dir: &Path) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal as unix_signal};

    let instance = read_instance(dir)?;
    write_atomic(
        &dir.join("supervisor.pid"),
        std::process::id().to_string().as_bytes(),
    )?;
    let log = dir.join("log");
    let mut terminate = unix_signal(SignalKind::terminate())
        .map_err(|e| DeployError::io("cannot handle SIGTERM", e))?;
    let mut interrupt = unix_signal(SignalKind::interrupt())
        .map_err(|e| DeployError::io("cannot handle SIGINT", e))?;
    let initial = Duration::from_millis(instance.restart_initial_ms.max(10));
    let max = Duration::from_millis(instance.restart_max_ms.max(instance.restart_initial_ms));
    let mut delay = initial;
    let mut seen = Supervised::default();
    loop {
        let mut command = tokio::process::Command::new(&instance.binary);
        command
            .arg("run")
            .arg("--spec")
            .arg(dir.join("server.json"))
            .arg("--port")
            .arg(instance.port.to_string())
            .arg("--bind")
            .arg(instance.bind.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if instance.allow_http {
            command.arg("--allow-http");
        }
        for network in &instance.allow_networks {
            command.arg("--allow-network").arg(network);
        }
        for host in &instance.allowed_hosts {
            command.arg("--allow-host").arg(host);
        }
        let started = Instant::now();
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                let note = format!("cannot start {}: {error}", instance.binary.display());
                append_log(&log, "sup", &note);
                seen.restarts += 1;
                seen.last_exit = Some(note);
                write_json(&dir.join("status.json"), &seen)?;
                tokio::select! {
                    _ = terminate.recv() => return Ok(()),
                    _ = interrupt.recv() => return Ok(()),
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(max);
                continue;
            }
        };
        seen.child_pid = child.id();
        seen.ready = false;
        write_json(&dir.join("status.json"), &seen)?;
        append_log(
            &log,
            "sup",
            &format!("started runner pid {}", seen.child_pid.unwrap_or(0)),
        );
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(1);
        let copiers = [
            child.stdout.take().map(|out| {
                tokio::spawn(copy_lines(
                    BufReader::new(out),
                    log.clone(),
                    "out",
                    Some(ready_tx.clone()),
                ))
            }),
            child
                .stderr
                .take()
                .map(|err| tokio::spawn(copy_lines(BufReader::new(err), log.clone(), "err", None))),
        ];
        drop(ready_tx);
        let mut orphan_check = tokio::time::interval(Duration::from_secs(1));
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                Some(()) = ready_rx.recv() => {
                    seen.ready = true;
                    write_json(&dir.join("status.json"), &seen)?;
                }
                _ = terminate.recv() => return shut_down(child, &log).await,
                _ = interrupt.recv() => return shut_down(child, &log).await,
                // Its record was deleted (state folder wiped): nobody can
                // manage it any more, so it must not outlive its record.
                _ = orphan_check.tick() => {
                    if !dir.join("instance.json").exists() {
                        return shut_down(child, &log).await;
                    }
                }
            }
        };
        for copier in copiers.into_iter().flatten() {
            let _ = copier.await;
        }
        let exit = match status {
            Ok(status) => status.to_string(),
            Err(error) => format!("cannot wait for it: {error}"),
        };
        if started.elapsed() > Duration::from_secs(60) {
            delay = initial;
        }
        seen.child_pid = None;
        seen.ready = false;
        seen.restarts += 1;
        seen.last_exit = Some(exit.clone());
        write_json(&dir.join("status.json"), &seen)?;
        append_log(
            &log,
            "sup",
            &format!("runner {exit}; restart {} in {delay:?}", seen.restarts),
        );
        tokio::select! {
            _ = terminate.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(max);
    }
}

async fn shut_down(mut child: tokio::process::Child, log: &Path) -> Result<()> {
    if let Some(pid) = child.id() {
        signal(pid, rustix::process::Signal::TERM);
    }
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
    append_log(log, "sup", "stopped");
    Ok(())
}

async fn copy_lines<R: tokio::io::AsyncBufRead + Unpin>(
    reader: R,
    log: PathBuf,
    source: &'static str,
    ready: Option<tokio::sync::mpsc::Sender<()>>,
) {
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(ready) = &ready
            && line.starts_with("bmm: listening on ")
        {
            let _ = ready.try_send(());
        }
        append_log(&log, source, &line);
    }
}

/// Appends `source text` to the log, rotating it when large. Logging must
/// not stop a server, so failures are ignored.
fn append_log(log: &Path, source: &str, text: &str) {
    if fs::metadata(log).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let _ = fs::rename(log, log.with_extension("1"));
    }
    if let Ok(mut file) = fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(file, "{source} {text}");
    }
}

fn parse_log_line(line: &str) -> LogLine {
    let (source, text) = match line.split_once(' ') {
        Some(("out", text)) => (LogSource::Stdout, text),
        Some(("err", text)) => (LogSource::Stderr, text),
        Some(("sup", text)) => (LogSource::Deployer, text),
        _ => (LogSource::Stdout, line),
    };
    LogLine {
        source,
        text: text.to_owned(),
    }
}

fn log_tail(dir: &Path, lines: usize) -> String {
    let text = fs::read_to_string(dir.join("log")).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.starts_with("sup ")).collect();
    let start = all.len().saturating_sub(lines);
    all[start..]
        .iter()
        .map(|l| parse_log_line(l).text)
        .collect::<Vec<_>>()
        .join("\n")
}

fn read_from(file: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = fs::File::open(file)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(1 << 20).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn instance_url(instance: &Instance) -> Result<Url> {
    let host = match instance.bind {
        IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_owned(),
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    Url::parse(&format!("http://{host}:{}/mcp", instance.port)).map_err(|e| DeployError::State {
        path: PathBuf::from(&instance.id),
        reason: format!("no URL for {host}:{}: {e}", instance.port),
    })
}

fn read_instance(dir: &Path) -> Result<Instance> {
    let path = dir.join("instance.json");
    let text = fs::read(&path).map_err(|e| DeployError::State {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    serde_json::from_slice(&text).map_err(|e| DeployError::State {
        path,
        reason: e.to_string(),
    })
}

fn read_status(dir: &Path) -> Supervised {
    fs::read(dir.join("status.json"))
        .ok()
        .and_then(|text| serde_json::from_slice(&text).ok())
        .unwrap_or_default()
}

/// The pid of the supervisor of `dir`, when it is alive and really ours (a
/// recycled pid running something else does not count).
fn alive_supervisor(dir: &Path) -> Option<u32> {
    let pid: u32 = fs::read_to_string(dir.join("supervisor.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if !is_alive(pid) {
        return None;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let wanted = dir.as_os_str().as_encoded_bytes();
    let mut args = cmdline.split(|b| *b == 0);
    let ours = args.any(|a| a == b"supervise") && args.any(|a| a == wanted);
    ours.then_some(pid)
}

/// Whether `pid` is a live process (a zombie is not).
fn is_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    // It may have ended meanwhile; that is what we wanted.
    let _ = rustix::process::kill_process(pid, signal);
}

fn list_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| DeployError::State {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    write_atomic(path, &bytes)
}

/// Writes through a temporary file and a rename, so readers never see half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension("tmp");
    fs::write(&temporary, bytes)
        .and_then(|()| fs::rename(&temporary, path))
        .map_err(|e| DeployError::io(format!("cannot write {}", path.display()), e))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A suffix that orders instances by creation and does not repeat.
fn unique_suffix() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}{:03}-{}",
        now.as_secs(),
        now.subsec_millis(),
        std::process::id()
    )
}
