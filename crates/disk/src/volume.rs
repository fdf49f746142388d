//! A littlefs volume on a block device, shaped like Keel's VFS interface.
//!
//! littlefs (through the `littlefs2` crate) is copy-on-write with checksummed metadata commits:
//! a power cut at any moment leaves either the state before or the state after each commit.
//! Its API borrows its buffers and the storage for the life of a mount, so a mount leaks one
//! small allocation (about 4 KiB, the littlefs state and its caches); the block cache and the
//! device are given back at unmount.
//!
//! Files are reached by path: each operation opens, works and closes. Small sequential writes
//! are gathered in memory (one pending run per volume) and committed as one when the run ends,
//! the file is closed or synced, or another operation needs it: a commit is a `sync` barrier, and
//! a barrier per 4 KiB write would make writing slow.
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use keel_vfs::{DirEntry, Error, FileType, FsInfo, Ino, NewNode, Result, Stat};
use littlefs2::consts::{U4096, U512};
use littlefs2::fs::{Allocation, Filesystem};
use littlefs2::io::{Error as LfsError, SeekFrom};
use littlefs2::path::PathBuf;
use spin::Mutex;

use crate::cache::{BlockCache, BlockDevice, CacheStats, IoError, BLOCK};

type Shared<D> = Arc<Mutex<Option<BlockCache<D>>>>;

/// littlefs' view of the disk: the block cache, shared with the volume.
pub struct LfsStorage<D: BlockDevice> {
    cache: Shared<D>,
    blocks: usize,
}

fn io<T>(r: core::result::Result<T, IoError>) -> littlefs2::io::Result<T> {
    r.map_err(|_| LfsError::IO)
}

impl<D: BlockDevice> littlefs2::driver::Storage for LfsStorage<D> {
    const READ_SIZE: usize = 16;
    const WRITE_SIZE: usize = 16;
    const BLOCK_SIZE: usize = BLOCK;
    /// Unused: [`LfsStorage::block_count`] tells the real size.
    const BLOCK_COUNT: usize = 1;
    type CACHE_SIZE = U4096;
    type LOOKAHEAD_SIZE = U512;

    fn read(&mut self, off: usize, buf: &mut [u8]) -> littlefs2::io::Result<usize> {
        let mut c = self.cache.lock();
        io(c.as_mut().ok_or(IoError::Detached).and_then(|c| c.read(off as u64, buf)))?;
        Ok(buf.len())
    }

    fn write(&mut self, off: usize, data: &[u8]) -> littlefs2::io::Result<usize> {
        let mut c = self.cache.lock();
        io(c.as_mut().ok_or(IoError::Detached).and_then(|c| c.write(off as u64, data)))?;
        Ok(data.len())
    }

    /// A disk needs no erase before a write; the cache learns that the old content is not
    /// needed (so programming the block reads nothing).
    fn erase(&mut self, off: usize, len: usize) -> littlefs2::io::Result<usize> {
        let mut c = self.cache.lock();
        let c = c.as_mut().ok_or(LfsError::IO)?;
        for b in (off / BLOCK)..(off + len).div_ceil(BLOCK) {
            io(c.erase(b as u64))?;
        }
        Ok(len)
    }

    fn sync(&mut self) -> littlefs2::io::Result<()> {
        let mut c = self.cache.lock();
        io(c.as_mut().ok_or(IoError::Detached).and_then(|c| c.flush()))
    }

    fn block_count(&self) -> usize {
        self.blocks
    }
}

/// Why a disk could not be formatted, mounted or used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// Too small for a filesystem (fewer than 16 blocks of 4 KiB).
    TooSmall,
    /// No littlefs superblock, or one whose checksums or fields are wrong.
    NotMountable(i32),
    /// littlefs reported this error code.
    Fs(i32),
    Io(IoError),
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::TooSmall => f.write_str("the disk is too small (at least 64 KiB)"),
            DiskError::NotMountable(code) => {
                write!(f, "no valid littlefs filesystem (unformatted or damaged superblock; {})", lfs_error_name(*code))
            }
            DiskError::Fs(code) => write!(f, "filesystem error: {}", lfs_error_name(*code)),
            DiskError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// littlefs' error codes by name.
pub fn lfs_error_name(code: i32) -> &'static str {
    match code {
        -5 => "I/O error",
        -84 => "corrupted",
        -2 => "no such entry",
        -17 => "entry exists",
        -20 => "not a directory",
        -21 => "is a directory",
        -39 => "directory not empty",
        -9 => "bad file",
        -27 => "file too large",
        -22 => "invalid",
        -28 => "no space left",
        -12 => "out of memory",
        -61 => "no attribute",
        -36 => "name too long",
        _ => "unknown error",
    }
}

fn vfs_error(e: LfsError) -> Error {
    match e.code() {
        -2 => Error::NotFound,
        -17 => Error::AlreadyExists,
        -20 => Error::NotADirectory,
        -21 => Error::IsADirectory,
        -39 => Error::NotEmpty,
        -27 => Error::FileTooLarge,
        -22 => Error::InvalidArgument,
        -28 => Error::NoSpace,
        -36 => Error::NameTooLong,
        _ => Error::Io,
    }
}

fn lfs_path(path: &str) -> Result<PathBuf> {
    PathBuf::try_from(path).map_err(|e| match e {
        littlefs2::path::Error::TooLarge => Error::NameTooLong,
        _ => Error::InvalidPath,
    })
}

/// The littlefs user attribute holding a node's modification time (nanoseconds, LE).
const MTIME_ATTR: u8 = b't';
/// Root directory inode.
const ROOT: Ino = 1;
/// Gathered writes are committed once they reach this size.
const PENDING_MAX: usize = 1024 * 1024;

/// Writes to one file not yet handed to littlefs.
struct Pending {
    ino: Ino,
    offset: u64,
    data: Vec<u8>,
}

/// How to mount.
#[derive(Clone, Copy, Debug)]
pub struct MountOptions {
    pub readonly: bool,
    /// Cache capacity in 4 KiB blocks.
    pub cache_blocks: usize,
    /// Clock for modification times (ns since the epoch).
    pub clock: fn() -> u64,
    /// Inode numbers kept for names not in use: past this many, the oldest half is forgotten
    /// (a guest listing millions of files must not fill the kernel's memory with names).
    pub max_nodes: usize,
}

fn no_clock() -> u64 {
    0
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions { readonly: false, cache_blocks: 1024, clock: no_clock, max_nodes: 65536 }
    }
}

/// What a consistency check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub dirs: u64,
    pub files: u64,
    pub bytes: u64,
    pub used_blocks: u64,
    pub total_blocks: u64,
    /// One line per problem (path and error); empty when the volume is sound.
    pub problems: Vec<String>,
}

impl Report {
    pub fn clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What `fsck` prints after the disk's name: the counts, one line per problem, then `clean` or
/// `DAMAGED`.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "littlefs, {} directories, {} files, {} bytes in files, {} of {} blocks used",
            self.dirs, self.files, self.bytes, self.used_blocks, self.total_blocks
        )?;
        for p in &self.problems {
            writeln!(f, "  problem: {p}")?;
        }
        writeln!(f, "{}", if self.clean() { "clean" } else { "DAMAGED" })
    }
}

/// Formats `dev` with an empty littlefs filesystem and gives it back (also on failure).
pub fn format<D: BlockDevice + 'static>(dev: D) -> core::result::Result<D, MountFailure<D>> {
    let cache = BlockCache::new(dev, 64);
    let blocks = cache.block_count() as usize;
    if blocks < 16 {
        return Err(MountFailure { error: DiskError::TooSmall, device: Some(cache.into_device()) });
    }
    let shared: Shared<D> = Arc::new(Mutex::new(Some(cache)));
    let mut storage = LfsStorage { cache: shared.clone(), blocks };
    let r = Filesystem::format(&mut storage).map_err(|e| DiskError::Fs(e.code()));
    let flushed = shared.lock().as_mut().map_or(Err(IoError::Detached), |c| c.flush()).map_err(DiskError::Io);
    let device = shared.lock().take().map(BlockCache::into_device);
    match (r.and(flushed), device) {
        (Ok(()), Some(dev)) => Ok(dev),
        (Err(error), device) => Err(MountFailure { error, device }),
        (Ok(()), None) => Err(MountFailure { error: DiskError::Io(IoError::Detached), device: None }),
    }
}

/// A mounted littlefs volume.
pub struct Volume<D: BlockDevice + 'static> {
    fs: Filesystem<'static, LfsStorage<D>>,
    cache: Shared<D>,
    readonly: bool,
    clock: fn() -> u64,
    max_nodes: usize,
    paths: BTreeMap<Ino, String>,
    inos: BTreeMap<String, Ino>,
    next: Ino,
    open: BTreeMap<Ino, usize>,
    pending: Option<Pending>,
    /// A failed commit of gathered writes, reported by the next operation on that file.
    failed: Option<(Ino, Error)>,
}

/// A failed mount: why, and the device back (None only if it was lost on the way, which the
/// code below never does).
pub struct MountFailure<D> {
    pub error: DiskError,
    pub device: Option<D>,
}

impl<D: BlockDevice + 'static> Volume<D> {
    /// Mounts the littlefs filesystem on `dev`; on failure the device comes back with the error.
    pub fn mount(dev: D, opts: MountOptions) -> core::result::Result<Volume<D>, MountFailure<D>> {
        let cache = BlockCache::new(dev, opts.cache_blocks);
        let blocks = cache.block_count() as usize;
        if blocks < 16 {
            return Err(MountFailure { error: DiskError::TooSmall, device: Some(cache.into_device()) });
        }
        let readonly = opts.readonly || cache.readonly();
        let shared: Shared<D> = Arc::new(Mutex::new(Some(cache)));
        let storage: &'static mut LfsStorage<D> = Box::leak(Box::new(LfsStorage { cache: shared.clone(), blocks }));
        let alloc: &'static mut Allocation<LfsStorage<D>> = Box::leak(Box::new(Allocation::new()));
        match Filesystem::mount(alloc, storage) {
            Ok(fs) => {
                let mut v = Volume {
                    fs,
                    cache: shared,
                    readonly,
                    clock: opts.clock,
                    max_nodes: opts.max_nodes.max(16),
                    paths: BTreeMap::new(),
                    inos: BTreeMap::new(),
                    next: ROOT + 1,
                    open: BTreeMap::new(),
                    pending: None,
                    failed: None,
                };
                v.paths.insert(ROOT, String::from("/"));
                v.inos.insert(String::from("/"), ROOT);
                Ok(v)
            }
            Err(e) => {
                let device = shared.lock().take().map(BlockCache::into_device);
                Err(MountFailure { error: DiskError::NotMountable(e.code()), device })
            }
        }
    }

    /// Commits gathered writes, flushes the cache and gives the device back.
    pub fn unmount(mut self) -> core::result::Result<D, DiskError> {
        let committed = self.commit_pending();
        let flushed = self.with_cache(|c| c.flush());
        let dev = self.cache.lock().take().map(BlockCache::into_device);
        committed.map_err(|_| DiskError::Io(IoError::Device))?;
        flushed.map_err(DiskError::Io)?;
        dev.ok_or(DiskError::Io(IoError::Detached))
    }

    fn with_cache<T>(
        &self,
        f: impl FnOnce(&mut BlockCache<D>) -> core::result::Result<T, IoError>,
    ) -> core::result::Result<T, IoError> {
        let mut c = self.cache.lock();
        c.as_mut().ok_or(IoError::Detached).and_then(f)
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.with_cache(|c| Ok(c.stats())).unwrap_or_default()
    }

    pub fn is_readonly(&self) -> bool {
        self.readonly
    }

    /// Refuses every change from now on (a volume whose check found damage), after writing
    /// what was gathered.
    pub fn set_readonly(&mut self) {
        let _ = self.sync();
        self.readonly = true;
    }

    /// Number of files and directories with an inode number handed out (bounded by use).
    pub fn known_nodes(&self) -> usize {
        self.paths.len()
    }

    fn path(&self, ino: Ino) -> Result<String> {
        self.paths.get(&ino).cloned().ok_or(Error::Stale)
    }

    fn child_path(&self, dir: Ino, name: &str) -> Result<String> {
        keel_vfs::path::check_name(name)?;
        let d = self.path(dir)?;
        Ok(if d == "/" { format!("/{name}") } else { format!("{d}/{name}") })
    }

    fn ino_for(&mut self, path: &str) -> Ino {
        if let Some(i) = self.inos.get(path) {
            return *i;
        }
        let ino = self.next;
        self.next += 1;
        self.paths.insert(ino, path.to_string());
        self.inos.insert(path.to_string(), ino);
        if self.paths.len() > self.max_nodes {
            self.forget_oldest();
        }
        ino
    }

    /// Forgets the numbers of the names looked up longest ago, except open files, the one with
    /// gathered writes and the newest half (a directory being listed keeps its entries). A
    /// forgotten number answers `Stale`; looking the name up again gives a new one.
    fn forget_oldest(&mut self) {
        let keep_from = self.next.saturating_sub((self.max_nodes / 2) as u64);
        let pending = self.pending.as_ref().map(|p| p.ino);
        let victims: Vec<Ino> = self
            .paths
            .range(ROOT + 1..keep_from)
            .map(|(i, _)| *i)
            .filter(|i| !self.open.contains_key(i) && Some(*i) != pending)
            .collect();
        for i in victims {
            if let Some(p) = self.paths.remove(&i) {
                self.inos.remove(&p);
            }
        }
    }

    /// The known names at `path` and under it, with their inode numbers.
    fn known_under(&self, path: &str) -> Vec<(String, Ino)> {
        let prefix = format!("{path}/");
        self.inos
            .range(path.to_string()..)
            .take_while(|(p, _)| p.as_str() == path || p.starts_with(&prefix))
            .map(|(p, i)| (p.clone(), *i))
            .collect()
    }

    /// Forgets `path` and everything under it (after a removal or a rename).
    fn forget(&mut self, path: &str) {
        for (p, i) in self.known_under(path) {
            self.inos.remove(&p);
            self.paths.remove(&i);
        }
    }

    /// Moves the names of `from` and everything under it to `to` (inode numbers stay).
    fn moved(&mut self, from: &str, to: &str) {
        for (p, i) in self.known_under(from) {
            let new = format!("{to}{}", &p[from.len()..]);
            self.inos.remove(&p);
            self.inos.insert(new.clone(), i);
            self.paths.insert(i, new);
        }
    }

    fn writable(&self) -> Result<()> {
        if self.readonly {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    fn take_failure(&mut self, ino: Ino) -> Result<()> {
        match self.failed {
            Some((i, e)) if i == ino => {
                self.failed = None;
                Err(e)
            }
            _ => Ok(()),
        }
    }

    /// Hands the gathered writes to littlefs as one commit.
    fn commit_pending(&mut self) -> Result<()> {
        let Some(p) = self.pending.take() else { return Ok(()) };
        let r = self.write_now(p.ino, p.offset, &p.data);
        if let Err(e) = r {
            self.failed = Some((p.ino, e));
        }
        r
    }

    fn commit_pending_for(&mut self, ino: Ino) -> Result<()> {
        if self.pending.as_ref().is_some_and(|p| p.ino == ino) {
            self.commit_pending()?;
        }
        self.take_failure(ino)
    }

    fn write_now(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<()> {
        let path = lfs_path(&self.path(ino)?)?;
        let start = u32::try_from(offset).map_err(|_| Error::FileTooLarge)?;
        u32::try_from(offset + data.len() as u64).map_err(|_| Error::FileTooLarge)?;
        self.fs
            .open_file_with_options_and_then(
                |o| o.write(true),
                &path,
                |f| {
                    f.seek(SeekFrom::Start(start))?;
                    let mut done = 0;
                    while done < data.len() {
                        let n = f.write(&data[done..])?;
                        if n == 0 {
                            return Err(LfsError::NO_SPACE);
                        }
                        done += n;
                    }
                    Ok(())
                },
            )
            .map_err(vfs_error)?;
        self.touch(&path);
        Ok(())
    }

    /// Records the modification time (best effort: the time is not worth failing a write for).
    /// A time less than a second old is kept: each change of it is a commit (and a flush), and
    /// a file being written would pay one for every batch of data.
    fn touch(&mut self, path: &littlefs2::path::Path) {
        let now = (self.clock)();
        if now != 0 && now.saturating_sub(self.mtime(path)) >= 1_000_000_000 {
            let _ = self.fs.set_attribute(path, MTIME_ATTR, &now.to_le_bytes());
        }
    }

    fn mtime(&self, path: &littlefs2::path::Path) -> u64 {
        let mut buf = [0u8; 8];
        match self.fs.attribute(path, MTIME_ATTR, &mut buf) {
            Ok(Some(a)) if a.total_size() == 8 => u64::from_le_bytes(buf),
            _ => 0,
        }
    }

    pub fn root(&self) -> Ino {
        ROOT
    }

    pub fn lookup(&mut self, dir: Ino, name: &str) -> Result<Ino> {
        let p = self.child_path(dir, name)?;
        self.fs.metadata(&lfs_path(&p)?).map_err(vfs_error)?;
        Ok(self.ino_for(&p))
    }

    pub fn stat(&mut self, ino: Ino) -> Result<Stat> {
        let p = self.path(ino)?;
        let lp = lfs_path(&p)?;
        let (kind, mut size) = if ino == ROOT {
            (FileType::Dir, 0)
        } else {
            let m = self.fs.metadata(&lp).map_err(vfs_error)?;
            (if m.is_dir() { FileType::Dir } else { FileType::File }, m.len() as u64)
        };
        if let Some(pend) = self.pending.as_ref().filter(|pend| pend.ino == ino) {
            size = size.max(pend.offset + pend.data.len() as u64);
        }
        let mtime = self.mtime(&lp);
        Ok(Stat { dev: 0, ino, kind, size, nlink: 1, atime: mtime, mtime, ctime: mtime })
    }

    pub fn read(&mut self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.commit_pending_for(ino)?;
        let path = lfs_path(&self.path(ino)?)?;
        let Ok(start) = u32::try_from(offset) else { return Ok(0) };
        self.fs
            .open_file_with_options_and_then(
                |o| o.read(true),
                &path,
                |f| {
                    let len = f.len()?;
                    if start as usize >= len {
                        return Ok(0);
                    }
                    f.seek(SeekFrom::Start(start))?;
                    let mut done = 0;
                    while done < buf.len() {
                        let n = f.read(&mut buf[done..])?;
                        if n == 0 {
                            break;
                        }
                        done += n;
                    }
                    Ok(done)
                },
            )
            .map_err(vfs_error)
    }

    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize> {
        self.writable()?;
        self.take_failure(ino)?;
        u32::try_from(offset + data.len() as u64).map_err(|_| Error::FileTooLarge)?;
        if let Some(p) = self.pending.as_mut() {
            if p.ino == ino && p.offset + p.data.len() as u64 == offset && p.data.len() + data.len() <= PENDING_MAX {
                p.data.extend_from_slice(data);
                return Ok(data.len());
            }
        }
        self.commit_pending()?;
        if data.len() >= PENDING_MAX {
            self.write_now(ino, offset, data)?;
        } else {
            self.pending = Some(Pending { ino, offset, data: data.to_vec() });
        }
        Ok(data.len())
    }

    pub fn set_size(&mut self, ino: Ino, size: u64) -> Result<()> {
        self.writable()?;
        self.commit_pending_for(ino)?;
        let path = lfs_path(&self.path(ino)?)?;
        let size =
            usize::try_from(u32::try_from(size).map_err(|_| Error::FileTooLarge)?).map_err(|_| Error::FileTooLarge)?;
        self.fs.open_file_with_options_and_then(|o| o.write(true), &path, |f| f.set_len(size)).map_err(vfs_error)?;
        self.touch(&path);
        Ok(())
    }

    pub fn readdir(&mut self, dir: Ino) -> Result<Vec<DirEntry>> {
        let p = self.path(dir)?;
        let names = self.list(&p)?;
        let mut out = Vec::with_capacity(names.len());
        for (name, is_dir) in names {
            let child = if p == "/" { format!("/{name}") } else { format!("{p}/{name}") };
            let ino = self.ino_for(&child);
            out.push(DirEntry { name, ino, kind: if is_dir { FileType::Dir } else { FileType::File } });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// (name, is a directory) of each entry of the directory at `path`.
    fn list(&self, path: &str) -> Result<Vec<(String, bool)>> {
        self.fs
            .read_dir_and_then(&lfs_path(path)?, |entries| {
                let mut v = Vec::new();
                for e in entries {
                    let e = e?;
                    let name = e.file_name().as_str();
                    if name == "." || name == ".." {
                        continue;
                    }
                    v.push((name.to_string(), e.metadata().is_dir()));
                }
                Ok(v)
            })
            .map_err(vfs_error)
    }

    pub fn create(&mut self, dir: Ino, name: &str, node: NewNode) -> Result<Ino> {
        self.writable()?;
        let p = self.child_path(dir, name)?;
        let lp = lfs_path(&p)?;
        match node {
            NewNode::File => self
                .fs
                .open_file_with_options_and_then(|o| o.write(true).create_new(true), &lp, |_| Ok(()))
                .map_err(vfs_error)?,
            NewNode::Dir => self.fs.create_dir(&lp).map_err(vfs_error)?,
            NewNode::Symlink(_) => return Err(Error::NotSupported),
        }
        self.touch(&lp);
        Ok(self.ino_for(&p))
    }

    fn remove(&mut self, dir: Ino, name: &str, want_dir: bool) -> Result<()> {
        self.writable()?;
        let p = self.child_path(dir, name)?;
        let lp = lfs_path(&p)?;
        let m = self.fs.metadata(&lp).map_err(vfs_error)?;
        match (m.is_dir(), want_dir) {
            (true, false) => return Err(Error::IsADirectory),
            (false, true) => return Err(Error::NotADirectory),
            _ => {}
        }
        if let Some(i) = self.inos.get(&p).copied() {
            if self.pending.as_ref().is_some_and(|pend| pend.ino == i) {
                self.pending = None;
            }
        }
        self.fs.remove(&lp).map_err(vfs_error)?;
        self.forget(&p);
        Ok(())
    }

    pub fn unlink(&mut self, dir: Ino, name: &str) -> Result<()> {
        self.remove(dir, name, false)
    }

    pub fn rmdir(&mut self, dir: Ino, name: &str) -> Result<()> {
        self.remove(dir, name, true)
    }

    pub fn rename(&mut self, from_dir: Ino, from: &str, to_dir: Ino, to: &str) -> Result<()> {
        self.writable()?;
        let f = self.child_path(from_dir, from)?;
        let t = self.child_path(to_dir, to)?;
        if f == t {
            return Ok(());
        }
        if t.starts_with(&format!("{f}/")) {
            return Err(Error::InvalidArgument);
        }
        // The moved file's gathered writes go first, so the rename commits after its data.
        self.commit_pending()?;
        let (lf, lt) = (lfs_path(&f)?, lfs_path(&t)?);
        let src = self.fs.metadata(&lf).map_err(vfs_error)?;
        if let Ok(dst) = self.fs.metadata(&lt) {
            match (src.is_dir(), dst.is_dir()) {
                (false, true) => return Err(Error::IsADirectory),
                (true, false) => return Err(Error::NotADirectory),
                _ => {}
            }
        }
        self.fs.rename(&lf, &lt).map_err(vfs_error)?;
        self.forget(&t);
        self.moved(&f, &t);
        Ok(())
    }

    pub fn set_times(&mut self, ino: Ino, _atime: Option<u64>, mtime: Option<u64>) -> Result<()> {
        self.writable()?;
        let path = lfs_path(&self.path(ino)?)?;
        if let Some(t) = mtime {
            self.fs.set_attribute(&path, MTIME_ATTR, &t.to_le_bytes()).map_err(vfs_error)?;
        }
        Ok(())
    }

    /// Size and usage.
    pub fn info(&self) -> FsInfo {
        let total = self.fs.total_blocks() as u64;
        let free = self.fs.available_blocks().map(|b| b as u64).unwrap_or(0);
        FsInfo {
            kind: "littlefs",
            total_bytes: total * BLOCK as u64,
            used_bytes: total.saturating_sub(free) * BLOCK as u64,
            readonly: self.readonly,
        }
    }

    /// Makes everything written so far durable: gathered writes, littlefs' caches, the block
    /// cache and the device's own.
    pub fn sync(&mut self) -> Result<()> {
        if self.readonly {
            return Ok(());
        }
        let committed = self.commit_pending();
        let failed = self.failed.take();
        self.with_cache(|c| c.flush()).map_err(|_| Error::Io)?;
        committed?;
        match failed {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    pub fn retain(&mut self, ino: Ino) {
        *self.open.entry(ino).or_insert(0) += 1;
    }

    /// The last handle of `ino` closed: its gathered writes are committed (a close is a commit
    /// point, as in littlefs' own API).
    pub fn release(&mut self, ino: Ino) {
        let last = match self.open.get_mut(&ino) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                self.open.remove(&ino);
                true
            }
            None => true,
        };
        if last {
            let _ = self.commit_pending_for(ino);
        }
    }

    /// Handles still open on this volume.
    pub fn open_handles(&self) -> usize {
        self.open.values().sum()
    }

    /// Walks every directory and reads every file, and has littlefs traverse every block in
    /// use. With `read_data` false only the directories and the block traversal are checked
    /// (what mounting does).
    pub fn check(&mut self, read_data: bool) -> Report {
        let _ = self.commit_pending();
        let mut r = Report { total_blocks: self.fs.total_blocks() as u64, ..Report::default() };
        match self.fs.available_blocks() {
            Ok(free) => r.used_blocks = r.total_blocks.saturating_sub(free as u64),
            Err(e) => r.problems.push(format!("block traversal: {}", lfs_error_name(e.code()))),
        }
        let mut dirs = alloc::vec![String::from("/")];
        let mut buf = alloc::vec![0u8; 16 * 1024];
        while let Some(d) = dirs.pop() {
            r.dirs += 1;
            let entries = match self.list(&d) {
                Ok(v) => v,
                Err(e) => {
                    r.problems.push(format!("{d}: cannot list: {e}"));
                    continue;
                }
            };
            for (name, is_dir) in entries {
                let p = if d == "/" { format!("/{name}") } else { format!("{d}/{name}") };
                if is_dir {
                    dirs.push(p);
                    continue;
                }
                r.files += 1;
                let Ok(lp) = lfs_path(&p) else {
                    r.problems.push(format!("{p}: bad name"));
                    continue;
                };
                let size = match self.fs.metadata(&lp) {
                    Ok(m) => m.len() as u64,
                    Err(e) => {
                        r.problems.push(format!("{p}: {}", lfs_error_name(e.code())));
                        continue;
                    }
                };
                r.bytes += size;
                if !read_data {
                    continue;
                }
                let got = self.fs.open_file_and_then(&lp, |f| {
                    let mut total = 0u64;
                    loop {
                        let n = f.read(&mut buf)?;
                        if n == 0 {
                            return Ok(total);
                        }
                        total += n as u64;
                    }
                });
                match got {
                    Ok(n) if n == size => {}
                    Ok(n) => r.problems.push(format!("{p}: {n} bytes readable of {size}")),
                    Err(e) => r.problems.push(format!("{p}: unreadable: {}", lfs_error_name(e.code()))),
                }
            }
        }
        r
    }
}
