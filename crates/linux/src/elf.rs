//! x86_64 ELF executables: the header and program headers, checked, into a load plan. Only what
//! loading needs is read (no sections, no symbols); every offset and size is bounds-checked, so a
//! hostile file is an error, never a panic.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::abi::{PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::{page_down, page_up, PAGE};

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PT_GNU_STACK: u32 = 0x6474_e551;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;
/// The largest span of memory an image may ask for (1 GiB).
pub const MAX_SPAN: u64 = 1 << 30;
/// The most program headers read.
const MAX_PHDRS: usize = 256;

/// Why a file cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// No ELF magic: not an executable Keel knows (maybe a script or a WASM module).
    NotElf,
    /// An ELF for another class, byte order or machine.
    WrongMachine(&'static str),
    /// Neither an executable nor a position-independent executable (e.g. a `.o` or a library).
    NotExecutable(u16),
    /// Dynamically linked: names the interpreter it asks for.
    NeedsInterpreter(String),
    /// A header or segment lies outside the file or is inconsistent.
    Malformed(&'static str),
    /// The image asks for more than [`MAX_SPAN`] of memory.
    TooBig(u64),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::NotElf => f.write_str("not an ELF executable"),
            ElfError::WrongMachine(what) => write!(f, "not an x86_64 Linux executable ({what})"),
            ElfError::NotExecutable(t) => write!(f, "not an executable (ELF type {t})"),
            ElfError::NeedsInterpreter(i) => {
                write!(f, "not supported: needs an interpreter ({i}); link it statically (musl: static PIE)")
            }
            ElfError::Malformed(what) => write!(f, "malformed ELF: {what}"),
            ElfError::TooBig(n) => write!(f, "image too large ({} MiB)", n >> 20),
        }
    }
}

/// One `PT_LOAD` segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Where it goes (relative to the load base for a PIE).
    pub vaddr: u64,
    pub memsz: u64,
    /// Where its bytes are in the file.
    pub offset: u64,
    pub filesz: u64,
    /// `PROT_*` bits.
    pub prot: u64,
}

/// A checked executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Position-independent: may go anywhere (`ET_DYN`).
    pub pie: bool,
    pub entry: u64,
    pub segments: Vec<Segment>,
    /// Where the program headers are in memory (relative, like `vaddr`), for `AT_PHDR`.
    pub phdr: u64,
    pub phnum: u64,
    pub phent: u64,
    /// Page-aligned lowest and end address of all segments.
    pub low: u64,
    pub high: u64,
}

fn u16_at(d: &[u8], off: usize) -> Result<u16, ElfError> {
    d.get(off..off + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or(ElfError::Malformed("header truncated"))
}

fn u32_at(d: &[u8], off: usize) -> Result<u32, ElfError> {
    d.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(ElfError::Malformed("header truncated"))
}

fn u64_at(d: &[u8], off: usize) -> Result<u64, ElfError> {
    d.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or(ElfError::Malformed("header truncated"))
}

/// Quick check: does `data` start like an ELF file?
pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
}

/// Reads and checks an executable.
pub fn parse(data: &[u8]) -> Result<Image, ElfError> {
    if !is_elf(data) {
        return Err(ElfError::NotElf);
    }
    if data.len() < 64 {
        return Err(ElfError::Malformed("header truncated"));
    }
    if data[4] != 2 {
        return Err(ElfError::WrongMachine("32-bit"));
    }
    if data[5] != 1 {
        return Err(ElfError::WrongMachine("big-endian"));
    }
    let etype = u16_at(data, 16)?;
    if u16_at(data, 18)? != EM_X86_64 {
        return Err(ElfError::WrongMachine("another architecture"));
    }
    if etype != ET_EXEC && etype != ET_DYN {
        return Err(ElfError::NotExecutable(etype));
    }
    let entry = u64_at(data, 24)?;
    let phoff = u64_at(data, 32)?;
    let phent = u16_at(data, 54)? as usize;
    let phnum = u16_at(data, 56)? as usize;
    if phent < 56 || phnum == 0 || phnum > MAX_PHDRS {
        return Err(ElfError::Malformed("program headers"));
    }
    let table_end = (phoff as usize)
        .checked_add(phent * phnum)
        .filter(|e| *e <= data.len() && phoff <= data.len() as u64)
        .ok_or(ElfError::Malformed("program headers outside the file"))?;
    let _ = table_end;
    let mut segments = Vec::new();
    let mut phdr = None;
    let mut dynamic = false;
    for i in 0..phnum {
        let h = phoff as usize + i * phent;
        let ptype = u32_at(data, h)?;
        let flags = u32_at(data, h + 4)?;
        let offset = u64_at(data, h + 8)?;
        let vaddr = u64_at(data, h + 16)?;
        let filesz = u64_at(data, h + 32)?;
        let memsz = u64_at(data, h + 40)?;
        match ptype {
            PT_INTERP => {
                let bytes = offset
                    .checked_add(filesz)
                    .filter(|e| *e <= data.len() as u64)
                    .and_then(|e| data.get(offset as usize..e as usize))
                    .ok_or(ElfError::Malformed("interpreter name outside the file"))?;
                let name = bytes.split(|b| *b == 0).next().unwrap_or(&[]);
                return Err(ElfError::NeedsInterpreter(String::from_utf8_lossy(name).into()));
            }
            PT_PHDR => phdr = Some(vaddr),
            PT_DYNAMIC => dynamic = true,
            PT_LOAD => {
                if filesz > memsz {
                    return Err(ElfError::Malformed("segment larger in the file than in memory"));
                }
                if offset.checked_add(filesz).is_none_or(|e| e > data.len() as u64) {
                    return Err(ElfError::Malformed("segment outside the file"));
                }
                if vaddr % PAGE != offset % PAGE {
                    return Err(ElfError::Malformed("segment not aligned with its file offset"));
                }
                if memsz == 0 {
                    continue;
                }
                let mut prot = 0;
                if flags & 4 != 0 {
                    prot |= PROT_READ;
                }
                if flags & 2 != 0 {
                    prot |= PROT_WRITE;
                }
                if flags & 1 != 0 {
                    prot |= PROT_EXEC;
                }
                segments.push(Segment { vaddr, memsz, offset, filesz, prot });
            }
            PT_GNU_STACK => {}
            _ => {}
        }
    }
    let _ = dynamic;
    if segments.is_empty() {
        return Err(ElfError::Malformed("no loadable segment"));
    }
    let mut low = u64::MAX;
    let mut high = 0u64;
    for s in &segments {
        let end = s.vaddr.checked_add(s.memsz).and_then(page_up).ok_or(ElfError::Malformed("segment wraps"))?;
        low = low.min(page_down(s.vaddr));
        high = high.max(end);
    }
    if high - low > MAX_SPAN {
        return Err(ElfError::TooBig(high - low));
    }
    // Segments must not overlap page-wise except where one ends and the next starts in a page.
    let mut sorted = segments.clone();
    sorted.sort_by_key(|s| s.vaddr);
    for w in sorted.windows(2) {
        if w[0].vaddr + w[0].memsz > w[1].vaddr {
            return Err(ElfError::Malformed("segments overlap"));
        }
    }
    if entry < low || entry >= high {
        return Err(ElfError::Malformed("entry point outside the image"));
    }
    // Where the headers are in memory: PT_PHDR, else the segment that holds them in the file.
    let phdr = match phdr {
        Some(p) => p,
        None => segments
            .iter()
            .find(|s| phoff >= s.offset && phoff < s.offset + s.filesz)
            .map(|s| s.vaddr + (phoff - s.offset))
            .unwrap_or(0),
    };
    Ok(Image { pie: etype == ET_DYN, entry, segments, phdr, phnum: phnum as u64, phent: phent as u64, low, high })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec;

    /// A small PIE: one RX segment at 0 (file 0..0x200), one RW segment at 0x1200 (file
    /// 0x200..0x300, memory 0x400).
    pub fn tiny_pie() -> Vec<u8> {
        let mut d = vec![0u8; 0x300];
        d[0..4].copy_from_slice(b"\x7fELF");
        d[4] = 2;
        d[5] = 1;
        d[6] = 1;
        d[16..18].copy_from_slice(&ET_DYN.to_le_bytes());
        d[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        d[24..32].copy_from_slice(&0x100u64.to_le_bytes());
        d[32..40].copy_from_slice(&64u64.to_le_bytes());
        d[54..56].copy_from_slice(&56u16.to_le_bytes());
        d[56..58].copy_from_slice(&2u16.to_le_bytes());
        let ph = |d: &mut [u8], i: usize, flags: u32, off: u64, va: u64, fs: u64, ms: u64| {
            let h = 64 + i * 56;
            d[h..h + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
            d[h + 4..h + 8].copy_from_slice(&flags.to_le_bytes());
            d[h + 8..h + 16].copy_from_slice(&off.to_le_bytes());
            d[h + 16..h + 24].copy_from_slice(&va.to_le_bytes());
            d[h + 32..h + 40].copy_from_slice(&fs.to_le_bytes());
            d[h + 40..h + 48].copy_from_slice(&ms.to_le_bytes());
        };
        ph(&mut d, 0, 5, 0, 0, 0x200, 0x200);
        ph(&mut d, 1, 6, 0x200, 0x1200, 0x100, 0x400);
        for (i, b) in d[0x200..0x300].iter_mut().enumerate() {
            *b = i as u8;
        }
        d
    }

    #[test]
    fn reads_a_pie() {
        let img = parse(&tiny_pie()).unwrap();
        assert!(img.pie);
        assert_eq!(img.entry, 0x100);
        assert_eq!(img.segments.len(), 2);
        assert_eq!(img.segments[0].prot, PROT_READ | PROT_EXEC);
        assert_eq!(img.segments[1].prot, PROT_READ | PROT_WRITE);
        assert_eq!((img.low, img.high), (0, 0x2000));
        assert_eq!(img.phdr, 64);
    }

    #[test]
    fn refuses_what_it_cannot_load() {
        assert_eq!(parse(b"\0asm\x01\0\0\0"), Err(ElfError::NotElf));
        let mut d = tiny_pie();
        d[4] = 1;
        assert!(matches!(parse(&d), Err(ElfError::WrongMachine(_))));
        let mut d = tiny_pie();
        d[16] = 1;
        assert_eq!(parse(&d), Err(ElfError::NotExecutable(1)));
        // An interpreter request, named.
        let mut d = tiny_pie();
        d[64..68].copy_from_slice(&PT_INTERP.to_le_bytes());
        d[64 + 8..64 + 16].copy_from_slice(&0x280u64.to_le_bytes());
        d[64 + 32..64 + 40].copy_from_slice(&12u64.to_le_bytes());
        d[0x280..0x28c].copy_from_slice(b"/lib/ld.so\0\0");
        match parse(&d) {
            Err(ElfError::NeedsInterpreter(n)) => assert_eq!(n, "/lib/ld.so"),
            other => panic!("{other:?}"),
        }
        // A segment past the end of the file.
        let mut d = tiny_pie();
        d[120 + 32..120 + 40].copy_from_slice(&0x1000u64.to_le_bytes());
        d[120 + 40..120 + 48].copy_from_slice(&0x1000u64.to_le_bytes());
        assert!(matches!(parse(&d), Err(ElfError::Malformed(_))));
    }

    proptest::proptest! {
        #[test]
        fn damaged_headers_never_panic(pos in 0usize..0x200, byte in 0u8..=255, pos2 in 0usize..0x200, byte2 in 0u8..=255) {
            let mut d = tiny_pie();
            d[pos] = byte;
            d[pos2] = byte2;
            let _ = parse(&d);
            let _ = parse(&d[..pos]);
        }
    }
}
