//! User mode: ring 3, `syscall`/`sysret`, and per-process page tables.
//!
//! Running user code is a function call: [`run`] enters ring 3 with the registers in a
//! [`UserRegs`] and returns when the program makes a system call ([`Exit::Syscall`], registers
//! saved back), takes a page fault ([`Exit::PageFault`]: its own entry stub saves every register,
//! so the program can go on once the page is there), or meets any other exception or a kill
//! ([`Exit::Trap`]: the exception handler turns the interrupted user frame into a return from
//! `run`). Timer and device interrupts in ring 3 are
//! taken on the task's kernel stack (TSS `rsp0`) and return to the program as usual, so the
//! process is preempted like any task.
//!
//! The user half of an address space is PML4 slots 128..256 (`0x4000_0000_0000` up); slots 0..128
//! (the kernel's identity map and device memory) and 256..512 (stacks, the compiled tier) point to
//! the kernel's own tables in every address space, without the user bit. The kernel never reads or
//! writes a user address directly (SMAP forbids it): it copies through the identity map of the
//! physical frames, after the process's map said the range is valid.

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use keel_sched::MAX_CPUS;
use x86_64::instructions::interrupts;
use x86_64::registers::control::{Cr3, Cr3Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags, FsBase, KernelGsBase, LStar, Msr, SFMask};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::idt::InterruptStackFrame;
use x86_64::structures::paging::PhysFrame;
use x86_64::{PhysAddr, VirtAddr};

use crate::mm::memory::{self, FRAMES};

const PAGE: u64 = 4096;
/// First and last+1 PML4 slots of the user half.
const USER_SLOTS: core::ops::Range<usize> = 128..256;

/// Per-CPU words the `syscall` entry reaches through `gs` (`swapgs`): one block per CPU, whose
/// address is the CPU's `KERNEL_GS_BASE` (outside the entry stubs' `swapgs` pairs, so Rust code
/// finds its CPU there too: [`cpu_index`]).
#[repr(C)]
struct PerCpu {
    /// The kernel stack pointer of the task in user mode (where `run` saved its frame).
    kernel_rsp: u64,
    /// Scratch: the user's stack pointer at `syscall`.
    user_rsp: u64,
    /// Where the TSS keeps `rsp0`.
    tss_rsp0: *mut u64,
    /// The last user page fault: error code and address (`cr2`).
    fault_error: u64,
    fault_addr: u64,
}

static mut PERCPU: [PerCpu; MAX_CPUS] =
    [const { PerCpu { kernel_rsp: 0, user_rsp: 0, tss_rsp0: core::ptr::null_mut(), fault_error: 0, fault_addr: 0 } };
        MAX_CPUS];

/// The index of the CPU this runs on (0 before [`init_cpu`]).
pub fn cpu_index() -> usize {
    let base = (&raw const PERCPU) as u64;
    let p = KernelGsBase::read().as_u64();
    if p < base {
        return 0;
    }
    (((p - base) / core::mem::size_of::<PerCpu>() as u64) as usize).min(MAX_CPUS - 1)
}

/// Points this CPU's `KERNEL_GS_BASE` at block `index` (an AP's first step; `init_cpu` does
/// the rest).
pub fn set_cpu_index(index: usize) {
    let index = index.min(MAX_CPUS - 1);
    // SAFETY: the address of an element of the static array; only this CPU's MSR changes.
    unsafe { KernelGsBase::write(VirtAddr::new((&raw mut PERCPU).cast::<PerCpu>().add(index) as u64)) };
}

/// This CPU's block. Only this CPU uses it, with interrupts off.
fn percpu() -> *mut PerCpu {
    // SAFETY: an index below MAX_CPUS into the static array.
    unsafe { (&raw mut PERCPU).cast::<PerCpu>().add(cpu_index()) }
}

/// What ended the last trip to user mode when it was neither a system call nor a page fault.
#[derive(Clone, Copy, Debug, Default)]
pub struct Trap {
    /// Exception vector, or [`KILLED`].
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
}

/// `Trap::vector` when the task was killed while in user mode (Ctrl-C, `kill`).
pub const KILLED: u64 = 0x100;

/// Each CPU's last trap; written by an exception handler with interrupts off and read by `run`
/// right after on the same CPU, before interrupts are on again.
static LAST_TRAP: [spin::Mutex<Trap>; MAX_CPUS] =
    [const { spin::Mutex::new(Trap { vector: 0, error: 0, rip: 0 }) }; MAX_CPUS];

/// A program's registers: general-purpose, instruction pointer, flags, and the FPU/SSE state.
#[repr(C, align(16))]
pub struct UserRegs {
    /// rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8..r15, rip, rflags.
    pub gpr: [u64; 18],
    _pad: [u64; 2],
    fx: [u8; 512],
    /// Every register must come back (after a page fault: `iretq`); else `sysret` (after a
    /// system call, which clobbers rcx and r11 by definition). At offset 672 (the stub reads it).
    full: bool,
}

const _: () = assert!(core::mem::offset_of!(UserRegs, fx) == 160 && core::mem::offset_of!(UserRegs, full) == 672);

pub const RAX: usize = 0;
pub const RDX: usize = 3;
pub const RSI: usize = 4;
pub const RDI: usize = 5;
pub const RSP: usize = 7;
pub const R8: usize = 8;
pub const R9: usize = 9;
pub const R10: usize = 10;
pub const RIP: usize = 16;
pub const RFLAGS: usize = 17;

impl UserRegs {
    /// A program about to run its first instruction at `rip` with stack `rsp`.
    pub fn new(rip: u64, rsp: u64) -> UserRegs {
        let mut fx = [0u8; 512];
        // FCW: all exceptions masked, double extended precision; MXCSR: all masked.
        fx[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        fx[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        let mut gpr = [0u64; 18];
        gpr[RIP] = rip;
        gpr[RSP] = rsp;
        gpr[RFLAGS] = 0x202;
        UserRegs { gpr, _pad: [0; 2], fx, full: false }
    }
}

/// Why [`run`] returned.
pub enum Exit {
    Syscall,
    /// A page fault; the registers are saved, so the program can go on once the page is there.
    PageFault {
        addr: u64,
        error: u64,
    },
    /// Any other exception, or a kill: the program cannot go on.
    Trap(Trap),
}

global_asm!(
    r#"
    .section .text.keel_user, "ax"
    .global keel_user_run
    // keel_user_run(regs: *mut UserRegs [rdi]) -> u64: 0 after a system call, 1 after a trap,
    // 2 after a page fault. `regs.full` chooses how user mode is entered: sysret (after a
    // system call, which defines rcx and r11 as clobbered) or iretq (every register back).
keel_user_run:
    cli
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rdi
    // This frame is where system calls and traps come back to; interrupts in ring 3 use the
    // stack below it.
    swapgs
    mov qword ptr gs:[0], rsp
    mov rax, qword ptr gs:[16]
    mov [rax], rsp
    swapgs
    fxrstor64 [rdi + 160]
    cmp byte ptr [rdi + 672], 0
    jne 2f
    mov rcx, [rdi + 128]
    mov r11, [rdi + 136]
    mov rax, [rdi + 0]
    mov rbx, [rdi + 8]
    mov rdx, [rdi + 24]
    mov rsi, [rdi + 32]
    mov rbp, [rdi + 48]
    mov r8, [rdi + 64]
    mov r9, [rdi + 72]
    mov r10, [rdi + 80]
    mov r12, [rdi + 96]
    mov r13, [rdi + 104]
    mov r14, [rdi + 112]
    mov r15, [rdi + 120]
    mov rsp, [rdi + 56]
    mov rdi, [rdi + 40]
    sysretq

2:
    push 0x1b
    push qword ptr [rdi + 56]
    push qword ptr [rdi + 136]
    push 0x23
    push qword ptr [rdi + 128]
    mov rax, [rdi + 0]
    mov rbx, [rdi + 8]
    mov rcx, [rdi + 16]
    mov rdx, [rdi + 24]
    mov rsi, [rdi + 32]
    mov rbp, [rdi + 48]
    mov r8, [rdi + 64]
    mov r9, [rdi + 72]
    mov r10, [rdi + 80]
    mov r11, [rdi + 88]
    mov r12, [rdi + 96]
    mov r13, [rdi + 104]
    mov r14, [rdi + 112]
    mov r15, [rdi + 120]
    mov rdi, [rdi + 40]
    iretq

    // The page-fault vector. From the kernel: the kernel's handler (the frame as the CPU
    // pushed it). From user mode: every register into the UserRegs of `run`, then `run`
    // returns 2 (the IST frame is left behind).
    .global keel_page_fault_entry
keel_page_fault_entry:
    test qword ptr [rsp + 16], 3
    jnz 1f
    jmp {kernel_page_fault}
1:
    swapgs
    mov qword ptr gs:[8], rax
    mov rax, qword ptr gs:[0]
    mov rax, [rax]
    mov [rax + 8], rbx
    mov [rax + 16], rcx
    mov [rax + 24], rdx
    mov [rax + 32], rsi
    mov [rax + 40], rdi
    mov [rax + 48], rbp
    mov [rax + 64], r8
    mov [rax + 72], r9
    mov [rax + 80], r10
    mov [rax + 88], r11
    mov [rax + 96], r12
    mov [rax + 104], r13
    mov [rax + 112], r14
    mov [rax + 120], r15
    mov rbx, qword ptr gs:[8]
    mov [rax + 0], rbx
    mov rbx, [rsp + 8]
    mov [rax + 128], rbx
    mov rbx, [rsp + 24]
    mov [rax + 136], rbx
    mov rbx, [rsp + 32]
    mov [rax + 56], rbx
    fxsave64 [rax + 160]
    mov rbx, [rsp]
    mov qword ptr gs:[24], rbx
    mov rbx, cr2
    mov qword ptr gs:[32], rbx
    mov rsp, qword ptr gs:[0]
    swapgs
    mov eax, 2
    jmp keel_user_leave

    .global keel_syscall_entry
keel_syscall_entry:
    swapgs
    mov qword ptr gs:[8], rsp
    mov rsp, qword ptr gs:[0]
    swapgs
    push rdi
    mov rdi, [rsp + 8]
    mov [rdi + 0], rax
    mov [rdi + 8], rbx
    mov [rdi + 128], rcx
    mov [rdi + 24], rdx
    mov [rdi + 32], rsi
    mov [rdi + 48], rbp
    mov [rdi + 64], r8
    mov [rdi + 72], r9
    mov [rdi + 80], r10
    mov [rdi + 96], r12
    mov [rdi + 104], r13
    mov [rdi + 112], r14
    mov [rdi + 120], r15
    // syscall put the user's rip in rcx and its flags in r11 (their own values are gone).
    mov [rdi + 136], r11
    pop rax
    mov [rdi + 40], rax
    swapgs
    mov rax, qword ptr gs:[8]
    swapgs
    mov [rdi + 56], rax
    fxsave64 [rdi + 160]
    xor eax, eax
    jmp keel_user_leave

    .global keel_user_trap_return
keel_user_trap_return:
    mov eax, 1
keel_user_leave:
    add rsp, 8
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
    "#,
    kernel_page_fault = sym crate::arch::cpu::page_fault,
);

extern "C" {
    fn keel_user_run(regs: *mut UserRegs) -> u64;
    /// The page-fault vector's entry (for the IDT).
    pub fn keel_page_fault_entry();
    fn keel_syscall_entry();
    fn keel_user_trap_return();
}

/// True once [`init`] enabled `syscall`.
static READY: AtomicBool = AtomicBool::new(false);

/// Enables `syscall`/`sysret`, SMEP and SMAP where the CPU has them, and the CPU's per-CPU
/// block (`index`: 0 for the boot CPU).
pub fn init_cpu(index: usize, tss_rsp0: *mut u64) {
    set_cpu_index(index);
    // SAFETY: called once per CPU as it starts, before it runs any task; the pointer is that
    // CPU's TSS's rsp0 slot, which lives as long as the kernel; the block is that CPU's alone.
    unsafe { (*percpu()).tss_rsp0 = tss_rsp0 };
    // STAR: kernel CS 0x08 (SS 0x10) on syscall; on sysret, SS = 0x10 + 8 and CS = 0x10 + 16,
    // both with RPL 3 (the GDT orders user data before user code for this).
    let star: u64 = (0x10u64 << 48) | (0x08u64 << 32);
    // SAFETY: the GDT holds these segments (cpu::init); LSTAR points at the entry stub above;
    // SFMASK clears IF, TF, DF and AC on entry, so the stub runs with interrupts off.
    unsafe {
        Msr::new(0xc000_0081).write(star);
        LStar::write(VirtAddr::new(keel_syscall_entry as *const () as u64));
        SFMask::write(RFlags::INTERRUPT_FLAG | RFlags::TRAP_FLAG | RFlags::DIRECTION_FLAG | RFlags::ALIGNMENT_CHECK);
        Efer::update(|f| f.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
    }
    let leaf7 = core::arch::x86_64::__cpuid_count(7, 0);
    let mut cr4 = Cr4Flags::empty();
    if leaf7.ebx & (1 << 7) != 0 {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if leaf7.ebx & (1 << 20) != 0 {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    // SAFETY: the kernel never executes user pages nor touches user memory directly.
    unsafe { Cr4::update(|f| f.insert(cr4)) };
    if index != 0 {
        return;
    }
    log::info!(
        "user mode: syscall ready, SMEP {}, SMAP {}",
        if leaf7.ebx & (1 << 7) != 0 { "on" } else { "absent" },
        if leaf7.ebx & (1 << 20) != 0 { "on" } else { "absent" }
    );
    READY.store(true, Ordering::Relaxed);
}

/// Runs the program until its next system call or trap.
pub fn run(regs: &mut UserRegs) -> Exit {
    // SAFETY: `regs` is valid for the call; the stubs save and restore the callee-saved
    // registers, return with interrupts off and the user's state saved in `regs`.
    let how = unsafe { keel_user_run(regs) };
    regs.full = how == 2;
    let exit = match how {
        0 => Exit::Syscall,
        // SAFETY: written by the entry stub just now, with interrupts still off.
        2 => unsafe { Exit::PageFault { addr: (*percpu()).fault_addr, error: (*percpu()).fault_error } },
        _ => Exit::Trap(*LAST_TRAP[cpu_index()].lock()),
    };
    interrupts::enable();
    exit
}

/// Called by exception handlers (and the timer, for a kill) with the interrupted frame: if it
/// was user code, records the trap and makes the handler "return" from [`run`] instead.
pub fn trap_from_user(frame: &mut InterruptStackFrame, vector: u64, error: u64) -> bool {
    if frame.code_segment.0 & 3 != 3 {
        return false;
    }
    *LAST_TRAP[cpu_index()].lock() = Trap { vector, error, rip: frame.instruction_pointer.as_u64() };
    // SAFETY: the frame came from ring 3 of a task inside `run`, whose saved frame is at
    // this CPU's kernel_rsp; the handler's iretq resumes `keel_user_trap_return` in ring 0 on
    // that stack with interrupts off, which returns from `run`.
    unsafe {
        let kernel_rsp = (*percpu()).kernel_rsp;
        frame.as_mut().update(|f| {
            f.instruction_pointer = VirtAddr::new(keel_user_trap_return as *const () as u64);
            f.code_segment = x86_64::structures::gdt::SegmentSelector(0x08);
            f.stack_segment = x86_64::structures::gdt::SegmentSelector(0x10);
            f.stack_pointer = VirtAddr::new(kernel_rsp);
            f.cpu_flags = RFlags::from_bits_truncate(0x2);
        });
    }
    true
}

/// Per CPU: the address space of the task it runs (its PML4), 0 for a kernel task. A kernel
/// task keeps whatever `cr3` is loaded (lazily: the kernel half is the same in every address
/// space), so switching between a program and the idle task or back costs no `cr3` write — and
/// no TLB flush, which under emulation means no soft-TLB refill. An address space being freed
/// is first taken off every CPU that still holds it (`smp::abandon_address_space`).
static OWN_CR3: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// The per-task part of the CPU's user-mode state, kept on the task's stack while it is
/// switched out.
#[derive(Clone, Copy)]
pub struct Saved {
    /// The task's own address space (0: a kernel task).
    cr3: u64,
    /// The CPU it was switched out on.
    cpu: usize,
    kernel_rsp: u64,
    fs_base: u64,
}

/// Reads this task's state before switching away.
pub fn save() -> Saved {
    let cpu = cpu_index();
    // SAFETY: the block is only changed with interrupts off by the task that runs (as here).
    let kernel_rsp = unsafe { (*percpu()).kernel_rsp };
    Saved { cr3: OWN_CR3[cpu].load(Ordering::Relaxed), cpu, kernel_rsp, fs_base: FsBase::read().as_u64() }
}

/// Puts a task's state back when it runs again.
pub fn restore(s: Saved) {
    if !READY.load(Ordering::Relaxed) {
        return;
    }
    let cpu = cpu_index();
    OWN_CR3[cpu].store(s.cr3, Ordering::Relaxed);
    if s.cr3 != 0 {
        // Still loaded here from before: valid only if the task last ran on this CPU (else it
        // may have changed its mappings elsewhere, and this CPU's TLB is stale).
        if s.cpu == cpu {
            switch_cr3(s.cr3);
        } else {
            load_cr3(s.cr3);
        }
    }
    // SAFETY: interrupts are off (the scheduler); the TSS slot is valid (init).
    unsafe {
        let p = percpu();
        (*p).kernel_rsp = s.kernel_rsp;
        if !(*p).tss_rsp0.is_null() {
            *(*p).tss_rsp0 = s.kernel_rsp;
        }
    }
    FsBase::write(VirtAddr::new(s.fs_base));
}

/// A new task starts as a kernel task (on whatever address space is loaded).
pub fn start_task() {
    OWN_CR3[cpu_index()].store(0, Ordering::Relaxed);
}

/// Called by `smp` on every CPU when the address space `pml4` is about to be freed: if this
/// CPU still has it loaded (lazily, running a kernel task), it moves to the kernel's own.
pub fn abandon(pml4: u64) {
    if Cr3::read().0.start_address().as_u64() == pml4 {
        load_cr3(memory::kernel_pml4());
    }
}

/// Writes `cr3` even if it holds `pml4` already (the write flushes this CPU's TLB).
fn load_cr3(pml4: u64) {
    if let Ok(frame) = PhysFrame::from_start_address(PhysAddr::new(pml4)) {
        // SAFETY: `pml4` is the kernel's or a live process's table, both mapping the whole
        // kernel identically.
        unsafe { Cr3::write(frame, Cr3Flags::empty()) };
    }
}

fn switch_cr3(pml4: u64) {
    let (cur, _) = Cr3::read();
    if cur.start_address().as_u64() != pml4 {
        if let Ok(frame) = PhysFrame::from_start_address(PhysAddr::new(pml4)) {
            // SAFETY: `pml4` is the kernel's or a live process's table, both mapping the
            // whole kernel identically.
            unsafe { Cr3::write(frame, Cr3Flags::empty()) };
        }
    }
}

/// Sets the running program's thread pointer.
pub fn set_fs_base(base: u64) {
    FsBase::write(VirtAddr::new(base));
}

// ---- address spaces ----

const P: u64 = 1;
const W: u64 = 2;
const U: u64 = 4;
const NX: u64 = 1 << 63;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

/// Pages of page tables and user frames (for `mem`).
static USER_PAGES: AtomicU64 = AtomicU64::new(0);

/// Frames currently held by all user address spaces (tables and pages).
pub fn user_pages() -> u64 {
    USER_PAGES.load(Ordering::Relaxed)
}

fn alloc_frame() -> Option<u64> {
    let phys = memory::zeroed_frame()?;
    USER_PAGES.fetch_add(1, Ordering::Relaxed);
    Some(phys)
}

fn free_frame(phys: u64) {
    let _ = interrupts::without_interrupts(|| FRAMES.lock().free(phys / PAGE, 1));
    USER_PAGES.fetch_sub(1, Ordering::Relaxed);
}

/// The table entries of a frame (identity-mapped).
fn table(phys: u64) -> *mut u64 {
    phys as *mut u64
}

/// A process's page tables: the user half is its own, the rest is the kernel's.
pub struct AddressSpace {
    pml4: u64,
}

impl AddressSpace {
    /// A new address space with nothing in the user half.
    pub fn new() -> Option<AddressSpace> {
        let pml4 = alloc_frame()?;
        let kernel = memory::kernel_pml4();
        // SAFETY: both tables are identity-mapped frames of 512 entries; the new one is ours.
        unsafe {
            for i in (0..512).filter(|i| !USER_SLOTS.contains(i)) {
                *table(pml4).add(i) = *table(kernel).add(i);
            }
        }
        Some(AddressSpace { pml4 })
    }

    /// Makes this the address space of the running task.
    pub fn activate(&self) {
        interrupts::without_interrupts(|| {
            switch_cr3(self.pml4);
            OWN_CR3[cpu_index()].store(self.pml4, Ordering::Relaxed);
        });
    }

    fn active(&self) -> bool {
        Cr3::read().0.start_address().as_u64() == self.pml4
    }

    /// The level-1 entry for `va`, creating tables if `create`.
    fn pte(&mut self, va: u64, create: bool) -> Option<*mut u64> {
        let mut t = self.pml4;
        for shift in [39u64, 30, 21] {
            let idx = ((va >> shift) & 511) as usize;
            // SAFETY: `t` is a page-table frame of this address space (identity-mapped).
            let e = unsafe { table(t).add(idx) };
            // SAFETY: as above.
            let v = unsafe { *e };
            if v & P == 0 {
                if !create {
                    return None;
                }
                let f = alloc_frame()?;
                // SAFETY: as above; the new table is zeroed.
                unsafe { *e = f | P | W | U };
                t = f;
            } else {
                t = v & ADDR;
            }
        }
        // SAFETY: `t` is a level-1 table of this address space.
        Some(unsafe { table(t).add(((va >> 12) & 511) as usize) })
    }

    fn flags(prot: u64) -> u64 {
        let (read, write, exec) = keel_linux::mm::access(prot);
        let mut f = U;
        if read {
            f |= P;
        }
        if write {
            f |= W;
        }
        if !exec {
            f |= NX;
        }
        f
    }

    fn flush(&self, va: u64) {
        if self.active() {
            x86_64::instructions::tlb::flush(VirtAddr::new(va));
        }
    }

    /// Gives fresh zeroed frames to the pages of `addr..addr + len` that have none. False
    /// when frames ran out (the pages done so far keep theirs).
    pub fn populate(&mut self, addr: u64, len: u64, prot: u64) -> bool {
        let flags = Self::flags(prot);
        let mut va = addr & !(PAGE - 1);
        while va < addr + len {
            let Some(e) = self.pte(va, true) else { return false };
            // SAFETY: `e` is this space's entry for `va`, inside a mapping of the process.
            if unsafe { *e } & ADDR == 0 {
                let Some(f) = alloc_frame() else { return false };
                // SAFETY: as above; the frame is fresh and zeroed.
                unsafe { *e = f | flags };
            }
            va += PAGE;
        }
        true
    }

    /// Moves the frames of `from..from + len` to `to..to + len` (whose pages have none), with
    /// the access of `prot`.
    pub fn move_pages(&mut self, from: u64, to: u64, len: u64, prot: u64) {
        let flags = Self::flags(prot);
        for off in (0..len).step_by(PAGE as usize) {
            let Some(e) = self.pte(from + off, false) else { continue };
            // SAFETY: an entry of this space's tables.
            let v = unsafe { core::ptr::replace(e, 0) };
            if v & ADDR == 0 {
                continue;
            }
            self.flush(from + off);
            match self.pte(to + off, true) {
                // SAFETY: the destination entry in this space, empty (a fresh mapping).
                Some(d) => unsafe { *d = (v & ADDR) | flags },
                None => free_frame(v & ADDR),
            }
        }
    }

    /// Unmaps `addr..addr + len` and frees the frames.
    pub fn unmap(&mut self, addr: u64, len: u64) {
        let mut va = addr;
        while va < addr + len {
            if let Some(e) = self.pte(va, false) {
                // SAFETY: an entry of this space's tables.
                let v = unsafe { core::ptr::replace(e, 0) };
                if v & ADDR != 0 {
                    self.flush(va);
                    free_frame(v & ADDR);
                }
            }
            va += PAGE;
        }
    }

    /// Changes the access of mapped pages.
    pub fn protect(&mut self, addr: u64, len: u64, prot: u64) {
        let flags = Self::flags(prot);
        let mut va = addr;
        while va < addr + len {
            if let Some(e) = self.pte(va, false) {
                // SAFETY: an entry of this space's tables.
                unsafe {
                    if *e & ADDR != 0 {
                        *e = (*e & ADDR) | flags;
                    }
                }
                self.flush(va);
            }
            va += PAGE;
        }
    }

    /// Calls `f(frame address, offset in the buffer, length)` for each piece of
    /// `addr..addr + len` that lies in one mapped page (unmapped pages are skipped: the process
    /// map was checked first).
    fn pieces(&mut self, addr: u64, len: usize, mut f: impl FnMut(*mut u8, usize, usize)) {
        let mut done = 0usize;
        while done < len {
            let va = addr + done as u64;
            let n = ((PAGE - va % PAGE) as usize).min(len - done);
            if let Some(e) = self.pte(va, false) {
                // SAFETY: an entry of this space's tables.
                let frame = unsafe { *e } & ADDR;
                if frame != 0 {
                    f((frame + va % PAGE) as *mut u8, done, n);
                }
            }
            done += n;
        }
    }

    /// Copies user memory at `addr` into `buf`, through the identity map.
    pub fn read(&mut self, addr: u64, buf: &mut [u8]) {
        let dst = buf.as_mut_ptr();
        self.pieces(addr, buf.len(), |phys, off, n| {
            // SAFETY: `phys..phys + n` lies in one frame of this process (identity-mapped);
            // `off + n` is within `buf`.
            unsafe { core::ptr::copy_nonoverlapping(phys, dst.add(off), n) }
        });
    }

    /// Copies `data` into user memory at `addr`, whatever the pages' protection.
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        let src = data.as_ptr();
        self.pieces(addr, data.len(), |phys, off, n| {
            // SAFETY: as in `read`, the other way round.
            unsafe { core::ptr::copy_nonoverlapping(src.add(off), phys, n) }
        });
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        // Leave this address space before freeing it, here and on every CPU that still has it
        // loaded lazily.
        interrupts::without_interrupts(|| {
            let own = &OWN_CR3[cpu_index()];
            if own.load(Ordering::Relaxed) == self.pml4 {
                own.store(0, Ordering::Relaxed);
            }
            if self.active() {
                switch_cr3(memory::kernel_pml4());
            }
        });
        crate::arch::smp::abandon_address_space(self.pml4);
        // SAFETY: walks this space's own user-half tables (identity-mapped) and frees every
        // frame they hold, then the tables; the kernel half is shared and left alone.
        unsafe {
            for i in USER_SLOTS {
                let l3 = *table(self.pml4).add(i);
                if l3 & P == 0 {
                    continue;
                }
                for j in 0..512 {
                    let l2 = *table(l3 & ADDR).add(j);
                    if l2 & P == 0 {
                        continue;
                    }
                    for k in 0..512 {
                        let l1 = *table(l2 & ADDR).add(k);
                        if l1 & P == 0 {
                            continue;
                        }
                        for m in 0..512 {
                            let pte = *table(l1 & ADDR).add(m);
                            if pte & ADDR != 0 {
                                free_frame(pte & ADDR);
                            }
                        }
                        free_frame(l1 & ADDR);
                    }
                    free_frame(l2 & ADDR);
                }
                free_frame(l3 & ADDR);
            }
        }
        free_frame(self.pml4);
    }
}
