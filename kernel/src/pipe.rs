//! Pipes between concurrently running commands: a bounded buffer. A writer blocks while it is
//! full, a reader while it is empty; closing the write end ends the stream, closing the read end
//! makes writes fail (broken pipe).

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;

use keel_shell::exec::{InputStream, OutputStream};
use spin::Mutex;

/// Bytes a pipe holds.
pub const PIPE_CAPACITY: usize = 64 * 1024;

struct Inner {
    buf: VecDeque<u8>,
    reader_open: bool,
    writer_open: bool,
}

/// The write end.
pub struct PipeWriter(Arc<Mutex<Inner>>);
/// The read end.
pub struct PipeReader(Arc<Mutex<Inner>>);

/// A new pipe.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let inner = Arc::new(Mutex::new(Inner {
        buf: VecDeque::with_capacity(PIPE_CAPACITY),
        reader_open: true,
        writer_open: true,
    }));
    (PipeWriter(inner.clone()), PipeReader(inner))
}

/// True when the running task should stop waiting (Ctrl-C for the foreground, or killed).
fn should_stop() -> bool {
    crate::task::killed() || crate::serial::interrupt_pending()
}

/// Waits a moment for the other end: first gives it the CPU, then sleeps a millisecond.
fn wait_turn(spins: &mut u32) {
    if *spins < 2 {
        crate::task::yield_now();
    } else {
        crate::task::sleep_ms(1);
    }
    *spins += 1;
}

impl OutputStream for PipeWriter {
    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        let mut rest = data;
        let mut spins = 0;
        while !rest.is_empty() {
            {
                let mut p = self.0.lock();
                if !p.reader_open {
                    return Err(String::from("broken pipe"));
                }
                let room = PIPE_CAPACITY - p.buf.len();
                if room > 0 {
                    let n = room.min(rest.len());
                    p.buf.extend(&rest[..n]);
                    rest = &rest[n..];
                    spins = 0;
                    continue;
                }
            }
            if should_stop() {
                return Err(String::from("interrupted"));
            }
            wait_turn(&mut spins);
        }
        Ok(())
    }
}

impl InputStream for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        let mut spins = 0;
        loop {
            {
                let mut p = self.0.lock();
                if !p.buf.is_empty() {
                    let n = buf.len().min(p.buf.len());
                    for (i, b) in p.buf.drain(..n).enumerate() {
                        buf[i] = b;
                    }
                    return Ok(n);
                }
                if !p.writer_open {
                    return Ok(0);
                }
            }
            if should_stop() {
                return Err(String::from("interrupted"));
            }
            wait_turn(&mut spins);
        }
    }

    fn ready_by(&mut self, deadline: u64) -> bool {
        let mut spins = 0;
        loop {
            {
                let p = self.0.lock();
                if !p.buf.is_empty() || !p.writer_open {
                    return true;
                }
            }
            if should_stop() {
                return true;
            }
            if crate::time::uptime_ns() >= deadline {
                return false;
            }
            wait_turn(&mut spins);
        }
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.0.lock().writer_open = false;
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let mut p = self.0.lock();
        p.reader_open = false;
        p.buf.clear();
    }
}
