//! Sandboxed JavaScript `script` tools: QuickJS (rquickjs) on a dedicated worker pool.
//!
//! Calls run on the [`Sandbox`]'s own threads, never on tokio's async
//! workers; a [`TenantGate`] caps how many calls one server may have in
//! flight. Each worker keeps a few warm engines (a QuickJS runtime and
//! context), one per tenant and script, with every built-in and the global
//! object frozen; each call evaluates the script's module afresh, so module
//! state starts over and nothing a call writes outlives it. Limits (memory,
//! interrupt deadline) are per runtime, so an engine runs one call at a time
//! and is discarded after any call that hit a limit or left work behind.
//! Building an engine costs about as much as a whole warm call several times
//! over; see [`SandboxConfig::warm_engines`]. See the crate docs for the
//! script contract.

mod engine;
mod fetch;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::egress::EgressClient;
use crate::secret::Secrets;
use crate::{Error, Result};

/// Limits and sizing of a [`Sandbox`]. A `Config` struct with public fields;
/// start from `SandboxConfig::default()`.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Worker threads that run scripts (default: the number of CPUs).
    pub workers: usize,
    /// Memory one call may allocate, in bytes (default 32 MiB).
    pub memory_limit: usize,
    /// Time one call may spend running JavaScript (default 2 s), measured as
    /// wall-clock time while the engine runs; waits on `fetch` do not count.
    /// Enforced by the engine's interrupt handler, so a tight loop stops too.
    pub cpu_time_limit: Duration,
    /// Time one call may take in all, waiting on `fetch` included (default 10 s).
    pub wall_time_limit: Duration,
    /// Engine stack for one call, in bytes (default 1 MiB); deeper recursion
    /// fails with [`Error::StackOverflow`].
    pub max_stack_size: usize,
    /// Largest result, as JSON text, in bytes (default 1 MiB).
    pub max_output_bytes: usize,
    /// `fetch` calls one call may make (default 16).
    pub max_fetches: usize,
    /// `console` output kept per call, in bytes (default 16 KiB).
    pub max_log_bytes: usize,
    /// How long a call may wait for a place in the workers' queue before
    /// [`Error::Overloaded`] (default 5 s). The queue has one place per
    /// worker, so a queued call then waits for at most one call per worker.
    /// A tenant's calls beyond one per worker wait at its own gate, not in
    /// line for the queue, so another tenant's call is never behind them.
    pub queue_timeout: Duration,
    /// Warm engines each worker keeps, least recently used evicted (default
    /// 16). `0` builds a fresh engine for every call and drops it afterwards:
    /// the strictest isolation, at several times the CPU cost per call.
    pub warm_engines: usize,
    /// Calls one warm engine runs before it is replaced (default 4,096).
    /// Each call's module stays in the engine until then; an engine that has
    /// grown by an eighth of `memory_limit` is replaced sooner.
    pub calls_per_engine: u32,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            memory_limit: 32 << 20,
            cpu_time_limit: Duration::from_secs(2),
            wall_time_limit: Duration::from_secs(10),
            max_stack_size: 1 << 20,
            max_output_bytes: 1 << 20,
            max_fetches: 16,
            max_log_bytes: 16 << 10,
            queue_timeout: Duration::from_secs(5),
            warm_engines: 16,
            calls_per_engine: 4096,
        }
    }
}

impl SandboxConfig {
    fn validate(&self) -> Result<()> {
        let invalid = |reason: &str| {
            Err(Error::InvalidConfig {
                reason: reason.to_owned(),
            })
        };
        if self.workers == 0 {
            return invalid("workers must be at least 1");
        }
        if self.memory_limit < (1 << 20) {
            return invalid("memory_limit must be at least 1 MiB");
        }
        if self.cpu_time_limit.is_zero() || self.wall_time_limit.is_zero() {
            return invalid("time limits must be positive");
        }
        if self.max_stack_size < (64 << 10) || self.max_stack_size > (64 << 20) {
            return invalid("max_stack_size must be between 64 KiB and 64 MiB");
        }
        if self.calls_per_engine == 0 {
            return invalid("calls_per_engine must be at least 1");
        }
        Ok(())
    }

    fn limits(&self) -> Limits {
        Limits {
            memory: self.memory_limit,
            cpu_time: self.cpu_time_limit,
            wall_time: self.wall_time_limit,
            max_stack: self.max_stack_size,
            max_output_bytes: self.max_output_bytes,
            max_fetches: self.max_fetches,
            max_log_bytes: self.max_log_bytes,
        }
    }
}

/// The per-call limits handed to the engine.
#[derive(Clone, Copy, Debug)]
struct Limits {
    memory: usize,
    cpu_time: Duration,
    wall_time: Duration,
    max_stack: usize,
    max_output_bytes: usize,
    max_fetches: usize,
    max_log_bytes: usize,
}

/// A script that compiles and default-exports a function.
#[derive(Clone, Debug)]
pub struct Script {
    source: Arc<str>,
}

impl Script {
    /// Checks `source` with [`check_script`] and keeps it.
    pub fn new(source: impl Into<String>) -> Result<Self> {
        let source: String = source.into();
        check_script(&source)?;
        Ok(Self {
            source: Arc::from(source),
        })
    }

    /// The JavaScript source.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// How long [`check_script`] lets a module's top level run.
pub const CHECK_TIME_LIMIT: Duration = Duration::from_millis(25);

/// The compile-only check: parses `source` as an ES module, evaluates its top
/// level (with `fetch` refused), and requires a default export that is a
/// function.
///
/// Syntax and early errors come back as [`Error::Compile`] with the line and
/// column; a missing entry point as [`Error::MissingEntryPoint`]; a top level
/// that runs longer than [`CHECK_TIME_LIMIT`] as [`Error::TopLevelTooSlow`]
/// (the module is evaluated on every call). Runs on the calling thread, so
/// that bound is also what one check can cost it; a typical tool takes well
/// under a millisecond.
pub fn check_script(source: &str) -> Result<()> {
    let mut limits = SandboxConfig::default().limits();
    limits.max_stack = 256 << 10;
    limits.cpu_time = CHECK_TIME_LIMIT;
    limits.wall_time = CHECK_TIME_LIMIT * 4;
    engine::check(source, limits).map_err(|error| match error {
        Error::CpuTimeExceeded { .. } | Error::WallTimeExceeded { .. } => Error::TopLevelTooSlow {
            limit: CHECK_TIME_LIMIT,
        },
        other => other,
    })
}

/// What a script tool can reach: egress through a policy, and the server's
/// secrets by reference. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct ScriptEnv {
    pub(crate) egress: Option<EgressClient>,
    pub(crate) secrets: Secrets,
}

impl ScriptEnv {
    /// Egress through `egress`; `{secret: "NAME"}` references filled from `secrets`.
    pub fn new(egress: EgressClient, secrets: Secrets) -> Self {
        Self {
            egress: Some(egress),
            secrets,
        }
    }

    /// No egress and no secrets: every `fetch` is refused.
    pub fn isolated() -> Self {
        Self::default()
    }
}

/// A script call's result.
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptOutput {
    /// What the default export returned (or resolved to), as JSON. A string
    /// stays a JSON string; `undefined` becomes `null`.
    pub value: serde_json::Value,
    /// Lines the script wrote with `console.log` and friends, bounded.
    pub logs: Vec<String>,
}

/// A cap on the script calls one tenant (one served spec) may have in flight.
/// Cheap to clone; clones share the cap.
/// A gate is also the tenant's identity: engines are kept per gate and
/// never run another gate's calls.
///
/// However wide the gate, a tenant has at most one call per worker waiting
/// for the pool at a time; its other calls wait at the gate. The pool's queue
/// serves waiting calls in order, so another tenant's call waits behind at
/// most that many of this tenant's, never behind all it let in.
#[derive(Clone, Debug)]
pub struct TenantGate {
    id: u64,
    permits: Arc<Semaphore>,
    /// Places for this tenant's calls waiting for the pool: as many as the
    /// pool has workers, set by the first call.
    queued: Arc<OnceLock<Arc<Semaphore>>>,
}

impl TenantGate {
    /// A gate letting `max_concurrent` calls through at once (at least 1).
    pub fn new(max_concurrent: usize) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            queued: Arc::new(OnceLock::new()),
        }
    }
}

/// A pool of worker threads that run script calls.
///
/// Create it inside a tokio runtime: `fetch` requests run on that runtime.
/// Dropping the last clone stops the workers once their current call ends.
#[derive(Clone, Debug)]
pub struct Sandbox {
    inner: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    config: SandboxConfig,
    jobs: mpsc::SyncSender<Job>,
    permits: Arc<Semaphore>,
    handle: tokio::runtime::Handle,
}

struct Job {
    call: engine::Call,
    reply: oneshot::Sender<Result<ScriptOutput>>,
    /// Held until the call ends: the caller's place in its tenant's gate.
    tenant_permit: OwnedSemaphorePermit,
    /// Held while the job waits in the queue: one of its tenant's places there.
    tenant_queued: OwnedSemaphorePermit,
    /// Held while the job waits in the queue: there are as many places as
    /// workers, so a job waits behind at most one call per worker, and a
    /// worker that finishes a call finds the next one waiting rather than
    /// sleeping until a caller hands it over.
    queue_permit: OwnedSemaphorePermit,
}

impl Sandbox {
    /// Starts the worker threads. Must be called within a tokio runtime.
    pub fn new(config: SandboxConfig) -> Result<Self> {
        config.validate()?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::InvalidConfig {
            reason: "a Sandbox must be created inside a tokio runtime".into(),
        })?;
        let (jobs, receiver) = mpsc::sync_channel::<Job>(config.workers);
        let receiver = Arc::new(Mutex::new(receiver));
        // Rust frames around the engine need room beyond the engine's own stack limit.
        let stack = config.max_stack_size + (2 << 20);
        for index in 0..config.workers {
            let receiver = Arc::clone(&receiver);
            let warm = (config.warm_engines, config.calls_per_engine);
            std::thread::Builder::new()
                .name(format!("bmm-script-{index}"))
                .stack_size(stack)
                .spawn(move || worker(&receiver, warm))
                .map_err(|e| Error::InvalidConfig {
                    reason: format!("cannot start a worker: {e}"),
                })?;
        }
        let permits = Arc::new(Semaphore::new(config.workers));
        Ok(Self {
            inner: Arc::new(Pool {
                config,
                jobs,
                permits,
                handle,
            }),
        })
    }

    /// The configuration the pool was started with.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// Calls `script`'s default export with `args` (already validated against
    /// the tool's input schema) under the pool's limits.
    ///
    /// Waits for a slot in `tenant` and a place in the workers' queue (up to
    /// [`SandboxConfig::queue_timeout`]). Dropping the returned future cancels
    /// the call: the worker stops it at its next interrupt check.
    pub async fn call(
        &self,
        tenant: &TenantGate,
        script: &Script,
        args: &serde_json::Value,
        env: &ScriptEnv,
    ) -> Result<ScriptOutput> {
        let pool = &self.inner;
        let args = serde_json::to_string(args).map_err(|e| Error::InvalidConfig {
            reason: format!("arguments: {e}"),
        })?;
        // One deadline for every wait before the job is queued.
        let deadline = tokio::time::Instant::now() + pool.config.queue_timeout;
        let acquire = |semaphore: &Arc<Semaphore>| {
            let permit = Arc::clone(semaphore).acquire_owned();
            async move {
                match tokio::time::timeout_at(deadline, permit).await {
                    Ok(Ok(permit)) => Ok(permit),
                    Ok(Err(_)) | Err(_) => Err(Error::Overloaded),
                }
            }
        };
        let tenant_permit = acquire(&tenant.permits).await?;
        let queued = tenant
            .queued
            .get_or_init(|| Arc::new(Semaphore::new(pool.config.workers)));
        let tenant_queued = acquire(queued).await?;
        let queue_permit = acquire(&pool.permits).await?;
        let cancel = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(Arc::clone(&cancel));
        let (reply, answer) = oneshot::channel();
        let job = Job {
            call: engine::Call {
                tenant: tenant.id,
                source: Arc::clone(&script.source),
                args,
                env: env.clone(),
                limits: pool.config.limits(),
                cancel,
                handle: Some(pool.handle.clone()),
            },
            reply,
            tenant_permit,
            tenant_queued,
            queue_permit,
        };
        pool.jobs.try_send(job).map_err(|_| Error::Overloaded)?;
        // The worker enforces the limits itself, from when it starts the call;
        // this outer bound, which also covers the wait for the call ahead in
        // the queue, catches a worker stuck where no interrupt check runs.
        let outer = pool.config.wall_time_limit * 2 + Duration::from_secs(1);
        match tokio::time::timeout(outer, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Engine {
                message: "script worker stopped".into(),
            }),
            Err(_) => Err(Error::WallTimeExceeded {
                limit: pool.config.wall_time_limit,
            }),
        }
    }
}

/// Tells the worker to stop the call when the caller goes away or times out.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn worker(receiver: &Mutex<mpsc::Receiver<Job>>, (capacity, calls_per_engine): (usize, u32)) {
    let mut engines = Engines::new(capacity, calls_per_engine);
    loop {
        let job = match receiver.lock() {
            Ok(guard) => guard.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else {
            return;
        };
        let Job {
            call,
            reply,
            tenant_permit,
            tenant_queued,
            queue_permit,
        } = job;
        // The next caller may queue its job while this one runs.
        drop(queue_permit);
        drop(tenant_queued);
        if call.cancel.load(Ordering::Relaxed) {
            continue;
        }
        // A panic in the engine bindings must not take the worker down with
        // it; the engine it happened in is dropped, never reused.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| engines.run(call)))
            .unwrap_or_else(|_| {
                Err(Error::Engine {
                    message: "script engine panicked".into(),
                })
            });
        let _ = reply.send(result);
        drop(tenant_permit);
    }
}

/// The warm engines of one worker, most recently used last.
///
/// Hardening an engine costs several times a fresh engine, so a script's
/// first call on a worker runs on a fresh engine that is dropped afterwards
/// (the same isolation, no hardening needed); its second call builds a warm
/// engine that later calls reuse. A tool called once never pays for it.
struct Engines {
    warm: Vec<(Key, engine::Engine)>,
    /// Scripts called once on this worker without a warm engine, oldest first.
    seen: Vec<Key>,
    capacity: usize,
    calls_per_engine: u32,
}

/// Which calls an engine may run: one tenant's calls of one script (the
/// source is compared by identity; holding it keeps the identity unique).
struct Key {
    tenant: u64,
    source: Arc<str>,
}

impl Key {
    fn of(call: &engine::Call) -> Self {
        Self {
            tenant: call.tenant,
            source: Arc::clone(&call.source),
        }
    }

    fn matches(&self, call: &engine::Call) -> bool {
        self.tenant == call.tenant && Arc::ptr_eq(&self.source, &call.source)
    }
}

impl Engines {
    fn new(capacity: usize, calls_per_engine: u32) -> Self {
        Self {
            warm: Vec::with_capacity(capacity),
            seen: Vec::new(),
            capacity,
            calls_per_engine,
        }
    }

    /// Runs `call` on its warm engine, a new warm engine, or a fresh one,
    /// and keeps a warm engine when it may serve again.
    fn run(&mut self, call: engine::Call) -> Result<ScriptOutput> {
        if self.capacity == 0 {
            return engine::Engine::new(false)?.run(call).0;
        }
        let (key, mut engine) = match self.warm.iter().position(|(key, _)| key.matches(&call)) {
            Some(index) => self.warm.remove(index),
            None => match self.seen.iter().position(|key| key.matches(&call)) {
                Some(index) => (self.seen.remove(index), engine::Engine::new(true)?),
                None => {
                    self.remember(Key::of(&call));
                    return engine::Engine::new(false)?.run(call).0;
                }
            },
        };
        let (result, reusable) = engine.run(call);
        let worn = engine.worn() || engine.calls() >= self.calls_per_engine;
        if reusable && !worn {
            if self.warm.len() >= self.capacity {
                self.warm.remove(0);
            }
            self.warm.push((key, engine));
        } else if reusable {
            // Worn out, not broken: the next call builds its successor.
            self.remember(key);
        }
        result
    }

    fn remember(&mut self, key: Key) {
        if self.seen.len() >= self.capacity * 4 {
            self.seen.remove(0);
        }
        self.seen.push(key);
    }
}
