//! PCI: configuration space through the legacy 0xCF8/0xCFC ports or, where the ACPI MCFG table
//! names one, PCIe's memory-mapped ECAM; a scan of every bus for the device list (`lspci`) and
//! the virtio devices. BARs are the firmware's (SeaBIOS and OVMF assign them).

use alloc::vec::Vec;

use spin::Mutex;
use virtio_drivers::transport::pci::bus::{
    Cam, Command, ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, MmioCam, PciRoot,
};
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport};
use virtio_drivers::transport::DeviceType;
use x86_64::instructions::port::Port;

use crate::drivers::virtio::KeelHal;

/// Configuration space through I/O ports 0xCF8 (address) and 0xCFC (data).
struct PortCam;

fn port_address(df: DeviceFunction, offset: u8) -> u32 {
    (1 << 31)
        | (u32::from(df.bus) << 16)
        | (u32::from(df.device) << 11)
        | (u32::from(df.function) << 8)
        | u32::from(offset & 0xfc)
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        x86_64::instructions::interrupts::without_interrupts(|| {
            // SAFETY: the PCI configuration mechanism #1 ports: select, then read the dword.
            unsafe {
                Port::<u32>::new(0xcf8).write(port_address(df, offset));
                Port::<u32>::new(0xcfc).read()
            }
        })
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        x86_64::instructions::interrupts::without_interrupts(|| {
            // SAFETY: as in read_word, writing the selected dword.
            unsafe {
                Port::<u32>::new(0xcf8).write(port_address(df, offset));
                Port::<u32>::new(0xcfc).write(data);
            }
        })
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}

/// One function found on the bus.
#[derive(Clone, Copy, Debug)]
pub struct Device {
    pub at: DeviceFunction,
    pub vendor: u16,
    pub device: u16,
    pub class: u8,
    pub subclass: u8,
    pub virtio: Option<DeviceType>,
    /// The PIC line the firmware routed INTx to (configuration register 0x3c), if any.
    pub irq_line: Option<u8>,
}

static DEVICES: Mutex<Vec<Device>> = Mutex::new(Vec::new());
static ACCESS: Mutex<&'static str> = Mutex::new("none");

/// Scans every bus and returns the transports of the virtio devices found (each enabled for
/// memory access and bus mastering).
fn scan<C: ConfigurationAccess>(root: &mut PciRoot<C>) -> Vec<(Device, PciTransport)> {
    let mut found = Vec::new();
    let mut out = Vec::new();
    for bus in 0..=255u8 {
        let functions: Vec<(DeviceFunction, DeviceFunctionInfo)> = root.enumerate_bus(bus).collect();
        for (at, info) in functions {
            let dev = Device {
                at,
                vendor: info.vendor_id,
                device: info.device_id,
                class: info.class,
                subclass: info.subclass,
                virtio: virtio_device_type(&info),
                // Read through the legacy ports, which PCs with ECAM keep too.
                irq_line: Some((PortCam.read_word(at, 0x3c) & 0xff) as u8).filter(|l| (1..16).contains(l)),
            };
            found.push(dev);
            if dev.virtio.is_none() {
                continue;
            }
            let (_, command) = root.get_status_command(at);
            // Only the network card is interrupt-driven; the others (9P) are polled, and their
            // INTx, shared with the card's line on PCs, must stay quiet or a level-triggered
            // line would interrupt forever.
            let quiet =
                if dev.virtio == Some(DeviceType::Network) { Command::empty() } else { Command::INTERRUPT_DISABLE };
            root.set_command(
                at,
                (command - Command::INTERRUPT_DISABLE) | Command::MEMORY_SPACE | Command::BUS_MASTER | quiet,
            );
            match PciTransport::new::<KeelHal, C>(root, at) {
                Ok(t) => out.push((dev, t)),
                Err(e) => log::warn!("virtio device at PCI {at}: {e:?}"),
            }
        }
    }
    *DEVICES.lock() = found;
    out
}

/// Finds the machine's PCI devices; returns the virtio ones with their transports.
pub fn virtio_devices() -> Vec<(Device, PciTransport)> {
    let ecam = crate::arch::acpi::get().and_then(|a| a.ecam).filter(|e| e.base + (256 << 20) <= (4 << 30));
    if let Some(e) = ecam.filter(|e| e.start_bus == 0) {
        *ACCESS.lock() = "ECAM";
        // SAFETY: the MCFG table names this 256 MiB configuration window (below 4 GiB, so
        // identity-mapped); nothing else in the kernel touches it.
        let cam = unsafe { MmioCam::new(e.base as *mut u8, Cam::Ecam) };
        return scan(&mut PciRoot::new(cam));
    }
    // Legacy configuration ports: present if the address register reads back what we wrote.
    let probe = PortCam.read_word(DeviceFunction { bus: 0, device: 0, function: 0 }, 0);
    if probe == u32::MAX || probe == 0 {
        return Vec::new();
    }
    *ACCESS.lock() = "I/O ports 0xcf8";
    scan(&mut PciRoot::new(PortCam))
}

/// The devices of the last scan, and how configuration space was reached.
pub fn devices() -> (Vec<Device>, &'static str) {
    (DEVICES.lock().clone(), *ACCESS.lock())
}
