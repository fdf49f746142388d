//! The compiled tier's platform: what wasmtime's `no_std` runtime asks of the kernel (two
//! thread-local words, kept per task), its engine (the epoch advanced by the timer interrupt so
//! compiled guests yield), the CPU features the build host compiles for, and loading an artefact
//! only once its seal shows that this build made it.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use core::alloc::Layout;
use core::arch::x86_64::{__cpuid, __cpuid_count, CpuidResult};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use keel_wasm::compiled::{self, wasmtime};
use keel_wasm::Program;

// `pub const KEY: Option<[u8; 32]>`: the key `cargo xtask build` generated for this build.
include!(concat!(env!("OUT_DIR"), "/aot_key.rs"));

static TLS: [AtomicPtr<u8>; 2] = [AtomicPtr::new(core::ptr::null_mut()), AtomicPtr::new(core::ptr::null_mut())];

/// wasmtime's thread-local words: which activation of the runtime is current.
#[no_mangle]
pub extern "C" fn wasmtime_tls_get(slot: usize) -> *mut u8 {
    TLS.get(slot).map_or(core::ptr::null_mut(), |t| t.load(Ordering::Relaxed))
}

#[no_mangle]
pub extern "C" fn wasmtime_tls_set(slot: usize, ptr: *mut u8) {
    if let Some(t) = TLS.get(slot) {
        t.store(ptr, Ordering::Relaxed);
    }
}

/// The current task's words, saved across a task switch (one CPU: the globals are the running
/// task's).
pub fn tls_save() -> [*mut u8; 2] {
    [TLS[0].load(Ordering::Relaxed), TLS[1].load(Ordering::Relaxed)]
}

/// Puts back what [`tls_save`] returned (or nulls, for a task's start).
pub fn tls_restore(words: [*mut u8; 2]) {
    TLS[0].store(words[0], Ordering::Relaxed);
    TLS[1].store(words[1], Ordering::Relaxed);
}

/// The heap blocks wasmtime maps (code, linear memories, tables), by address: Keel has one
/// identity-mapped, read-write-execute address space, so a "mapping" is a zeroed, page-aligned
/// heap block.
static MAPPINGS: spin::Mutex<BTreeMap<usize, Layout>> = spin::Mutex::new(BTreeMap::new());

const PAGE: usize = 4096;
/// The error code wasmtime gets for a failed mapping (any nonzero value).
const ENOMEM: i32 = 12;

#[no_mangle]
pub extern "C" fn wasmtime_page_size() -> usize {
    PAGE
}

#[no_mangle]
pub extern "C" fn wasmtime_mmap_new(size: usize, _prot: u32, ret: &mut *mut u8) -> i32 {
    let Ok(layout) = Layout::from_size_align(size.max(PAGE), PAGE) else { return ENOMEM };
    // SAFETY: the layout has a nonzero size; a null result is handled.
    let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
    if p.is_null() {
        return ENOMEM;
    }
    MAPPINGS.lock().insert(p as usize, layout);
    *ret = p;
    0
}

#[no_mangle]
pub extern "C" fn wasmtime_mmap_remap(addr: *mut u8, size: usize, _prot: u32) -> i32 {
    // A fresh blank mapping in place: zeroes, if the range lies in one of ours.
    let a = addr as usize;
    let inside = MAPPINGS
        .lock()
        .range(..=a)
        .next_back()
        .is_some_and(|(base, l)| a.checked_add(size).is_some_and(|end| end <= base + l.size()));
    if !inside {
        return ENOMEM;
    }
    // SAFETY: the range lies within a live block this file allocated for wasmtime.
    unsafe { core::ptr::write_bytes(addr, 0, size) };
    0
}

#[no_mangle]
pub extern "C" fn wasmtime_munmap(ptr: *mut u8, size: usize) -> i32 {
    let mut maps = MAPPINGS.lock();
    match maps.get(&(ptr as usize)) {
        Some(layout) if layout.size() == size.max(PAGE) => {
            let layout = *layout;
            maps.remove(&(ptr as usize));
            drop(maps);
            // SAFETY: allocated by wasmtime_mmap_new with this layout, now forgotten by the table.
            unsafe { alloc::alloc::dealloc(ptr, layout) };
        }
        // Part of a block: kept until the whole block goes (wasmtime unmaps whole mappings).
        _ => {}
    }
    0
}

#[no_mangle]
pub extern "C" fn wasmtime_mprotect(_ptr: *mut u8, _size: usize, _prot: u32) -> i32 {
    // Everything is mapped read-write-execute (no NX in Keel yet): nothing to change.
    0
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

// wasmtime's locks: a word each, zero when free. Keel's tasks are preempted, so a guest can find
// a lock held by another guest's task: it then yields until the holder lets go (one CPU).

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
        crate::task::yield_now();
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
        crate::task::yield_now();
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
        crate::task::yield_now();
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

/// Where a module's artefact lives: `prog.wasm` -> `prog.cwasm`, `prog` -> `prog.cwasm`.
pub fn artefact_path(module: &str) -> String {
    let stem = module.strip_suffix(".wasm").unwrap_or(module);
    format!("{stem}.{}", keel_artefact::EXTENSION)
}

/// Loads a sealed artefact; with `wasm`, only if it was compiled from that module.
pub fn load(artefact: &[u8], wasm: Option<&[u8]>) -> Result<Program, String> {
    let code = match wasm {
        Some(w) => keel_artefact::open_for(KEY.as_ref(), artefact, w),
        None => keel_artefact::open(KEY.as_ref(), artefact).map(|o| o.code),
    }
    .map_err(|r| r.to_string())?;
    let engine = engine()?;
    // SAFETY: the seal (HMAC-SHA-256 under this build's key, checked above) shows these bytes are
    // what this build's keel-aot wrote: wasmtime 50.0.1 compiling with `compiled::config()` for
    // this engine. wasmtime checks the version, settings and CPU features again.
    let module = unsafe { wasmtime::Module::deserialize(engine, code) }.map_err(|e| e.to_string())?;
    Program::compiled(&module).map_err(|e| e.to_string())
}
