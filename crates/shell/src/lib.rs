//! Keel's shell, independent of the kernel: the command-line [`parse`]r, the line [`editor`] and
//! the interpreter ([`exec`]). The kernel supplies the console and the commands through traits.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod editor;
pub mod exec;
pub mod parse;

/// Formats a byte count the way `mem` and `df` print it: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub struct Bytes(pub u64);

impl core::fmt::Display for Bytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut v = self.0 as f64;
        let mut u = 0;
        while v >= 1024.0 && u + 1 < UNITS.len() {
            v /= 1024.0;
            u += 1;
        }
        if u == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{v:.1} {}", UNITS[u])
        }
    }
}

pub use editor::{Completer, Editor, Event};
pub use exec::{Host, Io, Shell, Sink, Source, Terminal};
