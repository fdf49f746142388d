//! virtio-mmio devices announced on the kernel command line, the way Firecracker, Cloud
//! Hypervisor and QEMU's microvm tell a kernel where they are:
//! `virtio_mmio.device=<size>@<baseaddr>:<irq>[:<id>]`, size with an optional K/M/G suffix.

/// One announced device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioDevice {
    pub addr: u64,
    pub size: u64,
    pub irq: u32,
}

fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn size(s: &str) -> Option<u64> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 10),
        b'm' | b'M' => (&s[..s.len() - 1], 20),
        b'g' | b'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    number(digits)?.checked_mul(1 << shift)
}

/// Parses one `SIZE@ADDR:IRQ[:ID]` value.
pub fn parse_device(spec: &str) -> Option<MmioDevice> {
    let (sz, rest) = spec.split_once('@')?;
    let mut parts = rest.split(':');
    let addr = number(parts.next()?)?;
    let irq = u32::try_from(number(parts.next()?)?).ok()?;
    let size = size(sz)?;
    if size == 0 || addr.checked_add(size).is_none() {
        return None;
    }
    Some(MmioDevice { addr, size, irq })
}

/// Every well-formed `virtio_mmio.device=` on the line (malformed ones are skipped).
pub fn virtio_mmio_devices(cmdline: &str) -> impl Iterator<Item = MmioDevice> + '_ {
    cmdline.split_whitespace().filter_map(|w| w.strip_prefix("virtio_mmio.device=")).filter_map(parse_device)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    #[test]
    fn forms_used_by_the_monitors() {
        // QEMU microvm (auto-kernel-cmdline), Firecracker, Cloud Hypervisor.
        let line = "earlyprintk=ttyS0 virtio_mmio.device=512@0xfeb00e00:12 \
                    virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=0x1000@0xd0001000:6:2 quiet";
        let found: Vec<_> = virtio_mmio_devices(line).collect();
        assert_eq!(
            found,
            [
                MmioDevice { addr: 0xfeb0_0e00, size: 512, irq: 12 },
                MmioDevice { addr: 0xd000_0000, size: 4096, irq: 5 },
                MmioDevice { addr: 0xd000_1000, size: 4096, irq: 6 },
            ]
        );
    }

    #[test]
    fn malformed_entries_are_skipped() {
        for bad in [
            "512",
            "512@",
            "@0x1000:5",
            "x@0x1000:5",
            "512@0x1000",
            "512@zz:5",
            "0@0x1000:5",
            "16G@0xffffffffffffff00:1",
            "1@2:99999999999",
        ] {
            assert_eq!(parse_device(bad), None, "{bad}");
        }
        assert_eq!(virtio_mmio_devices("virtio_mmio.device=junk virtio_mmio.device=1M@4096:3").count(), 1);
    }
}
