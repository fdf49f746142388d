//! Disks: virtio-blk devices, interrupt-driven, under keel-disk's write-back block cache and
//! littlefs. The first disk is mounted at `/data` when the shell starts; the others wait for
//! `mount`. The shell's `lsblk`, `mount`, `umount`, `fsck` and `mkfs` live here too.
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use keel_disk::{BlockDevice, IoError, MountOptions, Volume};
use keel_shell::{Bytes, Io};
use keel_vfs::{DirEntry, FileSystem, FsInfo, Ino, NewNode, Stat};
use spin::Mutex;
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use virtio_drivers::transport::SomeTransport;

use crate::arch::cpu::IrqSource;
use crate::drivers::virtio::KeelHal;
use crate::{arch::time, fs, sched::task};

/// Block cache per mounted disk: 1/32 of RAM, from 64 blocks of 4 KiB (256 KiB) to 4096
/// (16 MiB); half of it dirty at most.
fn cache_blocks() -> usize {
    let (total_pages, _) = crate::mm::memory::frame_stats();
    (total_pages as usize / 32).clamp(64, 4096)
}

/// Requests submitted and not yet completed, on every disk (an interrupt on a shared PIC line
/// with none in flight belongs to another device).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// A virtio-blk device.
pub struct VirtioDisk {
    blk: VirtIOBlk<KeelHal, SomeTransport<'static>>,
    /// The request header and status the device reads and writes: on the heap, which is
    /// identity-mapped (task stacks are not, so they cannot live there).
    req: Box<(BlkReq, BlkResp)>,
    irq: Option<IrqSource>,
    sectors: u64,
    readonly: bool,
}

// SAFETY: the device is owned by exactly one volume (or the disk table) and used only under that
// owner's lock; the transport's MMIO pointers stay valid for the kernel's life (identity map).
unsafe impl Send for VirtioDisk {}

/// Waits until request `token` is done: asleep until the disk interrupts (or 10 ms pass, in
/// case an interrupt was lost), spinning before tasks exist or without an interrupt.
fn wait(blk: &mut VirtIOBlk<KeelHal, SomeTransport<'static>>, irq: Option<IrqSource>, token: u16) {
    loop {
        if blk.peek_used() == Some(token) {
            return;
        }
        match irq {
            Some(src) if task::started() => {
                task::sleep_for(task::EVENT_DISK, time::uptime_ns() + 10_000_000);
                blk.ack_interrupt();
                if matches!(src, IrqSource::PicLine(_)) {
                    crate::arch::cpu::set_device_irq_masked(src, false);
                }
            }
            _ => core::hint::spin_loop(),
        }
    }
}

impl VirtioDisk {
    fn check(&self, sector: u64, len: usize) -> Result<(), IoError> {
        if sector + (len / 512) as u64 > self.sectors {
            Err(IoError::OutOfRange)
        } else {
            Ok(())
        }
    }
}

/// Runs one request, counted as in flight (see on_interrupt).
fn in_flight(request: impl FnOnce() -> virtio_drivers::Result) -> Result<(), IoError> {
    IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
    let r = request();
    IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    r.map_err(|_| IoError::Device)
}

impl BlockDevice for VirtioDisk {
    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.check(sector, buf.len())?;
        let (blk, irq, (req, resp)) = (&mut self.blk, self.irq, &mut *self.req);
        in_flight(|| {
            // SAFETY: req, buf and resp outlive the request: wait() returns only once the device
            // has used it, and complete_read_blocks runs before any of them is touched again.
            let token = unsafe { blk.read_blocks_nb(sector as usize, req, buf, resp) }?;
            wait(blk, irq, token);
            // SAFETY: the same buffers as submitted, after the device used the request.
            unsafe { blk.complete_read_blocks(token, req, buf, resp) }
        })
    }

    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), IoError> {
        if self.readonly {
            return Err(IoError::ReadOnly);
        }
        self.check(sector, data.len())?;
        let (blk, irq, (req, resp)) = (&mut self.blk, self.irq, &mut *self.req);
        in_flight(|| {
            // SAFETY: as in read: the buffers live until the request is completed.
            let token = unsafe { blk.write_blocks_nb(sector as usize, req, data, resp) }?;
            wait(blk, irq, token);
            // SAFETY: the same buffers as submitted, after the device used the request.
            unsafe { blk.complete_write_blocks(token, req, data, resp) }
        })
    }

    fn flush(&mut self) -> Result<(), IoError> {
        // A flush is rare (once per commit) and short: virtio-drivers only offers it blocking.
        in_flight(|| self.blk.flush())
    }

    fn readonly(&self) -> bool {
        self.readonly
    }
}

/// A disk's interrupt: wake whoever waits for a disk. A PCI line is level-triggered and only
/// the waiter can quiet the device, so the line is masked until it has.
fn on_interrupt() {
    if IN_FLIGHT.load(Ordering::Acquire) == 0 {
        return;
    }
    for src in DISK_IRQS.try_lock().iter().flat_map(|v| v.iter()) {
        if matches!(src, IrqSource::PicLine(_)) {
            crate::arch::cpu::set_device_irq_masked(*src, true);
        }
    }
    task::wake_waiters(task::EVENT_DISK);
}

static DISK_IRQS: Mutex<Vec<IrqSource>> = Mutex::new(Vec::new());

/// A disk the machine has.
struct Slot {
    name: String,
    place: String,
    sectors: u64,
    readonly: bool,
    /// The device while unmounted.
    device: Option<VirtioDisk>,
    /// Where it is mounted, and the volume.
    mounted: Option<(String, Arc<DiskFs>)>,
}

static DISKS: Mutex<Vec<Slot>> = Mutex::new(Vec::new());

/// Takes a virtio-blk transport found at boot: it becomes `vda`, `vdb`, ...
pub fn add(transport: SomeTransport<'static>, place: String, irq: Option<IrqSource>) {
    let mut blk = match VirtIOBlk::<KeelHal, _>::new(transport) {
        Ok(b) => b,
        Err(e) => {
            log::warn!("virtio-blk ({place}): {e:?}");
            return;
        }
    };
    let sectors = blk.capacity();
    let readonly = blk.readonly();
    let mut disks = DISKS.lock();
    let name = format!("vd{}", char::from(b'a' + disks.len().min(25) as u8));
    let routed = irq.filter(|&src| {
        let mut irqs = DISK_IRQS.lock();
        if !irqs.contains(&src) {
            irqs.push(src);
        }
        drop(irqs);
        crate::arch::cpu::route_device_irq(src, on_interrupt)
    });
    blk.enable_interrupts();
    log::info!(
        "disk {name}: virtio-blk, {} ({place}){}, {}",
        Bytes(sectors * 512),
        if readonly { ", read-only" } else { "" },
        match routed {
            Some(IrqSource::Gsi(g)) => format!("interrupt: I/O APIC GSI {g}"),
            Some(IrqSource::PicLine(l)) => format!("interrupt: PIC line {l}"),
            None => String::from("no usable interrupt: polled"),
        }
    );
    let req = Box::new((BlkReq::default(), BlkResp::default()));
    let device = VirtioDisk { blk, req, irq: routed, sectors, readonly };
    disks.push(Slot { name, place, sectors, readonly, device: Some(device), mounted: None });
}

/// Mounts the first disk at `/data` (once tasks exist, so its I/O sleeps on interrupts).
pub fn mount_at_boot() {
    let first = DISKS.lock().first().map(|s| s.name.clone());
    if let Some(name) = first {
        match mount(&name, "/data", false) {
            Ok(msg) => log::info!("{msg}"),
            Err(e) => log::error!("disk {name} not mounted: {e}"),
        }
    }
}

/// The volume behind the VFS: keel-disk's littlefs volume under a lock that yields.
pub struct DiskFs {
    vol: Mutex<Volume<VirtioDisk>>,
}

// SAFETY: littlefs' state holds raw pointers into the volume's own leaked buffers and storage
// (see keel_disk::volume); they are only followed under `vol`'s lock, from whichever task holds
// it, and nothing in them is tied to a CPU or a thread.
unsafe impl Send for DiskFs {}
// SAFETY: every access goes through the mutex (see Send).
unsafe impl Sync for DiskFs {}

impl DiskFs {
    /// The volume, waiting for it by yielding: its holder may be asleep on the disk.
    fn vol(&self) -> spin::MutexGuard<'_, Volume<VirtioDisk>> {
        loop {
            if let Some(g) = self.vol.try_lock() {
                return g;
            }
            if task::started() {
                task::yield_now();
            } else {
                core::hint::spin_loop();
            }
        }
    }
}

impl FileSystem for DiskFs {
    fn root(&self) -> Ino {
        self.vol().root()
    }
    fn lookup(&self, dir: Ino, name: &str) -> keel_vfs::Result<Ino> {
        self.vol().lookup(dir, name)
    }
    fn stat(&self, ino: Ino) -> keel_vfs::Result<Stat> {
        self.vol().stat(ino)
    }
    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> keel_vfs::Result<usize> {
        self.vol().read(ino, offset, buf)
    }
    fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> keel_vfs::Result<usize> {
        self.vol().write(ino, offset, data)
    }
    fn set_size(&self, ino: Ino, size: u64) -> keel_vfs::Result<()> {
        self.vol().set_size(ino, size)
    }
    fn readdir(&self, dir: Ino) -> keel_vfs::Result<Vec<DirEntry>> {
        self.vol().readdir(dir)
    }
    fn create(&self, dir: Ino, name: &str, node: NewNode) -> keel_vfs::Result<Ino> {
        self.vol().create(dir, name, node)
    }
    fn unlink(&self, dir: Ino, name: &str) -> keel_vfs::Result<()> {
        self.vol().unlink(dir, name)
    }
    /// littlefs has no hard links (nor symlinks: `create` refuses those).
    fn link(&self, _ino: Ino, _dir: Ino, _name: &str) -> keel_vfs::Result<()> {
        Err(keel_vfs::Error::NotSupported)
    }
    fn rmdir(&self, dir: Ino, name: &str) -> keel_vfs::Result<()> {
        self.vol().rmdir(dir, name)
    }
    fn rename(&self, from_dir: Ino, from: &str, to_dir: Ino, to: &str) -> keel_vfs::Result<()> {
        self.vol().rename(from_dir, from, to_dir, to)
    }
    fn set_times(&self, ino: Ino, atime: Option<u64>, mtime: Option<u64>) -> keel_vfs::Result<()> {
        self.vol().set_times(ino, atime, mtime)
    }
    fn info(&self) -> FsInfo {
        self.vol().info()
    }
    fn readonly(&self) -> bool {
        self.vol().is_readonly()
    }
    fn retain(&self, ino: Ino) {
        self.vol().retain(ino)
    }
    fn release(&self, ino: Ino) {
        self.vol().release(ino)
    }
    fn sync(&self, _ino: Option<Ino>) -> keel_vfs::Result<()> {
        self.vol().sync()
    }
    fn busy(&self) -> bool {
        self.vol().open_handles() > 0
    }
}

/// The slot of the disk mounted at `path` (normalised first).
fn mounted_at(disks: &[Slot], path: &str) -> Option<usize> {
    let path = keel_vfs::path::normalize(path).unwrap_or_else(|_| path.to_string());
    disks.iter().position(|s| s.mounted.as_ref().is_some_and(|(p, _)| *p == path))
}

fn slot_index(disks: &[Slot], name: &str) -> Result<usize, String> {
    let name = name.strip_prefix("/dev/").unwrap_or(name);
    disks.iter().position(|s| s.name == name).ok_or_else(|| format!("{name}: no such disk (see lsblk)"))
}

/// Mounts disk `name` at `path`: refused if littlefs finds no valid filesystem; mounted
/// read-only (with the problems listed) if its metadata does not check out.
pub fn mount(name: &str, path: &str, readonly: bool) -> Result<String, String> {
    let mut disks = DISKS.lock();
    let i = slot_index(&disks, name)?;
    let slot = &mut disks[i];
    if let Some((at, _)) = &slot.mounted {
        return Err(format!("{} is already mounted at {at}", slot.name));
    }
    let dev = slot.device.take().ok_or_else(|| format!("{}: device unavailable", slot.name))?;
    let opts = MountOptions {
        readonly: readonly || slot.readonly,
        cache_blocks: cache_blocks(),
        clock: time::realtime_ns,
        ..MountOptions::default()
    };
    let mut vol = match Volume::mount(dev, opts) {
        Ok(v) => v,
        Err(f) => {
            slot.device = f.device;
            return Err(format!("{}: {} (format it with `mkfs {}`)", slot.name, f.error, slot.name));
        }
    };
    let mut note = String::new();
    // The check traverses every block in use: its count is the usage reported below too.
    let report = vol.check(false);
    if !report.clean() && !vol.is_readonly() {
        // Damaged metadata: read-only, so what is readable can be copied off.
        vol.set_readonly();
        note = format!(
            " READ-ONLY: the filesystem is damaged ({}; run `fsck {}`)",
            report.problems.first().map(String::as_str).unwrap_or("?"),
            slot.name
        );
    }
    let fs = Arc::new(DiskFs { vol: Mutex::new(vol) });
    if let Err(e) = fs::vfs().mount(path, fs.clone()) {
        let dev = Arc::try_unwrap(fs).ok().map(|d| d.vol.into_inner().unmount());
        if let Some(Ok(d)) = dev {
            slot.device = Some(d);
        }
        return Err(format!("cannot mount {} at {path}: {e}", slot.name));
    }
    let readonly = fs.readonly();
    slot.mounted = Some((path.to_string(), fs));
    Ok(format!(
        "disk {} mounted at {path}: littlefs, {} used of {}{}{}",
        slot.name,
        Bytes(report.used_blocks * keel_disk::BLOCK as u64),
        Bytes(report.total_blocks * keel_disk::BLOCK as u64),
        if readonly && note.is_empty() { " (read-only)" } else { "" },
        note
    ))
}

/// Unmounts the disk mounted at `path` (or named): everything is written and flushed first.
pub fn umount(target: &str) -> Result<String, String> {
    let mut disks = DISKS.lock();
    let i = mounted_at(&disks, target)
        .or_else(|| slot_index(&disks, target.trim_start_matches('/')).ok())
        .ok_or_else(|| format!("{target}: not a mounted disk"))?;
    let slot = &mut disks[i];
    let Some((path, fs)) = slot.mounted.take() else { return Err(format!("{}: not mounted", slot.name)) };
    match fs::vfs().unmount(&path) {
        Ok(_) => {}
        Err(e) => {
            slot.mounted = Some((path.clone(), fs));
            return Err(format!("{path}: {e} (files are open on it)"));
        }
    }
    let fs = match Arc::try_unwrap(fs) {
        Ok(fs) => fs,
        Err(fs) => {
            // Still referenced (a walk in progress): put it back.
            let back = fs::vfs().mount(&path, fs.clone());
            slot.mounted = Some((path.clone(), fs));
            return Err(format!("{path}: busy{}", if back.is_err() { " (and could not be put back)" } else { "" }));
        }
    };
    match fs.vol.into_inner().unmount() {
        Ok(dev) => {
            slot.device = Some(dev);
            Ok(format!("disk {} unmounted from {path}", slot.name))
        }
        Err(e) => Err(format!("{}: unmounted, but the last write failed: {e}", slot.name)),
    }
}

/// Checks a disk: mounted (through its volume) or not (mounted read-only for the check).
pub fn fsck(target: &str) -> Result<(String, bool), String> {
    let mut disks = DISKS.lock();
    let i = mounted_at(&disks, target).map_or_else(|| slot_index(&disks, target), Ok)?;
    let slot = &mut disks[i];
    let name = slot.name.clone();
    if let Some((_, fs)) = &slot.mounted {
        let r = fs.vol().check(true);
        return Ok((format!("{name}: {r}"), r.clean()));
    }
    let dev = slot.device.take().ok_or_else(|| format!("{name}: device unavailable"))?;
    let opts = MountOptions {
        readonly: true,
        cache_blocks: cache_blocks(),
        clock: time::realtime_ns,
        ..MountOptions::default()
    };
    match Volume::mount(dev, opts) {
        Ok(mut v) => {
            let r = v.check(true);
            slot.device = v.unmount().ok();
            Ok((format!("{name}: {r}"), r.clean()))
        }
        Err(f) => {
            slot.device = f.device;
            Ok((format!("{name}: {}\nDAMAGED\n", f.error), false))
        }
    }
}

/// Formats an unmounted disk.
pub fn mkfs(name: &str) -> Result<String, String> {
    let mut disks = DISKS.lock();
    let i = slot_index(&disks, name)?;
    let slot = &mut disks[i];
    if let Some((at, _)) = &slot.mounted {
        return Err(format!("{} is mounted at {at}: umount it first", slot.name));
    }
    let dev = slot.device.take().ok_or_else(|| format!("{}: device unavailable", slot.name))?;
    let size = dev.sectors() * 512;
    match keel_disk::format(dev) {
        Ok(dev) => {
            slot.device = Some(dev);
            Ok(format!("{}: littlefs created, {}", slot.name, Bytes(size)))
        }
        Err(f) => {
            slot.device = f.device;
            Err(format!("{}: {}", slot.name, f.error))
        }
    }
}

/// `lsblk`: every disk, its size and where it is mounted.
pub fn lsblk(io: &mut Io<'_>) -> i32 {
    let disks = DISKS.lock();
    if disks.is_empty() {
        io.out(b"no disks (attach one with `cargo xtask run --disk FILE[:SIZE]`)\n");
        return 0;
    }
    let mut s = format!("{:<6} {:>10} {:<4} {:<12} {}\n", "NAME", "SIZE", "RO", "MOUNTPOINT", "WHERE");
    for d in disks.iter() {
        s.push_str(&format!(
            "{:<6} {:>10} {:<4} {:<12} {}\n",
            d.name,
            Bytes(d.sectors * 512).to_string(),
            if d.readonly { "yes" } else { "no" },
            d.mounted.as_ref().map_or("", |(p, _)| p.as_str()),
            d.place
        ));
    }
    io.out(s.as_bytes());
    0
}

/// The disk mounted at `path`, if one is.
pub fn name_at(path: &str) -> Option<String> {
    let disks = DISKS.lock();
    mounted_at(&disks, path).map(|i| disks[i].name.clone())
}
