//! Devices: serial and screen consoles, PCI, virtio (9P, net transport, blk), disks.

pub(crate) mod console;
pub(crate) mod disk;
pub(crate) mod pci;
pub(crate) mod serial;
pub(crate) mod virtio;
