//! Native Linux programs on Keel, as far as no hardware is involved.
//!
//! - [`elf`]: reads an x86_64 executable's headers into a load plan (static or static-PIE; a
//!   program that needs an interpreter is refused with its name).
//! - [`stack`]: the System V initial stack (argc, argv, envp, auxv with `AT_RANDOM`...).
//! - [`mm`]: the map of a process's address space (which ranges exist, with which access), the
//!   decisions behind `brk`, `mmap`, `munmap`, `mprotect` and `mremap`.
//! - [`process`]: a process's state and its system calls over Keel's VFS. The kernel provides a
//!   [`process::Host`]: page tables, the console streams, clocks and sleeping.
//! - [`abi`]: numbers, flags and structure layouts of the Linux x86_64 ABI, and call names for
//!   `trace`.
//!
//! The kernel glues this to the CPU (ring 3, `syscall`, page tables); everything here is tested on
//! the host with a fake memory.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod abi;
pub mod elf;
pub mod mm;
pub mod process;
pub mod stack;

/// The size of a page.
pub const PAGE: u64 = 4096;

/// Rounds up to a page boundary (None on overflow).
pub fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE - 1).map(|v| v & !(PAGE - 1))
}

/// Rounds down to a page boundary.
pub fn page_down(x: u64) -> u64 {
    x & !(PAGE - 1)
}
