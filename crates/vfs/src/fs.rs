//! The interface every filesystem implements. Designed after what WASI preview1 needs:
//! inode-based lookups, positional reads and writes, sizes, times, links and symlinks.
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};

/// An inode number, unique within one filesystem.
pub type Ino = u64;

/// The kind of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    File,
    Dir,
    Symlink,
    CharDevice,
}

/// File metadata. Times are nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Device (mount) number; filled in by the VFS.
    pub dev: u64,
    pub ino: Ino,
    pub kind: FileType,
    pub size: u64,
    pub nlink: u64,
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub ino: Ino,
    pub kind: FileType,
}

/// What to create in a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewNode {
    File,
    Dir,
    Symlink(String),
}

/// Size and usage of a filesystem, for `df`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsInfo {
    pub kind: &'static str,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub readonly: bool,
}

/// A filesystem. Methods take `&self`: implementations lock internally, so one instance can be
/// shared by every task.
pub trait FileSystem: Send + Sync {
    /// The root directory's inode.
    fn root(&self) -> Ino;
    /// Looks `name` up in directory `dir`.
    fn lookup(&self, dir: Ino, name: &str) -> Result<Ino>;
    /// Metadata of a node.
    fn stat(&self, ino: Ino) -> Result<Stat>;
    /// Reads from a file at `offset`; returns the number of bytes read (0 at end of file).
    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize>;
    /// Writes to a file at `offset`, extending it (with zeros if past the end).
    fn write(&self, _ino: Ino, _offset: u64, _data: &[u8]) -> Result<usize> {
        Err(Error::ReadOnly)
    }
    /// Truncates or extends a file.
    fn set_size(&self, _ino: Ino, _size: u64) -> Result<()> {
        Err(Error::ReadOnly)
    }
    /// The entries of a directory, sorted by name (without `.` and `..`).
    fn readdir(&self, dir: Ino) -> Result<Vec<DirEntry>>;
    /// Creates a node named `name` in `dir`.
    fn create(&self, _dir: Ino, _name: &str, _node: NewNode) -> Result<Ino> {
        Err(Error::ReadOnly)
    }
    /// Adds another name for a file (hard link).
    fn link(&self, _ino: Ino, _dir: Ino, _name: &str) -> Result<()> {
        Err(Error::ReadOnly)
    }
    /// Removes a non-directory entry.
    fn unlink(&self, _dir: Ino, _name: &str) -> Result<()> {
        Err(Error::ReadOnly)
    }
    /// Removes an empty directory.
    fn rmdir(&self, _dir: Ino, _name: &str) -> Result<()> {
        Err(Error::ReadOnly)
    }
    /// Moves an entry, replacing a compatible target.
    fn rename(&self, _from_dir: Ino, _from: &str, _to_dir: Ino, _to: &str) -> Result<()> {
        Err(Error::ReadOnly)
    }
    /// The whole contents of a file that cannot change while the system runs (an archive served
    /// in place from memory nothing writes), borrowed without a copy; None for any other file.
    fn immutable_contents(&self, _ino: Ino) -> Option<&'static [u8]> {
        None
    }
    /// The target of a symlink.
    fn readlink(&self, _ino: Ino) -> Result<String> {
        Err(Error::InvalidArgument)
    }
    /// Sets access and/or modification times.
    fn set_times(&self, _ino: Ino, _atime: Option<u64>, _mtime: Option<u64>) -> Result<()> {
        Err(Error::ReadOnly)
    }
    /// Size and usage (may be costly: a statfs round trip for a 9P share).
    fn info(&self) -> FsInfo;
    /// True if nothing on this filesystem can be changed (checked before every change, so it
    /// must be cheap).
    fn readonly(&self) -> bool {
        false
    }
    /// A handle to `ino` was opened (keeps an unlinked file's data alive until closed).
    fn retain(&self, _ino: Ino) {}
    /// A handle to `ino` was closed.
    fn release(&self, _ino: Ino) {}
    /// Makes what was written durable: one file (`Some(ino)`) or everything (`None`). Memory
    /// filesystems have nothing to do.
    fn sync(&self, _ino: Option<Ino>) -> Result<()> {
        Ok(())
    }
    /// True while something holds this filesystem (open handles), so it cannot be unmounted.
    fn busy(&self) -> bool {
        false
    }
}
