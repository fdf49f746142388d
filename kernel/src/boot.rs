//! PVH boot: the ELF note QEMU looks for, the 32-bit entry stub that enters long mode, and the
//! parsing of the `hvm_start_info` structure QEMU hands over.
//!
//! The stub identity-maps the first 4 GiB with 2 MiB pages, enables PAE, long mode, SSE (so the
//! hard-float Rust code may run) and caches, and calls [`crate::kernel_main`] on a boot stack.

use core::arch::global_asm;

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

    .section .boot.text, "ax"
    .code32
    .global pvh_start
pvh_start:
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
    xorl %ebp, %ebp
    movl %esi, %edi
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
    options(att_syntax)
);

/// Magic value at the start of `hvm_start_info`.
const START_INFO_MAGIC: u32 = 0x336e_c578;

/// One entry of the E820-style memory map.
#[derive(Clone, Copy, Debug)]
pub struct MemoryRegion {
    pub addr: u64,
    pub size: u64,
    /// 1 = usable RAM.
    pub kind: u32,
}

/// The boot module (`-initrd`): where it lies in physical memory.
#[derive(Clone, Copy, Debug)]
pub struct Module {
    pub addr: u64,
    pub size: u64,
}

/// What the boot loader told us.
pub struct BootInfo {
    pub regions: [MemoryRegion; 64],
    pub region_count: usize,
    pub initrd: Option<Module>,
    cmdline: [u8; 512],
    cmdline_len: usize,
}

/// Reads a value of type `T` from a physical address.
///
/// # Safety
/// `addr` must be identity-mapped, readable, and hold a `T` written by the boot loader.
unsafe fn read_phys<T: Copy>(addr: u64) -> T {
    // SAFETY: the caller guarantees the address is mapped and holds a T.
    unsafe { core::ptr::read_unaligned(addr as *const T) }
}

impl BootInfo {
    /// Parses the PVH start info at physical address `addr`.
    ///
    /// # Safety
    /// Must be called with the pointer QEMU passed in `ebx`, while the low 4 GiB are still
    /// identity-mapped and before any of the memory it describes is reused.
    pub unsafe fn parse(addr: u32) -> Option<BootInfo> {
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
            let mut info = BootInfo {
                regions: [MemoryRegion { addr: 0, size: 0, kind: 0 }; 64],
                region_count: 0,
                initrd: None,
                cmdline: [0; 512],
                cmdline_len: 0,
            };
            if nr_modules > 0 && modlist != 0 {
                let m = Module { addr: read_phys(modlist), size: read_phys(modlist + 8) };
                if m.size > 0 {
                    info.initrd = Some(m);
                }
            }
            if cmdline_addr != 0 {
                // Copied, so the loader's memory can be reused.
                let mut len = 0usize;
                while len < info.cmdline.len() {
                    let b = read_phys::<u8>(cmdline_addr + len as u64);
                    if b == 0 {
                        break;
                    }
                    info.cmdline[len] = b;
                    len += 1;
                }
                info.cmdline_len = len;
            }
            if version >= 1 {
                let memmap = read_phys::<u64>(base + 40);
                let entries = read_phys::<u32>(base + 48) as usize;
                for i in 0..entries.min(info.regions.len()) {
                    let e = memmap + (i as u64) * 24;
                    info.regions[i] =
                        MemoryRegion { addr: read_phys(e), size: read_phys(e + 8), kind: read_phys(e + 16) };
                }
                info.region_count = entries.min(info.regions.len());
            }
            Some(info)
        }
    }

    /// The kernel command line (`-append`).
    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }

    /// The memory map entries.
    pub fn regions(&self) -> &[MemoryRegion] {
        &self.regions[..self.region_count]
    }
}
