//! The Multiboot2 boot information structure (what GRUB hands over in `ebx`): a size, then
//! 8-byte-aligned tags. Keel reads the command line, the first module (the `extra_files`
//! archive), the memory map, the framebuffer and the ACPI RSDP copy; other tags are skipped.

use crate::bytes::{u32_at, u64_at};
use crate::{acpi, BootInfo, Display, Loader, MemoryRegion, Module, PixelFormat};

/// The value in `eax` when a Multiboot2 loader started the kernel.
pub const BOOT_MAGIC: u32 = 0x36d7_6289;
/// The magic of the header the kernel image carries.
pub const HEADER_MAGIC: u32 = 0xe852_50d6;

const TAG_END: u32 = 0;
const TAG_CMDLINE: u32 = 1;
const TAG_MODULE: u32 = 3;
const TAG_MMAP: u32 = 6;
const TAG_FRAMEBUFFER: u32 = 8;
const TAG_ACPI_OLD: u32 = 14;
const TAG_ACPI_NEW: u32 = 15;

/// Why a boot information structure was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the structure says it has (or than 8).
    Truncated,
    /// A tag runs past the end or is shorter than its own header.
    BadTag { offset: usize },
    /// No end tag.
    NoEnd,
}

/// The structure's total size, from its first 8 bytes (so the kernel knows how much to read).
pub fn total_size(head: &[u8]) -> Option<usize> {
    u32_at(head, 0).map(|n| n as usize)
}

/// Parses the whole structure.
pub fn parse(bytes: &[u8]) -> Result<BootInfo, Error> {
    let total = total_size(bytes).ok_or(Error::Truncated)?;
    if total < 8 || bytes.len() < total {
        return Err(Error::Truncated);
    }
    let bytes = &bytes[..total];
    let mut info = BootInfo::new(Loader::Multiboot2);
    let mut off = 8;
    while off + 8 <= total {
        let kind = u32_at(bytes, off).ok_or(Error::BadTag { offset: off })?;
        let size = u32_at(bytes, off + 4).ok_or(Error::BadTag { offset: off })? as usize;
        if size < 8 || off + size > total {
            return Err(Error::BadTag { offset: off });
        }
        let tag = &bytes[off..off + size];
        match kind {
            TAG_END => return Ok(info),
            TAG_CMDLINE => info.set_cmdline(&tag[8..]),
            TAG_MODULE if info.initrd.is_none() => {
                let (start, end) = (u32_at(tag, 8), u32_at(tag, 12));
                if let (Some(start), Some(end)) = (start, end) {
                    if end > start {
                        info.initrd = Some(Module { addr: start.into(), size: u64::from(end - start) });
                    }
                }
            }
            TAG_MMAP => {
                let entry_size = u32_at(tag, 8).unwrap_or(0) as usize;
                if entry_size >= 24 {
                    let mut e = 16;
                    while e + entry_size <= size {
                        if let (Some(addr), Some(len), Some(t)) =
                            (u64_at(tag, e), u64_at(tag, e + 8), u32_at(tag, e + 16))
                        {
                            info.push_region(MemoryRegion { addr, size: len, kind: t });
                        }
                        e += entry_size;
                    }
                }
            }
            TAG_FRAMEBUFFER => info.display = framebuffer(tag),
            TAG_ACPI_OLD | TAG_ACPI_NEW => {
                // The newer tag wins: it may carry the XSDT address.
                if let Some(root) = acpi::parse_rsdp(&tag[8..]) {
                    if kind == TAG_ACPI_NEW || info.rsdp_copy.is_none() {
                        info.rsdp_copy = Some(root);
                    }
                }
            }
            _ => {}
        }
        off += size.next_multiple_of(8);
    }
    Err(Error::NoEnd)
}

fn framebuffer(tag: &[u8]) -> Option<Display> {
    let addr = u64_at(tag, 8)?;
    let pitch = u32_at(tag, 16)?;
    let width = u32_at(tag, 20)?;
    let height = u32_at(tag, 24)?;
    let bpp = *tag.get(28)?;
    match *tag.get(29)? {
        // Direct RGB: field position and mask size for red, green, blue.
        1 => {
            let c = tag.get(32..38)?;
            let format = PixelFormat { red: (c[0], c[1]), green: (c[2], c[3]), blue: (c[4], c[5]) };
            if addr == 0 || width == 0 || height == 0 || !(bpp == 32 || bpp == 24) {
                return None;
            }
            if u64::from(pitch) < u64::from(width) * u64::from(bpp / 8) {
                return None;
            }
            Some(Display::Framebuffer { addr, pitch, width, height, bpp, format })
        }
        2 => Some(Display::Text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    fn tag(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&(8 + body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
    }

    fn finish(mut tags: Vec<u8>) -> Vec<u8> {
        tag(&mut tags, TAG_END, &[]);
        let mut out = Vec::new();
        out.extend_from_slice(&(8 + tags.len() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&tags);
        out
    }

    fn rsdp_v2(xsdt: u64) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(b"RSD PTR ");
        r.push(0);
        r.extend_from_slice(b"BOCHS ");
        r.push(2);
        r.extend_from_slice(&0x1234u32.to_le_bytes());
        r.extend_from_slice(&36u32.to_le_bytes());
        r.extend_from_slice(&xsdt.to_le_bytes());
        r.extend_from_slice(&[0, 0, 0, 0]);
        r[8] = 0u8.wrapping_sub(r[..20].iter().fold(0u8, |a, b| a.wrapping_add(*b)));
        r[32] = 0u8.wrapping_sub(r.iter().fold(0u8, |a, b| a.wrapping_add(*b)));
        r
    }

    /// A structure like GRUB's under UEFI: command line, module, memory map, GOP framebuffer,
    /// both ACPI tags.
    #[test]
    fn reads_what_grub_hands_over() {
        let mut t = Vec::new();
        tag(&mut t, TAG_CMDLINE, b"quiet keel.share=a:/b\0");
        let mut m = Vec::new();
        m.extend_from_slice(&0x20_0000u32.to_le_bytes());
        m.extend_from_slice(&0x28_0000u32.to_le_bytes());
        m.extend_from_slice(b"/boot/extra_files.tar\0");
        tag(&mut t, TAG_MODULE, &m);
        let mut mm = Vec::new();
        mm.extend_from_slice(&24u32.to_le_bytes());
        mm.extend_from_slice(&0u32.to_le_bytes());
        for (a, l, k) in [(0u64, 0x9fc00u64, 1u32), (0x10_0000, 0x1ff0_0000, 1), (0xfffc_0000, 0x4_0000, 2)] {
            mm.extend_from_slice(&a.to_le_bytes());
            mm.extend_from_slice(&l.to_le_bytes());
            mm.extend_from_slice(&k.to_le_bytes());
            mm.extend_from_slice(&0u32.to_le_bytes());
        }
        tag(&mut t, TAG_MMAP, &mm);
        let mut fb = Vec::new();
        fb.extend_from_slice(&0x8000_0000u64.to_le_bytes());
        fb.extend_from_slice(&(1280u32 * 4).to_le_bytes());
        fb.extend_from_slice(&1280u32.to_le_bytes());
        fb.extend_from_slice(&800u32.to_le_bytes());
        fb.extend_from_slice(&[32, 1, 0, 0, 16, 8, 8, 8, 0, 8]);
        tag(&mut t, TAG_FRAMEBUFFER, &fb);
        let mut old = rsdp_v2(0)[..20].to_vec();
        old[15] = 0;
        old[8] =
            0u8.wrapping_sub(old.iter().enumerate().filter(|(i, _)| *i != 8).fold(0u8, |a, (_, b)| a.wrapping_add(*b)));
        tag(&mut t, TAG_ACPI_OLD, &old);
        tag(&mut t, TAG_ACPI_NEW, &rsdp_v2(0x7fe1_0000));
        let info = parse(&finish(t)).unwrap();
        assert_eq!(info.loader, Loader::Multiboot2);
        assert_eq!(info.cmdline(), "quiet keel.share=a:/b");
        assert_eq!(info.initrd, Some(Module { addr: 0x20_0000, size: 0x8_0000 }));
        assert_eq!(info.regions().len(), 3);
        assert_eq!(info.regions()[1], MemoryRegion { addr: 0x10_0000, size: 0x1ff0_0000, kind: 1 });
        let fmt = PixelFormat { red: (16, 8), green: (8, 8), blue: (0, 8) };
        assert_eq!(
            info.display,
            Some(Display::Framebuffer {
                addr: 0x8000_0000,
                pitch: 5120,
                width: 1280,
                height: 800,
                bpp: 32,
                format: fmt
            })
        );
        let root = info.rsdp_copy.unwrap();
        assert_eq!(root.xsdt, Some(0x7fe1_0000));
        assert_eq!(root.rsdt, 0x1234);
    }

    #[test]
    fn text_mode_and_missing_tags() {
        let mut t = Vec::new();
        let mut fb = Vec::new();
        fb.extend_from_slice(&0xb8000u64.to_le_bytes());
        fb.extend_from_slice(&160u32.to_le_bytes());
        fb.extend_from_slice(&80u32.to_le_bytes());
        fb.extend_from_slice(&25u32.to_le_bytes());
        fb.extend_from_slice(&[16, 2, 0, 0]);
        tag(&mut t, TAG_FRAMEBUFFER, &fb);
        let info = parse(&finish(t)).unwrap();
        assert_eq!(info.display, Some(Display::Text));
        assert_eq!(info.cmdline(), "");
        assert!(info.initrd.is_none() && info.rsdp_copy.is_none() && info.regions().is_empty());
    }

    #[test]
    fn damaged_structures_are_refused_not_misread() {
        let mut t = Vec::new();
        tag(&mut t, TAG_CMDLINE, b"x\0");
        let good = finish(t);
        assert!(parse(&good).is_ok());
        assert_eq!(parse(&good[..good.len() - 1]).err(), Some(Error::Truncated));
        assert_eq!(parse(&[1, 0]).err(), Some(Error::Truncated));
        let mut bad = good.clone();
        bad[12..16].copy_from_slice(&4000u32.to_le_bytes());
        assert_eq!(parse(&bad).err(), Some(Error::BadTag { offset: 8 }));
        let mut no_end = good.clone();
        let n = no_end.len();
        no_end[n - 8..n - 4].copy_from_slice(&99u32.to_le_bytes());
        assert_eq!(parse(&no_end).err(), Some(Error::NoEnd));
        // Every prefix length claimed, every byte flipped: never a panic.
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xff;
            let _ = parse(&b);
        }
    }
}
