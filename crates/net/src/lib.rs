//! Keel's networking logic, free of hardware: the smoltcp-based [`stack`] the kernel drives
//! from its virtio-net interrupts, [`url`] parsing and the HTTP/1.1 client behind `fetch`
//! ([`http`]). Tested on the host over smoltcp's loopback device.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod http;
pub mod stack;
#[cfg(feature = "tls")]
pub mod tls;
pub mod url;

/// The smoltcp the stack is built on (its device trait, for drivers and tests).
pub use smoltcp;
pub use stack::{Counters, IfConfig, Listener, Lookup, NetError, Sock, Stack, TcpStatus};
