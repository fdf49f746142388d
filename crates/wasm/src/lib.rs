//! The engine boundary: everything Keel needs from a WASM engine, behind a small interface
//! ([`Program::load`], [`Process::new`], [`Process::run`]) so that a compiled tier can be added
//! later without touching WASI or the shell. Today's engine is `wasmi` (an interpreter).
//!
//! A process runs in slices of fuel: [`Process::run`] returns when the guest finishes, traps,
//! used up its slice (so the kernel can switch tasks or honour Ctrl-C, even in a loop with no
//! calls out), or blocks in WASI (stdin, `poll_oneoff`, output to flush).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod cli;
#[cfg(feature = "compiled")]
pub mod compiled;
pub mod runner;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use core::fmt;

use keel_wasi::{Abort, Errno, WasiCtx, FUNCTIONS};
use wasmi::ResourceLimiter;
use wasmi::{Caller, Config, Engine, Error, Extern, Linker, Memory, Module, Store, TypedFunc, TypedResumableCall, Val};
use wasmi_core::LimiterError;

/// The WASI module name programs import from.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// Limits for one process.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest linear memory, in bytes.
    pub max_memory: usize,
    /// Largest table, in elements.
    pub max_table_elements: usize,
    /// Fuel (roughly, instructions) per [`Process::run`] slice.
    pub fuel_slice: u64,
    /// Bytes the system can still give to guests (after its own reserve); growth beyond it is
    /// refused like growth beyond `max_memory`. None: no system-wide check.
    pub available: Option<fn() -> usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_memory: 256 << 20, max_table_elements: 1 << 20, fuel_slice: 2_000_000, available: None }
    }
}

/// Why a module could not be loaded or started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// Not a valid WebAssembly module (the validator's message).
    Invalid(String),
    /// An import Keel does not provide.
    UnknownImport { module: String, name: String, kind: &'static str },
    /// An import with the right name but the wrong signature, or another link error.
    Link(String),
    /// No `_start` function (not a WASI command).
    NoStart,
    /// The module's start section or initialisation trapped or exceeded limits.
    Instantiate(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Invalid(m) => write!(f, "not a valid WebAssembly module: {m}"),
            LoadError::UnknownImport { module, name, kind } => {
                write!(f, "unknown import: {kind} {module}::{name} (Keel provides the {WASI_MODULE} functions)")
            }
            LoadError::Link(m) => write!(f, "cannot link: {m}"),
            LoadError::NoStart => f.write_str("no exported _start function (not a WASI command module)"),
            LoadError::Instantiate(m) => write!(f, "cannot instantiate: {m}"),
        }
    }
}

/// What [`Process::run`] ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Its fuel slice is used up: call `run` again when it is its turn.
    Preempted,
    /// Blocked in WASI: see [`WasiCtx::pending`]; call `run` once [`WasiCtx::ready`].
    Blocked,
    /// Finished with this exit status (`proc_exit`, or 0 when `_start` returned).
    Exited(i32),
    /// Trapped: what happened.
    Trapped(String),
}

/// A module ready to run: validated for the interpreter, or compiled native code.
pub struct Program {
    kind: ProgramKind,
}

enum ProgramKind {
    Interp {
        engine: Engine,
        module: Module,
    },
    #[cfg(feature = "compiled")]
    Compiled(compiled::CompiledProgram),
}

/// How far a process may grow, and why the last growth was refused: the one policy behind both
/// engines' resource limiters.
pub(crate) struct Growth {
    max_memory: usize,
    max_table: usize,
    available: Option<fn() -> usize>,
    pub(crate) denied: bool,
    /// The last refusal came from the system-wide reserve, not the program's own limit.
    pub(crate) denied_by_system: bool,
}

impl Growth {
    pub(crate) fn new(limits: &Limits) -> Growth {
        Growth {
            max_memory: limits.max_memory,
            max_table: limits.max_table_elements,
            available: limits.available,
            denied: false,
            denied_by_system: false,
        }
    }

    /// Whether a linear memory may grow from `current` to `desired` bytes (`maximum`: its own).
    pub(crate) fn memory(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> bool {
        let system_ok = self.available.is_none_or(|avail| desired.saturating_sub(current) <= avail());
        let own_ok = desired <= self.max_memory && maximum.is_none_or(|m| desired <= m);
        let ok = own_ok && system_ok;
        if !ok {
            self.denied = true;
            self.denied_by_system = own_ok;
        }
        ok
    }

    /// A growth within the limits failed: the memory could not be had.
    pub(crate) fn memory_failed(&mut self) {
        self.denied = true;
        self.denied_by_system = true;
    }

    /// Whether a table may grow to `desired` elements.
    pub(crate) fn table(&self, desired: usize, maximum: Option<usize>) -> bool {
        desired <= self.max_table && maximum.is_none_or(|m| desired <= m)
    }
}

impl ResourceLimiter for Growth {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> Result<bool, LimiterError> {
        Ok(self.memory(current, desired, maximum))
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> Result<bool, LimiterError> {
        Ok(self.table(desired, maximum))
    }

    fn memory_grow_failed(&mut self, _error: &wasmi::errors::MemoryError) -> Result<(), LimiterError> {
        self.memory_failed();
        Ok(())
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

/// The error when a module's initial linear memory was refused.
pub(crate) fn initial_memory_refused(limits: &Limits) -> LoadError {
    LoadError::Instantiate(format!(
        "not enough memory for its initial linear memory (limit {} MiB, or the system is low)",
        limits.max_memory >> 20
    ))
}

/// A trap's description, its first line noting a refused memory growth (a likely cause).
pub(crate) fn note_refused_growth(msg: String, denied: bool) -> String {
    let (first, rest) = msg.split_once('\n').unwrap_or((&msg, ""));
    if !denied || first.contains("memory") {
        return msg;
    }
    let mut out = format!("{first} (after a memory growth was refused)");
    if !rest.is_empty() {
        out.push('\n');
        out.push_str(rest);
    }
    out
}

/// Checks that an import is a WASI function Keel provides.
pub(crate) fn check_import(module: &str, name: &str, kind: &'static str) -> Result<(), LoadError> {
    if module == WASI_MODULE && kind == "function" && FUNCTIONS.contains(&name) {
        Ok(())
    } else {
        Err(LoadError::UnknownImport { module: module.to_string(), name: name.to_string(), kind })
    }
}

struct Data {
    wasi: WasiCtx,
    memory: Option<Memory>,
    limiter: Growth,
}

/// The marker error a WASI call returns to suspend the guest.
#[derive(Debug)]
struct Suspended;

impl fmt::Display for Suspended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("suspended in WASI")
    }
}

impl wasmi::errors::HostError for Suspended {}

/// The engine configuration every program runs with.
///
/// Functions are validated when the module loads and translated to wasmi's bytecode lazily, at
/// their first call (fast start-up for large modules). wasmi 2.0 charges that translation in
/// fuel (7 per byte by default), but when the slice has less fuel left than the charge, the call
/// fails with an error that cannot be resumed (the executor turns the resumable out-of-fuel error
/// from `FuncEntry::compile` into a plain `DoneReason::Error`): real programs such as Lua then
/// died with "all fuel consumed" at a slice boundary. Translation is therefore not charged: it
/// happens once per function and is bounded by the (already validated) module size, like eager
/// compilation would be at load time; execution, `memory.grow` and bulk copies still are.
fn engine() -> Engine {
    let mut config = Config::default();
    config.consume_fuel(true);
    config.compilation_mode(wasmi::CompilationMode::LazyTranslation);
    config.fuel_cost(wasmi::CustomFuelCosts {
        bytes_copied_per_fuel: 64,
        fuel_per_bytes_translated: 0,
        fuel_per_bytes_validated: 0,
    });
    Engine::new(&config)
}

impl Program {
    /// Validates a module and checks that every import is a WASI function Keel provides.
    pub fn load(bytes: &[u8]) -> Result<Program, LoadError> {
        let engine = engine();
        let module = Module::new(&engine, bytes).map_err(|e| LoadError::Invalid(e.to_string()))?;
        for import in module.imports() {
            let kind = match import.ty() {
                wasmi::ExternType::Func(_) => "function",
                wasmi::ExternType::Memory(_) => "memory",
                wasmi::ExternType::Table(_) => "table",
                wasmi::ExternType::Global(_) => "global",
            };
            check_import(import.module(), import.name(), kind)?;
        }
        Ok(Program { kind: ProgramKind::Interp { engine, module } })
    }

    /// A module compiled ahead of time for the compiled tier's engine (see [`compiled::config`]).
    #[cfg(feature = "compiled")]
    pub fn compiled(module: &wasmtime::Module) -> Result<Program, LoadError> {
        Ok(Program { kind: ProgramKind::Compiled(compiled::CompiledProgram::new(module)?) })
    }

    /// Which engine runs it: "interpreter" or "compiled".
    pub fn engine_name(&self) -> &'static str {
        match self.kind {
            ProgramKind::Interp { .. } => "interpreter",
            #[cfg(feature = "compiled")]
            ProgramKind::Compiled(_) => "compiled",
        }
    }
}

enum Resume {
    Fresh,
    OutOfFuel(wasmi::TypedResumableCallOutOfFuel<()>),
    HostTrap(wasmi::TypedResumableCallHostTrap<()>),
    Done,
}

/// A running instance of a program.
pub struct Process {
    inner: Inner,
}

enum Inner {
    Interp(Box<Interp>),
    #[cfg(feature = "compiled")]
    Compiled(compiled::CompiledProcess),
}

/// A process's WASI state, borrowed (locked, on the compiled tier).
pub enum WasiRef<'a> {
    /// The interpreter's.
    Direct(&'a mut WasiCtx),
    /// The compiled tier's, shared with the suspended guest.
    #[cfg(feature = "compiled")]
    Locked(compiled::WasiGuard<'a>),
}

impl core::ops::Deref for WasiRef<'_> {
    type Target = WasiCtx;
    fn deref(&self) -> &WasiCtx {
        match self {
            WasiRef::Direct(w) => w,
            #[cfg(feature = "compiled")]
            WasiRef::Locked(w) => w,
        }
    }
}

impl core::ops::DerefMut for WasiRef<'_> {
    fn deref_mut(&mut self) -> &mut WasiCtx {
        match self {
            WasiRef::Direct(w) => w,
            #[cfg(feature = "compiled")]
            WasiRef::Locked(w) => w,
        }
    }
}

impl Process {
    /// Instantiates `program` with WASI and `limits`.
    pub fn new(program: &Program, wasi: WasiCtx, limits: Limits) -> Result<Process, LoadError> {
        let inner = match &program.kind {
            ProgramKind::Interp { engine, module } => {
                Inner::Interp(Box::new(Interp::new(engine, module, wasi, limits)?))
            }
            #[cfg(feature = "compiled")]
            ProgramKind::Compiled(p) => Inner::Compiled(compiled::CompiledProcess::new(p, wasi, limits)?),
        };
        Ok(Process { inner })
    }

    /// The WASI state (stdio buffers, pending calls).
    pub fn wasi(&mut self) -> WasiRef<'_> {
        match &mut self.inner {
            Inner::Interp(p) => WasiRef::Direct(&mut p.store.data_mut().wasi),
            #[cfg(feature = "compiled")]
            Inner::Compiled(p) => WasiRef::Locked(p.wasi()),
        }
    }

    /// Bytes of linear memory in use.
    pub fn memory_bytes(&self) -> usize {
        match &self.inner {
            Inner::Interp(p) => p.memory_bytes(),
            #[cfg(feature = "compiled")]
            Inner::Compiled(p) => p.memory_bytes(),
        }
    }

    /// True once a memory growth was refused by the limit (or by the kernel running low).
    pub fn memory_limit_hit(&self) -> bool {
        match &self.inner {
            Inner::Interp(p) => p.store.data().limiter.denied,
            #[cfg(feature = "compiled")]
            Inner::Compiled(p) => p.memory_denied().0,
        }
    }

    /// True if the last refused growth was refused to keep the system's reserve.
    pub fn memory_denied_by_system(&self) -> bool {
        match &self.inner {
            Inner::Interp(p) => p.store.data().limiter.denied_by_system,
            #[cfg(feature = "compiled")]
            Inner::Compiled(p) => p.memory_denied().1,
        }
    }

    /// Fuel consumed so far (a measure of CPU time; the interpreter's instructions). The compiled
    /// tier does not count: 0.
    pub fn fuel_used(&self) -> u64 {
        match &self.inner {
            Inner::Interp(p) => p.fuel_used,
            #[cfg(feature = "compiled")]
            Inner::Compiled(_) => 0,
        }
    }

    /// Runs the guest for one slice (or until it blocks, exits or traps).
    pub fn run(&mut self) -> Step {
        match &mut self.inner {
            Inner::Interp(p) => p.run(),
            #[cfg(feature = "compiled")]
            Inner::Compiled(p) => p.run(),
        }
    }
}

/// The interpreter's process.
struct Interp {
    store: Store<Data>,
    start: TypedFunc<(), ()>,
    resume: Resume,
    fuel_slice: u64,
    slice_fuel: u64,
    fuel_used: u64,
}

fn result(r: Result<Errno, Abort>) -> Result<i32, Error> {
    match r {
        Ok(e) => Ok(i32::from(e)),
        Err(Abort::Exit(code)) => Err(Error::i32_exit(code as i32)),
        Err(Abort::Suspend) => Err(Error::host(Suspended)),
    }
}

fn with<F>(caller: &mut Caller<'_, Data>, f: F) -> Result<i32, Error>
where
    F: FnOnce(&mut WasiCtx, &mut [u8]) -> Result<Errno, Abort>,
{
    match caller.data().memory {
        Some(mem) => {
            let (bytes, data) = mem.data_and_store_mut(caller);
            result(f(&mut data.wasi, bytes))
        }
        None => result(f(&mut caller.data_mut().wasi, &mut [])),
    }
}

fn u16_arg(v: i32) -> Result<u16, i32> {
    u16::try_from(v as u32).map_err(|_| i32::from(keel_wasi::errno::INVAL))
}

fn u8_arg(v: i32) -> Result<u8, i32> {
    u8::try_from(v as u32).map_err(|_| i32::from(keel_wasi::errno::INVAL))
}

type C<'a> = Caller<'a, Data>;

fn link(linker: &mut Linker<Data>) -> Result<(), Error> {
    let m = WASI_MODULE;
    linker.func_wrap(m, "args_get", |mut c: C, a: i32, b: i32| {
        with(&mut c, |w, mem| w.args_get(mem, a as u32, b as u32))
    })?;
    linker.func_wrap(m, "args_sizes_get", |mut c: C, a: i32, b: i32| {
        with(&mut c, |w, mem| w.args_sizes_get(mem, a as u32, b as u32))
    })?;
    linker.func_wrap(m, "environ_get", |mut c: C, a: i32, b: i32| {
        with(&mut c, |w, mem| w.environ_get(mem, a as u32, b as u32))
    })?;
    linker.func_wrap(m, "environ_sizes_get", |mut c: C, a: i32, b: i32| {
        with(&mut c, |w, mem| w.environ_sizes_get(mem, a as u32, b as u32))
    })?;
    linker.func_wrap(m, "clock_res_get", |mut c: C, id: i32, p: i32| {
        with(&mut c, |w, mem| w.clock_res_get(mem, id as u32, p as u32))
    })?;
    linker.func_wrap(m, "clock_time_get", |mut c: C, id: i32, prec: i64, p: i32| {
        with(&mut c, |w, mem| w.clock_time_get(mem, id as u32, prec as u64, p as u32))
    })?;
    linker.func_wrap(m, "fd_advise", |mut c: C, fd: i32, off: i64, len: i64, adv: i32| {
        with(&mut c, |w, _| w.fd_advise(fd as u32, off as u64, len as u64, adv as u32))
    })?;
    linker.func_wrap(m, "fd_allocate", |mut c: C, fd: i32, off: i64, len: i64| {
        with(&mut c, |w, _| w.fd_allocate(fd as u32, off as u64, len as u64))
    })?;
    linker.func_wrap(m, "fd_close", |mut c: C, fd: i32| with(&mut c, |w, _| w.fd_close(fd as u32)))?;
    linker.func_wrap(m, "fd_datasync", |mut c: C, fd: i32| with(&mut c, |w, _| w.fd_datasync(fd as u32)))?;
    linker.func_wrap(m, "fd_fdstat_get", |mut c: C, fd: i32, p: i32| {
        with(&mut c, |w, mem| w.fd_fdstat_get(mem, fd as u32, p as u32))
    })?;
    linker.func_wrap(m, "fd_fdstat_set_flags", |mut c: C, fd: i32, fl: i32| match u16_arg(fl) {
        Ok(fl) => with(&mut c, |w, _| w.fd_fdstat_set_flags(fd as u32, fl)),
        Err(e) => Ok(e),
    })?;
    linker.func_wrap(m, "fd_fdstat_set_rights", |mut c: C, fd: i32, b: i64, i: i64| {
        with(&mut c, |w, _| w.fd_fdstat_set_rights(fd as u32, b as u64, i as u64))
    })?;
    linker.func_wrap(m, "fd_filestat_get", |mut c: C, fd: i32, p: i32| {
        with(&mut c, |w, mem| w.fd_filestat_get(mem, fd as u32, p as u32))
    })?;
    linker.func_wrap(m, "fd_filestat_set_size", |mut c: C, fd: i32, size: i64| {
        with(&mut c, |w, _| w.fd_filestat_set_size(fd as u32, size as u64))
    })?;
    linker.func_wrap(m, "fd_filestat_set_times", |mut c: C, fd: i32, a: i64, mt: i64, fl: i32| match u16_arg(fl) {
        Ok(fl) => with(&mut c, |w, _| w.fd_filestat_set_times(fd as u32, a as u64, mt as u64, fl)),
        Err(e) => Ok(e),
    })?;
    linker.func_wrap(m, "fd_pread", |mut c: C, fd: i32, iovs: i32, n: i32, off: i64, out: i32| {
        with(&mut c, |w, mem| w.fd_pread(mem, fd as u32, iovs as u32, n as u32, off as u64, out as u32))
    })?;
    linker.func_wrap(m, "fd_prestat_get", |mut c: C, fd: i32, p: i32| {
        with(&mut c, |w, mem| w.fd_prestat_get(mem, fd as u32, p as u32))
    })?;
    linker.func_wrap(m, "fd_prestat_dir_name", |mut c: C, fd: i32, p: i32, l: i32| {
        with(&mut c, |w, mem| w.fd_prestat_dir_name(mem, fd as u32, p as u32, l as u32))
    })?;
    linker.func_wrap(m, "fd_pwrite", |mut c: C, fd: i32, iovs: i32, n: i32, off: i64, out: i32| {
        with(&mut c, |w, mem| w.fd_pwrite(mem, fd as u32, iovs as u32, n as u32, off as u64, out as u32))
    })?;
    linker.func_wrap(m, "fd_read", |mut c: C, fd: i32, iovs: i32, n: i32, out: i32| {
        with(&mut c, |w, mem| w.fd_read(mem, fd as u32, iovs as u32, n as u32, out as u32))
    })?;
    linker.func_wrap(m, "fd_readdir", |mut c: C, fd: i32, buf: i32, len: i32, cookie: i64, out: i32| {
        with(&mut c, |w, mem| w.fd_readdir(mem, fd as u32, buf as u32, len as u32, cookie as u64, out as u32))
    })?;
    linker.func_wrap(m, "fd_renumber", |mut c: C, a: i32, b: i32| {
        with(&mut c, |w, _| w.fd_renumber(a as u32, b as u32))
    })?;
    linker.func_wrap(m, "fd_seek", |mut c: C, fd: i32, off: i64, wh: i32, out: i32| match u8_arg(wh) {
        Ok(wh) => with(&mut c, |w, mem| w.fd_seek(mem, fd as u32, off, wh, out as u32)),
        Err(e) => Ok(e),
    })?;
    linker.func_wrap(m, "fd_sync", |mut c: C, fd: i32| with(&mut c, |w, _| w.fd_sync(fd as u32)))?;
    linker.func_wrap(m, "fd_tell", |mut c: C, fd: i32, p: i32| {
        with(&mut c, |w, mem| w.fd_tell(mem, fd as u32, p as u32))
    })?;
    linker.func_wrap(m, "fd_write", |mut c: C, fd: i32, iovs: i32, n: i32, out: i32| {
        with(&mut c, |w, mem| w.fd_write(mem, fd as u32, iovs as u32, n as u32, out as u32))
    })?;
    linker.func_wrap(m, "path_create_directory", |mut c: C, fd: i32, p: i32, l: i32| {
        with(&mut c, |w, mem| w.path_create_directory(mem, fd as u32, p as u32, l as u32))
    })?;
    linker.func_wrap(m, "path_filestat_get", |mut c: C, fd: i32, fl: i32, p: i32, l: i32, out: i32| {
        with(&mut c, |w, mem| w.path_filestat_get(mem, fd as u32, fl as u32, p as u32, l as u32, out as u32))
    })?;
    linker.func_wrap(
        m,
        "path_filestat_set_times",
        |mut c: C, fd: i32, fl: i32, p: i32, l: i32, a: i64, mt: i64, fst: i32| match u16_arg(fst) {
            Ok(fst) => with(&mut c, |w, mem| {
                w.path_filestat_set_times(mem, fd as u32, fl as u32, p as u32, l as u32, a as u64, mt as u64, fst)
            }),
            Err(e) => Ok(e),
        },
    )?;
    linker.func_wrap(m, "path_link", |mut c: C, ofd: i32, fl: i32, op: i32, ol: i32, nfd: i32, np: i32, nl: i32| {
        with(&mut c, |w, mem| {
            w.path_link(mem, ofd as u32, fl as u32, op as u32, ol as u32, nfd as u32, np as u32, nl as u32)
        })
    })?;
    linker.func_wrap(
        m,
        "path_open",
        |mut c: C, fd: i32, df: i32, p: i32, l: i32, of: i32, rb: i64, ri: i64, ff: i32, out: i32| {
            let (of, ff) = match (u16_arg(of), u16_arg(ff)) {
                (Ok(a), Ok(b)) => (a, b),
                _ => return Ok(i32::from(keel_wasi::errno::INVAL)),
            };
            with(&mut c, |w, mem| {
                w.path_open(mem, fd as u32, df as u32, p as u32, l as u32, of, rb as u64, ri as u64, ff, out as u32)
            })
        },
    )?;
    linker.func_wrap(m, "path_readlink", |mut c: C, fd: i32, p: i32, l: i32, b: i32, bl: i32, out: i32| {
        with(&mut c, |w, mem| w.path_readlink(mem, fd as u32, p as u32, l as u32, b as u32, bl as u32, out as u32))
    })?;
    linker.func_wrap(m, "path_remove_directory", |mut c: C, fd: i32, p: i32, l: i32| {
        with(&mut c, |w, mem| w.path_remove_directory(mem, fd as u32, p as u32, l as u32))
    })?;
    linker.func_wrap(m, "path_rename", |mut c: C, fd: i32, op: i32, ol: i32, nfd: i32, np: i32, nl: i32| {
        with(&mut c, |w, mem| w.path_rename(mem, fd as u32, op as u32, ol as u32, nfd as u32, np as u32, nl as u32))
    })?;
    linker.func_wrap(m, "path_symlink", |mut c: C, op: i32, ol: i32, fd: i32, np: i32, nl: i32| {
        with(&mut c, |w, mem| w.path_symlink(mem, op as u32, ol as u32, fd as u32, np as u32, nl as u32))
    })?;
    linker.func_wrap(m, "path_unlink_file", |mut c: C, fd: i32, p: i32, l: i32| {
        with(&mut c, |w, mem| w.path_unlink_file(mem, fd as u32, p as u32, l as u32))
    })?;
    linker.func_wrap(m, "poll_oneoff", |mut c: C, i: i32, o: i32, n: i32, ne: i32| {
        with(&mut c, |w, mem| w.poll_oneoff(mem, i as u32, o as u32, n as u32, ne as u32))
    })?;
    linker.func_wrap(m, "proc_exit", |mut c: C, code: i32| -> Result<(), Error> {
        with(&mut c, |w, _| w.proc_exit(code as u32)).map(|_| ())
    })?;
    linker.func_wrap(m, "proc_raise", |mut c: C, sig: i32| with(&mut c, |w, _| w.proc_raise(sig as u32)))?;
    linker.func_wrap(m, "sched_yield", |mut c: C| with(&mut c, |w, _| w.sched_yield()))?;
    linker.func_wrap(m, "random_get", |mut c: C, b: i32, l: i32| {
        with(&mut c, |w, mem| w.random_get(mem, b as u32, l as u32))
    })?;
    linker.func_wrap(m, "sock_accept", |mut c: C, fd: i32, fl: i32, out: i32| match u16_arg(fl) {
        Ok(fl) => with(&mut c, |w, mem| w.sock_accept(mem, fd as u32, fl, out as u32)),
        Err(e) => Ok(e),
    })?;
    linker.func_wrap(
        m,
        "sock_recv",
        |mut c: C, fd: i32, ri: i32, rl: i32, fl: i32, ol: i32, of: i32| match u16_arg(fl) {
            Ok(fl) => {
                with(&mut c, |w, mem| w.sock_recv(mem, fd as u32, ri as u32, rl as u32, fl, ol as u32, of as u32))
            }
            Err(e) => Ok(e),
        },
    )?;
    linker.func_wrap(m, "sock_send", |mut c: C, fd: i32, si: i32, sl: i32, fl: i32, ol: i32| match u16_arg(fl) {
        Ok(fl) => with(&mut c, |w, mem| w.sock_send(mem, fd as u32, si as u32, sl as u32, fl, ol as u32)),
        Err(e) => Ok(e),
    })?;
    linker.func_wrap(m, "sock_shutdown", |mut c: C, fd: i32, how: i32| match u8_arg(how) {
        Ok(how) => with(&mut c, |w, _| w.sock_shutdown(fd as u32, how)),
        Err(e) => Ok(e),
    })?;
    Ok(())
}

/// Describes a trap for the user.
fn describe(e: &Error) -> String {
    match e.as_trap_code() {
        // wasmi 2.0 words this one "uninitialized element 2" (a leftover it marks to fix).
        Some(wasmi::TrapCode::IndirectCallToNull) => "uninitialized element".into(),
        Some(code) => format!("{code}"),
        None => e.to_string(),
    }
}

impl Interp {
    fn new(engine: &Engine, module: &Module, wasi: WasiCtx, limits: Limits) -> Result<Interp, LoadError> {
        let data = Data { wasi, memory: None, limiter: Growth::new(&limits) };
        let mut store = Store::new(engine, data);
        store.limiter(|d| &mut d.limiter);
        // Initialisation (data segments, a start function) also runs on fuel.
        store.set_fuel(limits.fuel_slice.max(1) * 50).map_err(|e| LoadError::Instantiate(e.to_string()))?;
        let mut linker = Linker::new(engine);
        link(&mut linker).map_err(|e| LoadError::Link(e.to_string()))?;
        let instance = linker.instantiate_and_start(&mut store, module).map_err(|e| {
            if store.data().limiter.denied {
                initial_memory_refused(&limits)
            } else if matches!(
                e.kind(),
                wasmi::errors::ErrorKind::Linker(_) | wasmi::errors::ErrorKind::Instantiation(_)
            ) {
                LoadError::Link(e.to_string())
            } else {
                LoadError::Instantiate(describe(&e))
            }
        })?;
        let memory = instance.get_export(&store, "memory").and_then(Extern::into_memory);
        store.data_mut().memory = memory;
        let start = instance.get_typed_func::<(), ()>(&store, "_start").map_err(|_| LoadError::NoStart)?;
        Ok(Interp {
            store,
            start,
            resume: Resume::Fresh,
            fuel_slice: limits.fuel_slice.max(1),
            slice_fuel: 0,
            fuel_used: 0,
        })
    }

    fn memory_bytes(&self) -> usize {
        self.store.data().memory.map_or(0, |m| m.data(&self.store).len())
    }

    fn account(&mut self) {
        let left = self.store.get_fuel().unwrap_or(0);
        self.fuel_used += self.slice_fuel.saturating_sub(left);
    }

    fn run(&mut self) -> Step {
        let resume = core::mem::replace(&mut self.resume, Resume::Done);
        // An instruction may need more fuel than one slice (a large memory.grow): give it that.
        let fuel = match &resume {
            Resume::OutOfFuel(inv) => self.fuel_slice.max(inv.required_fuel()),
            _ => self.fuel_slice,
        };
        self.slice_fuel = fuel;
        if self.store.set_fuel(fuel).is_err() {
            return Step::Trapped("fuel metering is off".into());
        }
        let r = match resume {
            Resume::Fresh => self.start.call_resumable(&mut self.store, ()),
            Resume::OutOfFuel(inv) => inv.resume(&mut self.store),
            Resume::HostTrap(inv) => {
                let errno = match self.store.data().memory {
                    Some(mem) => {
                        let (bytes, data) = mem.data_and_store_mut(&mut self.store);
                        data.wasi.complete(bytes)
                    }
                    None => self.store.data_mut().wasi.complete(&mut []),
                };
                inv.resume(&mut self.store, &[Val::I32(i32::from(errno))])
            }
            Resume::Done => return Step::Trapped("the program has already ended".into()),
        };
        self.account();
        match r {
            Ok(TypedResumableCall::Finished(())) => Step::Exited(0),
            Ok(TypedResumableCall::OutOfFuel(inv)) => {
                self.resume = Resume::OutOfFuel(inv);
                Step::Preempted
            }
            Ok(TypedResumableCall::HostTrap(inv)) => {
                if let Some(code) = inv.host_error().i32_exit_status() {
                    return Step::Exited(code);
                }
                if inv.host_error().downcast_ref::<Suspended>().is_some() {
                    self.resume = Resume::HostTrap(inv);
                    return Step::Blocked;
                }
                Step::Trapped(describe(inv.host_error()))
            }
            Err(e) => match e.i32_exit_status() {
                Some(code) => Step::Exited(code),
                None => Step::Trapped(note_refused_growth(describe(&e), self.store.data().limiter.denied)),
            },
        }
    }
}
