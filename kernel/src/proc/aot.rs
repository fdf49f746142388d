//! The compiled tier's platform: what wasmtime's `no_std` runtime asks of the kernel (two
//! thread-local words, kept per task), its engine (the epoch advanced by the timer interrupt so
//! compiled guests yield), the CPU features the build host compiles for, and loading an artefact
//! only once its seal shows that this build made it.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use core::arch::x86_64::{__cpuid, __cpuid_count, CpuidResult};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use keel_wasm::compiled::{self, wasmtime};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::idt::InterruptStackFrame;
use x86_64::VirtAddr;

use crate::arch::smp;
use crate::mm::memory::{self, Access};
use crate::proc::Contents;
use keel_sched::MAX_CPUS;
use keel_wasm::Program;
use x86_64::instructions::interrupts::without_interrupts;

// `pub const KEY: Option<[u8; 32]>`: the key `cargo xtask build` generated for this build.
include!(concat!(env!("OUT_DIR"), "/aot_key.rs"));

/// wasmtime's thread-local words, per CPU: those of the task each CPU runs (saved and restored
/// with the task at every switch).
static TLS: [[AtomicPtr<u8>; 2]; MAX_CPUS] =
    [const { [AtomicPtr::new(core::ptr::null_mut()), AtomicPtr::new(core::ptr::null_mut())] }; MAX_CPUS];

/// wasmtime's thread-local words: which activation of the runtime is current. Read with
/// interrupts off, so the task cannot move to another CPU between finding its CPU and reading.
#[no_mangle]
pub extern "C" fn wasmtime_tls_get(slot: usize) -> *mut u8 {
    without_interrupts(|| TLS[smp::cpu()].get(slot).map_or(core::ptr::null_mut(), |t| t.load(Ordering::Relaxed)))
}

#[no_mangle]
pub extern "C" fn wasmtime_tls_set(slot: usize, ptr: *mut u8) {
    without_interrupts(|| {
        if let Some(t) = TLS[smp::cpu()].get(slot) {
            t.store(ptr, Ordering::Relaxed);
        }
    })
}

/// The current task's words, saved across a task switch (interrupts are off).
pub fn tls_save() -> [*mut u8; 2] {
    let tls = &TLS[smp::cpu()];
    [tls[0].load(Ordering::Relaxed), tls[1].load(Ordering::Relaxed)]
}

/// Puts back what [`tls_save`] returned (or nulls, for a task's start); interrupts are off.
pub fn tls_restore(words: [*mut u8; 2]) {
    let tls = &TLS[smp::cpu()];
    tls[0].store(words[0], Ordering::Relaxed);
    tls[1].store(words[1], Ordering::Relaxed);
}

/// wasmtime's mappings: reservations in the kernel's compiled-tier region (`memory::VM_REGION`),
/// by address. A linear memory is a 4 GiB reservation plus guards, of which only the part in use
/// is mapped: an access past it faults, and the fault is the trap.
static MAPPINGS: spin::Mutex<BTreeMap<usize, Mapping>> = spin::Mutex::new(BTreeMap::new());

#[derive(Clone, Copy)]
struct Mapping {
    len: usize,
    /// The span (offsets) that was ever made accessible: unmapping visits only it, not the
    /// whole 4 GiB of a linear memory's reservation.
    touched: (usize, usize),
}

impl Mapping {
    fn touch(&mut self, from: usize, to: usize) {
        self.touched = if self.touched.0 == self.touched.1 {
            (from, to)
        } else {
            (self.touched.0.min(from), self.touched.1.max(to))
        };
    }
}

const PAGE: usize = 4096;
/// The error code wasmtime gets for a failed mapping (any nonzero value).
const ENOMEM: i32 = 12;
const PROT_READ: u32 = 1;
const PROT_WRITE: u32 = 2;
const PROT_EXEC: u32 = 4;

fn access(prot: u32) -> Access {
    if prot & PROT_EXEC != 0 {
        Access::ReadExecute
    } else if prot & PROT_WRITE != 0 {
        Access::ReadWrite
    } else if prot & PROT_READ != 0 {
        Access::ReadOnly
    } else {
        Access::None
    }
}

#[no_mangle]
pub extern "C" fn wasmtime_page_size() -> usize {
    PAGE
}

#[no_mangle]
pub extern "C" fn wasmtime_mmap_new(size: usize, prot: u32, ret: &mut *mut u8) -> i32 {
    let size = size.max(1).next_multiple_of(PAGE);
    let Some(addr) = memory::vm_reserve(size as u64) else { return ENOMEM };
    let access = access(prot);
    // A fresh reservation has nothing mapped: only an accessible one needs pages.
    if access != Access::None && !memory::vm_protect(addr, size as u64, access) {
        memory::vm_protect(addr, size as u64, Access::None);
        memory::vm_release(addr, size as u64);
        return ENOMEM;
    }
    let touched = if access == Access::None { (0, 0) } else { (0, size) };
    MAPPINGS.lock().insert(addr as usize, Mapping { len: size, touched });
    *ret = addr as *mut u8;
    0
}

/// The mapping holding all of `addr..addr + size`: (its base, it).
fn find(addr: *mut u8, size: usize) -> Option<(usize, Mapping)> {
    let a = addr as usize;
    MAPPINGS
        .lock()
        .range(..=a)
        .next_back()
        .filter(|(base, m)| a.checked_add(size).is_some_and(|end| end <= *base + m.len))
        .map(|(b, m)| (*b, *m))
}

/// Sets the access of part of a mapping, remembering what was ever made accessible and
/// unmapping only within that.
fn protect(base: usize, addr: usize, size: usize, access: Access) -> bool {
    if access == Access::None {
        let Some(m) = MAPPINGS.lock().get(&base).copied() else { return false };
        let from = addr.max(base + m.touched.0);
        let to = (addr + size).min(base + m.touched.1);
        return from >= to || memory::vm_protect(from as u64, (to - from) as u64, Access::None);
    }
    if let Some(m) = MAPPINGS.lock().get_mut(&base) {
        m.touch(addr - base, addr - base + size);
    }
    memory::vm_protect(addr as u64, size as u64, access)
}

#[no_mangle]
pub extern "C" fn wasmtime_mmap_remap(addr: *mut u8, size: usize, prot: u32) -> i32 {
    // A fresh blank mapping in place: the old pages go, the new ones are zero.
    let Some((base, _)) = find(addr, size) else { return ENOMEM };
    let a = addr as usize;
    if protect(base, a, size, Access::None) && protect(base, a, size, access(prot)) {
        0
    } else {
        ENOMEM
    }
}

#[no_mangle]
pub extern "C" fn wasmtime_munmap(ptr: *mut u8, size: usize) -> i32 {
    let Some((base, m)) = find(ptr, size) else { return ENOMEM };
    protect(base, ptr as usize, size, Access::None);
    if base == ptr as usize && m.len == size.next_multiple_of(PAGE) {
        MAPPINGS.lock().remove(&base);
        memory::vm_release(base as u64, m.len as u64);
    }
    // Part of a mapping: its pages go, the address range stays reserved with the mapping.
    0
}

#[no_mangle]
pub extern "C" fn wasmtime_mprotect(ptr: *mut u8, size: usize, prot: u32) -> i32 {
    match find(ptr, size) {
        Some((base, _)) if protect(base, ptr as usize, size, access(prot)) => 0,
        _ => ENOMEM,
    }
}

#[no_mangle]
pub extern "C" fn wasmtime_memory_image_new(_ptr: *const u8, _len: usize, ret: &mut *mut u8) -> i32 {
    // No copy-on-write images: linear memories are initialised by copying the data segments.
    *ret = core::ptr::null_mut();
    0
}

#[no_mangle]
pub extern "C" fn wasmtime_memory_image_map_at(_image: *mut u8, _addr: *mut u8, _len: usize) -> i32 {
    // Never called: wasmtime_memory_image_new makes no images.
    ENOMEM
}

#[no_mangle]
pub extern "C" fn wasmtime_memory_image_free(_image: *mut u8) {}

// ---- Traps: faults in compiled code ----
//
// With guard pages the code has no bounds checks: an access past a linear memory faults (#PF),
// and the other traps are `ud2` (#UD) or a division by zero (#DE). The exception handler (in
// `cpu.rs`, interrupts off, on its own stack) sees the instruction pointer in the compiled-tier
// region, notes the fault and "returns" into `keel_wasm_trap_entry` on the guest's stack, with
// every register as the code left it; that passes the frame pointer on to wasmtime's handler,
// which unwinds the WASM frames to the call's entry and reports the trap.

/// The handler wasmtime installs (`wasmtime_init_traps`).
type TrapHandler = extern "C" fn(pc: usize, fp: usize, has_faulting_addr: bool, faulting_addr: usize);

static TRAP_HANDLER: AtomicUsize = AtomicUsize::new(0);
/// The fault being handed over: instruction pointer, faulting address (or NO_ADDRESS).
/// Per CPU: written by the exception handler, read by the trap entry before interrupts are on.
static PENDING_PC: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
static PENDING_ADDR: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
const NO_ADDRESS: usize = usize::MAX;

#[no_mangle]
pub extern "C" fn wasmtime_init_traps(handler: TrapHandler) -> i32 {
    TRAP_HANDLER.store(handler as usize, Ordering::Release);
    0
}

core::arch::global_asm!(
    r#"
    .section .text.keel_wasm_trap_entry, "ax"
    .global keel_wasm_trap_entry
keel_wasm_trap_entry:
    // Interrupts are off; rbp is the faulting code's frame pointer.
    mov rdi, rbp
    and rsp, -16
    call {trap}
    ud2
"#,
    trap = sym keel_wasm_trap,
);

extern "C" {
    fn keel_wasm_trap_entry();
}

/// Runs on the guest's stack after a fault in compiled code.
extern "C" fn keel_wasm_trap(fp: usize) -> ! {
    let cpu = smp::cpu();
    let pc = PENDING_PC[cpu].load(Ordering::Relaxed);
    let addr = PENDING_ADDR[cpu].load(Ordering::Relaxed);
    // Read before interrupts come back (another task could fault next).
    x86_64::instructions::interrupts::enable();
    let handler = TRAP_HANDLER.load(Ordering::Acquire);
    if handler != 0 {
        // SAFETY: the value was stored from a `TrapHandler` by wasmtime_init_traps.
        let handler: TrapHandler = unsafe { core::mem::transmute::<usize, TrapHandler>(handler) };
        // Does not return when the fault was a trap of the running guest.
        handler(pc, fp, addr != NO_ADDRESS, addr);
    }
    panic!("fault in compiled WASM code that wasmtime did not claim: rip {pc:#x}, address {addr:#x}");
}

/// Called by the exception handlers: when the fault is in compiled WASM code, sends the
/// interrupted code on to the trap path and returns true (the handler then returns).
pub fn redirect_trap(frame: &mut InterruptStackFrame, faulting_addr: Option<u64>) -> bool {
    let rip = frame.instruction_pointer.as_u64();
    if !memory::is_vm_region(rip) || TRAP_HANDLER.load(Ordering::Acquire) == 0 {
        return false;
    }
    let cpu = smp::cpu();
    PENDING_PC[cpu].store(rip as usize, Ordering::Relaxed);
    PENDING_ADDR[cpu].store(faulting_addr.map_or(NO_ADDRESS, |a| a as usize), Ordering::Relaxed);
    let entry = keel_wasm_trap_entry as *const () as u64;
    // SAFETY: the interrupted code is compiled WASM on a task's stack; it resumes at the trap
    // entry, below its own stack pointer (past a red zone), with interrupts off until the entry
    // has read the fault. Every other register is as it left them.
    unsafe {
        frame.as_mut().update(|f| {
            f.instruction_pointer = VirtAddr::new(entry);
            f.stack_pointer = VirtAddr::new((f.stack_pointer.as_u64() - 256) & !15);
            f.cpu_flags.remove(RFlags::INTERRUPT_FLAG | RFlags::TRAP_FLAG | RFlags::DIRECTION_FLAG);
        });
    }
    true
}

// wasmtime's locks: a word each, zero when free. Keel's tasks are preempted, so a guest can find
// a lock held by another guest's task: it then yields until the holder lets go.

/// The lock word wasmtime passes.
fn lock_word<'a>(lock: *mut usize) -> &'a AtomicUsize {
    // SAFETY: wasmtime passes a pointer to an aligned, live word it only touches through these
    // functions, for as long as the lock exists.
    unsafe { AtomicUsize::from_ptr(lock) }
}

const WRITER: usize = usize::MAX;

#[no_mangle]
pub extern "C" fn wasmtime_sync_lock_acquire(lock: *mut usize) {
    let w = lock_word(lock);
    while w.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
        crate::sched::task::yield_now();
    }
}

#[no_mangle]
pub extern "C" fn wasmtime_sync_lock_release(lock: *mut usize) {
    lock_word(lock).store(0, Ordering::Release);
}

#[no_mangle]
pub extern "C" fn wasmtime_sync_lock_free(_lock: *mut usize) {}

#[no_mangle]
pub extern "C" fn wasmtime_sync_rwlock_read(lock: *mut usize) {
    let w = lock_word(lock);
    loop {
        let readers = w.load(Ordering::Relaxed);
        if readers < WRITER - 1
            && w.compare_exchange(readers, readers + 1, Ordering::Acquire, Ordering::Relaxed).is_ok()
        {
            return;
        }
        crate::sched::task::yield_now();
    }
}

#[no_mangle]
pub extern "C" fn wasmtime_sync_rwlock_read_release(lock: *mut usize) {
    lock_word(lock).fetch_sub(1, Ordering::Release);
}

#[no_mangle]
pub extern "C" fn wasmtime_sync_rwlock_write(lock: *mut usize) {
    let w = lock_word(lock);
    while w.compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed).is_err() {
        crate::sched::task::yield_now();
    }
}

#[no_mangle]
pub extern "C" fn wasmtime_sync_rwlock_write_release(lock: *mut usize) {
    lock_word(lock).store(0, Ordering::Release);
}

#[no_mangle]
pub extern "C" fn wasmtime_sync_rwlock_free(_lock: *mut usize) {}

static ENGINE: spin::Once<Result<wasmtime::Engine, String>> = spin::Once::new();

fn cpuid(leaf: u32, sub: u32) -> CpuidResult {
    // SAFETY: CPUID exists on every x86-64 CPU and only reads identification registers.
    #[allow(unused_unsafe)]
    unsafe {
        if sub == 0 {
            __cpuid(leaf)
        } else {
            __cpuid_count(leaf, sub)
        }
    }
}

/// Whether this CPU has a feature wasmtime asks about (its names, as `std::is_x86_feature_detected`).
/// AVX and later are reported missing: Keel does not enable the XSAVE state they need.
fn has_feature(name: &str) -> Option<bool> {
    let ecx1 = cpuid(1, 0).ecx;
    let max = cpuid(0, 0).eax;
    let ebx7 = if max >= 7 { cpuid(7, 0).ebx } else { 0 };
    let ecx_ext = if cpuid(0x8000_0000, 0).eax >= 0x8000_0001 { cpuid(0x8000_0001, 0).ecx } else { 0 };
    let bit = |reg: u32, b: u32| reg & (1 << b) != 0;
    Some(match name {
        "sse3" => bit(ecx1, 0),
        "ssse3" => bit(ecx1, 9),
        "cmpxchg16b" => bit(ecx1, 13),
        "sse4.1" => bit(ecx1, 19),
        "sse4.2" => bit(ecx1, 20),
        "popcnt" => bit(ecx1, 23),
        "lzcnt" => bit(ecx_ext, 5),
        "bmi1" => bit(ebx7, 3),
        "bmi2" => bit(ebx7, 8),
        "avx" | "avx2" | "fma" | "avxvnni" | "avx512bitalg" | "avx512dq" | "avx512f" | "avx512vl" | "avx512vbmi"
        | "avx512vnni" => false,
        _ => return None,
    })
}

/// The compiled tier's engine, made at its first use.
pub fn engine() -> Result<&'static wasmtime::Engine, &'static str> {
    let made = ENGINE.call_once(|| {
        let mut config = compiled::config();
        // SAFETY: `has_feature` answers from CPUID and says no to what Keel cannot run (AVX).
        unsafe {
            config.detect_host_feature(has_feature);
        }
        wasmtime::Engine::new(&config).map_err(|e| format!("the compiled tier cannot start: {e}"))
    });
    made.as_ref().map_err(String::as_str)
}

/// Called by the timer interrupt: compiled guests yield at their next loop head or call.
pub fn tick() {
    if let Some(Ok(engine)) = ENGINE.get() {
        engine.increment_epoch();
    }
}

/// Whether `bytes` look like an artefact (rather than a WASM module).
pub fn is_artefact(bytes: &[u8]) -> bool {
    bytes.starts_with(&keel_artefact::MAGIC)
}

/// Artefacts in immutable memory whose seal (and module match) was checked: (artefact address,
/// length, module address, length) -> the code. They cannot change, so they are not checked
/// again; a bounded table of small entries.
static VERIFIED: spin::Mutex<BTreeMap<Checked, &'static [u8]>> = spin::Mutex::new(BTreeMap::new());
/// (artefact address, length, module address, length)
type Checked = (usize, usize, usize, usize);
const MAX_VERIFIED: usize = 1024;

fn check_seal<'a>(artefact: &'a [u8], wasm: Option<&[u8]>) -> Result<&'a [u8], String> {
    match wasm {
        Some(w) => keel_artefact::open_for(KEY.as_ref(), artefact, w),
        None => keel_artefact::open(KEY.as_ref(), artefact).map(|o| o.code),
    }
    .map_err(|r| r.to_string())
}

/// Loads a sealed artefact; with `wasm`, only if it was compiled from that module. An artefact
/// (and module) in immutable memory is checked once per boot.
pub fn load(artefact: &Contents, wasm: Option<&Contents>) -> Result<Program, String> {
    let code: &[u8] = match (artefact, wasm) {
        (Contents::Immutable(a), None | Some(Contents::Immutable(_))) => {
            let w: &[u8] = wasm.map_or(&[], |w| w);
            let key = (a.as_ptr() as usize, a.len(), w.as_ptr() as usize, w.len());
            let known = VERIFIED.lock().get(&key).copied();
            match known {
                Some(code) => code,
                None => {
                    let code = check_seal(a, wasm.map(|w| &**w))?;
                    let mut v = VERIFIED.lock();
                    if v.len() < MAX_VERIFIED {
                        v.insert(key, code);
                    }
                    code
                }
            }
        }
        _ => check_seal(artefact, wasm.map(|w| &**w))?,
    };
    let engine = engine()?;
    // SAFETY: the seal (Poly1305 under a key derived from this build's key, checked above or,
    // for bytes in memory that never changes, earlier in this boot) shows these bytes are what
    // this build's keel-aot wrote: wasmtime 50.0.1 compiling with `compiled::config()` for this
    // engine. wasmtime checks the version, settings and CPU features again.
    let module = unsafe { wasmtime::Module::deserialize(engine, code) }.map_err(|e| e.to_string())?;
    Program::compiled(&module).map_err(|e| e.to_string())
}
