//! ACPI: finds the RSDP (from the boot loader, or by scanning the BIOS areas) and hands the
//! tables to `keel_boot::acpi`, which parses them. The result is read by the timer (HPET, PM
//! timer), PCI (ECAM), and power-off (`\_S5`, PM1 control or the sleep control register).

use keel_boot::acpi::{self, Acpi, PhysMemory, Root};
use keel_boot::BootInfo;
use spin::Once;

static TABLES: Once<Option<Acpi>> = Once::new();

/// The identity-mapped first 4 GiB, read by copy.
struct Identity;

/// End of what the boot stub identity-maps.
const MAPPED_LIMIT: u64 = 4 << 30;

impl PhysMemory for Identity {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        // The first page is never an ACPI table, and is unmapped after boot.
        let Some(end) = addr.checked_add(buf.len() as u64) else { return false };
        if addr < 4096 || end > MAPPED_LIMIT {
            return false;
        }
        // SAFETY: [addr, end) lies in the boot stub's identity map of the first 4 GiB (checked
        // above); firmware tables are plain memory, read here by volatile-free copy.
        unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, buf.as_mut_ptr(), buf.len()) };
        true
    }
}

/// Reads the tables once, at boot (before the low-memory guard is unmapped).
pub fn init(info: &BootInfo) {
    TABLES.call_once(|| {
        let root: Option<Root> = info
            .rsdp_copy
            .or_else(|| {
                let at = info.rsdp?;
                let mut buf = [0u8; 36];
                Identity.read(at, &mut buf).then(|| acpi::parse_rsdp(&buf)).flatten()
            })
            .or_else(|| acpi::find_rsdp(&Identity).map(|(_, r)| r));
        let Some(root) = root else {
            log::info!("ACPI: no RSDP; using the machine's conventional addresses");
            return None;
        };
        match Acpi::load(&Identity, root) {
            Ok(t) => Some(t),
            Err(e) => {
                log::warn!("ACPI tables unreadable ({e:?}); using the machine's conventional addresses");
                None
            }
        }
    });
}

/// The parsed tables (None on machines without readable ACPI).
pub fn get() -> Option<&'static Acpi> {
    TABLES.get().and_then(|t| t.as_ref())
}
