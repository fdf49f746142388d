//! WASI preview1 for Keel: all 46 functions of `wasi_snapshot_preview1`, implemented over the
//! VFS with a capability sandbox (a guest reaches only its preopened directories).
//!
//! This crate knows no WASM engine. Each function takes the guest's linear memory as a byte
//! slice and returns an errno, or an [`Abort`]: the guest exits, traps, or must be suspended
//! (stdin has no data yet, `poll_oneoff` must wait, output must be flushed). Suspension lets the
//! kernel block a program without blocking inside the engine: the runner waits, then calls
//! [`WasiCtx::complete`] and resumes the guest with the errno it returns.
#![no_std]
#![forbid(unsafe_code)]
// The functions take the WASI ABI's parameters one for one.
#![allow(clippy::too_many_arguments)]

extern crate alloc;

mod ctx;
pub mod dispatch;
pub mod mem;
pub mod types;
pub use ctx::vfs_errno;

pub use ctx::{Abort, Config, Pending, Preopen, SockOp, Sockets, System, WasiCtx, OUTPUT_FLUSH_AT};
pub use types::{errno, Errno, FUNCTIONS};

/// A guest's WASI state may move with it to another task, or live in an engine's store that
/// requires `Send` (the compiled tier's).
const _: fn() = || {
    fn send<T: Send>() {}
    send::<WasiCtx>();
};
