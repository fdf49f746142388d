//! Pipes between concurrently running commands: a bounded buffer. A writer blocks while it is
//! full, a reader while it is empty, each asleep on the pipe's wait queue until the other end
//! moves (no polling); closing the write end ends the stream, closing the read end makes writes
//! fail (broken pipe).

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;

use crate::sched::lock::{Ordered, Rank};
use keel_shell::exec::{InputStream, OutputStream};

use crate::sched::task::WaitQueue;

/// Bytes a pipe holds.
pub const PIPE_CAPACITY: usize = 64 * 1024;

struct Inner {
    buf: VecDeque<u8>,
    reader_open: bool,
    writer_open: bool,
}

/// The buffer and the tasks waiting on it (at most the reader and the writer).
struct Shared {
    inner: Ordered<Inner>,
    queue: WaitQueue,
}

/// The write end.
pub struct PipeWriter(Arc<Shared>);
/// The read end.
pub struct PipeReader(Arc<Shared>);

/// A new pipe.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let shared = Arc::new(Shared {
        inner: Ordered::new(
            Rank::Pipe,
            Inner { buf: VecDeque::with_capacity(PIPE_CAPACITY), reader_open: true, writer_open: true },
        ),
        queue: WaitQueue::new(),
    });
    (PipeWriter(shared.clone()), PipeReader(shared))
}

/// True when the running task should stop waiting (Ctrl-C for the foreground, or killed).
fn should_stop() -> bool {
    crate::sched::task::killed() || crate::drivers::serial::interrupt_pending()
}

/// How long a waiter sleeps at most before looking again (a wake is expected long before).
const RECHECK_NS: u64 = 1_000_000_000;

impl OutputStream for PipeWriter {
    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        let mut rest = data;
        while !rest.is_empty() {
            {
                let mut p = self.0.inner.lock();
                if !p.reader_open {
                    return Err(String::from("broken pipe"));
                }
                let room = PIPE_CAPACITY - p.buf.len();
                if room > 0 {
                    let n = room.min(rest.len());
                    p.buf.extend(&rest[..n]);
                    rest = &rest[n..];
                    drop(p);
                    self.0.queue.wake_all();
                    continue;
                }
            }
            if should_stop() {
                return Err(String::from("interrupted"));
            }
            let inner = &self.0.inner;
            self.0.queue.wait(
                // try_lock: the check runs with interrupts off, and a preempted task may hold
                // the lock (then do not sleep: look again with interrupts on).
                || inner.try_lock().is_none_or(|p| p.buf.len() < PIPE_CAPACITY || !p.reader_open) || should_stop(),
                crate::arch::time::uptime_ns() + RECHECK_NS,
            );
        }
        Ok(())
    }
}

impl InputStream for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        loop {
            {
                let mut p = self.0.inner.lock();
                if !p.buf.is_empty() {
                    let n = buf.len().min(p.buf.len());
                    for (i, b) in p.buf.drain(..n).enumerate() {
                        buf[i] = b;
                    }
                    drop(p);
                    self.0.queue.wake_all();
                    return Ok(n);
                }
                if !p.writer_open {
                    return Ok(0);
                }
            }
            if should_stop() {
                return Err(String::from("interrupted"));
            }
            self.wait_readable(crate::arch::time::uptime_ns() + RECHECK_NS);
        }
    }

    fn ready_by(&mut self, deadline: u64) -> bool {
        loop {
            {
                let p = self.0.inner.lock();
                if !p.buf.is_empty() || !p.writer_open {
                    return true;
                }
            }
            if should_stop() {
                return true;
            }
            if crate::arch::time::uptime_ns() >= deadline {
                return false;
            }
            self.wait_readable(deadline);
        }
    }
}

impl PipeReader {
    /// Sleeps until there is data, the writer is gone, Ctrl-C or a kill, or `until`.
    fn wait_readable(&self, until: u64) {
        let inner = &self.0.inner;
        self.0.queue.wait(
            // try_lock: as in write.
            || inner.try_lock().is_none_or(|p| !p.buf.is_empty() || !p.writer_open) || should_stop(),
            until,
        );
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.0.inner.lock().writer_open = false;
        self.0.queue.wake_all();
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        {
            let mut p = self.0.inner.lock();
            p.reader_open = false;
            p.buf.clear();
        }
        self.0.queue.wake_all();
    }
}
