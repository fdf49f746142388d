//! Keel's shell, independent of the kernel: the command-line [`parse`]r, the line [`editor`] and
//! the interpreter ([`exec`]). The kernel supplies the console and the commands through traits.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod editor;
pub mod exec;
pub mod parse;

pub use editor::{Completer, Editor, Event};
pub use exec::{Host, Io, Shell, Sink, Source, Terminal};
