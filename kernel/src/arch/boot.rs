//! Boot: the two ways in and what they hand over.
//!
//! - PVH (QEMU `-kernel`, Firecracker, Cloud Hypervisor): the ELF note points at `pvh_start`;
//!   `ebx` holds `hvm_start_info`.
//! - Multiboot2 (GRUB, from the BIOS or UEFI bootable image): the header below names
//!   `mb2_start`; `eax` holds the Multiboot2 magic, `ebx` the boot information.
//!
//! Both enter in 32-bit protected mode without paging and share the rest of the stub, which
//! identity-maps the first 4 GiB with 2 MiB pages, enables PAE, long mode, SSE (so the
//! hard-float Rust code may run) and caches, and calls [`crate::kernel_main`] on a boot stack.

use core::arch::global_asm;

pub use keel_boot::BootInfo;
use keel_boot::{Loader, MemoryRegion, Module};

/// Size of the boot stack the stub runs Rust on, until the kernel moves to a guarded stack.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .balign 4
    .quad pvh_start
    .balign 4

    .section .multiboot2, "a"
    .balign 8
mb2_header:
    .long {mb2_magic}
    .long 0
    .long mb2_header_end - mb2_header
    .long -({mb2_magic} + (mb2_header_end - mb2_header))
    /* Entry address tag: start at mb2_start (the ELF entry is PVH's). */
    .balign 8
    .word 3, 0
    .long 12
    .long mb2_start
    /* Framebuffer tag (optional, no preferred mode): UEFI machines have no text mode. */
    .balign 8
    .word 5, 1
    .long 20
    .long 0, 0, 32
    .balign 8
    .word 0, 0
    .long 8
mb2_header_end:

    .section .boot.text, "ax"
    .code32
    .global pvh_start
pvh_start:
    movl $1, %ebp
    jmp 4f
    .global mb2_start
mb2_start:
    cmpl ${mb2_boot_magic}, %eax
    jne 3f
    movl $2, %ebp
4:
    cli
    cld
    movl %ebx, %esi

    /* Zero .bss (the boot stack and page tables live there). */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb

    movl $boot_stack_top, %esp

    /* PML4[0] -> PDPT; PDPT[0..4] -> four page directories of 2 MiB pages: 4 GiB identity. */
    movl $boot_pdpt, %eax
    orl $3, %eax
    movl %eax, boot_pml4
    movl $boot_pd, %eax
    orl $3, %eax
    movl $boot_pdpt, %edi
    movl $4, %ecx
1:  movl %eax, (%edi)
    addl $4096, %eax
    addl $8, %edi
    loop 1b
    movl $boot_pd, %edi
    movl $0x83, %eax
    xorl %edx, %edx
    movl $2048, %ecx
2:  movl %eax, (%edi)
    movl %edx, 4(%edi)
    addl $0x200000, %eax
    adcl $0, %edx
    addl $8, %edi
    loop 2b

    /* CR4: PAE | OSFXSR | OSXMMEXCPT. */
    movl %cr4, %eax
    orl $0x620, %eax
    movl %eax, %cr4
    movl $boot_pml4, %eax
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

    lgdt boot_gdt_ptr
    ljmp $0x08, $long_mode_entry

    .code64
long_mode_entry:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movq $boot_stack_top, %rsp
    movl %esi, %edi
    movl %ebp, %esi
    xorl %ebp, %ebp
    fninit
    call kernel_main
3:  hlt
    jmp 3b

    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
boot_gdt_ptr:
    .word boot_gdt_ptr - boot_gdt - 1
    .long boot_gdt

    .section .bss.boot, "aw", @nobits
    .balign 4096
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4096 * 4
    .global boot_stack_bottom
boot_stack_bottom:
    .skip {stack}
    .global boot_stack_top
boot_stack_top:
    "#,
    stack = const BOOT_STACK_SIZE,
    mb2_magic = const keel_boot::multiboot2::HEADER_MAGIC,
    mb2_boot_magic = const keel_boot::multiboot2::BOOT_MAGIC,
    options(att_syntax)
);

/// Magic value at the start of `hvm_start_info`.
const START_INFO_MAGIC: u32 = 0x336e_c578;

/// The entry stub's second argument: which protocol started the kernel.
pub const LOADER_PVH: u32 = 1;
pub const LOADER_MULTIBOOT2: u32 = 2;

/// Reads a value of type `T` from a physical address.
///
/// # Safety
/// `addr` must be identity-mapped, readable, and hold a `T` written by the boot loader.
unsafe fn read_phys<T: Copy>(addr: u64) -> T {
    // SAFETY: the caller guarantees the address is mapped and holds a T.
    unsafe { core::ptr::read_unaligned(addr as *const T) }
}

/// Reads what the loader handed over: `loader` and `addr` are the entry stub's arguments.
///
/// # Safety
/// Must be called with the values the entry stub passed, while the low 4 GiB are still
/// identity-mapped and before any of the memory the loader described is reused.
pub unsafe fn parse(loader: u32, addr: u32) -> Result<BootInfo, &'static str> {
    match loader {
        // SAFETY: forwarded from the caller.
        LOADER_PVH => unsafe { parse_pvh(addr) }.ok_or("bad hvm_start_info magic"),
        LOADER_MULTIBOOT2 => {
            let base = u64::from(addr);
            // SAFETY: the Multiboot2 information starts with its total size (u32), at `addr`.
            let total = unsafe { read_phys::<u32>(base) } as usize;
            if !(8..=1 << 20).contains(&total) {
                return Err("implausible Multiboot2 information size");
            }
            // SAFETY: the loader wrote `total` bytes of boot information at `addr`, in
            // identity-mapped memory nothing else writes until the copy below is done.
            let bytes = unsafe { core::slice::from_raw_parts(base as *const u8, total) };
            keel_boot::multiboot2::parse(bytes).map_err(|_| "damaged Multiboot2 information")
        }
        _ => Err("unknown boot protocol"),
    }
}

/// Parses the PVH start info at physical address `addr`.
///
/// # Safety
/// As [`parse`].
unsafe fn parse_pvh(addr: u32) -> Option<BootInfo> {
    let base = u64::from(addr);
    // SAFETY: the loader placed hvm_start_info at `addr`; all reads below follow its layout
    // (magic u32, version u32, flags u32, nr_modules u32, modlist u64, cmdline u64, rsdp u64,
    // memmap u64, memmap_entries u32) and the tables it points to.
    unsafe {
        if read_phys::<u32>(base) != START_INFO_MAGIC {
            return None;
        }
        let version = read_phys::<u32>(base + 4);
        let nr_modules = read_phys::<u32>(base + 12);
        let modlist = read_phys::<u64>(base + 16);
        let cmdline_addr = read_phys::<u64>(base + 24);
        let rsdp = read_phys::<u64>(base + 32);
        let mut info = BootInfo::new(Loader::Pvh);
        if nr_modules > 0 && modlist != 0 {
            let m = Module { addr: read_phys(modlist), size: read_phys(modlist + 8) };
            if m.size > 0 {
                info.initrd = Some(m);
            }
        }
        if rsdp != 0 {
            info.rsdp = Some(rsdp);
        }
        if cmdline_addr != 0 {
            let mut line = [0u8; keel_boot::MAX_CMDLINE];
            let mut len = 0usize;
            while len < line.len() {
                let b = read_phys::<u8>(cmdline_addr + len as u64);
                if b == 0 {
                    break;
                }
                line[len] = b;
                len += 1;
            }
            info.set_cmdline(&line[..len]);
        }
        if version >= 1 {
            let memmap = read_phys::<u64>(base + 40);
            let entries = read_phys::<u32>(base + 48) as usize;
            for i in 0..entries {
                let e = memmap + (i as u64) * 24;
                let region = MemoryRegion { addr: read_phys(e), size: read_phys(e + 8), kind: read_phys(e + 16) };
                if !info.push_region(region) {
                    break;
                }
            }
        }
        Some(info)
    }
}
