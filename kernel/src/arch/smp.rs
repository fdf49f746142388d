//! Every CPU at work: the application processors (APs) are started with INIT-SIPI-SIPI through a
//! real-mode trampoline copied below 1 MiB, each gets its own GDT, TSS and IST stacks
//! (`cpu::init_ap`), per-CPU block (`user`), local APIC timer and idle task (`sched::task`).
//! Inter-processor interrupts: a fixed vector wakes an idle CPU that was given a task; NMIs
//! carry TLB shootdowns (they arrive even where interrupts are off, so a CPU spinning on a lock
//! with interrupts off cannot hold up one that unmaps kernel memory) and stop the others when
//! the kernel fails.

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use keel_sched::MAX_CPUS;
use x86_64::instructions::interrupts;

use crate::arch::boot::BootInfo;
use crate::arch::{cpu, time};
use crate::sched::lock::{Ordered, Rank};

/// Physical address of the trapoline: page-aligned below 1 MiB (the SIPI vector is its page
/// number), above the unmapped null guard, in memory the firmware marks usable.
const TRAMPOLINE: u64 = 0x7_0000;

global_asm!(
    r#"
    .section .text.keel_ap, "ax"
    .code16
    .global keel_ap_start
keel_ap_start:
    cli
    cld
    movw %cs, %ax
    movw %ax, %ds
    lgdtl (ap_gdtr - keel_ap_start)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, ${base} + (ap_pm32 - keel_ap_start)

    .code32
ap_pm32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    /* CR4: PAE | OSFXSR | OSXMMEXCPT, as the boot stub. */
    movl %cr4, %eax
    orl $0x620, %eax
    movl %eax, %cr4
    movl ({base} + (ap_cr3 - keel_ap_start)), %eax
    movl %eax, %cr3
    /* EFER: LME | NXE. */
    movl $0xC0000080, %ecx
    rdmsr
    orl $0x900, %eax
    wrmsr
    /* CR0: PG | WP | MP | PE, clear CD, NW, EM, TS. */
    movl %cr0, %eax
    andl $0x9FFFFFF3, %eax
    orl $0x80010003, %eax
    movl %eax, %cr0
    ljmpl $0x18, ${base} + (ap_lm64 - keel_ap_start)

    .code64
ap_lm64:
    xorl %eax, %eax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movq ({base} + (ap_stack - keel_ap_start)), %rsp
    movq ({base} + (ap_index - keel_ap_start)), %rdi
    movq ({base} + (ap_entry - keel_ap_start)), %rax
    xorl %ebp, %ebp
    callq *%rax
    ud2

    .balign 8
ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00cf92000000ffff
    .quad 0x00af9a000000ffff
ap_gdtr:
    .word 31
    .long {base} + (ap_gdt - keel_ap_start)
    .balign 8
    .global keel_ap_params
keel_ap_params:
ap_cr3:
    .quad 0
ap_stack:
    .quad 0
ap_index:
    .quad 0
ap_entry:
    .quad 0
    .global keel_ap_end
keel_ap_end:
    .code64
    "#,
    base = const TRAMPOLINE,
    options(att_syntax)
);

extern "C" {
    static keel_ap_start: u8;
    static keel_ap_params: u8;
    static keel_ap_end: u8;
}

/// CPUs running (the boot CPU included).
static ONLINE: AtomicUsize = AtomicUsize::new(1);
/// Local APIC id of each CPU, by index (the boot CPU is 0).
static APIC_IDS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// Set by an AP once it has read its parameters and set itself up.
static AP_UP: AtomicBool = AtomicBool::new(false);
/// True once the trampoline is in place (the memory below 1 MiB was usable).
static PREPARED: AtomicBool = AtomicBool::new(false);

/// CPUs running.
pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// The CPU this code runs on (0 = the boot CPU).
pub fn cpu() -> usize {
    crate::arch::user::cpu_index()
}

/// Copies the trampoline below 1 MiB, if the firmware says that memory is free RAM. Called at
/// boot once the boot loader's data there has been copied.
pub fn prepare(info: &BootInfo) {
    // Linker symbols of the trampoline above; only their addresses are used.
    let (start, end) = (&raw const keel_ap_start as u64, &raw const keel_ap_end as u64);
    let len = end - start;
    let usable =
        info.regions().iter().any(|r| r.kind == 1 && r.addr <= TRAMPOLINE && r.addr + r.size >= TRAMPOLINE + 4096);
    if !usable || len > 4096 {
        log::warn!("SMP: no usable page at {TRAMPOLINE:#x} for the start-up code; one CPU only");
        return;
    }
    // SAFETY: the page at TRAMPOLINE is RAM the firmware marked usable, below the 1 MiB the page
    // allocator never hands out, identity-mapped; the trampoline's bytes are `len` long.
    unsafe { core::ptr::copy_nonoverlapping(start as *const u8, TRAMPOLINE as *mut u8, len as usize) };
    PREPARED.store(true, Ordering::Release);
}

/// The trampoline's parameter block: (cr3, stack, index, entry), identity-mapped.
fn params() -> *mut [u64; 4] {
    let off = &raw const keel_ap_params as u64 - &raw const keel_ap_start as u64;
    (TRAMPOLINE + off) as *mut [u64; 4]
}

/// Starts every other CPU the MADT lists (at most `wanted` in all, and [`MAX_CPUS`]), one after
/// the other; each joins the scheduler with its idle task. Returns how many run.
pub fn start_aps(wanted: usize) -> usize {
    let Some(acpi) = crate::arch::acpi::get() else { return 1 };
    if !PREPARED.load(Ordering::Acquire) {
        return 1;
    }
    let me = cpu::lapic_id();
    APIC_IDS[0].store(me, Ordering::Relaxed);
    for id in acpi.apic_ids() {
        let index = online();
        if index >= wanted.min(MAX_CPUS) {
            break;
        }
        if id == me || id > 0xff {
            // x2APIC ids above 255 cannot be reached through the xAPIC's ICR.
            continue;
        }
        let Some(stack) = crate::mm::memory::alloc_stack(64, "a CPU's idle task") else { break };
        let top = stack.top;
        // The stack becomes the CPU's idle task's, for good.
        core::mem::forget(stack);
        // SAFETY: the parameter block in the trampoline page (identity-mapped, ours); no AP is
        // reading it now (the previous one said it was up, or timed out and is not coming).
        unsafe {
            params().write_volatile([
                crate::mm::memory::kernel_pml4(),
                top,
                index as u64,
                ap_entry as *const () as usize as u64,
            ])
        };
        AP_UP.store(false, Ordering::SeqCst);
        APIC_IDS[index].store(id, Ordering::Relaxed);
        // INIT, then twice SIPI with the trampoline's page number (Intel SDM, MP initialization).
        cpu::send_ipi(id, 0x4500);
        time::spin_ns(10_000_000);
        let sipi = 0x4600 | (TRAMPOLINE >> 12) as u32;
        cpu::send_ipi(id, sipi);
        if !wait_for_ap(1) {
            cpu::send_ipi(id, sipi);
        }
        if !wait_for_ap(500) {
            log::warn!("SMP: CPU with APIC id {id} did not start");
            break;
        }
    }
    online()
}

fn wait_for_ap(ms: u64) -> bool {
    let end = time::uptime_ns() + ms * 1_000_000;
    while time::uptime_ns() < end {
        if AP_UP.load(Ordering::SeqCst) {
            return true;
        }
        core::hint::spin_loop();
    }
    AP_UP.load(Ordering::SeqCst)
}

/// Where an AP arrives in long mode, on its own stack, with interrupts off.
extern "C" fn ap_entry(index: u64) -> ! {
    let index = index as usize;
    // Which CPU this is, before anything per-CPU is touched (the heap's lock-order slot, the
    // first allocations of `init_ap`): until then `cpu()` would say 0.
    crate::arch::user::set_cpu_index(index);
    cpu::init_ap(index);
    // SAFETY: fninit resets x87 state; ldmxcsr loads the default SSE control word.
    unsafe {
        let mxcsr: u32 = 0x1f80;
        core::arch::asm!("fninit", "ldmxcsr [{0}]", in(reg) &mxcsr, options(nostack));
    }
    crate::sched::task::init_ap(index);
    // Its tick: the local APIC timer at the rate the first measure found.
    cpu::start_lapic_timer(time::TICK_HZ);
    ONLINE.fetch_add(1, Ordering::AcqRel);
    AP_UP.store(true, Ordering::SeqCst);
    crate::sched::task::idle_loop()
}

/// Wakes `cpu` (idle, halted) so it looks at its run queue now.
pub fn kick(cpu: usize) {
    if cpu < online() && cpu != self::cpu() {
        cpu::send_ipi(APIC_IDS[cpu].load(Ordering::Relaxed), u32::from(cpu::RESCHEDULE_VECTOR) | 0x4000);
    }
}

// ---- TLB shootdown ----

static SHOOTDOWN: Ordered<()> = Ordered::new(Rank::Shootdown, ());
static SD_START: AtomicU64 = AtomicU64::new(0);
static SD_PAGES: AtomicU64 = AtomicU64::new(0);
/// CPUs that have not flushed yet.
static SD_LEFT: AtomicUsize = AtomicUsize::new(0);
static SD_ACTIVE: AtomicBool = AtomicBool::new(false);
/// An address space to leave (0: none), with the shootdown.
static SD_ABANDON: AtomicU64 = AtomicU64::new(0);
/// Set when the kernel stops on a fault: an NMI then halts the CPU it reaches.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Above this many pages a shootdown flushes the whole TLB instead of page by page.
const FLUSH_ALL_PAGES: u64 = 32;

/// Makes every other CPU forget its cached translations of `start..start + len` (kernel
/// addresses whose mapping was just removed or narrowed here; this CPU has flushed its own).
/// Returns once all have: only then may the frames go back to the allocator.
pub fn shootdown(start: u64, len: u64) {
    let n = online();
    if n < 2 || len == 0 {
        return;
    }
    // Interrupts off while the lock is held: the timer may switch tasks, and the scheduler
    // frees dead tasks' stacks, which shoots down too.
    interrupts::without_interrupts(|| shootdown_locked(n, start, len, 0));
}

/// Takes the address space `pml4` (about to be freed) off every other CPU that still has it
/// loaded (lazily, under a kernel task: `user::OWN_CR3`). Returns once none has.
pub fn abandon_address_space(pml4: u64) {
    let n = online();
    if n < 2 {
        return;
    }
    interrupts::without_interrupts(|| shootdown_locked(n, 0, 0, pml4));
}

fn shootdown_locked(n: usize, start: u64, len: u64, abandon: u64) {
    let _one_at_a_time = SHOOTDOWN.lock();
    SD_ABANDON.store(abandon, Ordering::SeqCst);
    SD_START.store(start, Ordering::Relaxed);
    SD_PAGES.store(len.div_ceil(4096), Ordering::Relaxed);
    SD_LEFT.store(n - 1, Ordering::SeqCst);
    SD_ACTIVE.store(true, Ordering::SeqCst);
    let me = cpu();
    for c in (0..n).filter(|c| *c != me) {
        // NMI delivery, level assert.
        cpu::send_ipi(APIC_IDS[c].load(Ordering::Relaxed), 0x4400);
    }
    let deadline = time::uptime_ns() + 1_000_000_000;
    while SD_LEFT.load(Ordering::SeqCst) != 0 {
        if time::uptime_ns() > deadline {
            log::warn!("TLB shootdown: {} CPUs did not answer", SD_LEFT.load(Ordering::SeqCst));
            break;
        }
        core::hint::spin_loop();
    }
    SD_ACTIVE.store(false, Ordering::SeqCst);
    SD_ABANDON.store(0, Ordering::SeqCst);
}

/// Called by the NMI handler: true if the NMI was a shootdown (done now) or a stop.
pub fn on_nmi() -> bool {
    if STOPPING.load(Ordering::SeqCst) {
        crate::arch::power::halt_forever();
    }
    if !SD_ACTIVE.load(Ordering::SeqCst) {
        return false;
    }
    let abandon = SD_ABANDON.load(Ordering::SeqCst);
    if abandon != 0 {
        crate::arch::user::abandon(abandon);
    }
    let start = SD_START.load(Ordering::Relaxed);
    let pages = SD_PAGES.load(Ordering::Relaxed);
    if pages > FLUSH_ALL_PAGES {
        x86_64::instructions::tlb::flush_all();
    } else {
        for p in 0..pages {
            x86_64::instructions::tlb::flush(x86_64::VirtAddr::new_truncate(start + p * 4096));
        }
    }
    SD_LEFT.fetch_sub(1, Ordering::SeqCst);
    true
}

/// Halts every other CPU (the kernel is about to report a fault and stop).
pub fn stop_others() {
    if STOPPING.swap(true, Ordering::SeqCst) {
        return;
    }
    let n = online();
    let me = cpu();
    for c in (0..n).filter(|c| *c != me) {
        interrupts::without_interrupts(|| cpu::send_ipi(APIC_IDS[c].load(Ordering::Relaxed), 0x4400));
    }
}
