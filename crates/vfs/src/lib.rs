//! Keel's virtual filesystem.
//!
//! - [`Vfs`]: a namespace of mounted filesystems with path walking that follows symlinks,
//!   crosses mount points and, in confined mode, never leaves a base directory (the WASI sandbox).
//! - [`MemFs`]: read-write files in memory (`/`, `/tmp`), with a size limit.
//! - [`TarFs`]: the boot archive served in place, read-only (`/extra_files`).
//! - [`DevFs`]: `/dev/null`, `/dev/zero`, `/dev/random`.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod devfs;
pub mod error;
pub mod fs;
pub mod memfs;
pub mod path;
pub mod tarfs;
mod vfs;

pub use devfs::DevFs;
pub use error::{Error, Result};
pub use fs::{DirEntry, FileSystem, FileType, FsInfo, Ino, NewNode, Stat};
pub use memfs::MemFs;
pub use tarfs::TarFs;
pub use vfs::{Handle, Lookup, Node, OpenOptions, SeekFrom, Vfs, MAX_SYMLINKS};
