//! fault:: — CPU exceptions and panics give a report and a fault status, never a hang.

use super::harness::*;
use crate::build::Image;
use crate::qemu::FAULT_STATUS;

pub(super) fn fault(image: &Image, kind: &str, expect: &[&str]) -> Result<(), String> {
    let mut vm = boot(image)?;
    vm.send_line(&format!("crash {kind}"))?;
    let st = vm.wait_exit(STEP)?;
    let out = vm.output();
    check(st == FAULT_STATUS, &format!("crash {kind}: status {st}, want {FAULT_STATUS}"), &out)?;
    for e in expect {
        contains(&out, e)?;
    }
    Ok(())
}

pub(super) fn fault_page(image: &Image) -> Result<(), String> {
    fault(
        image,
        "pagefault",
        &["KERNEL EXCEPTION: page fault (#PF)", "address 0x0000400000000000", "rip ", "backtrace"],
    )
}

pub(super) fn fault_gpf(image: &Image) -> Result<(), String> {
    fault(image, "gpf", &["KERNEL EXCEPTION: general protection fault (#GP)", "error "])
}

pub(super) fn fault_divide(image: &Image) -> Result<(), String> {
    fault(image, "divide", &["KERNEL EXCEPTION: divide error (#DE)"])
}

pub(super) fn fault_invalid_opcode(image: &Image) -> Result<(), String> {
    fault(image, "invalid-opcode", &["KERNEL EXCEPTION: invalid opcode (#UD)"])
}

pub(super) fn fault_stack_overflow(image: &Image) -> Result<(), String> {
    fault(
        image,
        "stack-overflow",
        &["page fault (#PF)", "stack overflow: the address is in the guard page of the shell"],
    )
}

pub(super) fn fault_panic(image: &Image) -> Result<(), String> {
    fault(image, "panic", &["KERNEL PANIC", "deliberate panic from the crash command"])
}
