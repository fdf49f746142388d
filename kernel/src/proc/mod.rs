//! Programs: WASM (the `wasm` command and the compiled tier's platform), native Linux programs,
//! one-shot jobs; and what running any program shares: reading its file, its memory limit, the
//! status it ends with when stopped from outside.

pub(crate) mod aot;
pub(crate) mod job;
pub(crate) mod native;
pub(crate) mod wasm;

use alloc::string::String;
use alloc::vec::Vec;

use keel_shell::exec::STATUS_INTERRUPTED;
use keel_shell::Io;
use keel_vfs::{FileType, Lookup};

use crate::fs;
use crate::mm::memory;

/// Exit status when a program cannot be loaded.
pub const STATUS_CANNOT_RUN: i32 = 126;
/// Exit status of a killed program (128 + SIGTERM).
pub const STATUS_KILLED: i32 = 143;
/// Largest program file (module, artefact or executable) accepted.
const MAX_PROGRAM: u64 = 256 << 20;

/// A program file's bytes: borrowed in place when they can never change (the boot archive),
/// else a copy.
pub enum Contents {
    Immutable(&'static [u8]),
    Copied(Vec<u8>),
}

impl core::ops::Deref for Contents {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Contents::Immutable(b) => b,
            Contents::Copied(v) => v,
        }
    }
}

/// Reads a program file whole, with its real path; Err: the status, after saying why (each
/// message starts with `who`: "wasm: FILE" or the program's name).
pub fn read_program(cwd: &str, file: &str, who: &str, io: &mut Io<'_>) -> Result<(String, Contents), i32> {
    let vfs = fs::vfs();
    match vfs.resolve(cwd, file, Lookup::FOLLOW).and_then(|n| n.stat().map(|s| (n, s))) {
        Ok((_, s)) if s.kind == FileType::Dir => {
            io.eprint(format_args!("{who}: is a directory\n"));
            Err(STATUS_CANNOT_RUN)
        }
        Ok((_, s)) if s.size > MAX_PROGRAM => {
            io.eprint(format_args!("{who}: too large ({} MiB)\n", s.size >> 20));
            Err(STATUS_CANNOT_RUN)
        }
        Ok((node, _)) => match node.fs.immutable_contents(node.ino) {
            Some(bytes) => Ok((node.path, Contents::Immutable(bytes))),
            None => match keel_commands::read_file(vfs, cwd, file) {
                Ok(bytes) => Ok((node.path, Contents::Copied(bytes))),
                Err(e) => {
                    io.eprint(format_args!("{who}: {e}\n"));
                    Err(STATUS_CANNOT_RUN)
                }
            },
        },
        Err(e) => {
            io.eprint(format_args!("{who}: {e}\n"));
            Err(127)
        }
    }
}

/// The default memory limit of a program: 256 MiB, or half of the free memory if that is less.
pub fn default_memory_limit() -> u64 {
    let (_, free) = memory::frame_stats();
    (free * 4096 / 2).min(256 << 20)
}

/// The status of a program stopped from outside: 1 when its output is gone, 130 for Ctrl-C,
/// 143 for a kill.
pub fn stopped_status(io: &mut Io<'_>) -> i32 {
    if io.output_broken() {
        1
    } else if crate::sched::task::killed() && !crate::drivers::serial::interrupt_pending() {
        STATUS_KILLED
    } else {
        STATUS_INTERRUPTED
    }
}
