//! Power off, reboot, and leaving QEMU with a status code.

use x86_64::instructions::port::Port;

/// `isa-debug-exit` device port: writing N makes QEMU exit with status (N << 1) | 1.
const DEBUG_EXIT_PORT: u16 = 0xf4;
/// microvm's ACPI generic event device registers (hardware-reduced ACPI).
const GED_REGS: u64 = 0xfea0_0200;
/// Status the kernel reports through debug-exit after a panic or CPU exception.
pub const FAULT_EXIT_CODE: u32 = 0x7e;

/// Leaves QEMU through the debug-exit device with `code` (xtask turns it back into `code`).
pub fn exit_qemu(code: u32) -> ! {
    let mut port: Port<u32> = Port::new(DEBUG_EXIT_PORT);
    // SAFETY: writing the debug-exit port only makes QEMU exit; harmless where absent.
    unsafe { port.write(code) };
    halt_forever()
}

/// Powers the machine off: ACPI S5 on microvm (GED) and on pc/q35 (PM1a control), else debug-exit.
pub fn shutdown() -> ! {
    x86_64::instructions::interrupts::disable();
    // SAFETY: microvm's GED sleep-control register: SLP_TYP=5 (S5) | SLP_EN. On machines without
    // a GED the address is unassigned and the write is dropped.
    unsafe { core::ptr::write_volatile(GED_REGS as *mut u8, (5 << 2) | 0x20) };
    let mut pm1a: Port<u16> = Port::new(0x604);
    // SAFETY: QEMU's ICH9/PIIX PM1a control block: SLP_TYP=0 (S5 in QEMU's DSDT) | SLP_EN.
    unsafe { pm1a.write(0x2000) };
    // QEMU acts on a shutdown request asynchronously: give it a moment before the fallback.
    wait_ms(200);
    exit_qemu(0)
}

/// Restarts the machine: GED reset (microvm), reset control 0xCF9 and the keyboard controller
/// (pc/q35), and as a last resort a triple fault.
pub fn reboot() -> ! {
    x86_64::instructions::interrupts::disable();
    // SAFETY: microvm's GED reset register (value 0x42); a dropped write elsewhere.
    unsafe { core::ptr::write_volatile((GED_REGS + 2) as *mut u8, 0x42) };
    wait_ms(100);
    let mut cf9: Port<u8> = Port::new(0xcf9);
    let mut kbd: Port<u8> = Port::new(0x64);
    // SAFETY: standard PC reset mechanisms; each either resets the machine or is ignored.
    unsafe { cf9.write(0x06) };
    wait_ms(100);
    // SAFETY: as above.
    unsafe { kbd.write(0xfe) };
    wait_ms(100);
    // Triple fault: an empty IDT and a breakpoint.
    let empty = x86_64::structures::DescriptorTablePointer { limit: 0, base: x86_64::VirtAddr::new(0) };
    // SAFETY: deliberately loads an empty IDT so the next exception resets the CPU.
    unsafe {
        x86_64::instructions::tables::lidt(&empty);
        core::arch::asm!("int3", options(nomem, nostack));
    }
    halt_forever()
}

/// Stops after a fatal error: exits QEMU with [`FAULT_EXIT_CODE`] (or halts on real hardware).
pub fn halt_after_fault() -> ! {
    exit_qemu(FAULT_EXIT_CODE)
}

/// Busy-waits (interrupts may be off, so the TSC clock is used).
fn wait_ms(ms: u64) {
    let end = crate::time::uptime_ns() + ms * 1_000_000;
    while crate::time::uptime_ns() < end {
        core::hint::spin_loop();
    }
}

/// Halts the CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
