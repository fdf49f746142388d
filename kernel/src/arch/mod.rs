//! The machine: boot entry, CPU tables and exceptions, user mode, ACPI, power, clocks.

pub(crate) mod acpi;
pub(crate) mod boot;
pub(crate) mod cpu;
pub(crate) mod power;
pub(crate) mod smp;
pub(crate) mod time;
pub(crate) mod user;
