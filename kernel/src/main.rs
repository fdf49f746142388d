//! Keel: a small x86_64 kernel that runs WebAssembly programs.
//!
//! This crate holds the hardware and every `unsafe` block of the system; the logic lives in the
//! `no_std` crates under `crates/`.
#![no_std]
#![no_main]
#![feature(abi_x86_interrupt)]

extern crate alloc;

mod arch;
mod drivers;
mod fs;
mod mm;
mod net;
mod proc;
mod random;
mod sched;
mod shell;

use core::panic::PanicInfo;

use arch::{acpi, boot, cpu, power, smp, time};
use drivers::{console, disk, serial, virtio};
use mm::memory;
use proc::job;
use sched::task;

use x86_64::instructions::interrupts;

/// Kernel version, as `uname` and the banner show it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Pages of the shell's kernel stack.
const SHELL_STACK_PAGES: u64 = 64;

/// Called by the entry stub in long mode with what the loader passed in `ebx` (the physical
/// address of `hvm_start_info` or of the Multiboot2 information) and which loader it was.
#[no_mangle]
pub extern "C" fn kernel_main(boot_data: u32, loader: u32) -> ! {
    serial::init();
    serial::write_bytes(b"Keel: booting\n");
    // SAFETY: the entry stub's arguments, unchanged; nothing has been allocated yet.
    let info = match unsafe { boot::parse(loader, boot_data) } {
        Ok(info) => info,
        Err(why) => {
            serial::write_bytes(b"keel: cannot read what the boot loader handed over: ");
            serial::write_bytes(why.as_bytes());
            serial::write_bytes(b"; halting\n");
            power::halt_forever();
        }
    };
    console::init(info.display);
    serial::init_logging(info.cmdline().split_whitespace().any(|w| w == "quiet"));
    memory::init(&info);
    acpi::init(&info);
    cpu::init();
    time::init_timer();
    interrupts::enable();
    time::calibrate_tsc(10);
    time::start_tick();
    let date = time::init_rtc();
    random::init();
    if !random::hardware() {
        log::warn!("no RDRAND: random numbers are seeded from timer jitter only");
    }
    fs::init(&info);
    virtio::mount_shares(info.cmdline());
    console::report();
    let (tick, reference) = time::sources();
    let devices = virtio::sources();
    log::info!(
        "machine: booted by {}, ACPI {}, tick from the {tick}, TSC calibrated against {reference}, virtio over {}",
        match info.loader {
            keel_boot::Loader::Pvh => "PVH",
            keel_boot::Loader::Multiboot2 => "Multiboot2",
        },
        match acpi::get() {
            Some(a) => alloc::format!(
                "{} CPUs, {} I/O APICs, tables {}",
                a.cpus,
                a.ioapics,
                a.tables().collect::<alloc::vec::Vec<_>>().join(" ")
            ),
            None => alloc::string::String::from("absent"),
        },
        if devices.is_empty() { alloc::string::String::from("nothing") } else { devices.join(", ") }
    );
    let (total, free) = memory::frame_stats();
    log::info!(
        "Keel {VERSION}: {} MiB RAM ({} MiB free), TSC {} MHz, {}",
        total * 4 / 1024,
        free * 4 / 1024,
        time::tsc_hz() / 1_000_000,
        match date {
            Some(d) => alloc::format!("{d}"),
            None => alloc::string::String::from("RTC unreadable"),
        }
    );
    shell::set_boot_info(&info);
    // Everything the boot loader left in low memory has been copied by now.
    memory::unmap_null_guard();
    smp::prepare(&info);
    let Some(stack) = memory::alloc_stack(SHELL_STACK_PAGES, "the shell") else {
        panic!("cannot allocate the shell's stack");
    };
    let top = stack.top;
    // The shell's stack lives for the rest of the kernel's life.
    core::mem::forget(stack);
    // SAFETY: `top` is the 16-byte aligned top of a freshly mapped stack; shell_entry never
    // returns, so nothing on the boot stack is used again.
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "xor ebp, ebp",
            "call {entry}",
            top = in(reg) top,
            entry = sym shell_entry,
            options(noreturn)
        )
    }
}

extern "C" fn shell_entry() -> ! {
    let cmdline = shell::boot_cmdline();
    if let Some(path) = job::job_path(&cmdline) {
        task::init("job");
        start_cpus(&cmdline);
        net::start();
        disk::mount_at_boot();
        job::run(path)
    }
    task::init("shell");
    start_cpus(&cmdline);
    net::start();
    disk::mount_at_boot();
    shell::run()
}

/// Starts the other CPUs (all the machine has, or `cpus=N` on the command line), once the
/// scheduler they join exists.
fn start_cpus(cmdline: &str) {
    let wanted = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("cpus=")?.parse::<usize>().ok())
        .unwrap_or(usize::MAX)
        .max(1);
    let t0 = time::uptime_ns();
    let n = smp::start_aps(wanted);
    if n > 1 {
        log::info!("SMP: {n} CPUs online (started in {} ms)", (time::uptime_ns() - t0) / 1_000_000);
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    interrupts::disable();
    smp::stop_others();
    serial::emergency_write(format_args!("\n!!! KERNEL PANIC: {info}\n"));
    power::halt_after_fault()
}
