//! Names for what PCI enumeration finds, for `lspci`.

/// A short name for a PCI class and subclass.
pub fn class_name(class: u8, subclass: u8) -> &'static str {
    match (class, subclass) {
        (0x01, 0x01) => "IDE controller",
        (0x01, 0x06) => "SATA controller",
        (0x01, 0x08) => "NVMe controller",
        (0x01, _) => "storage controller",
        (0x02, _) => "network controller",
        (0x03, 0x00) => "VGA controller",
        (0x03, _) => "display controller",
        (0x04, _) => "multimedia controller",
        (0x05, _) => "memory controller",
        (0x06, 0x00) => "host bridge",
        (0x06, 0x01) => "ISA bridge",
        (0x06, 0x04) => "PCI bridge",
        (0x06, _) => "bridge",
        (0x07, _) => "communication controller",
        (0x08, _) => "system peripheral",
        (0x0c, 0x03) => "USB controller",
        (0x0c, 0x05) => "SMBus controller",
        (0x0c, _) => "serial bus controller",
        (0x00, _) => "unclassified device",
        _ => "device",
    }
}

/// A short name for the vendors QEMU and common PCs show.
pub fn vendor_name(vendor: u16) -> Option<&'static str> {
    Some(match vendor {
        0x1af4 => "Red Hat (virtio)",
        0x1b36 => "Red Hat (QEMU)",
        0x1234 => "QEMU",
        0x8086 => "Intel",
        0x1022 => "AMD",
        0x10de => "NVIDIA",
        0x10ec => "Realtek",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_q35_has() {
        assert_eq!(class_name(0x06, 0x00), "host bridge");
        assert_eq!(class_name(0x01, 0x06), "SATA controller");
        assert_eq!(class_name(0x03, 0x00), "VGA controller");
        assert_eq!(class_name(0xff, 0x00), "device");
        assert_eq!(vendor_name(0x1af4), Some("Red Hat (virtio)"));
        assert_eq!(vendor_name(0xbeef), None);
    }
}
