//! The compiled tier: wasmtime's runtime (no Cranelift inside: modules are compiled to native
//! code on the build host, see [`config`]) behind the same [`crate::Process`] interface as the
//! interpreter.
//!
//! A guest runs as an `async` call on a fiber (its own stack). The interpreter's two reasons to
//! hand control back map onto the future's `Pending`:
//! - a WASI call that must wait ([`keel_wasi::Abort::Suspend`]) awaits once; [`crate::Step::Blocked`]
//!   goes to the runner, which waits as for the interpreter and polls again, and the host function
//!   then completes the call;
//! - epoch interruption: the kernel's timer advances the engine's epoch every tick and the guest
//!   yields at the next loop head or function entry ([`crate::Step::Preempted`]), so Ctrl-C,
//!   `kill` and `--timeout` work on code that never calls out.
//!
//! Fibers rather than a kernel task per guest blocked inside the call: the runner, the shell's
//! jobs and WASI stay the same for both engines, and a guest's state is one value the caller owns.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use keel_wasi::dispatch::{self, MAX_PARAMS, SIGNATURES};
use keel_wasi::{Abort, WasiCtx};
use spin::Mutex;
use wasmtime::{
    Caller, Config, Engine, Extern, FuncType, InstancePre, Linker, Module, ResourceLimiter, Store, Trap, Val, ValType,
    WasmBacktrace,
};

use crate::{check_import, initial_memory_refused, note_refused_growth, Growth, Limits, LoadError, Step, WASI_MODULE};

pub use wasmtime;

/// The largest stack compiled WASM code may use (checked by the code itself: no guard pages).
pub const MAX_WASM_STACK: usize = 512 << 10;
/// Each guest's fiber stack: the WASM stack plus room for host calls (WASI, the VFS, 9P).
pub const FIBER_STACK: usize = MAX_WASM_STACK + (512 << 10);

/// The engine settings of the compiled tier. The build host compiles with exactly these (plus
/// its target and CPU flags) and the kernel runs with them: wasmtime refuses an artefact whose
/// settings differ.
///
/// Guard pages, as wasmtime does on Linux: each linear memory is a 4 GiB reservation plus a
/// 32 MiB guard, of which only the part in use is mapped, so the code needs no bounds checks
/// (an access past the memory faults and the fault is the trap), and it is half the size. The
/// kernel provides the reservations and hands faults in compiled code to wasmtime
/// (`kernel/src/proc/aot.rs`). No copy-on-write memory images: data segments are copied.
pub fn config() -> Config {
    let mut c = Config::new();
    c.signals_based_traps(true);
    c.memory_reservation(4 << 30);
    c.memory_guard_size(32 << 20);
    c.memory_init_cow(false);
    c.epoch_interruption(true);
    c.max_wasm_stack(MAX_WASM_STACK);
    c.async_stack_size(FIBER_STACK);
    c.wasm_backtrace_max_frames(core::num::NonZeroUsize::new(20));
    c
}

/// The CPU features the build host compiles for (Cranelift's x86-64 flags). Keel's QEMU machine
/// has them (`-cpu qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt`), as has every x86-64 CPU since 2009;
/// the kernel checks them with CPUID before it runs any artefact. No AVX: Keel does not enable
/// the XSAVE state AVX needs.
pub const CPU_FLAGS: [&str; 5] = ["has_sse3", "has_ssse3", "has_sse41", "has_sse42", "has_popcnt"];

/// A guest's state outside its store: reachable while the guest is suspended.
pub struct Shared {
    wasi: WasiCtx,
    memory_bytes: usize,
    growth: Growth,
}

/// The store's resource limiter: the shared growth policy, recording the memory in use.
struct Limiter {
    shared: Arc<Mutex<Shared>>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let mut s = self.shared.lock();
        let ok = s.growth.memory(current, desired, maximum);
        if ok {
            s.memory_bytes = desired;
        }
        Ok(ok)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.shared.lock().growth.memory_failed();
        Ok(())
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.shared.lock().growth.table(desired, maximum))
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

/// A compiled guest's WASI state, locked (see [`crate::WasiRef`]).
pub struct WasiGuard<'a>(spin::MutexGuard<'a, Shared>);

impl core::ops::Deref for WasiGuard<'_> {
    type Target = WasiCtx;
    fn deref(&self) -> &WasiCtx {
        &self.0.wasi
    }
}

impl core::ops::DerefMut for WasiGuard<'_> {
    fn deref_mut(&mut self) -> &mut WasiCtx {
        &mut self.0.wasi
    }
}

/// What a guest's store holds.
pub struct Data {
    shared: Arc<Mutex<Shared>>,
    limiter: Limiter,
}

/// `proc_exit`'s way out of the guest.
#[derive(Debug)]
struct Exit(i32);

impl core::fmt::Display for Exit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl core::error::Error for Exit {}

/// Returns `Pending` once: how a host function hands control back to whoever polls the guest.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Runs `f` on the guest's WASI state and its exported memory.
fn with<R>(caller: &mut Caller<'_, Data>, f: impl FnOnce(&mut WasiCtx, &mut [u8]) -> R) -> R {
    let memory = caller.get_export("memory").and_then(Extern::into_memory);
    match memory {
        Some(mem) => {
            let (bytes, data) = mem.data_and_store_mut(caller);
            f(&mut data.shared.lock().wasi, bytes)
        }
        None => {
            let shared = caller.data().shared.clone();
            let mut s = shared.lock();
            f(&mut s.wasi, &mut [])
        }
    }
}

fn value_type(c: char) -> ValType {
    if c == 'I' {
        ValType::I64
    } else {
        ValType::I32
    }
}

fn link(engine: &Engine) -> wasmtime::Result<Linker<Data>> {
    let mut linker = Linker::new(engine);
    for (name, sig) in SIGNATURES {
        let results: &[ValType] = if name == "proc_exit" { &[] } else { &[ValType::I32] };
        let ty = FuncType::new(engine, sig.chars().map(value_type), results.iter().cloned());
        linker.func_new_async(WASI_MODULE, name, ty, move |mut caller, params, results| {
            Box::new(async move {
                let mut args = [0u64; MAX_PARAMS];
                for (slot, v) in args.iter_mut().zip(params) {
                    *slot = match v {
                        Val::I32(x) => u64::from(*x as u32),
                        Val::I64(x) => *x as u64,
                        _ => 0,
                    };
                }
                let r = with(&mut caller, |w, mem| dispatch::call(w, mem, name, &args[..params.len()]));
                let errno = match r {
                    Ok(Ok(errno)) => errno,
                    Ok(Err(Abort::Exit(code))) => return Err(wasmtime::Error::new(Exit(code as i32))),
                    Ok(Err(Abort::Suspend)) => {
                        // The runner sees `Blocked`, waits, and polls again once the call can finish.
                        YieldOnce(false).await;
                        with(&mut caller, |w, mem| w.complete(mem))
                    }
                    Err(e) => return Err(wasmtime::Error::msg(format!("WASI {name}: {e:?}"))),
                };
                if let Some(slot) = results.first_mut() {
                    *slot = Val::I32(i32::from(errno));
                }
                Ok(())
            })
        })?;
    }
    Ok(linker)
}

/// A module compiled for this engine, linked against WASI.
pub struct CompiledProgram {
    pre: InstancePre<Data>,
}

impl CompiledProgram {
    /// Checks that every import is a WASI function Keel provides and links them.
    pub fn new(module: &Module) -> Result<CompiledProgram, LoadError> {
        for import in module.imports() {
            let kind = match import.ty() {
                wasmtime::ExternType::Func(_) => "function",
                wasmtime::ExternType::Memory(_) => "memory",
                wasmtime::ExternType::Table(_) => "table",
                wasmtime::ExternType::Global(_) => "global",
                _ => "item",
            };
            check_import(import.module(), import.name(), kind)?;
        }
        let linker = link(module.engine()).map_err(|e| LoadError::Link(e.to_string()))?;
        let pre = linker.instantiate_pre(module).map_err(|e| LoadError::Link(e.to_string()))?;
        Ok(CompiledProgram { pre })
    }
}

type Run = Pin<Box<dyn Future<Output = (Store<Data>, wasmtime::Result<()>)> + Send>>;

/// A compiled guest: its call of `_start` as a future that owns the store.
pub struct CompiledProcess {
    shared: Arc<Mutex<Shared>>,
    /// None once the guest has ended.
    run: Option<Run>,
}

/// Polls `f` once with a waker that does nothing (the runner polls again when it should).
fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    f.poll(&mut cx)
}

/// Epoch ticks a module's start function may run during instantiation (the interpreter gives
/// it 50 fuel slices): about half a second.
pub const START_TICKS: usize = 50;

/// Polls instantiation until done. It yields only on an epoch tick (a start function running)
/// or in WASI; a start function that runs too long or waits is an error, as on the interpreter.
fn finish<F: Future>(mut f: Pin<&mut F>, shared: &Mutex<Shared>) -> Result<F::Output, LoadError> {
    for _ in 0..START_TICKS {
        if let Poll::Ready(v) = poll_once(f.as_mut()) {
            return Ok(v);
        }
        if shared.lock().wasi.pending().is_some() {
            return Err(LoadError::Instantiate("the start function waits in WASI".into()));
        }
    }
    Err(LoadError::Instantiate("the start function runs too long".into()))
}

impl CompiledProcess {
    /// Instantiates `program` with WASI and `limits`.
    pub fn new(program: &CompiledProgram, wasi: WasiCtx, limits: Limits) -> Result<CompiledProcess, LoadError> {
        let shared = Arc::new(Mutex::new(Shared { wasi, memory_bytes: 0, growth: Growth::new(&limits) }));
        let limiter = Limiter { shared: shared.clone() };
        let mut store = Store::new(program.pre.module().engine(), Data { shared: shared.clone(), limiter });
        store.limiter(|d| &mut d.limiter);
        store.epoch_deadline_async_yield_and_update(1);
        let instance = {
            let fut = core::pin::pin!(program.pre.instantiate_async(&mut store));
            finish(fut, &shared)?
        };
        let instance = instance.map_err(|e| {
            if shared.lock().growth.denied {
                initial_memory_refused(&limits)
            } else {
                LoadError::Instantiate(describe(&e))
            }
        })?;
        if let Some(mem) = instance.get_memory(&mut store, "memory") {
            shared.lock().memory_bytes = mem.data_size(&store);
        }
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start").map_err(|_| LoadError::NoStart)?;
        let run: Run = Box::pin(async move {
            let r = start.call_async(&mut store, ()).await;
            (store, r)
        });
        Ok(CompiledProcess { shared, run: Some(run) })
    }

    /// The WASI state; locked while the guest is not running.
    pub fn wasi(&self) -> WasiGuard<'_> {
        WasiGuard(self.shared.lock())
    }

    /// Bytes of linear memory in use.
    pub fn memory_bytes(&self) -> usize {
        self.shared.lock().memory_bytes
    }

    /// (a growth was refused, by the system's reserve rather than the program's limit)
    pub fn memory_denied(&self) -> (bool, bool) {
        let s = self.shared.lock();
        (s.growth.denied, s.growth.denied_by_system)
    }

    /// Runs the guest until it yields (an epoch tick), waits in WASI, exits or traps.
    pub fn run(&mut self) -> Step {
        let Some(run) = self.run.as_mut() else {
            return Step::Trapped("the program has already ended".into());
        };
        match poll_once(run.as_mut()) {
            Poll::Pending => {
                if self.shared.lock().wasi.pending().is_some() {
                    Step::Blocked
                } else {
                    Step::Preempted
                }
            }
            Poll::Ready((_store, r)) => {
                self.run = None;
                match r {
                    Ok(()) => Step::Exited(0),
                    Err(e) => match e.downcast_ref::<Exit>() {
                        Some(Exit(code)) => Step::Exited(*code),
                        None => Step::Trapped(note_refused_growth(describe(&e), self.shared.lock().growth.denied)),
                    },
                }
            }
        }
    }
}

/// A trap as the interpreter words it, then where it happened: each frame's function (from the
/// module's name section, or its index) and code offset, innermost first.
pub fn describe(e: &wasmtime::Error) -> String {
    let mut msg = match e.downcast_ref::<Trap>() {
        Some(trap) => {
            let text = trap.to_string();
            text.strip_prefix("wasm trap: ").unwrap_or(&text).to_string()
        }
        None => e.to_string(),
    };
    if let Some(bt) = e.downcast_ref::<WasmBacktrace>() {
        let frames: Vec<String> = bt
            .frames()
            .iter()
            .take(8)
            .map(|f| {
                let name = f.func_name().map_or_else(|| format!("function {}", f.func_index()), str::to_string);
                match f.module_offset() {
                    Some(off) => format!("{name} at {off:#x}"),
                    None => name,
                }
            })
            .collect();
        if !frames.is_empty() {
            msg.push_str("\n  in ");
            msg.push_str(&frames.join("\n  called from "));
            if bt.frames().len() > frames.len() {
                msg.push_str(&format!("\n  ({} more frames)", bt.frames().len() - frames.len()));
            }
        }
    }
    msg
}
