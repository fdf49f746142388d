//! Keel's persistent storage, without hardware: a write-back block cache over any
//! [`BlockDevice`] and a littlefs [`Volume`] shaped like the VFS interface. The kernel puts a
//! virtio-blk disk underneath; `cargo xtask disk` puts an image file underneath on the host.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod cache;
pub mod volume;

pub use cache::{BlockCache, BlockDevice, CacheStats, IoError, RamDisk, BLOCK, SECTOR};
pub use volume::{format, DiskError, MountFailure, MountOptions, Report, Volume};
