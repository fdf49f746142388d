//! 9P2000.L for Keel: message encoding and decoding, a client over any request/response
//! transport (virtio-9p in the kernel), and [`P9Fs`], a VFS filesystem serving a host folder.
//!
//! Path resolution stays in Keel's VFS: this filesystem only ever walks one name at a time from a
//! known directory and never sends `..`, so a guest cannot leave the shared folder; symlinks are
//! read and resolved by the VFS, inside Keel's namespace.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod fs;
mod proto;

pub use fs::P9Fs;
pub use proto::{errno_to_vfs, Client, P9Error, Qid, Transport, MSIZE};
