//! The ACPI tables Keel uses, read through [`PhysMemory`] (the kernel's identity map; a byte
//! array in tests): the RSDP and RSDT/XSDT to find the others, the FADT (power-off registers,
//! PM timer, reset register, DSDT), the MADT (CPUs, I/O APICs, legacy PICs), the HPET, the
//! MCFG (PCIe configuration space) and, in the DSDT's AML, the `\_S5` package that gives the
//! sleep type for power-off. Every table's checksum is verified; a bad one is ignored.

use crate::bytes::{u16_at, u32_at, u64_at};

/// Reads physical memory. Returns false where nothing readable is.
pub trait PhysMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool;
}

/// What the RSDP points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Root {
    pub revision: u8,
    pub rsdt: u32,
    pub xsdt: Option<u64>,
}

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

/// Parses an RSDP (20 bytes for ACPI 1.0, 36 from 2.0 on), checking signature and checksums.
pub fn parse_rsdp(b: &[u8]) -> Option<Root> {
    if b.get(..8)? != b"RSD PTR " || sum(b.get(..20)?) != 0 {
        return None;
    }
    let revision = b[15];
    let rsdt = u32_at(b, 16)?;
    let mut xsdt = None;
    if revision >= 2 {
        let len = u32_at(b, 20)? as usize;
        if let Some(ext) = b.get(..len.max(36)) {
            if sum(ext) == 0 {
                xsdt = u64_at(b, 24).filter(|&a| a != 0);
            }
        }
    }
    Some(Root { revision, rsdt, xsdt })
}

/// Looks for the RSDP where BIOS machines keep it: the first KiB of the EBDA and
/// 0xE0000..0x100000, on 16-byte boundaries.
pub fn find_rsdp(mem: &dyn PhysMemory) -> Option<(u64, Root)> {
    let mut ebda = [0u8; 2];
    let ebda_base = if mem.read(0x40e, &mut ebda) { u64::from(u16::from_le_bytes(ebda)) << 4 } else { 0 };
    let areas = [(ebda_base, ebda_base + 1024), (0xe0000, 0x100000)];
    let mut buf = [0u8; 36];
    for (start, end) in areas {
        if start == 0 {
            continue;
        }
        let mut a = start;
        while a + 20 <= end {
            if mem.read(a, &mut buf[..20]) && &buf[..8] == b"RSD PTR " {
                let full = mem.read(a, &mut buf);
                let len = if full { 36 } else { 20 };
                if let Some(root) = parse_rsdp(&buf[..len]) {
                    return Some((a, root));
                }
            }
            a += 16;
        }
    }
    None
}

/// The address space of a Generic Address Structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    Memory,
    Io,
}

/// A register named by the firmware (Generic Address Structure, or an old-style I/O port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Register {
    pub space: Space,
    pub addr: u64,
    /// Access width in bits (8, 16, 32, 64).
    pub width: u8,
}

fn gas(b: &[u8], off: usize) -> Option<Register> {
    let g = b.get(off..off + 12)?;
    let addr = u64_at(g, 4)?;
    if addr == 0 {
        return None;
    }
    let space = match g[0] {
        0 => Space::Memory,
        1 => Space::Io,
        _ => return None,
    };
    let width = match (g[1], g[3]) {
        (8 | 16 | 32 | 64, _) => g[1],
        (_, 1) => 8,
        (_, 2) => 16,
        (_, 4) => 64,
        _ => 32,
    };
    Some(Register { space, addr, width })
}

fn port(addr: u32, width: u8) -> Option<Register> {
    (addr != 0).then_some(Register { space: Space::Io, addr: addr.into(), width })
}

/// PCIe enhanced configuration space (one MCFG entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ecam {
    pub base: u64,
    pub segment: u16,
    pub start_bus: u8,
    pub end_bus: u8,
}

/// An I/O APIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    pub id: u8,
    pub addr: u64,
    pub gsi_base: u32,
}

/// I/O APICs kept (microvm has two; PCs one to a few).
pub const MAX_IOAPICS: usize = 8;

/// Most CPUs whose local APIC ids are kept (the count goes on past it).
pub const MAX_CPUS: usize = 64;

/// The tables' signatures, kept for `acpi` reports.
pub const MAX_TABLES: usize = 32;

/// What Keel takes from the ACPI tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acpi {
    pub root: Root,
    signatures: [[u8; 4]; MAX_TABLES],
    table_count: usize,
    /// CPUs the MADT lists as enabled or able to come online.
    pub cpus: u32,
    /// Their local APIC ids (xAPIC or x2APIC), in MADT order (the first [`MAX_CPUS`]).
    apic_ids: [u32; MAX_CPUS],
    pub lapic_addr: u64,
    pub ioapics: u32,
    pub first_ioapic: Option<IoApic>,
    io_apics: [Option<IoApic>; MAX_IOAPICS],
    /// The machine has 8259 PICs (MADT PCAT_COMPAT).
    pub legacy_pics: bool,
    /// Hardware-reduced ACPI (no PM1 blocks: sleep through the sleep control register).
    pub hardware_reduced: bool,
    pub pm1a_control: Option<Register>,
    pub pm1b_control: Option<Register>,
    pub sleep_control: Option<Register>,
    /// `\_S5`'s SLP_TYPa and SLP_TYPb.
    pub s5: Option<(u8, u8)>,
    /// The ACPI PM timer (3.579545 MHz) and whether it counts 32 bits (else 24).
    pub pm_timer: Option<(Register, bool)>,
    pub reset: Option<(Register, u8)>,
    /// Where to switch the firmware from legacy to ACPI mode: (SMI command port, ACPI_ENABLE
    /// value). PM1 control only acts in ACPI mode; virtual machines usually start in it.
    pub acpi_enable: Option<(u16, u8)>,
    pub hpet: Option<u64>,
    pub ecam: Option<Ecam>,
    /// The machine has a PS/2 controller (FADT IAPC_BOOT_ARCH, or no FADT word about it).
    pub i8042: bool,
}

/// Why the tables could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The RSDT/XSDT is unreadable or its checksum is wrong.
    BadRoot,
}

/// Reads a whole table's header and verifies its checksum: (signature, length).
fn table_header(mem: &dyn PhysMemory, addr: u64) -> Option<([u8; 4], u32)> {
    let mut h = [0u8; 36];
    if !mem.read(addr, &mut h) {
        return None;
    }
    let len = u32_at(&h, 4)?;
    if !(36..=(16 << 20)).contains(&len) {
        return None;
    }
    let mut total = 0u8;
    let mut chunk = [0u8; 256];
    let mut off = 0u64;
    while off < u64::from(len) {
        let n = (u64::from(len) - off).min(256) as usize;
        if !mem.read(addr + off, &mut chunk[..n]) {
            return None;
        }
        total = total.wrapping_add(sum(&chunk[..n]));
        off += n as u64;
    }
    (total == 0).then(|| ([h[0], h[1], h[2], h[3]], len))
}

/// Reads up to `N` bytes of a table (the fixed part Keel parses).
fn table_bytes<const N: usize>(mem: &dyn PhysMemory, addr: u64, len: u32) -> ([u8; N], usize) {
    let mut out = [0u8; N];
    let n = (len as usize).min(N);
    if !mem.read(addr, &mut out[..n]) {
        return (out, 0);
    }
    (out, n)
}

impl Acpi {
    /// Walks the RSDT (or XSDT) and the tables Keel uses.
    pub fn load(mem: &dyn PhysMemory, root: Root) -> Result<Acpi, Error> {
        let (sdt, entry) = match root.xsdt {
            Some(x) => (x, 8usize),
            None => (u64::from(root.rsdt), 4usize),
        };
        let (_, sdt_len) = table_header(mem, sdt).ok_or(Error::BadRoot)?;
        let mut acpi = Acpi {
            root,
            signatures: [[0; 4]; MAX_TABLES],
            table_count: 0,
            cpus: 0,
            apic_ids: [0; MAX_CPUS],
            lapic_addr: 0xfee0_0000,
            ioapics: 0,
            first_ioapic: None,
            io_apics: [None; MAX_IOAPICS],
            legacy_pics: false,
            hardware_reduced: false,
            pm1a_control: None,
            pm1b_control: None,
            sleep_control: None,
            s5: None,
            pm_timer: None,
            reset: None,
            acpi_enable: None,
            hpet: None,
            ecam: None,
            i8042: true,
        };
        let count = (sdt_len as usize - 36) / entry;
        for i in 0..count {
            let mut e = [0u8; 8];
            if !mem.read(sdt + 36 + (i * entry) as u64, &mut e[..entry]) {
                continue;
            }
            let addr = u64::from_le_bytes(e);
            let Some((sig, len)) = table_header(mem, addr) else { continue };
            if acpi.table_count < MAX_TABLES {
                acpi.signatures[acpi.table_count] = sig;
                acpi.table_count += 1;
            }
            match &sig {
                b"FACP" => acpi.fadt(mem, addr, len),
                b"APIC" => acpi.madt(mem, addr, len),
                b"HPET" => {
                    let (t, n) = table_bytes::<56>(mem, addr, len);
                    acpi.hpet = gas(&t[..n], 40).filter(|r| r.space == Space::Memory).map(|r| r.addr);
                }
                b"MCFG" => {
                    let (t, n) = table_bytes::<60>(mem, addr, len);
                    acpi.ecam = (n >= 60).then(|| Ecam {
                        base: u64_at(&t, 44).unwrap_or(0),
                        segment: u16_at(&t, 52).unwrap_or(0),
                        start_bus: t[54],
                        end_bus: t[55],
                    });
                    acpi.ecam = acpi.ecam.filter(|e| e.base != 0 && e.segment == 0 && e.end_bus >= e.start_bus);
                }
                _ => {}
            }
        }
        Ok(acpi)
    }

    /// The signatures of the tables found, in the order the root lists them.
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.signatures[..self.table_count].iter().map(|s| core::str::from_utf8(s).unwrap_or("????"))
    }

    fn fadt(&mut self, mem: &dyn PhysMemory, addr: u64, len: u32) {
        let (t, n) = table_bytes::<276>(mem, addr, len);
        let t = &t[..n];
        let flags = u32_at(t, 112).unwrap_or(0);
        self.hardware_reduced = flags & (1 << 20) != 0;
        let boot_arch = u16_at(t, 109).unwrap_or(0);
        // Revision 1 FADTs have no IAPC_BOOT_ARCH: assume a PC with a keyboard controller.
        if t.get(8).copied().unwrap_or(1) >= 3 {
            self.i8042 = boot_arch & 2 != 0;
        }
        self.pm1a_control = gas(t, 172).or_else(|| port(u32_at(t, 64).unwrap_or(0), 16));
        self.pm1b_control = gas(t, 184).or_else(|| port(u32_at(t, 68).unwrap_or(0), 16));
        self.sleep_control = gas(t, 244);
        let timer_len = t.get(91).copied().unwrap_or(0);
        let timer = gas(t, 208).or_else(|| port(u32_at(t, 76).unwrap_or(0), 32));
        if timer_len >= 4 {
            self.pm_timer = timer.map(|r| (r, flags & (1 << 8) != 0));
        }
        let smi_command = u32_at(t, 48).unwrap_or(0);
        let enable = t.get(52).copied().unwrap_or(0);
        if smi_command != 0 && smi_command <= 0xffff && enable != 0 && !self.hardware_reduced {
            self.acpi_enable = Some((smi_command as u16, enable));
        }
        if flags & (1 << 10) != 0 {
            self.reset = gas(t, 116).map(|r| (r, t.get(128).copied().unwrap_or(0)));
        }
        let dsdt = u64_at(t, 140).filter(|&a| a != 0).or_else(|| u32_at(t, 40).map(u64::from));
        if let Some(dsdt) = dsdt.filter(|&a| a != 0) {
            if let Some((sig, len)) = table_header(mem, dsdt) {
                if &sig == b"DSDT" {
                    self.s5 = find_s5(mem, dsdt, len);
                }
            }
        }
    }

    /// A CPU the MADT lists (enabled, or able to come online).
    fn add_cpu(&mut self, apic_id: u32) {
        if let Some(slot) = self.apic_ids.get_mut(self.cpus as usize) {
            *slot = apic_id;
        }
        self.cpus += 1;
    }

    /// The local APIC ids of the CPUs (the first [`MAX_CPUS`]), for bringing them up.
    pub fn apic_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.apic_ids.iter().take((self.cpus as usize).min(MAX_CPUS)).copied()
    }

    fn madt(&mut self, mem: &dyn PhysMemory, addr: u64, len: u32) {
        let mut head = [0u8; 44];
        if !mem.read(addr, &mut head) {
            return;
        }
        self.lapic_addr = u32_at(&head, 36).map(u64::from).unwrap_or(self.lapic_addr);
        self.legacy_pics = u32_at(&head, 40).unwrap_or(0) & 1 != 0;
        let mut off = 44u64;
        let mut e = [0u8; 16];
        while off + 2 <= u64::from(len) {
            if !mem.read(addr + off, &mut e[..2]) {
                return;
            }
            let (kind, elen) = (e[0], e[1] as u64);
            if elen < 2 || off + elen > u64::from(len) {
                return;
            }
            let n = (elen as usize).min(16);
            if !mem.read(addr + off, &mut e[..n]) {
                return;
            }
            match kind {
                0 if n >= 8 && u32_at(&e, 4).unwrap_or(0) & 3 != 0 => self.add_cpu(u32::from(e[3])),
                9 if n >= 16 && u32_at(&e, 8).unwrap_or(0) & 3 != 0 => self.add_cpu(u32_at(&e, 4).unwrap_or(0)),
                1 if n >= 12 => {
                    let io = IoApic {
                        id: e[2],
                        addr: u32_at(&e, 4).unwrap_or(0).into(),
                        gsi_base: u32_at(&e, 8).unwrap_or(0),
                    };
                    if let Some(slot) = self.io_apics.get_mut(self.ioapics as usize) {
                        *slot = Some(io);
                    }
                    self.ioapics += 1;
                    if self.first_ioapic.is_none() {
                        self.first_ioapic = Some(io);
                    }
                }
                5 if n >= 12 => self.lapic_addr = u64_at(&e, 4).unwrap_or(self.lapic_addr),
                _ => {}
            }
            off += elen;
        }
    }

    /// The I/O APICs the MADT lists.
    pub fn io_apics(&self) -> impl Iterator<Item = IoApic> + '_ {
        self.io_apics.iter().flatten().copied()
    }

    /// The value to write to PM1a/PM1b control for S5, with SLP_EN: (a, b).
    pub fn s5_pm1_values(&self) -> Option<(u16, u16)> {
        let (a, b) = self.s5?;
        let v = |t: u8| (u16::from(t & 7) << 10) | (1 << 13);
        Some((v(a), v(b)))
    }

    /// The value to write to the sleep control register for S5 (hardware-reduced ACPI).
    pub fn s5_sleep_control_value(&self) -> Option<u8> {
        let (a, _) = self.s5?;
        Some(((a & 7) << 2) | (1 << 5))
    }
}

/// Finds `Name(_S5, Package() {a, b, ...})` in AML and returns its first two integers.
fn find_s5(mem: &dyn PhysMemory, addr: u64, len: u32) -> Option<(u8, u8)> {
    const WINDOW: usize = 4096;
    const OVERLAP: usize = 32;
    let mut buf = [0u8; WINDOW + OVERLAP];
    let mut off = 36u64;
    while off < u64::from(len) {
        let n = (u64::from(len) - off).min((WINDOW + OVERLAP) as u64) as usize;
        if !mem.read(addr + off, &mut buf[..n]) {
            return None;
        }
        if let Some(found) = s5_in(&buf[..n]) {
            return Some(found);
        }
        off += WINDOW as u64;
    }
    None
}

/// The `\_S5` package in a slice of AML.
pub fn s5_in(aml: &[u8]) -> Option<(u8, u8)> {
    let mut i = 0;
    while i + 4 <= aml.len() {
        if &aml[i..i + 4] == b"_S5_" {
            let named = (i >= 1 && aml[i - 1] == 0x08) || (i >= 2 && aml[i - 1] == b'\\' && aml[i - 2] == 0x08);
            if named {
                if let Some(v) = s5_package(&aml[i + 4..]) {
                    return Some(v);
                }
            }
        }
        i += 1;
    }
    None
}

fn s5_package(p: &[u8]) -> Option<(u8, u8)> {
    if *p.first()? != 0x12 {
        return None;
    }
    // PkgLength: the lead byte's top two bits count the bytes that follow it.
    let lead = *p.get(1)?;
    let mut j = 2 + usize::from(lead >> 6);
    let elements = *p.get(j)?;
    j += 1;
    if elements < 1 {
        return None;
    }
    let int = |j: &mut usize| -> Option<u8> {
        let op = *p.get(*j)?;
        match op {
            0x0a => {
                *j += 2;
                p.get(*j - 1).copied()
            }
            0x00 | 0x01 => {
                *j += 1;
                Some(op)
            }
            0x0b | 0x0c | 0x0e => {
                let v = *p.get(*j + 1)?;
                *j += match op {
                    0x0b => 3,
                    0x0c => 5,
                    _ => 9,
                };
                Some(v)
            }
            _ => None,
        }
    };
    let a = int(&mut j)?;
    let b = if elements >= 2 { int(&mut j).unwrap_or(0) } else { 0 };
    Some((a, b))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    /// Physical memory as a sparse list of (address, bytes).
    struct Mem(Vec<(u64, Vec<u8>)>);

    impl PhysMemory for Mem {
        fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
            for (base, bytes) in &self.0 {
                if addr >= *base && addr + buf.len() as u64 <= base + bytes.len() as u64 {
                    let o = (addr - base) as usize;
                    buf.copy_from_slice(&bytes[o..o + buf.len()]);
                    return true;
                }
            }
            false
        }
    }

    fn table(sig: &[u8; 4], rev: u8, body: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(sig);
        t.extend_from_slice(&(36 + body.len() as u32).to_le_bytes());
        t.push(rev);
        t.push(0);
        t.extend_from_slice(b"KEELTS");
        t.extend_from_slice(b"TESTTABL");
        t.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        t.extend_from_slice(body);
        t[9] = 0u8.wrapping_sub(sum(&t));
        t
    }

    fn gas_bytes(space: u8, width: u8, addr: u64) -> Vec<u8> {
        let mut g = std::vec![space, width, 0, 0];
        g.extend_from_slice(&addr.to_le_bytes());
        g
    }

    /// A q35-like machine: RSDP in the BIOS area, RSDT with FADT (PM1a 0x604, PM timer 0x608),
    /// MADT (2 CPUs, one disabled, an I/O APIC), HPET, MCFG; the DSDT has `\_S5` = {0, 0}.
    fn q35_like() -> Mem {
        let dsdt_body: Vec<u8> = [
            &[0x10, 0x05, b'\\', b'_', b'S', b'B'][..],
            b"\x08_S5_\x12\x06\x04\x0a\x05\x00\x00\x00",
            b"\x08_S4_\x12\x04\x01\x0a\x07",
        ]
        .concat();
        let dsdt = table(b"DSDT", 1, &dsdt_body);
        let mut fadt_body = std::vec![0u8; 244 - 36];
        let put = |b: &mut Vec<u8>, off: usize, v: &[u8]| b[off - 36..off - 36 + v.len()].copy_from_slice(v);
        put(&mut fadt_body, 40, &0x2000u32.to_le_bytes());
        put(&mut fadt_body, 48, &0xb2u32.to_le_bytes());
        put(&mut fadt_body, 52, &[0xf1]);
        put(&mut fadt_body, 64, &0x604u32.to_le_bytes());
        put(&mut fadt_body, 76, &0x608u32.to_le_bytes());
        put(&mut fadt_body, 91, &[4]);
        put(&mut fadt_body, 109, &2u16.to_le_bytes());
        put(&mut fadt_body, 112, &((1u32 << 8) | (1 << 10)).to_le_bytes());
        put(&mut fadt_body, 116, &gas_bytes(1, 8, 0xcf9));
        put(&mut fadt_body, 128, &[6]);
        let fadt = table(b"FACP", 3, &fadt_body);
        let mut madt_body = Vec::new();
        madt_body.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
        madt_body.extend_from_slice(&1u32.to_le_bytes());
        madt_body.extend_from_slice(&[0, 8, 0, 0, 1, 0, 0, 0]);
        madt_body.extend_from_slice(&[0, 8, 1, 1, 0, 0, 0, 0]);
        madt_body.extend_from_slice(&[0, 8, 2, 2, 1, 0, 0, 0]);
        madt_body.extend_from_slice(&[1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0]);
        madt_body.extend_from_slice(&[2, 10, 0, 0, 2, 0, 0, 0, 0, 0]);
        let madt = table(b"APIC", 1, &madt_body);
        let mut hpet_body = std::vec![0x01, 0xa2, 0x86, 0x80];
        hpet_body.extend_from_slice(&gas_bytes(0, 64, 0xfed0_0000));
        hpet_body.extend_from_slice(&[0, 0, 0, 0]);
        let hpet = table(b"HPET", 1, &hpet_body);
        let mut mcfg_body = std::vec![0u8; 8];
        mcfg_body.extend_from_slice(&0xb000_0000u64.to_le_bytes());
        mcfg_body.extend_from_slice(&[0, 0, 0, 0xff, 0, 0, 0, 0]);
        let mcfg = table(b"MCFG", 1, &mcfg_body);
        let mut rsdt_body = Vec::new();
        for a in [0x1000u32, 0x3000, 0x4000, 0x5000] {
            rsdt_body.extend_from_slice(&a.to_le_bytes());
        }
        let rsdt = table(b"RSDT", 1, &rsdt_body);
        let mut rsdp = Vec::new();
        rsdp.extend_from_slice(b"RSD PTR ");
        rsdp.push(0);
        rsdp.extend_from_slice(b"BOCHS ");
        rsdp.push(0);
        rsdp.extend_from_slice(&0x6000u32.to_le_bytes());
        rsdp[8] = 0u8.wrapping_sub(sum(&rsdp));
        let mut bios = std::vec![0u8; 0x20000];
        bios[0xf5a0..0xf5a0 + 20].copy_from_slice(&rsdp);
        Mem(std::vec![
            (0x400, std::vec![0u8; 32]),
            (0xe0000, bios),
            (0x1000, fadt),
            (0x2000, dsdt),
            (0x3000, madt),
            (0x4000, hpet),
            (0x5000, mcfg),
            (0x6000, rsdt),
        ])
    }

    #[test]
    fn finds_what_a_q35_machine_describes() {
        let mem = q35_like();
        let (at, root) = find_rsdp(&mem).unwrap();
        assert_eq!(at, 0xef5a0);
        assert_eq!(root, Root { revision: 0, rsdt: 0x6000, xsdt: None });
        let acpi = Acpi::load(&mem, root).unwrap();
        assert_eq!(acpi.tables().collect::<Vec<_>>(), ["FACP", "APIC", "HPET", "MCFG"]);
        assert_eq!(acpi.cpus, 2);
        // The disabled CPU (APIC id 1) is left out.
        assert_eq!(acpi.apic_ids().collect::<Vec<_>>(), [0, 2]);
        assert!(acpi.legacy_pics && !acpi.hardware_reduced && acpi.i8042);
        assert_eq!(acpi.ioapics, 1);
        assert_eq!(acpi.first_ioapic, Some(IoApic { id: 0, addr: 0xfec0_0000, gsi_base: 0 }));
        assert_eq!(acpi.io_apics().collect::<Vec<_>>(), [IoApic { id: 0, addr: 0xfec0_0000, gsi_base: 0 }]);
        assert_eq!(acpi.pm1a_control, Some(Register { space: Space::Io, addr: 0x604, width: 16 }));
        assert_eq!(acpi.s5, Some((5, 0)));
        assert_eq!(acpi.s5_pm1_values(), Some(((5 << 10) | (1 << 13), 1 << 13)));
        assert_eq!(acpi.pm_timer.map(|(r, wide)| (r.addr, wide)), Some((0x608, true)));
        assert_eq!(acpi.reset, Some((Register { space: Space::Io, addr: 0xcf9, width: 8 }, 6)));
        assert_eq!(acpi.hpet, Some(0xfed0_0000));
        assert_eq!(acpi.acpi_enable, Some((0xb2, 0xf1)));
        assert_eq!(acpi.ecam, Some(Ecam { base: 0xb000_0000, segment: 0, start_bus: 0, end_bus: 0xff }));
    }

    #[test]
    fn a_bad_checksum_hides_the_table() {
        let mut mem = q35_like();
        // Corrupt the MADT: its CPUs and I/O APIC must not be believed.
        mem.0[4].1[50] ^= 0x55;
        let (_, root) = find_rsdp(&mem).unwrap();
        let acpi = Acpi::load(&mem, root).unwrap();
        assert_eq!(acpi.cpus, 0);
        assert!(acpi.first_ioapic.is_none());
        assert_eq!(acpi.tables().count(), 3);
        // A corrupt root: an error, not a guess.
        mem.0[7].1[40] ^= 1;
        assert_eq!(Acpi::load(&mem, root), Err(Error::BadRoot));
    }

    #[test]
    fn x2apic_entries_and_many_cpus() {
        // A MADT with 70 xAPIC CPUs (ids 0..70) and one x2APIC CPU (id 300): all counted, the
        // first MAX_CPUS ids kept.
        let mut madt_body = Vec::new();
        madt_body.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
        madt_body.extend_from_slice(&0u32.to_le_bytes());
        for id in 0..70u8 {
            madt_body.extend_from_slice(&[0, 8, id, id, 1, 0, 0, 0]);
        }
        let mut x2 = std::vec![9u8, 16, 0, 0];
        x2.extend_from_slice(&300u32.to_le_bytes());
        x2.extend_from_slice(&1u32.to_le_bytes());
        x2.extend_from_slice(&70u32.to_le_bytes());
        madt_body.extend_from_slice(&x2);
        let madt = table(b"APIC", 1, &madt_body);
        let rsdt = table(b"RSDT", 1, &0x3000u32.to_le_bytes());
        let mem = Mem(std::vec![(0x3000, madt), (0x6000, rsdt)]);
        let acpi = Acpi::load(&mem, Root { revision: 0, rsdt: 0x6000, xsdt: None }).unwrap();
        assert_eq!(acpi.cpus, 71);
        let ids: Vec<u32> = acpi.apic_ids().collect();
        assert_eq!(ids.len(), MAX_CPUS);
        assert_eq!(ids[..3], [0, 1, 2]);
        // With fewer than MAX_CPUS the x2APIC id is there.
        let mut small = Vec::new();
        small.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
        small.extend_from_slice(&0u32.to_le_bytes());
        small.extend_from_slice(&[0, 8, 0, 0, 1, 0, 0, 0]);
        small.extend_from_slice(&x2);
        let mem =
            Mem(std::vec![(0x3000, table(b"APIC", 1, &small)), (0x6000, table(b"RSDT", 1, &0x3000u32.to_le_bytes()))]);
        let acpi = Acpi::load(&mem, Root { revision: 0, rsdt: 0x6000, xsdt: None }).unwrap();
        assert_eq!(acpi.apic_ids().collect::<Vec<_>>(), [0, 300]);
    }

    #[test]
    fn no_rsdp_where_there_is_none() {
        let mem = Mem(std::vec![(0xe0000, std::vec![0u8; 0x20000])]);
        assert!(find_rsdp(&mem).is_none());
    }

    #[test]
    fn s5_forms() {
        // Zero/One opcodes, byte prefixes, a root-prefixed name, and non-matches.
        assert_eq!(s5_in(b"\x08_S5_\x12\x05\x02\x00\x01"), Some((0, 1)));
        assert_eq!(s5_in(b"\x08\\_S5_\x12\x06\x02\x0a\x07\x0a\x07"), Some((7, 7)));
        assert_eq!(s5_in(b"\x08_S5_\x12\x40\x06\x02\x0a\x03\x00"), Some((3, 0)));
        assert_eq!(s5_in(b"_S5_\x12\x05\x02\x00\x01"), None);
        assert_eq!(s5_in(b"\x08_S5_\x13\x05\x02\x00\x01"), None);
        assert_eq!(s5_in(b"\x08_S5_\x12"), None);
        for n in 0..12 {
            let _ = s5_in(&b"\x08_S5_\x12\x06\x02\x0a\x07\x0a\x07"[..n]);
        }
    }

    #[test]
    fn hardware_reduced_sleep_register() {
        let mut body = std::vec![0u8; 268 - 36];
        body[112 - 36..116 - 36].copy_from_slice(&(1u32 << 20).to_le_bytes());
        body[244 - 36..256 - 36].copy_from_slice(&gas_bytes(0, 8, 0xfea0_0200));
        let fadt = table(b"FACP", 5, &body);
        let mut xsdt_body = Vec::new();
        xsdt_body.extend_from_slice(&0x1000u64.to_le_bytes());
        let xsdt = table(b"XSDT", 1, &xsdt_body);
        let mem = Mem(std::vec![(0x1000, fadt), (0x2000, xsdt)]);
        let acpi = Acpi::load(&mem, Root { revision: 2, rsdt: 0, xsdt: Some(0x2000) }).unwrap();
        assert!(acpi.hardware_reduced);
        assert_eq!(acpi.sleep_control, Some(Register { space: Space::Memory, addr: 0xfea0_0200, width: 8 }));
        assert!(acpi.pm1a_control.is_none());
        // No DSDT, so no \_S5: the caller uses S5's conventional type 5 on such machines.
        assert_eq!(acpi.s5, None);
    }
}
