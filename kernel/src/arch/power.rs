//! Power off, reboot, and leaving QEMU with a status code.

use keel_boot::acpi::{Register, Space};
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

/// Writes a firmware-named register.
fn write_register(reg: Register, value: u64) {
    match reg.space {
        Space::Io => {
            let port = reg.addr as u16;
            // SAFETY: an I/O register the ACPI tables name for exactly this write.
            unsafe {
                match reg.width {
                    8 => Port::<u8>::new(port).write(value as u8),
                    16 => Port::<u16>::new(port).write(value as u16),
                    _ => Port::<u32>::new(port).write(value as u32),
                }
            }
        }
        Space::Memory if reg.addr < (4 << 30) => {
            // SAFETY: an MMIO register the ACPI tables name, in the identity-mapped first 4 GiB.
            unsafe {
                match reg.width {
                    8 => core::ptr::write_volatile(reg.addr as *mut u8, value as u8),
                    16 => core::ptr::write_volatile(reg.addr as *mut u16, value as u16),
                    64 => core::ptr::write_volatile(reg.addr as *mut u64, value),
                    _ => core::ptr::write_volatile(reg.addr as *mut u32, value as u32),
                }
            }
        }
        Space::Memory => {}
    }
}

/// Switches firmware that still runs in legacy mode (SCI_EN clear in PM1 control) to ACPI mode
/// through the SMI command port, and waits up to a second for it: real PCs may ignore PM1
/// writes until then.
fn enter_acpi_mode(pm1a: Register, enable: Option<(u16, u8)>) {
    let (Space::Io, Some((smi, value))) = (pm1a.space, enable) else { return };
    let mut control: Port<u16> = Port::new(pm1a.addr as u16);
    // SAFETY: reading the PM1a control register the FADT names has no side effects.
    if unsafe { control.read() } & 1 != 0 {
        return;
    }
    // SAFETY: the FADT's SMI command port and the value it gives for entering ACPI mode.
    unsafe { Port::<u8>::new(smi).write(value) };
    let end = crate::arch::time::uptime_ns() + 1_000_000_000;
    // SAFETY: as above, polling SCI_EN.
    while unsafe { control.read() } & 1 == 0 && crate::arch::time::uptime_ns() < end {
        core::hint::spin_loop();
    }
}

/// ACPI S5 as the tables describe it: the sleep control register (hardware-reduced ACPI,
/// microvm) or PM1a/PM1b control with `\_S5`'s sleep types.
fn acpi_power_off() {
    let Some(acpi) = crate::arch::acpi::get() else { return };
    if let Some(reg) = acpi.sleep_control {
        crate::drivers::serial::emergency_write(format_args!(
            "power off: ACPI S5 through the sleep control register\n"
        ));
        // Without a DSDT word, S5 is conventionally sleep type 5.
        let value = acpi.s5_sleep_control_value().unwrap_or((5 << 2) | 0x20);
        write_register(reg, value.into());
        wait_ms(100);
    }
    if let (Some(pm1a), Some((a, b))) = (acpi.pm1a_control, acpi.s5_pm1_values()) {
        enter_acpi_mode(pm1a, acpi.acpi_enable);
        crate::drivers::serial::emergency_write(format_args!(
            "power off: ACPI S5 through PM1 control (\\_S5 = {a:#x})\n"
        ));
        write_register(pm1a, a.into());
        if let Some(pm1b) = acpi.pm1b_control {
            write_register(pm1b, b.into());
        }
        wait_ms(100);
    }
}

/// Powers the machine off: ACPI S5 as the tables say; without tables, microvm's GED and
/// pc/q35's PM1a port; finally debug-exit.
pub fn shutdown() -> ! {
    x86_64::instructions::interrupts::disable();
    if crate::arch::acpi::get().is_some() {
        acpi_power_off();
    } else {
        // SAFETY: microvm's GED sleep-control register: SLP_TYP=5 (S5) | SLP_EN. On machines
        // without a GED the address is unassigned and the write is dropped.
        unsafe { core::ptr::write_volatile(GED_REGS as *mut u8, (5 << 2) | 0x20) };
        let mut pm1a: Port<u16> = Port::new(0x604);
        // SAFETY: QEMU's ICH9/PIIX PM1a control block: SLP_TYP=0 (S5 in QEMU's DSDT) | SLP_EN.
        unsafe { pm1a.write(0x2000) };
        // QEMU acts on a shutdown request asynchronously: give it a moment before the fallback.
        wait_ms(200);
    }
    crate::drivers::serial::emergency_write(format_args!(
        "power off: the machine did not turn off; leaving through debug-exit\n"
    ));
    exit_qemu(0)
}

/// Restarts the machine: GED reset (microvm), reset control 0xCF9 and the keyboard controller
/// (pc/q35), and as a last resort a triple fault.
pub fn reboot() -> ! {
    x86_64::instructions::interrupts::disable();
    if let Some((reg, value)) = crate::arch::acpi::get().and_then(|a| a.reset) {
        write_register(reg, value.into());
        wait_ms(100);
    }
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
    crate::arch::time::spin_ns(ms * 1_000_000);
}

/// Halts the CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
