//! QuickJS engines and the script calls they run, on a sandbox worker thread.
//!
//! An [`Engine`] is one runtime and context, locked down (no code generation
//! from strings) and hardened (every built-in reachable from the global
//! object frozen) before any script runs. A worker keeps a few engines, one
//! per tenant and script, and runs that script's calls on it: each call
//! evaluates the module afresh (from bytecode the engine compiled on its first
//! call), so module state starts over, and nothing a
//! call could write to outlives it — the global object and the built-ins are
//! frozen. An engine is discarded after a call that hit a limit, left work
//! behind (pending jobs or requests), or after a bounded number of calls.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rquickjs::context::intrinsic;
use rquickjs::function::Rest;
use rquickjs::module::WriteOptions;
use rquickjs::promise::PromiseState;
use rquickjs::{
    Coerced, Context, Ctx, Exception, FromJs, Function, Module, Object, Persistent, Promise,
    Runtime, Value,
};

use super::fetch::{self, Completion};
use super::{Limits, ScriptEnv, ScriptOutput};
use crate::{Error, Result};

/// The module name scripts are compiled under; it shows in stack traces.
const MODULE_NAME: &str = "tool.js";

/// Longest exception message passed on to the caller.
const MAX_MESSAGE_CHARS: usize = 500;

/// Intrinsics a script gets: the language core, without `Performance` (a
/// high-resolution timer), `WeakRef`/`FinalizationRegistry` (GC observation)
/// or `DOMException`. `Eval` must be present for modules to compile at all;
/// the string-to-code entry points it would expose are removed by [`lock_down`].
type Intrinsics = (
    intrinsic::Date,
    intrinsic::Eval,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::Proxy,
    intrinsic::MapSet,
    intrinsic::TypedArrays,
    intrinsic::Promise,
);

/// Function literals whose prototypes hold the async, generator and async
/// generator function constructors (`Function.prototype` is reached directly).
const CONSTRUCTOR_CARRIERS: &str = "[async function () {}, function* () {}, async function* () {}]";

/// Freezes every built-in reachable from the global object, the global object
/// itself and the intrinsics only instances lead to (iterator, generator and
/// async function prototypes), so that nothing one call writes there can be
/// seen by the next. Runs once per engine, after [`lock_down`].
///
/// Freezing makes an assignment such as `error.name = "X"` or
/// `object.toString = f` throw, because the property it would shadow on a
/// frozen prototype is read-only (the "override mistake"). For the prototypes
/// where scripts commonly do that — `Object.prototype`, `Function.prototype`
/// and the error prototypes — each data property becomes an accessor whose
/// setter defines the property on the object assigned to, and throws only
/// when the target is the shared prototype itself.
const HARDEN: &str = r#"(() => {
  "use strict";
  const { defineProperty, getOwnPropertyDescriptor, getPrototypeOf, freeze } = Object;
  const ownKeys = Reflect.ownKeys;
  const tame = (proto, keys) => {
    for (const key of keys ?? ownKeys(proto)) {
      const desc = getOwnPropertyDescriptor(proto, key);
      if (desc === undefined || !("value" in desc) || !desc.configurable) continue;
      const value = desc.value;
      defineProperty(proto, key, {
        get() { return value; },
        set(next) {
          if (this === proto) {
            throw new TypeError("built-ins are frozen: cannot assign " + String(key));
          }
          defineProperty(this, key, { value: next, writable: true, enumerable: true, configurable: true });
        },
        enumerable: desc.enumerable,
        configurable: false,
      });
    }
  };
  tame(Object.prototype);
  tame(Function.prototype, ["constructor", "toString"]);
  for (const E of [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError,
                   URIError, AggregateError, globalThis.InternalError]) {
    if (typeof E === "function") tame(E.prototype);
  }
  const roots = [globalThis];
  const protoOf = (value) => roots.push(getPrototypeOf(value));
  for (const f of [async function () {}, function* () {}, async function* () {}]) {
    protoOf(f);
    roots.push(f.prototype);
  }
  protoOf((function* () {})());
  protoOf((async function* () {})());
  protoOf([][Symbol.iterator]());
  protoOf(new Map()[Symbol.iterator]());
  protoOf(new Set()[Symbol.iterator]());
  protoOf(""[Symbol.iterator]());
  protoOf(/x/[Symbol.matchAll](""));
  const seen = new Set();
  while (roots.length > 0) {
    const value = roots.pop();
    if (value === null || (typeof value !== "object" && typeof value !== "function")) continue;
    if (seen.has(value)) continue;
    seen.add(value);
    freeze(value);
    roots.push(getPrototypeOf(value));
    for (const key of ownKeys(value)) {
      const desc = getOwnPropertyDescriptor(value, key);
      if ("value" in desc) roots.push(desc.value);
      else roots.push(desc.get, desc.set);
    }
  }
})()"#;

/// The message of the error the replaced code-generation entry points throw.
const NO_CODEGEN: &str = "code generation from strings is disabled";

/// Runs before the script's module is evaluated: removes `eval` and replaces
/// every function constructor (`Function`, and those reachable as
/// `constructor` of the prototypes of ordinary, async, generator and async
/// generator functions) by a function that throws. Once replaced, no reference
/// to the real constructors is left for a script to find. Done from Rust, with
/// one tiny `eval`, because it runs on every call (a JavaScript version cost
/// about 35 µs, this about 8 µs).
fn lock_down<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<()> {
    let globals = ctx.globals();
    let deny = Function::new(ctx.clone(), |ctx: Ctx<'js>| -> rquickjs::Result<()> {
        Err(Exception::throw_type(&ctx, NO_CODEGEN))
    })?;
    let function: Object<'js> = globals.get("Function")?;
    let function_prototype: Object<'js> = function.get("prototype")?;
    // `x instanceof Function` keeps working.
    deny.set("prototype", function_prototype.clone())?;
    // Some `constructor` properties are read-only, so define rather than assign.
    let object: Object<'js> = globals.get("Object")?;
    let define: Function<'js> = object.get("defineProperty")?;
    let descriptor = Object::new(ctx.clone())?;
    descriptor.set("value", deny.clone())?;
    let mut prototypes = vec![function_prototype];
    let carriers: Vec<Object<'js>> = ctx.eval(CONSTRUCTOR_CARRIERS)?;
    prototypes.extend(carriers.iter().filter_map(Object::get_prototype));
    for prototype in prototypes {
        define.call::<_, ()>((prototype, "constructor", descriptor.clone()))?;
    }
    globals.set("Function", deny)?;
    globals.remove("eval")
}

/// Why the interrupt handler stopped the script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Cpu,
    Wall,
    Cancelled,
    Fatal,
}

/// State shared by the driver, the interrupt handler and the host functions of one call.
pub(super) struct CallState {
    pub(super) limits: Limits,
    pub(super) env: ScriptEnv,
    pub(super) handle: Option<tokio::runtime::Handle>,
    cancel: Arc<AtomicBool>,
    wall_deadline: Instant,
    js_used: Cell<Duration>,
    slice_start: Cell<Option<Instant>>,
    stop: Cell<Option<Stop>>,
    fatal: RefCell<Option<Error>>,
    logs: RefCell<Vec<String>>,
    log_bytes: Cell<usize>,
    pub(super) fetches: Cell<usize>,
    next_id: Cell<u64>,
    pending: RefCell<HashMap<u64, Resolvers>>,
    pub(super) completions: mpsc::Sender<Completion>,
    tasks: RefCell<Vec<tokio::task::JoinHandle<()>>>,
}

/// The resolve and reject functions of one in-flight `fetch` promise.
pub(super) type Resolvers = (Persistent<Function<'static>>, Persistent<Function<'static>>);

impl CallState {
    fn new(
        limits: Limits,
        env: ScriptEnv,
        handle: Option<tokio::runtime::Handle>,
        cancel: Arc<AtomicBool>,
        completions: mpsc::Sender<Completion>,
    ) -> Self {
        Self {
            wall_deadline: Instant::now() + limits.wall_time,
            limits,
            env,
            handle,
            cancel,
            js_used: Cell::new(Duration::ZERO),
            slice_start: Cell::new(None),
            stop: Cell::new(None),
            fatal: RefCell::new(None),
            logs: RefCell::new(Vec::new()),
            log_bytes: Cell::new(0),
            fetches: Cell::new(0),
            next_id: Cell::new(0),
            pending: RefCell::new(HashMap::new()),
            completions,
            tasks: RefCell::new(Vec::new()),
        }
    }

    /// Decides whether running JavaScript must stop now; called by the engine
    /// every few thousand instructions.
    fn should_interrupt(&self) -> bool {
        if self.stop.get().is_some() {
            return true;
        }
        let stop = if self.cancel.load(Ordering::Relaxed) {
            Some(Stop::Cancelled)
        } else if self.js_time() > self.limits.cpu_time {
            Some(Stop::Cpu)
        } else if Instant::now() > self.wall_deadline {
            Some(Stop::Wall)
        } else {
            None
        };
        self.stop.set(stop);
        stop.is_some()
    }

    fn js_time(&self) -> Duration {
        let running = self
            .slice_start
            .get()
            .map_or(Duration::ZERO, |start| start.elapsed());
        self.js_used.get() + running
    }

    /// Runs `f`, which executes JavaScript, counting its time against the CPU limit.
    fn run_js<T>(&self, f: impl FnOnce() -> T) -> T {
        self.slice_start.set(Some(Instant::now()));
        let out = f();
        self.js_used.set(self.js_time());
        self.slice_start.set(None);
        out
    }

    /// Ends the call with `error` (a policy refusal): the script cannot catch it.
    pub(super) fn fail(&self, error: Error) {
        let mut fatal = self.fatal.borrow_mut();
        if fatal.is_none() {
            *fatal = Some(error);
        }
        self.stop.set(Some(Stop::Fatal));
    }

    /// The error that ends the call regardless of what the script did, if any.
    pub(super) fn stopped(&self) -> Option<Error> {
        match self.stop.get()? {
            Stop::Cpu => Some(Error::CpuTimeExceeded {
                limit: self.limits.cpu_time,
            }),
            Stop::Wall => Some(Error::WallTimeExceeded {
                limit: self.limits.wall_time,
            }),
            Stop::Cancelled => Some(Error::Cancelled),
            Stop::Fatal => {
                let fatal = self.fatal.borrow_mut().take();
                Some(fatal.unwrap_or_else(|| Error::Engine {
                    message: "call aborted".into(),
                }))
            }
        }
    }

    pub(super) fn log(&self, line: String) {
        let used = self.log_bytes.get();
        if used >= self.limits.max_log_bytes {
            return;
        }
        let mut logs = self.logs.borrow_mut();
        if used + line.len() > self.limits.max_log_bytes {
            logs.push("[further log output dropped]".to_owned());
            self.log_bytes.set(self.limits.max_log_bytes);
            return;
        }
        self.log_bytes.set(used + line.len());
        logs.push(line);
    }

    pub(super) fn add_pending(&self, resolvers: Resolvers) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.pending.borrow_mut().insert(id, resolvers);
        id
    }

    pub(super) fn add_task(&self, task: tokio::task::JoinHandle<()>) {
        self.tasks.borrow_mut().push(task);
    }

    fn in_flight(&self) -> usize {
        self.pending.borrow().len()
    }

    /// Drops everything that refers to JavaScript values or upstream work.
    /// Must run while the context is still alive.
    fn release(&self) {
        self.pending.borrow_mut().clear();
        for task in self.tasks.borrow_mut().drain(..) {
            task.abort();
        }
    }
}

/// Clears the call state's JavaScript references when the context scope ends,
/// on every path (errors and unwinding included).
struct ReleaseOnDrop<'a>(&'a CallState);

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// What a call needs, moved onto the worker thread.
pub(super) struct Call {
    /// The tenant (served spec) the call is for; engines are never shared
    /// between tenants.
    pub(super) tenant: u64,
    pub(super) source: Arc<str>,
    pub(super) args: String,
    pub(super) env: ScriptEnv,
    pub(super) limits: Limits,
    pub(super) cancel: Arc<AtomicBool>,
    pub(super) handle: Option<tokio::runtime::Handle>,
}

/// The call an engine is running, if any: the host functions and the
/// interrupt handler are installed once per engine and find the call's state here.
pub(super) type Current = Rc<RefCell<Option<Rc<CallState>>>>;

/// The state of the running call, or a `TypeError` when none runs (a host
/// function reached outside a call).
pub(super) fn current_state(ctx: &Ctx<'_>, current: &Current) -> rquickjs::Result<Rc<CallState>> {
    current
        .borrow()
        .clone()
        .ok_or_else(|| Exception::throw_type(ctx, "no call is running"))
}

/// One QuickJS runtime and context, locked down, with `console` and `fetch`
/// installed and (for engines that run more than one call) hardened.
pub(super) struct Engine {
    // Field order is drop order: the context before its runtime.
    context: Context,
    runtime: Runtime,
    current: Current,
    calls: u32,
    /// Bytes a hardened (reusable) engine held when it was built; `None`
    /// for an engine that runs one call and is never measured.
    baseline: Option<i64>,
    /// The last measurement: calls served then and bytes held.
    measured: (u32, i64),
    /// The call count at which to measure next.
    next_measure: u32,
    /// Whether the engine has grown enough to be replaced.
    worn: bool,
    /// A reusable engine's script, compiled by its first call and written
    /// out as bytecode, which later calls load instead of parsing the source
    /// again. The engine's modules may point into it, so it is the last
    /// field: dropped after the runtime.
    bytecode: Option<OnceCell<Box<[u8]>>>,
}

/// The fewest and most calls between two measurements of a warm engine's
/// memory. Measuring walks every object (0.1–0.5 ms once a few thousand
/// calls' modules are in the engine, against about 15 µs for a small call),
/// so it is spaced out by how fast the engine grows: the next one comes when,
/// at the growth seen so far, half of what is left of the budget would be
/// used. A small script's call leaves about 1.7 KiB behind.
const MEASURE_EVERY: std::ops::RangeInclusive<u32> = 16..=1024;

impl Engine {
    /// Builds an engine. `harden` freezes every built-in (required for an
    /// engine that runs more than one call).
    pub(super) fn new(harden: bool) -> Result<Self> {
        let engine = |e: rquickjs::Error| Error::Engine {
            message: format!("sandbox setup failed: {e}"),
        };
        let runtime = Runtime::new().map_err(engine)?;
        let context = Context::custom::<Intrinsics>(&runtime).map_err(engine)?;
        let current: Current = Rc::new(RefCell::new(None));
        let interrupt = Rc::clone(&current);
        runtime.set_interrupt_handler(Some(Box::new(move || {
            interrupt
                .borrow()
                .as_ref()
                .is_some_and(|state| state.should_interrupt())
        })));
        context.with(|ctx| -> Result<()> {
            let setup = |e: rquickjs::Error| {
                let detail = match e {
                    rquickjs::Error::Exception => {
                        let thrown = ctx.catch();
                        let (name, message) = error_parts(&ctx, &thrown);
                        format!("{name}: {message}")
                    }
                    other => other.to_string(),
                };
                Error::Engine {
                    message: format!("sandbox setup failed: {detail}"),
                }
            };
            lock_down(&ctx).map_err(setup)?;
            install_console(&ctx, &current).map_err(setup)?;
            fetch::install(&ctx, &current).map_err(setup)?;
            if harden {
                ctx.eval::<(), _>(HARDEN).map_err(setup)?;
            }
            Ok(())
        })?;
        // Measuring walks every object: only for engines that will be measured again.
        let baseline = harden.then(|| runtime.memory_usage().malloc_size);
        Ok(Self {
            context,
            runtime,
            current,
            calls: 0,
            measured: (0, baseline.unwrap_or_default()),
            next_measure: *MEASURE_EVERY.start(),
            bytecode: harden.then(OnceCell::new),
            baseline,
            worn: false,
        })
    }

    /// Calls served so far.
    pub(super) fn calls(&self) -> u32 {
        self.calls
    }

    /// Whether the engine has grown by an eighth of the memory limit since
    /// it was built (each call's module stays in it) and should be replaced.
    pub(super) fn worn(&self) -> bool {
        self.worn
    }

    /// Runs one call. Returns its result and whether the engine may run
    /// another: not after a limit or policy stop, an engine failure, or a
    /// call that left jobs or requests behind.
    pub(super) fn run(&mut self, call: Call) -> (Result<ScriptOutput>, bool) {
        self.calls = self.calls.saturating_add(1);
        let (result, state, left_work) = self.enter(
            call.limits,
            call.env,
            call.handle,
            call.cancel,
            &call.source,
            Some(&call.args),
        );
        let clean = state.stop.get().is_none() && !left_work && !self.runtime.is_job_pending();
        if let Some(baseline) = self.baseline
            && self.calls >= self.next_measure
        {
            let size = self.runtime.memory_usage().malloc_size;
            let budget = i64::try_from(state.limits.memory / 8).unwrap_or(i64::MAX);
            let left = budget.saturating_sub(size.saturating_sub(baseline));
            self.worn = left < 0;
            let (then, held) = self.measured;
            let per_call = (size.saturating_sub(held)
                / i64::from(self.calls.saturating_sub(then).max(1)))
            .max(1);
            let wait = (left / 2 / per_call).clamp(
                i64::from(*MEASURE_EVERY.start()),
                i64::from(*MEASURE_EVERY.end()),
            );
            self.measured = (self.calls, size);
            self.next_measure = self
                .calls
                .saturating_add(u32::try_from(wait).unwrap_or(*MEASURE_EVERY.end()));
        }
        let reusable = clean
            && matches!(
                result,
                Ok(_)
                    | Err(Error::Script { .. }
                        | Error::OutputTooLarge { .. }
                        | Error::InvalidOutput { .. })
            );
        let output = result.map(|value| ScriptOutput {
            value,
            logs: state.logs.take(),
        });
        (output, reusable)
    }

    /// Runs `source` (and calls its default export with `args`, if given)
    /// under a new call's limits and state. Returns the result, the call's
    /// state and whether the call left requests in flight.
    fn enter(
        &self,
        limits: Limits,
        env: ScriptEnv,
        handle: Option<tokio::runtime::Handle>,
        cancel: Arc<AtomicBool>,
        source: &str,
        args: Option<&str>,
    ) -> (Result<serde_json::Value>, Rc<CallState>, bool) {
        let (tx, rx) = mpsc::channel();
        let state = Rc::new(CallState::new(limits, env, handle, cancel, tx));
        self.runtime.set_memory_limit(limits.memory);
        self.runtime.set_max_stack_size(limits.max_stack);
        *self.current.borrow_mut() = Some(Rc::clone(&state));
        let (result, left_work) = self.context.with(|ctx| {
            let _release = ReleaseOnDrop(&state);
            let result = run_module(&ctx, &state, &rx, source, self.bytecode.as_ref(), args);
            (result, state.in_flight() > 0)
        });
        *self.current.borrow_mut() = None;
        (result, state, left_work)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.runtime.set_interrupt_handler(None);
    }
}

/// Compiles and evaluates `source` without calling it, under `limits`, to
/// report syntax errors and a missing entry point. `fetch` is refused.
pub(super) fn check(source: &str, limits: Limits) -> Result<()> {
    let engine = Engine::new(false)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let (result, _, _) = engine.enter(limits, ScriptEnv::isolated(), None, cancel, source, None);
    result.map(drop)
}

/// Evaluates the module and, when `args` is given, calls its default export
/// and returns the result as JSON.
fn run_module<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<CallState>,
    rx: &mpsc::Receiver<Completion>,
    source: &str,
    bytecode: Option<&OnceCell<Box<[u8]>>>,
    args: Option<&str>,
) -> Result<serde_json::Value> {
    let declared = if let Some(compiled) = bytecode.and_then(OnceCell::get) {
        load_compiled(ctx, compiled).map_err(|e| classify(ctx, state, e))?
    } else {
        let declared = Module::declare(ctx.clone(), MODULE_NAME, source)
            .map_err(|e| compile_error(ctx, state, e))?;
        if let Some(cache) = bytecode
            && let Ok(bytes) = declared.write(WriteOptions::default())
        {
            // Set once, never changed: loaded modules may point into it.
            let _ = cache.set(bytes.into_boxed_slice());
        }
        declared
    };
    let (module, evaluated) = state
        .run_js(|| declared.eval())
        .map_err(|e| classify(ctx, state, e))?;
    settle(ctx, state, rx, evaluated)?;
    let entry: Value<'js> = module.get("default").map_err(|e| classify(ctx, state, e))?;
    let Some(function) = entry.as_function() else {
        return Err(Error::MissingEntryPoint {
            found: entry.type_name().to_owned(),
        });
    };
    let Some(args) = args else {
        return Ok(serde_json::Value::Null);
    };
    let args = ctx.json_parse(args).map_err(|e| classify(ctx, state, e))?;
    let returned: Value<'js> = state
        .run_js(|| function.call((args,)))
        .map_err(|e| classify(ctx, state, e))?;
    let value = match returned.as_promise() {
        Some(promise) => settle(ctx, state, rx, promise.clone())?,
        None => returned,
    };
    if let Some(error) = state.stopped() {
        return Err(error);
    }
    to_json(ctx, state, value)
}

/// Declares a module from bytecode this engine wrote (see `Engine::bytecode`).
#[allow(unsafe_code)]
fn load_compiled<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> rquickjs::Result<Module<'js>> {
    // SAFETY: QuickJS trusts bytecode, so it must come from QuickJS itself.
    // These bytes do: `Module::write` produced them in this process, with
    // this build of the engine, from a module this engine compiled from the
    // spec's source; they are never read from or sent outside. They stay in
    // `Engine::bytecode` (a `OnceCell`: set once, never changed) until after
    // the engine's runtime is freed, as loading with `JS_READ_OBJ_ROM_DATA`
    // (which rquickjs uses) requires of a buffer the loaded module may point
    // into.
    unsafe { Module::load(ctx.clone(), bytes) }
}

/// Drives the job queue and in-flight `fetch` calls until `promise` settles.
fn settle<'js>(
    ctx: &Ctx<'js>,
    state: &CallState,
    rx: &mpsc::Receiver<Completion>,
    promise: Promise<'js>,
) -> Result<Value<'js>> {
    loop {
        if let Some(error) = state.stopped() {
            return Err(error);
        }
        match promise.state() {
            PromiseState::Resolved | PromiseState::Rejected => {
                let result = promise.result::<Value<'js>>();
                return match result {
                    Some(Ok(value)) => Ok(value),
                    Some(Err(e)) => Err(classify(ctx, state, e)),
                    None => Err(Error::Engine {
                        message: "settled promise has no result".into(),
                    }),
                };
            }
            PromiseState::Pending => {}
        }
        if state.run_js(|| ctx.execute_pending_job()) {
            continue;
        }
        if state.in_flight() == 0 {
            return Err(state.stopped().unwrap_or(Error::NeverSettled));
        }
        let now = Instant::now();
        if now >= state.wall_deadline {
            return Err(Error::WallTimeExceeded {
                limit: state.limits.wall_time,
            });
        }
        // Wake up now and then to notice a cancelled call.
        let wait = (state.wall_deadline - now).min(Duration::from_millis(50));
        match rx.recv_timeout(wait) {
            Ok(completion) => {
                let resolvers = state.pending.borrow_mut().remove(&completion.id);
                if let Some(resolvers) = resolvers {
                    state.run_js(|| fetch::deliver(ctx, state, resolvers, completion.result))?;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if state.cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::Engine {
                    message: "fetch completion channel closed".into(),
                });
            }
        }
    }
}

fn to_json<'js>(ctx: &Ctx<'js>, state: &CallState, value: Value<'js>) -> Result<serde_json::Value> {
    let limit = state.limits.max_output_bytes;
    if value.is_undefined() {
        return Ok(serde_json::Value::Null);
    }
    if let Some(text) = value.as_string() {
        let text = text.to_string().map_err(|e| classify(ctx, state, e))?;
        if text.len() > limit {
            return Err(Error::OutputTooLarge { limit });
        }
        return Ok(serde_json::Value::String(text));
    }
    let json = state
        .run_js(|| ctx.json_stringify(value))
        .map_err(|e| classify(ctx, state, e))?
        .ok_or_else(|| Error::InvalidOutput {
            reason: "a function or symbol".into(),
        })?;
    let json = json.to_string().map_err(|e| classify(ctx, state, e))?;
    if json.len() > limit {
        return Err(Error::OutputTooLarge { limit });
    }
    serde_json::from_str(&json).map_err(|e| Error::InvalidOutput {
        reason: e.to_string(),
    })
}

fn install_console<'js>(ctx: &Ctx<'js>, current: &Current) -> rquickjs::Result<()> {
    let console = Object::new(ctx.clone())?;
    for level in ["log", "info", "warn", "error", "debug"] {
        let current = Rc::clone(current);
        let prefix = if level == "log" {
            String::new()
        } else {
            format!("[{level}] ")
        };
        let function = Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, args: Rest<Value<'js>>| -> rquickjs::Result<()> {
                let state = current_state(&ctx, &current)?;
                let mut line = prefix.clone();
                for (i, arg) in args.0.into_iter().enumerate() {
                    if i > 0 {
                        line.push(' ');
                    }
                    line.push_str(&display(&ctx, arg));
                }
                state.log(line);
                Ok(())
            },
        )?;
        console.set(level, function)?;
    }
    ctx.globals().set("console", console)
}

/// A value as `console.log` shows it: strings as they are, the rest as JSON when possible.
fn display<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> String {
    if let Some(text) = value.as_string() {
        return text.to_string().unwrap_or_default();
    }
    if value.is_object() && !value.is_function() && !value.is_error() {
        if let Ok(Some(json)) = ctx.json_stringify(value.clone()) {
            return json.to_string().unwrap_or_default();
        }
        let _ = ctx.catch();
    }
    match Coerced::<String>::from_js(ctx, value) {
        Ok(text) => text.0,
        Err(_) => {
            let _ = ctx.catch();
            "[unprintable]".to_owned()
        }
    }
}

/// Maps a failed engine operation to the call's error: a limit or policy stop
/// first, then the thrown value.
pub(super) fn classify<'js>(ctx: &Ctx<'js>, state: &CallState, error: rquickjs::Error) -> Error {
    let thrown = match error {
        rquickjs::Error::Exception => Some(ctx.catch()),
        _ => None,
    };
    if let Some(stop) = state.stopped() {
        return stop;
    }
    match (error, thrown) {
        (rquickjs::Error::Allocation, _) => Error::MemoryExceeded {
            limit: state.limits.memory,
        },
        (_, Some(value)) => classify_thrown(ctx, state, value),
        (other, None) => Error::Engine {
            message: other.to_string(),
        },
    }
}

fn classify_thrown<'js>(ctx: &Ctx<'js>, state: &CallState, value: Value<'js>) -> Error {
    // QuickJS throws a bare `null` when it cannot even allocate the error object.
    if value.is_null() {
        return Error::MemoryExceeded {
            limit: state.limits.memory,
        };
    }
    let (name, message) = error_parts(ctx, &value);
    let lower = message.to_ascii_lowercase();
    let engine_error = name == "InternalError" || name == "RangeError";
    // "string too long" and "invalid string length" are allocation bombs
    // stopped by the engine's size caps before the memory limit: the same failure.
    let too_big = lower.contains("out of memory")
        || lower.contains("string too long")
        || lower.contains("invalid string length");
    if engine_error && too_big {
        return Error::MemoryExceeded {
            limit: state.limits.memory,
        };
    }
    if engine_error && (lower.contains("stack overflow") || lower.contains("call stack size")) {
        return Error::StackOverflow;
    }
    let text = if name.is_empty() {
        message
    } else {
        format!("{name}: {message}")
    };
    Error::Script {
        message: truncate(text),
    }
}

/// The `name` and `message` of a thrown value (or the value as text).
fn error_parts<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> (String, String) {
    if let Some(object) = value.as_object().filter(|o| o.is_error()) {
        let get = |key: &str| match object.get::<_, Option<Coerced<String>>>(key) {
            Ok(v) => v.map(|c| c.0).unwrap_or_default(),
            Err(_) => {
                let _ = ctx.catch();
                String::new()
            }
        };
        return (get("name"), get("message"));
    }
    (
        String::new(),
        format!("uncaught {}", display(ctx, value.clone())),
    )
}

fn compile_error<'js>(ctx: &Ctx<'js>, state: &CallState, error: rquickjs::Error) -> Error {
    let rquickjs::Error::Exception = error else {
        return classify(ctx, state, error);
    };
    let thrown = ctx.catch();
    if let Some(stop) = state.stopped() {
        return stop;
    }
    let (name, message) = error_parts(ctx, &thrown);
    if name != "SyntaxError" {
        return classify_thrown(ctx, state, thrown);
    }
    let stack = thrown
        .as_object()
        .and_then(|o| o.get::<_, Option<Coerced<String>>>("stack").ok().flatten())
        .map(|c| c.0)
        .unwrap_or_default();
    let (line, column) = location_in(&stack);
    Error::Compile {
        message: truncate(format!("{name}: {message}")),
        line,
        column,
    }
}

/// Finds `tool.js:LINE:COLUMN` in a stack trace.
fn location_in(stack: &str) -> (Option<u32>, Option<u32>) {
    let Some(at) = stack.find(MODULE_NAME) else {
        return (None, None);
    };
    let mut parts = stack[at + MODULE_NAME.len()..].split(':').skip(1);
    let number = |part: Option<&str>| -> Option<u32> {
        let digits: String = part?.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let line = number(parts.next());
    let column = if line.is_some() {
        number(parts.next())
    } else {
        None
    };
    (line, column)
}

pub(super) fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_MESSAGE_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_is_read_from_the_stack() {
        assert_eq!(location_in("    at tool.js:3:14\n"), (Some(3), Some(14)));
        assert_eq!(location_in("    at tool.js:7\n"), (Some(7), None));
        assert_eq!(location_in("    at other.js:3:14\n"), (None, None));
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let long = "é".repeat(MAX_MESSAGE_CHARS + 10);
        let short = truncate(long);
        assert_eq!(short.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(truncate("ok".into()), "ok");
    }
}
