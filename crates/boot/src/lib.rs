//! What Keel learns at boot, parsed from bytes: the kernel reads physical memory, this crate
//! makes sense of it. Nothing here allocates (it runs before the heap exists) or touches
//! hardware, so all of it is tested on the host.
//!
//! - [`BootInfo`]: the memory map, command line, boot module, ACPI root and framebuffer, filled
//!   by the PVH parser in the kernel or by [`multiboot2::parse`] (GRUB).
//! - [`acpi`]: the tables Keel needs to find CPUs, interrupt controllers, timers, PCI
//!   configuration space and how to power off.
//! - [`cmdline`]: virtio-mmio devices announced as `virtio_mmio.device=SIZE@ADDR:IRQ`.
#![no_std]
#![forbid(unsafe_code)]

pub mod acpi;
mod bytes;
pub mod cmdline;
pub mod multiboot2;
pub mod pci;

/// One entry of the memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    pub addr: u64,
    pub size: u64,
    /// E820 type: 1 = usable RAM, 3 = ACPI reclaimable, ...
    pub kind: u32,
}

/// A boot module: where it lies in physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module {
    pub addr: u64,
    pub size: u64,
}

/// How a linear framebuffer stores a pixel: bit positions and widths of each colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelFormat {
    pub red: (u8, u8),
    pub green: (u8, u8),
    pub blue: (u8, u8),
}

/// The display the firmware or boot loader left us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// A linear framebuffer (UEFI GOP, VESA): pixels at `addr`, `pitch` bytes per line.
    Framebuffer { addr: u64, pitch: u32, width: u32, height: u32, bpp: u8, format: PixelFormat },
    /// VGA text mode (80x25 cells at 0xb8000).
    Text,
}

/// Which boot protocol started the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loader {
    Pvh,
    Multiboot2,
}

/// Capacity of the memory map kept.
pub const MAX_REGIONS: usize = 64;
/// Capacity of the command line kept (longer ones are cut).
pub const MAX_CMDLINE: usize = 1024;

/// What the boot loader told us, copied out of its memory (which is reused afterwards).
#[derive(Clone, Debug)]
pub struct BootInfo {
    pub loader: Loader,
    regions: [MemoryRegion; MAX_REGIONS],
    region_count: usize,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
    /// The boot module (the `extra_files` archive).
    pub initrd: Option<Module>,
    /// Physical address of the ACPI RSDP, if the loader gave one.
    pub rsdp: Option<u64>,
    /// A copy of the RSDP itself (Multiboot2 hands a copy, not its address).
    pub rsdp_copy: Option<acpi::Root>,
    pub display: Option<Display>,
}

impl BootInfo {
    /// Empty information from `loader`.
    pub fn new(loader: Loader) -> BootInfo {
        BootInfo {
            loader,
            regions: [MemoryRegion { addr: 0, size: 0, kind: 0 }; MAX_REGIONS],
            region_count: 0,
            cmdline: [0; MAX_CMDLINE],
            cmdline_len: 0,
            initrd: None,
            rsdp: None,
            rsdp_copy: None,
            display: None,
        }
    }

    /// Adds a memory map entry (dropped when the map is full, with `false`).
    pub fn push_region(&mut self, region: MemoryRegion) -> bool {
        match self.regions.get_mut(self.region_count) {
            Some(slot) => {
                *slot = region;
                self.region_count += 1;
                true
            }
            None => false,
        }
    }

    /// The memory map.
    pub fn regions(&self) -> &[MemoryRegion] {
        &self.regions[..self.region_count]
    }

    /// Sets the command line from bytes (up to a NUL; cut at [`MAX_CMDLINE`] on a character
    /// boundary; invalid UTF-8 gives an empty line).
    pub fn set_cmdline(&mut self, bytes: &[u8]) {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let mut text = core::str::from_utf8(&bytes[..end]).unwrap_or("");
        while text.len() > MAX_CMDLINE {
            let mut cut = MAX_CMDLINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text = &text[..cut];
        }
        self.cmdline[..text.len()].copy_from_slice(text.as_bytes());
        self.cmdline_len = text.len();
    }

    /// The kernel command line.
    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }
}
