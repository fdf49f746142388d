//! virtio devices, wherever the machine puts them: over MMIO as announced on the command line
//! (`virtio_mmio.device=`, the way Firecracker, Cloud Hypervisor and QEMU's microvm tell a
//! kernel), in microvm's fixed transport window when nothing is announced, and over PCI
//! (q35, real machines). 9P devices become shared host folders in the VFS.

use alloc::string::String;
use alloc::vec::Vec;
use core::ptr::NonNull;

use keel_9p::{P9Error, P9Fs, Transport as P9Transport};
use virtio_drivers::device::virtio_9p::VirtIO9p;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, SomeTransport, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};
use x86_64::instructions::interrupts;

use crate::arch::cpu::IrqSource;
use crate::mm::memory::FRAMES;

/// microvm's virtio-mmio window: 24 transports of 512 bytes.
const MMIO_BASE: u64 = 0xfeb0_0000;
const MMIO_SIZE: usize = 0x200;
const MMIO_SLOTS: u64 = 24;

/// DMA through the identity map: physical and virtual addresses are the same.
pub struct KeelHal;

// SAFETY: dma_alloc returns fresh, zeroed, identity-mapped pages owned by the device until
// dma_dealloc; share returns the physical address of memory that stays valid while shared (the
// caller's buffer: identity-mapped heap, or a task stack whose frames are contiguous); MMIO
// regions are identity-mapped.
unsafe impl Hal for KeelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let first = interrupts::without_interrupts(|| FRAMES.lock().allocate(pages as u64, 1));
        match first {
            Ok(page) => {
                let addr = page * 4096;
                // SAFETY: the pages were just allocated and are identity-mapped.
                unsafe { core::ptr::write_bytes(addr as *mut u8, 0, pages * 4096) };
                (addr, NonNull::new(addr as *mut u8).unwrap_or(NonNull::dangling()))
            }
            Err(_) => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        let r = interrupts::without_interrupts(|| FRAMES.lock().free(paddr / 4096, pages as u64));
        if r.is_ok() {
            0
        } else {
            -1
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        // Device memory above the boot identity map (64-bit BARs under UEFI) is mapped first.
        if !crate::mm::memory::map_mmio(paddr, size as u64) {
            log::error!("cannot map device memory at {paddr:#x}");
        }
        NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        // Heap buffers are identity-mapped; a driver's request header on a task stack is not
        // (virtio-drivers' blocking calls keep theirs there).
        let virt = buffer.as_ptr() as *mut u8 as u64;
        match crate::mm::memory::virt_to_phys(virt) {
            Some(phys) => phys,
            None => {
                log::error!("virtio: buffer at {virt:#x} is not mapped");
                virt
            }
        }
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// A virtio-9p device as the 9P client's transport.
pub struct NinePTransport(VirtIO9p<KeelHal, SomeTransport<'static>>);

// SAFETY: the device is only used under the P9Fs mutex (on any CPU), so moving it
// between tasks cannot race.
unsafe impl Send for NinePTransport {}

impl P9Transport for NinePTransport {
    fn rpc(&mut self, request: &[u8], response: &mut [u8]) -> Result<usize, P9Error> {
        interrupts::without_interrupts(|| self.0.request(request, response))
            .map(|n| n as usize)
            .map_err(|_| P9Error::Transport)
    }
}

/// An MMIO transport at `addr`, if a virtio device answers there.
fn mmio_transport(addr: u64, size: usize) -> Option<MmioTransport<'static>> {
    if addr < 0x1000 || addr + size as u64 > (4 << 30) || size < 0x100 {
        return None;
    }
    // SAFETY: the magic value is read from a virtio-mmio window the machine announced (or
    // microvm's fixed one), identity-mapped below 4 GiB; empty slots read as zero.
    let magic = unsafe { core::ptr::read_volatile(addr as *const u32) };
    if magic != 0x7472_6976 {
        return None;
    }
    let header = NonNull::new(addr as *mut VirtIOHeader)?;
    // SAFETY: a virtio-mmio header (magic checked) that nothing else uses: each address is
    // visited once.
    unsafe { MmioTransport::new(header, size) }.ok()
}

/// Where the virtio devices were found, for the boot report.
static SOURCES: spin::Mutex<Vec<&'static str>> = spin::Mutex::new(Vec::new());

/// Every virtio transport: MMIO devices from the command line (or, if none is announced,
/// microvm's window), then PCI.
/// A virtio device found: where it is, its interrupt (if known) and its transport.
pub struct Found {
    pub place: String,
    pub irq: Option<IrqSource>,
    pub transport: SomeTransport<'static>,
}

/// microvm wires its virtio-mmio slots to the second I/O APIC (GSI 24 + slot) when it has one
/// (its default), else to GSI 5 + slot.
fn microvm_slot_irq(slot: u64) -> IrqSource {
    let two_ioapics = crate::arch::acpi::get().is_some_and(|a| a.ioapics >= 2);
    IrqSource::Gsi(if two_ioapics { 24 + slot as u32 } else { 5 + slot as u32 })
}

/// Every virtio device, with where it is: MMIO devices from the command line (or, if none is
/// announced, microvm's window), then PCI.
fn transports(cmdline: &str) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::new();
    let announced: Vec<_> = keel_boot::cmdline::virtio_mmio_devices(cmdline).collect();
    let mut sources = SOURCES.lock();
    let mmio = |addr: u64, size: usize, irq: IrqSource| {
        mmio_transport(addr, size).map(|t| Found {
            place: alloc::format!("virtio-mmio at {addr:#x}"),
            irq: Some(irq),
            transport: SomeTransport::from(t),
        })
    };
    if !announced.is_empty() {
        out.extend(announced.iter().filter_map(|d| mmio(d.addr, d.size as usize, IrqSource::Gsi(d.irq))));
        if !out.is_empty() {
            sources.push("virtio-mmio (command line)");
        }
    } else {
        out.extend(
            (0..MMIO_SLOTS).filter_map(|i| mmio(MMIO_BASE + i * MMIO_SIZE as u64, MMIO_SIZE, microvm_slot_irq(i))),
        );
        if !out.is_empty() {
            sources.push("virtio-mmio (microvm window)");
        }
    }
    let before = out.len();
    out.extend(crate::drivers::pci::virtio_devices().into_iter().map(|(d, t)| Found {
        place: alloc::format!("PCI {}", d.at),
        irq: d.irq_line.map(IrqSource::PicLine),
        transport: SomeTransport::from(t),
    }));
    if out.len() > before {
        sources.push("virtio-pci");
    }
    out
}

/// Finds the virtio devices: the first network card goes to the network stack; the 9P
/// devices are returned: (mount tag, where, transport).
pub fn find_devices(cmdline: &str) -> Vec<(String, String, NinePTransport)> {
    let mut out = Vec::new();
    let mut have_net = false;
    for Found { place, irq, transport } in transports(cmdline) {
        if transport.device_type() == DeviceType::Network && !have_net {
            have_net = true;
            crate::net::init(transport, place, irq);
            continue;
        }
        if transport.device_type() == DeviceType::Block {
            crate::drivers::disk::add(transport, place, irq);
            continue;
        }
        if transport.device_type() != DeviceType::_9P {
            continue;
        }
        match VirtIO9p::<KeelHal, _>::new(transport) {
            Ok(dev) => {
                let tag = String::from(dev.mount_tag());
                out.push((tag, place, NinePTransport(dev)));
            }
            Err(e) => log::warn!("virtio-9p ({place}): {e:?}"),
        }
    }
    out
}

/// How the virtio devices were reached ("virtio-pci", ...), for the boot report.
pub fn sources() -> Vec<&'static str> {
    SOURCES.lock().clone()
}

/// Mounts the shares named on the command line: `keel.share=TAG:PATH[:ro]` (repeatable).
pub fn mount_shares(cmdline: &str) {
    let wanted: Vec<(String, String, bool)> = cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("keel.share="))
        .filter_map(|spec| {
            let mut parts = spec.split(':');
            let tag = parts.next()?;
            let path = parts.next().unwrap_or("/host");
            let ro = parts.next() == Some("ro");
            Some((String::from(tag), String::from(path), ro))
        })
        .collect();
    // Devices are looked for even when no share is wanted: the scan also lists PCI devices.
    for (tag, place, transport) in find_devices(cmdline) {
        // A share the command line does not name is mounted at /TAG when TAG is a plain name:
        // a bootable image's command line is fixed, so there the tag says where.
        let plain = !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let default = (String::new(), alloc::format!("/{tag}"), false);
        let Some((_, path, ro)) = wanted.iter().find(|w| w.0 == tag).or(plain.then_some(&default)) else {
            log::warn!("host folder '{tag}' not mounted: no keel.share={tag}:PATH on the command line");
            continue;
        };
        match P9Fs::new(transport, *ro) {
            Ok(fs) => match crate::fs::vfs().mount(path, alloc::sync::Arc::new(fs)) {
                Ok(()) => {
                    log::info!(
                        "host folder '{tag}' mounted at {path}{} ({place})",
                        if *ro { " (read-only)" } else { "" }
                    )
                }
                Err(e) => log::error!("cannot mount host folder '{tag}' at {path}: {e}"),
            },
            Err(e) => log::error!("host folder '{tag}': 9P attach failed: {e:?}"),
        }
    }
}
