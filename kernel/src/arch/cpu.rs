//! CPU tables: GDT with a TSS (separate stacks for double faults), IDT with exception reports,
//! the legacy PIC for timer and serial interrupts.

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use pic8259::ChainedPics;
use spin::{Lazy, Mutex};
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::control::Cr2;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

use crate::drivers::serial::emergency_write;

/// IST slot used by the double-fault handler.
const DOUBLE_FAULT_IST: u16 = 0;
/// IST slot used by the page-fault handler, so a stack overflow can still be reported.
const PAGE_FAULT_IST: u16 = 1;
/// IST slot of the NMI handler: an NMI (TLB shootdown) can arrive in the two instructions of
/// the `syscall` entry that still run on the user's stack.
const NMI_IST: u16 = 2;
const IST_STACK_SIZE: usize = 32 * 1024;

/// First vector of the remapped PIC interrupts.
pub const PIC_OFFSET: u8 = 32;
pub const IRQ_TIMER: u8 = PIC_OFFSET;
pub const IRQ_KEYBOARD: u8 = PIC_OFFSET + 1;
pub const IRQ_COM1: u8 = PIC_OFFSET + 4;
pub const IRQ_COM2: u8 = PIC_OFFSET + 3;

#[repr(C, align(16))]
struct Stack([u8; IST_STACK_SIZE]);

static mut DOUBLE_FAULT_STACK: Stack = Stack([0; IST_STACK_SIZE]);
static mut PAGE_FAULT_STACK: Stack = Stack([0; IST_STACK_SIZE]);
static mut NMI_STACK: Stack = Stack([0; IST_STACK_SIZE]);

fn stack_top(stack: *const Stack) -> VirtAddr {
    VirtAddr::from_ptr(stack) + IST_STACK_SIZE as u64
}

/// The boot CPU's TSS: IST stacks, and `rsp0`, the stack an interrupt from user mode lands on
/// (the running task's, set by `user` at every switch). Other CPUs get theirs in [`init_ap`].
static mut TSS: TaskStateSegment = TaskStateSegment::new();

struct Selectors {
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static GDT: Lazy<(GlobalDescriptorTable, Selectors)> = Lazy::new(|| {
    // SAFETY: set up once, before the GDT that points at it is loaded.
    let tss = unsafe {
        let t = &raw mut TSS;
        (*t).interrupt_stack_table[DOUBLE_FAULT_IST as usize] = stack_top(&raw const DOUBLE_FAULT_STACK);
        (*t).interrupt_stack_table[PAGE_FAULT_IST as usize] = stack_top(&raw const PAGE_FAULT_STACK);
        (*t).interrupt_stack_table[NMI_IST as usize] = stack_top(&raw const NMI_STACK);
        t
    };
    // SAFETY: the TSS is a static that lives as long as the GDT.
    gdt_with(unsafe { Descriptor::tss_segment_unchecked(tss) })
});

/// A GDT laid out as every CPU's: kernel code and data, user data and code (`sysret` wants user
/// data right before user code: 0x18 and 0x20, RPL 3: 0x1b and 0x23), then the CPU's TSS.
fn gdt_with(tss: Descriptor) -> (GlobalDescriptorTable, Selectors) {
    let mut gdt = GlobalDescriptorTable::new();
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    gdt.append(Descriptor::user_data_segment());
    gdt.append(Descriptor::user_code_segment());
    let tss = gdt.append(tss);
    (gdt, Selectors { code, data, tss })
}

pub static PICS: Mutex<ChainedPics> =
    // SAFETY: the offsets 32..48 do not overlap the CPU exception vectors.
    Mutex::new(unsafe { ChainedPics::new(PIC_OFFSET, PIC_OFFSET + 8) });

static IDT: Lazy<InterruptDescriptorTable> = Lazy::new(|| {
    let mut idt = InterruptDescriptorTable::new();
    idt.divide_error.set_handler_fn(divide_error);
    idt.debug.set_handler_fn(debug);
    idt.breakpoint.set_handler_fn(breakpoint);
    idt.overflow.set_handler_fn(overflow);
    idt.bound_range_exceeded.set_handler_fn(bound_range);
    idt.invalid_opcode.set_handler_fn(invalid_opcode);
    idt.device_not_available.set_handler_fn(device_not_available);
    idt.invalid_tss.set_handler_fn(invalid_tss);
    idt.segment_not_present.set_handler_fn(segment_not_present);
    idt.stack_segment_fault.set_handler_fn(stack_segment_fault);
    idt.general_protection_fault.set_handler_fn(general_protection);
    idt.x87_floating_point.set_handler_fn(x87_floating_point);
    idt.alignment_check.set_handler_fn(alignment_check);
    idt.simd_floating_point.set_handler_fn(simd_floating_point);
    // SAFETY: the IST indices refer to stacks installed in the TSS above. The page-fault entry
    // stub passes kernel faults to `page_fault` with the CPU's frame untouched and handles
    // user-mode ones itself (`user`).
    unsafe {
        idt.double_fault.set_handler_fn(double_fault).set_stack_index(DOUBLE_FAULT_IST);
        idt.non_maskable_interrupt.set_handler_fn(nmi).set_stack_index(NMI_IST);
        idt.page_fault
            .set_handler_addr(VirtAddr::new(crate::arch::user::keel_page_fault_entry as *const () as u64))
            .set_stack_index(PAGE_FAULT_IST);
    }
    idt[IRQ_TIMER].set_handler_fn(timer_interrupt);
    idt[IRQ_COM1].set_handler_fn(com1_interrupt);
    idt[IRQ_COM2].set_handler_fn(com2_interrupt);
    idt[IRQ_KEYBOARD].set_handler_fn(keyboard_interrupt);
    for v in PIC_OFFSET + 8..PIC_OFFSET + 16 {
        idt[v].set_handler_fn(spurious_slave);
    }
    idt[PIC_OFFSET + 7].set_handler_fn(spurious_master);
    idt[LAPIC_TIMER_VECTOR].set_handler_fn(lapic_timer_interrupt);
    idt[RESCHEDULE_VECTOR].set_handler_fn(reschedule_interrupt);
    idt[DEVICE_VECTOR].set_handler_fn(ioapic_device_interrupt);
    // PIC lines PCI devices are commonly routed to (the firmware's choice): a device that
    // registers one gets its interrupts; otherwise they count as spurious.
    idt[PIC_OFFSET + 5].set_handler_fn(pic_device_interrupt::<5>);
    idt[PIC_OFFSET + 9].set_handler_fn(pic_device_interrupt::<9>);
    idt[PIC_OFFSET + 10].set_handler_fn(pic_device_interrupt::<10>);
    idt[PIC_OFFSET + 11].set_handler_fn(pic_device_interrupt::<11>);
    idt[0xff].set_handler_fn(spurious_master);
    idt
});

/// Vector of the local APIC timer (the tick on the other CPUs, and on machines without a PIT).
const LAPIC_TIMER_VECTOR: u8 = 0x40;
/// Vector of the IPI that tells an idle CPU it was given a task.
pub const RESCHEDULE_VECTOR: u8 = 0x41;
/// Vector of the device interrupt routed through an I/O APIC.
const DEVICE_VECTOR: u8 = 0x50;

/// Where a device's interrupt comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqSource {
    /// A global system interrupt on an I/O APIC (virtio-mmio on microvm: GSI 16 + slot).
    Gsi(u32),
    /// A line of the 8259 PICs (PCI INTx as the firmware routed it: config register 0x3c).
    PicLine(u8),
}

/// The device interrupts in use (the network card, the disks) and the handler each runs.
static DEVICE_IRQS: Mutex<[Option<DeviceIrq>; MAX_DEVICE_IRQS]> = Mutex::new([None; MAX_DEVICE_IRQS]);
const MAX_DEVICE_IRQS: usize = 8;

/// A routed device interrupt and its handler.
type DeviceIrq = (IrqSource, fn());

fn register_device_irq(source: IrqSource, handler: fn()) -> bool {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut table = DEVICE_IRQS.lock();
        match table.iter_mut().find(|e| e.is_none()) {
            Some(slot) => {
                *slot = Some((source, handler));
                true
            }
            None => false,
        }
    })
}

/// An I/O APIC's register window.
fn ioapic_write(base: u64, reg: u32, value: u32) {
    // SAFETY: an I/O APIC the MADT lists (identity-mapped below 4 GiB): select the register at
    // offset 0, then write it through the window at offset 0x10.
    unsafe {
        core::ptr::write_volatile(base as *mut u32, reg);
        core::ptr::write_volatile((base + 0x10) as *mut u32, value);
    }
}

/// The I/O APIC that receives `gsi` (24 pins each) and the pin: (register window, pin).
fn ioapic_pin(gsi: u32) -> Option<(u64, u32)> {
    crate::arch::acpi::get()?
        .io_apics()
        .find(|io| gsi >= io.gsi_base && gsi < io.gsi_base + 24 && io.addr < (4 << 30))
        .map(|io| (io.addr, gsi - io.gsi_base))
}

/// Writes the redirection entry of `pin`: `DEVICE_VECTOR`, fixed delivery, physical
/// destination, active high, edge-triggered, masked or not.
fn ioapic_route(addr: u64, pin: u32, masked: bool) {
    ioapic_write(addr, 0x10 + 2 * pin, u32::from(DEVICE_VECTOR) | if masked { 1 << 16 } else { 0 });
}

/// Routes a device's interrupt to `handler` (edge-triggered through an I/O APIC, or the PIC
/// line as the firmware set it up) and unmasks it. False if the source cannot be reached.
pub fn route_device_irq(source: IrqSource, handler: fn()) -> bool {
    match source {
        IrqSource::Gsi(gsi) => {
            let Some((addr, pin)) = ioapic_pin(gsi) else { return false };
            if !register_device_irq(source, handler) {
                return false;
            }
            // To this CPU's local APIC.
            ioapic_write(addr, 0x11 + 2 * pin, lapic_read(0x20) & 0xff00_0000);
            ioapic_route(addr, pin, false);
            true
        }
        IrqSource::PicLine(line @ (5 | 9 | 10 | 11)) => {
            if !register_device_irq(source, handler) {
                return false;
            }
            set_irq_masked(line, false);
            true
        }
        IrqSource::PicLine(_) => false,
    }
}

/// Masks or unmasks a routed device interrupt (a handler that cannot quiet its device yet
/// masks it; whoever quiets the device later unmasks it). A PIC line shared by two devices is
/// masked for both: the other device's waiter unmasks it again after its own poll.
pub fn set_device_irq_masked(source: IrqSource, masked: bool) {
    match source {
        IrqSource::PicLine(line) => set_irq_masked(line, masked),
        IrqSource::Gsi(gsi) => {
            if let Some((addr, pin)) = ioapic_pin(gsi) {
                ioapic_route(addr, pin, masked);
            }
        }
    }
}

/// Runs every registered device handler whose interrupt came from where it was routed (all
/// I/O APIC devices share one vector; each handler checks its own device).
fn run_device_handler(came_from: impl Fn(IrqSource) -> bool) {
    let mut handlers: [Option<fn()>; MAX_DEVICE_IRQS] = [None; MAX_DEVICE_IRQS];
    if let Some(table) = DEVICE_IRQS.try_lock() {
        for (out, (s, h)) in handlers.iter_mut().zip(table.iter().flatten()) {
            if came_from(*s) {
                *out = Some(*h);
            }
        }
    }
    for h in handlers.iter().flatten() {
        h();
    }
}

extern "x86-interrupt" fn ioapic_device_interrupt(_frame: InterruptStackFrame) {
    run_device_handler(|s| matches!(s, IrqSource::Gsi(_)));
    lapic_write(0xb0, 0);
}

extern "x86-interrupt" fn pic_device_interrupt<const LINE: u8>(_frame: InterruptStackFrame) {
    run_device_handler(|s| s == IrqSource::PicLine(LINE));
    // SAFETY: the interrupt came from the PIC on LINE (both chips are told for slave lines).
    unsafe { PICS.lock().notify_end_of_interrupt(PIC_OFFSET + LINE) };
}

pub(crate) fn lapic_write(reg: u64, value: u32) {
    // SAFETY: the LAPIC's MMIO page is identity-mapped; these are architectural registers.
    unsafe { core::ptr::write_volatile((LAPIC_BASE + reg) as *mut u32, value) };
}

pub(crate) fn lapic_read(reg: u64) -> u32 {
    // SAFETY: as in lapic_write.
    unsafe { core::ptr::read_volatile((LAPIC_BASE + reg) as *const u32) }
}

/// Local APIC timer counts per tick, measured once (every CPU's timer runs at the same rate).
static LAPIC_PER_TICK: AtomicU32 = AtomicU32::new(0);

/// Starts this CPU's local APIC timer, periodic at `hz`: its rate is measured once against the
/// (already calibrated) clock over 10 ms; later CPUs reuse the measure.
pub fn start_lapic_timer(hz: u64) {
    // Divide by 16.
    lapic_write(0x3e0, 0x3);
    let mut per_tick = LAPIC_PER_TICK.load(Ordering::Relaxed);
    if per_tick == 0 {
        // Masked, one-shot from the top: count down for 10 ms.
        lapic_write(0x320, 1 << 16);
        lapic_write(0x380, u32::MAX);
        crate::arch::time::spin_ns(10_000_000);
        let counted = u64::from(u32::MAX - lapic_read(0x390));
        per_tick = (counted * 100 / hz).clamp(1, u64::from(u32::MAX)) as u32;
        LAPIC_PER_TICK.store(per_tick, Ordering::Relaxed);
        log::info!("tick: local APIC timer, {} counts per tick", per_tick);
    }
    // Periodic, unmasked.
    lapic_write(0x320, u32::from(LAPIC_TIMER_VECTOR) | (1 << 17));
    lapic_write(0x380, per_tick);
}

extern "x86-interrupt" fn lapic_timer_interrupt(mut frame: InterruptStackFrame) {
    // The clock's tick count and wasmtime's epoch advance on one CPU only.
    if crate::arch::smp::cpu() == 0 {
        crate::arch::time::on_tick();
        crate::proc::aot::tick();
    }
    // End of interrupt for the local APIC.
    lapic_write(0xb0, 0);
    crate::sched::task::on_tick();
    stop_killed_user(&mut frame);
}

extern "x86-interrupt" fn reschedule_interrupt(_frame: InterruptStackFrame) {
    lapic_write(0xb0, 0);
    crate::sched::task::on_reschedule();
}

extern "x86-interrupt" fn nmi(mut frame: InterruptStackFrame) {
    if crate::arch::smp::on_nmi() {
        return;
    }
    if !crate::arch::user::trap_from_user(&mut frame, 2, 0) {
        fatal("non-maskable interrupt", &frame, None, "");
    }
}

/// This CPU's local APIC id.
pub fn lapic_id() -> u32 {
    lapic_read(0x20) >> 24
}

/// Sends an inter-processor interrupt: `low` is the ICR's low word (vector, delivery mode,
/// level), to the CPU with local APIC id `apic`.
pub fn send_ipi(apic: u32, low: u32) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        // Wait until the previous IPI left (delivery status).
        while lapic_read(0x300) & (1 << 12) != 0 {
            core::hint::spin_loop();
        }
        lapic_write(0x310, apic << 24);
        lapic_write(0x300, low);
    });
}

/// Sets up an AP: its own GDT with its own TSS and IST stacks (kept for good), the shared IDT,
/// its per-CPU block and system-call registers, its local APIC (LINT0 masked: the PICs talk to
/// the boot CPU only).
pub fn init_ap(index: usize) {
    use alloc::boxed::Box;
    let mut tss = Box::new(TaskStateSegment::new());
    for ist in [DOUBLE_FAULT_IST, PAGE_FAULT_IST, NMI_IST] {
        let stack: &'static mut [u8] = Box::leak(alloc::vec![0u8; IST_STACK_SIZE].into_boxed_slice());
        let top = (stack.as_ptr() as u64 + IST_STACK_SIZE as u64) & !15;
        tss.interrupt_stack_table[ist as usize] = VirtAddr::new(top);
    }
    let tss: &'static mut TaskStateSegment = Box::leak(tss);
    let rsp0 = (&raw mut tss.privilege_stack_table[0]).cast::<u64>();
    // SAFETY: the TSS is leaked: it lives as long as the GDT (forever).
    let (gdt, sel) = gdt_with(unsafe { Descriptor::tss_segment_unchecked(tss) });
    let tables: &'static (GlobalDescriptorTable, Selectors) = Box::leak(Box::new((gdt, sel)));
    load_tables(tables);
    crate::arch::user::init_cpu(index, rsp0);
    // Spurious vector 0xff, enabled; LINT0 masked, LINT1 NMI; timer masked until started.
    lapic_write(0xf0, 0x1ff);
    lapic_write(0x350, 1 << 16);
    lapic_write(0x360, 0x400);
    lapic_write(0x320, 1 << 16);
}

/// Loads a CPU's GDT (its segments and TSS) and the shared IDT.
fn load_tables((gdt, sel): &'static (GlobalDescriptorTable, Selectors)) {
    gdt.load();
    // SAFETY: the selectors come from the GDT just loaded.
    unsafe {
        CS::set_reg(sel.code);
        DS::set_reg(sel.data);
        ES::set_reg(sel.data);
        SS::set_reg(sel.data);
        load_tss(sel.tss);
    }
    IDT.load();
}

/// Loads the GDT, TSS and IDT and starts the PIC with the timer and COM1 unmasked.
pub fn init() {
    load_tables(&GDT);
    // SAFETY: the address of the TSS's rsp0 slot, a static; only `user` writes it.
    crate::arch::user::init_cpu(0, unsafe { &raw mut TSS.privilege_stack_table[0] }.cast::<u64>());
    init_local_apic();
    let mut pics = PICS.lock();
    // SAFETY: programs the 8259 PICs; vectors 32..48 have handlers in the IDT.
    unsafe {
        pics.initialize();
        // Unmask IRQ0 (timer), IRQ1 (keyboard), IRQ2 (cascade) and IRQ4 (COM1).
        pics.write_masks(!0b0001_0111, 0xff);
    }
}

/// Physical (identity-mapped) address of the local APIC.
const LAPIC_BASE: u64 = 0xfee0_0000;

/// Lets the 8259 PIC reach the CPU through the local APIC: LINT0 as ExtINT, LINT1 as NMI.
/// Firmware usually does this; on `-M microvm` nothing does.
fn init_local_apic() {
    // Spurious-interrupt vector register: APIC software-enabled, spurious vector 0xff.
    lapic_write(0xf0, 0x1ff);
    // LVT LINT0: ExtINT (the PIC), LINT1: NMI.
    lapic_write(0x350, 0x700);
    lapic_write(0x360, 0x400);
    // The timer stays masked until a machine without a PIT needs it.
    lapic_write(0x320, 1 << 16);
}

extern "x86-interrupt" fn timer_interrupt(mut frame: InterruptStackFrame) {
    crate::arch::time::on_tick();
    crate::proc::aot::tick();
    // SAFETY: IRQ_TIMER came from the PIC.
    unsafe { PICS.lock().notify_end_of_interrupt(IRQ_TIMER) };
    // After the end-of-interrupt: this may switch to another task.
    crate::sched::task::on_tick();
    stop_killed_user(&mut frame);
}

/// A native program killed (Ctrl-C, `kill`) while it computes in user mode is stopped at the
/// next tick: it leaves user mode as if it had trapped.
fn stop_killed_user(frame: &mut InterruptStackFrame) {
    if frame.code_segment.0 & 3 == 3 && crate::sched::task::killed() {
        crate::arch::user::trap_from_user(frame, crate::arch::user::KILLED, 0);
    }
}

extern "x86-interrupt" fn com1_interrupt(_frame: InterruptStackFrame) {
    crate::drivers::serial::on_interrupt();
    // SAFETY: IRQ_COM1 came from the PIC.
    unsafe { PICS.lock().notify_end_of_interrupt(IRQ_COM1) };
}

extern "x86-interrupt" fn com2_interrupt(_frame: InterruptStackFrame) {
    crate::proc::job::on_interrupt();
    // SAFETY: IRQ_COM2 came from the PIC.
    unsafe { PICS.lock().notify_end_of_interrupt(IRQ_COM2) };
}

/// Masks or unmasks one line of the PICs (IRQ 0-15; the cascade stays open).
pub fn set_irq_masked(irq: u8, masked: bool) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut pics = PICS.lock();
        // SAFETY: reading and writing the PIC mask registers only changes which lines interrupt.
        unsafe {
            let [mut master, mut slave] = pics.read_masks();
            let (mask, bit) = if irq < 8 { (&mut master, irq) } else { (&mut slave, irq - 8) };
            *mask = if masked { *mask | 1 << bit } else { *mask & !(1 << bit) };
            pics.write_masks(master, slave);
        }
    });
}

extern "x86-interrupt" fn keyboard_interrupt(_frame: InterruptStackFrame) {
    crate::drivers::console::on_keyboard_interrupt();
    // SAFETY: IRQ_KEYBOARD came from the PIC.
    unsafe { PICS.lock().notify_end_of_interrupt(IRQ_KEYBOARD) };
}

extern "x86-interrupt" fn spurious_master(_frame: InterruptStackFrame) {
    // A spurious IRQ7 needs no end-of-interrupt.
}

extern "x86-interrupt" fn spurious_slave(_frame: InterruptStackFrame) {
    // Real slave IRQs are masked; acknowledge the cascade on the master only.
    // SAFETY: acknowledging IRQ2 on the master PIC.
    unsafe { PICS.lock().notify_end_of_interrupt(PIC_OFFSET + 2) };
}

/// Walks the frame-pointer chain starting at `rbp` and prints return addresses.
fn backtrace(mut rbp: u64, out: &mut dyn Write) {
    let _ = writeln!(out, "backtrace (addr2line -e target/keel/keel.elf ADDR):");
    for _ in 0..16 {
        if rbp == 0 || rbp % 8 != 0 || !crate::mm::memory::is_kernel_readable(rbp, 16) {
            break;
        }
        // SAFETY: `rbp` is aligned and lies in mapped kernel memory (checked above); with frame
        // pointers forced on, [rbp] holds the caller's rbp and [rbp+8] the return address.
        let (next, ret) = unsafe { (*(rbp as *const u64), *((rbp + 8) as *const u64)) };
        if ret == 0 {
            break;
        }
        let _ = writeln!(out, "  {ret:#018x}");
        if next <= rbp {
            break;
        }
        rbp = next;
    }
}

/// Reads this function's frame pointer (the handler's frame, whose saved rbp is the one of
/// the interrupted code).
#[inline(always)]
fn current_rbp() -> u64 {
    let rbp: u64;
    // SAFETY: reads a register; no memory access.
    unsafe { core::arch::asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack)) };
    rbp
}

struct Report;

impl Write for Report {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        emergency_write(format_args!("{s}"));
        Ok(())
    }
}

/// Prints a full exception report and stops the machine.
fn fatal(name: &str, frame: &InterruptStackFrame, error: Option<u64>, extra: &str) -> ! {
    x86_64::instructions::interrupts::disable();
    crate::arch::smp::stop_others();
    let mut out = Report;
    let _ = writeln!(out, "\n!!! KERNEL EXCEPTION: {name}");
    let _ = writeln!(out, "    rip    {:#018x}", frame.instruction_pointer.as_u64());
    let _ = writeln!(out, "    rsp    {:#018x}", frame.stack_pointer.as_u64());
    let _ = writeln!(out, "    rflags {:#018x}", frame.cpu_flags.bits());
    let _ = writeln!(out, "    cs     {:#06x}", frame.code_segment.0);
    if let Some(e) = error {
        let _ = writeln!(out, "    error  {e:#x}");
    }
    if !extra.is_empty() {
        let _ = writeln!(out, "    {extra}");
    }
    let rbp = current_rbp();
    if crate::mm::memory::is_kernel_readable(rbp, 8) {
        // SAFETY: checked readable; [rbp] is the interrupted code's frame pointer.
        let interrupted = unsafe { *(rbp as *const u64) };
        backtrace(interrupted, &mut out);
    }
    crate::arch::power::halt_after_fault()
}

/// Exceptions report and stop the machine, unless a native program caused them in user mode:
/// then only that program ends (`user::trap_from_user`).
macro_rules! report {
    ($fn:ident, $name:expr, $vec:expr) => {
        extern "x86-interrupt" fn $fn(mut frame: InterruptStackFrame) {
            if !crate::arch::user::trap_from_user(&mut frame, $vec, 0) {
                fatal($name, &frame, None, "");
            }
        }
    };
    ($fn:ident, $name:expr, $vec:expr, error) => {
        extern "x86-interrupt" fn $fn(mut frame: InterruptStackFrame, code: u64) {
            if !crate::arch::user::trap_from_user(&mut frame, $vec, code) {
                fatal($name, &frame, Some(code), "");
            }
        }
    };
}

extern "x86-interrupt" fn divide_error(mut frame: InterruptStackFrame) {
    if crate::arch::user::trap_from_user(&mut frame, 0, 0) {
        return;
    }
    // A division by zero in compiled WASM code is the guest's trap.
    if !crate::proc::aot::redirect_trap(&mut frame, None) {
        fatal("divide error (#DE)", &frame, None, "");
    }
}
report!(debug, "debug (#DB)", 1);
report!(overflow, "overflow (#OF)", 4);
report!(bound_range, "bound range exceeded (#BR)", 5);
extern "x86-interrupt" fn invalid_opcode(mut frame: InterruptStackFrame) {
    if crate::arch::user::trap_from_user(&mut frame, 6, 0) {
        return;
    }
    // `ud2` in compiled WASM code is how it traps.
    if !crate::proc::aot::redirect_trap(&mut frame, None) {
        fatal("invalid opcode (#UD)", &frame, None, "");
    }
}
report!(device_not_available, "device not available (#NM)", 7);
report!(invalid_tss, "invalid TSS (#TS)", 10, error);
report!(segment_not_present, "segment not present (#NP)", 11, error);
report!(stack_segment_fault, "stack-segment fault (#SS)", 12, error);
report!(general_protection, "general protection fault (#GP)", 13, error);
report!(x87_floating_point, "x87 floating-point exception (#MF)", 16);
report!(alignment_check, "alignment check (#AC)", 17, error);
report!(simd_floating_point, "SIMD floating-point exception (#XM)", 19);

extern "x86-interrupt" fn breakpoint(mut frame: InterruptStackFrame) {
    if crate::arch::user::trap_from_user(&mut frame, 3, 0) {
        return;
    }
    emergency_write(format_args!("breakpoint at {:#x}\n", frame.instruction_pointer.as_u64()));
}

extern "x86-interrupt" fn double_fault(frame: InterruptStackFrame, code: u64) -> ! {
    fatal("double fault (#DF)", &frame, Some(code), "")
}

/// The kernel's page faults (user-mode ones go to `user` first: `keel_page_fault_entry`).
pub(crate) extern "x86-interrupt" fn page_fault(mut frame: InterruptStackFrame, code: PageFaultErrorCode) {
    // User-mode page faults never get here: `user`'s entry stub takes them.
    let addr = Cr2::read_raw();
    // An access past a linear memory by compiled WASM code: the guest's trap.
    if crate::proc::aot::redirect_trap(&mut frame, Some(addr)) {
        return;
    }
    // No heap here: the fault may have hit while the heap lock was held.
    let mut extra = FixedBuf { data: [0; 256], len: 0 };
    let _ = write!(extra, "address {addr:#018x} ({:?})", code);
    if let Some(what) = crate::mm::memory::guard_page_owner(addr) {
        let _ = write!(extra, "\n    stack overflow: the address is in the guard page of {what}");
    }
    fatal("page fault (#PF)", &frame, Some(code.bits()), extra.as_str())
}

/// A small formatting buffer that needs no heap.
struct FixedBuf {
    data: [u8; 256],
    len: usize,
}

impl FixedBuf {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.data[..self.len]).unwrap_or("?")
    }
}

impl Write for FixedBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.data.len() - self.len);
        self.data[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
