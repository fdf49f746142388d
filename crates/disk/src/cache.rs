//! Block devices and the write-back cache in front of them.
//!
//! The cache works in 4 KiB blocks (the filesystem's block size, eight 512-byte sectors). Writes
//! stay in memory until [`BlockCache::flush`], which writes the dirty blocks in ascending order,
//! joined into runs, and then asks the device to make them durable. Between two flushes the
//! device may see the dirty blocks in any order (some are written early when too many are dirty):
//! the filesystem only relies on everything before a flush reaching the disk before anything
//! after it, which is what `sync` gives it.
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

/// Bytes in a device sector.
pub const SECTOR: usize = 512;
/// Bytes in a cache (and filesystem) block.
pub const BLOCK: usize = 4096;
const SECTORS_PER_BLOCK: u64 = (BLOCK / SECTOR) as u64;
/// Blocks read in one request on a miss (64 KiB).
pub const READ_AHEAD: u64 = 16;

/// What a device can fail with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoError {
    /// The device reported an error for the request.
    Device,
    /// A request beyond the end of the device.
    OutOfRange,
    /// The device (or this attachment of it) is read-only.
    ReadOnly,
    /// The device was detached (unmounted) while still referenced.
    Detached,
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoError::Device => "device error",
            IoError::OutOfRange => "beyond the end of the device",
            IoError::ReadOnly => "read-only device",
            IoError::Detached => "device detached",
        })
    }
}

/// A disk: whole 512-byte sectors, read and written in place.
pub trait BlockDevice {
    /// Size in sectors.
    fn sectors(&self) -> u64;
    /// Reads `buf.len() / 512` sectors starting at `sector`.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError>;
    /// Writes `data.len() / 512` sectors starting at `sector`.
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), IoError>;
    /// Makes every completed write durable (a device cache flush).
    fn flush(&mut self) -> Result<(), IoError>;
    /// True if the device refuses writes.
    fn readonly(&self) -> bool {
        false
    }
}

/// Counters for `df -v` and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Device read requests (a miss reads ahead).
    pub device_reads: u64,
    /// Blocks written to the device.
    pub written: u64,
    /// Device write requests (runs of blocks).
    pub write_requests: u64,
    /// Device flushes.
    pub flushes: u64,
    pub cached: usize,
    pub dirty: usize,
}

struct Entry {
    data: Box<[u8]>,
    dirty: bool,
    used: u64,
}

/// A write-back block cache over a [`BlockDevice`].
pub struct BlockCache<D: BlockDevice> {
    dev: D,
    blocks: BTreeMap<u64, Entry>,
    capacity: usize,
    max_dirty: usize,
    clock: u64,
    dirty: usize,
    stats: CacheStats,
}

impl<D: BlockDevice> BlockCache<D> {
    /// A cache of at most `capacity` blocks (at least 64) in front of `dev`; at most half of them
    /// stay dirty before some are written out early.
    pub fn new(dev: D, capacity: usize) -> Self {
        let capacity = capacity.max(4 * READ_AHEAD as usize);
        BlockCache {
            dev,
            blocks: BTreeMap::new(),
            capacity,
            max_dirty: capacity / 2,
            clock: 0,
            dirty: 0,
            stats: CacheStats::default(),
        }
    }

    /// Whole blocks on the device (a partial last block is not used).
    pub fn block_count(&self) -> u64 {
        self.dev.sectors() / SECTORS_PER_BLOCK
    }

    pub fn readonly(&self) -> bool {
        self.dev.readonly()
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats { cached: self.blocks.len(), dirty: self.dirty, ..self.stats }
    }

    /// The device, for callers that need it back (unmount).
    pub fn into_device(self) -> D {
        self.dev
    }

    fn check(&self, block: u64) -> Result<(), IoError> {
        if block < self.block_count() {
            Ok(())
        } else {
            Err(IoError::OutOfRange)
        }
    }

    /// The cached block, read from the device if missing (unless `whole`, when the caller is
    /// about to overwrite all of it).
    fn entry(&mut self, block: u64, whole: bool) -> Result<&mut Entry, IoError> {
        self.check(block)?;
        self.clock += 1;
        if self.blocks.contains_key(&block) {
            self.stats.hits += 1;
        } else if whole {
            self.make_room(1)?;
            let data = alloc::vec![0u8; BLOCK].into_boxed_slice();
            self.blocks.insert(block, Entry { data, dirty: false, used: 0 });
        } else {
            self.stats.misses += 1;
            self.read_ahead(block)?;
        }
        let clock = self.clock;
        let e = self.blocks.get_mut(&block).ok_or(IoError::Device)?;
        e.used = clock;
        Ok(e)
    }

    /// Reads `block` and the uncached blocks after it (up to [`READ_AHEAD`] in all) in one
    /// device request: files are mostly read in order, and their blocks mostly follow each other.
    fn read_ahead(&mut self, block: u64) -> Result<(), IoError> {
        let limit = self.block_count().min(block + READ_AHEAD);
        let mut end = block + 1;
        while end < limit && !self.blocks.contains_key(&end) {
            end += 1;
        }
        let n = (end - block) as usize;
        let mut buf = alloc::vec![0u8; n * BLOCK];
        self.dev.read(block * SECTORS_PER_BLOCK, &mut buf)?;
        self.stats.device_reads += 1;
        self.make_room(n)?;
        for (i, chunk) in buf.chunks(BLOCK).enumerate() {
            let data: Box<[u8]> = chunk.into();
            // The block asked for is the most recent; the others are fresh but older.
            let used = if i == 0 { self.clock } else { self.clock.saturating_sub(1) };
            self.blocks.insert(block + i as u64, Entry { data, dirty: false, used });
        }
        Ok(())
    }

    /// Makes room for `need` more blocks: drops the least recently used clean blocks (a
    /// quarter of the cache at a time), writing the dirty ones out first if too few are clean.
    fn make_room(&mut self, need: usize) -> Result<(), IoError> {
        if self.blocks.len() + need <= self.capacity {
            return Ok(());
        }
        let excess = self.blocks.len() + need - self.capacity;
        if self.blocks.len() - self.dirty < excess {
            self.write_dirty()?;
        }
        let mut clean: Vec<(u64, u64)> =
            self.blocks.iter().filter(|(_, e)| !e.dirty).map(|(b, e)| (e.used, *b)).collect();
        clean.sort_unstable();
        let drop = excess.max(self.capacity / 4).min(clean.len());
        for (_, b) in &clean[..drop] {
            self.blocks.remove(b);
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at byte offset `off`.
    pub fn read(&mut self, mut off: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let mut done = 0;
        while done < buf.len() {
            let block = off / BLOCK as u64;
            let at = (off % BLOCK as u64) as usize;
            let n = (BLOCK - at).min(buf.len() - done);
            let e = self.entry(block, false)?;
            buf[done..done + n].copy_from_slice(&e.data[at..at + n]);
            done += n;
            off += n as u64;
        }
        Ok(())
    }

    /// Writes `data` at byte offset `off` (into the cache: see [`BlockCache::flush`]).
    pub fn write(&mut self, mut off: u64, data: &[u8]) -> Result<(), IoError> {
        if self.dev.readonly() {
            return Err(IoError::ReadOnly);
        }
        let mut done = 0;
        while done < data.len() {
            let block = off / BLOCK as u64;
            let at = (off % BLOCK as u64) as usize;
            let n = (BLOCK - at).min(data.len() - done);
            let e = self.entry(block, at == 0 && n == BLOCK)?;
            e.data[at..at + n].copy_from_slice(&data[done..done + n]);
            if !e.dirty {
                e.dirty = true;
                self.dirty += 1;
            }
            done += n;
            off += n as u64;
        }
        if self.dirty > self.max_dirty {
            self.write_dirty()?;
        }
        Ok(())
    }

    /// Writes every dirty block to the device, in ascending order and joined into runs of
    /// consecutive blocks (one request each, at most 64 KiB), without a device flush.
    fn write_dirty(&mut self) -> Result<(), IoError> {
        const RUN: usize = 16;
        let mut run: Vec<u8> = Vec::with_capacity(RUN * BLOCK);
        let mut start = 0u64;
        let mut members: Vec<u64> = Vec::new();
        let dirty: Vec<u64> = self.blocks.iter().filter(|(_, e)| e.dirty).map(|(b, _)| *b).collect();
        for b in dirty {
            let contiguous = !members.is_empty() && b == start + members.len() as u64 && members.len() < RUN;
            if !contiguous && !members.is_empty() {
                self.write_run(start, &run, &members)?;
                run.clear();
                members.clear();
            }
            if members.is_empty() {
                start = b;
            }
            if let Some(e) = self.blocks.get(&b) {
                run.extend_from_slice(&e.data);
                members.push(b);
            }
        }
        if !members.is_empty() {
            self.write_run(start, &run, &members)?;
        }
        Ok(())
    }

    fn write_run(&mut self, start: u64, data: &[u8], members: &[u64]) -> Result<(), IoError> {
        self.dev.write(start * SECTORS_PER_BLOCK, data)?;
        self.stats.write_requests += 1;
        self.stats.written += members.len() as u64;
        for b in members {
            if let Some(e) = self.blocks.get_mut(b) {
                if e.dirty {
                    e.dirty = false;
                    self.dirty -= 1;
                }
            }
        }
        Ok(())
    }

    /// The filesystem is about to program `block` from scratch: its old content does not
    /// matter, so it is not read from the device (a whole zeroed block is cached instead).
    pub fn erase(&mut self, block: u64) -> Result<(), IoError> {
        self.check(block)?;
        if let Some(e) = self.blocks.get_mut(&block) {
            e.data.fill(0);
            return Ok(());
        }
        self.make_room(1)?;
        self.clock += 1;
        let data = alloc::vec![0u8; BLOCK].into_boxed_slice();
        self.blocks.insert(block, Entry { data, dirty: false, used: self.clock });
        Ok(())
    }

    /// Writes every dirty block and makes it durable.
    pub fn flush(&mut self) -> Result<(), IoError> {
        if self.dev.readonly() {
            return Ok(());
        }
        self.write_dirty()?;
        self.stats.flushes += 1;
        self.dev.flush()
    }
}

/// A disk in memory, for tests and for building images on the host. It can simulate a power
/// cut: with `cut_after(n)`, only the first `n` sector writes after that call reach the
/// durable copy, and everything since the last flush is lost from there on.
#[derive(Clone, Debug)]
pub struct RamDisk {
    /// What is on the disk now (what reads see).
    pub data: Vec<u8>,
    pub readonly: bool,
    /// Sector writes left before the cut (None: no cut planned).
    cut: Option<u64>,
    pub flushes: u64,
}

impl RamDisk {
    pub fn new(bytes: usize) -> Self {
        RamDisk { data: alloc::vec![0; bytes / SECTOR * SECTOR], readonly: false, cut: None, flushes: 0 }
    }

    pub fn from_bytes(data: Vec<u8>) -> Self {
        RamDisk { data, readonly: false, cut: None, flushes: 0 }
    }

    /// After `n` more sectors are written, further writes are silently dropped: the state a
    /// power cut at that moment leaves.
    pub fn cut_after(&mut self, n: u64) {
        self.cut = Some(n);
    }

    /// Sector writes left before the planned cut.
    pub fn writes_left(&self) -> Option<u64> {
        self.cut
    }
}

impl BlockDevice for RamDisk {
    fn sectors(&self) -> u64 {
        (self.data.len() / SECTOR) as u64
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let at = sector as usize * SECTOR;
        let src = self.data.get(at..at + buf.len()).ok_or(IoError::OutOfRange)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), IoError> {
        if self.readonly {
            return Err(IoError::ReadOnly);
        }
        let at = sector as usize * SECTOR;
        if at + data.len() > self.data.len() {
            return Err(IoError::OutOfRange);
        }
        for (i, chunk) in data.chunks(SECTOR).enumerate() {
            if let Some(left) = self.cut.as_mut() {
                if *left == 0 {
                    return Ok(());
                }
                *left -= 1;
            }
            let s = at + i * SECTOR;
            self.data[s..s + chunk.len()].copy_from_slice(chunk);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.flushes += 1;
        Ok(())
    }

    fn readonly(&self) -> bool {
        self.readonly
    }
}
