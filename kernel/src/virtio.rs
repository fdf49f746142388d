//! virtio over MMIO (microvm): finds the devices QEMU placed in the transport window and hands
//! 9P devices to the VFS as shared host folders.

use alloc::string::String;
use alloc::vec::Vec;
use core::ptr::NonNull;

use keel_9p::{P9Error, P9Fs, Transport as P9Transport};
use virtio_drivers::device::virtio_9p::VirtIO9p;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};
use x86_64::instructions::interrupts;

use crate::memory::FRAMES;

/// microvm's virtio-mmio window: 24 transports of 512 bytes.
const MMIO_BASE: u64 = 0xfeb0_0000;
const MMIO_SIZE: usize = 0x200;
const MMIO_SLOTS: u64 = 24;

/// DMA through the identity map: physical and virtual addresses are the same.
pub struct KeelHal;

// SAFETY: dma_alloc returns fresh, zeroed, identity-mapped pages owned by the device until
// dma_dealloc; share returns the physical (= virtual) address of memory that stays valid while
// shared (the caller's buffer); MMIO regions are identity-mapped.
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

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as u64
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// A virtio-9p device as the 9P client's transport.
pub struct NinePTransport(VirtIO9p<KeelHal, MmioTransport<'static>>);

// SAFETY: Keel runs on one CPU and the device is only used under the P9Fs mutex, so moving it
// between tasks cannot race.
unsafe impl Send for NinePTransport {}

impl P9Transport for NinePTransport {
    fn rpc(&mut self, request: &[u8], response: &mut [u8]) -> Result<usize, P9Error> {
        interrupts::without_interrupts(|| self.0.request(request, response))
            .map(|n| n as usize)
            .map_err(|_| P9Error::Transport)
    }
}

/// Every 9P device found: (mount tag, transport).
pub fn find_9p_devices() -> Vec<(String, NinePTransport)> {
    let mut out = Vec::new();
    for i in 0..MMIO_SLOTS {
        let addr = MMIO_BASE + i * MMIO_SIZE as u64;
        // SAFETY: the magic value is read from microvm's virtio-mmio window, identity-mapped;
        // empty slots read as zero.
        let magic = unsafe { core::ptr::read_volatile(addr as *const u32) };
        if magic != 0x7472_6976 {
            continue;
        }
        let Some(header) = NonNull::new(addr as *mut VirtIOHeader) else { continue };
        // SAFETY: a virtio-mmio header (magic checked) that nothing else uses.
        let Ok(transport) = (unsafe { MmioTransport::new(header, MMIO_SIZE) }) else { continue };
        if transport.device_type() != DeviceType::_9P {
            continue;
        }
        match VirtIO9p::<KeelHal, _>::new(transport) {
            Ok(dev) => {
                let tag = String::from(dev.mount_tag());
                out.push((tag, NinePTransport(dev)));
            }
            Err(e) => log::warn!("virtio-9p at {addr:#x}: {e:?}"),
        }
    }
    out
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
    if wanted.is_empty() {
        return;
    }
    for (tag, transport) in find_9p_devices() {
        let Some((_, path, ro)) = wanted.iter().find(|w| w.0 == tag) else { continue };
        match P9Fs::new(transport, *ro) {
            Ok(fs) => match crate::fs::vfs().mount(path, alloc::sync::Arc::new(fs)) {
                Ok(()) => log::info!("host folder '{tag}' mounted at {path}{}", if *ro { " (read-only)" } else { "" }),
                Err(e) => log::error!("cannot mount host folder '{tag}' at {path}: {e}"),
            },
            Err(e) => log::error!("host folder '{tag}': 9P attach failed: {e:?}"),
        }
    }
}
