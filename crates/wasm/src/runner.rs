//! Driving a [`Process`] to its end on behalf of a host that provides stdio, time and Ctrl-C.
//! The kernel's `wasm` command and the host tests use the same loop.
use alloc::string::String;
use alloc::vec::Vec;

use keel_wasi::Pending;

use crate::{Process, Step};

/// How a program ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status.
    Exited(i32),
    /// A trap, described.
    Trapped(String),
    /// Stopped by Ctrl-C.
    Interrupted,
    /// Used up its fuel budget (`--fuel`).
    OutOfFuel(u64),
}

/// Ctrl-C was pressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupted;

/// What the program's environment does for it.
pub trait Host {
    /// Output to stdout (1) or stderr (2).
    fn output(&mut self, fd: u32, data: &[u8]);
    /// Waits for stdin: some bytes, `None` at end of input, or `Err` on Ctrl-C. With a
    /// `deadline` (monotonic ns), gives up then with `Ok(Some(empty))`.
    fn stdin(&mut self, deadline: Option<u64>) -> Result<Option<Vec<u8>>, Interrupted>;
    /// Sleeps until the monotonic `deadline`, or `Err` on Ctrl-C.
    fn sleep_until(&mut self, deadline: u64) -> Result<(), Interrupted>;
    /// True once Ctrl-C was pressed (checked between slices: stops runaway loops too).
    fn interrupted(&mut self) -> bool;
    /// Monotonic nanoseconds.
    fn now(&self) -> u64;
    /// A slice ended: a chance to let others run.
    fn yield_now(&mut self) {}
    /// Waits until the network may have news for a socket (or until `deadline`, monotonic ns),
    /// or `Err` on Ctrl-C. Without a network event source: a short sleep.
    fn wait_network(&mut self, deadline: Option<u64>) -> Result<(), Interrupted> {
        let soon = self.now() + 10_000_000;
        self.sleep_until(deadline.map_or(soon, |d| d.min(soon)))
    }
    /// After each slice: the memory in use and the fuel used so far.
    fn stats(&mut self, _memory: usize, _fuel: u64) {}
}

fn flush(p: &mut Process, host: &mut dyn Host) {
    for (fd, data) in p.wasi().take_output() {
        host.output(fd, &data);
    }
}

/// Runs `p` until it exits, traps or is interrupted.
pub fn run(p: &mut Process, host: &mut dyn Host) -> Outcome {
    run_with_budget(p, host, None)
}

/// Like [`run`], stopping once `budget` fuel (if any) is used.
pub fn run_with_budget(p: &mut Process, host: &mut dyn Host, budget: Option<u64>) -> Outcome {
    loop {
        if let Some(b) = budget {
            if p.fuel_used() > b {
                return Outcome::OutOfFuel(b);
            }
        }
        let step = p.run();
        flush(p, host);
        host.stats(p.memory_bytes(), p.fuel_used());
        match step {
            Step::Exited(code) => return Outcome::Exited(code),
            Step::Trapped(msg) => return Outcome::Trapped(msg),
            Step::Preempted => {
                if host.interrupted() {
                    return Outcome::Interrupted;
                }
                host.yield_now();
            }
            Step::Blocked => {
                if let Err(Interrupted) = wait(p, host) {
                    return Outcome::Interrupted;
                }
            }
        }
    }
}

/// Waits until the blocked call can complete.
fn wait(p: &mut Process, host: &mut dyn Host) -> Result<(), Interrupted> {
    loop {
        if host.interrupted() {
            return Err(Interrupted);
        }
        let now = host.now();
        if p.wasi().ready(now) {
            return Ok(());
        }
        let (deadline, wants_stdin) = match p.wasi().pending() {
            Some(Pending::StdinRead { .. }) => (None, true),
            Some(Pending::Poll { deadline, wants_stdin, .. }) => (*deadline, *wants_stdin),
            _ => (None, false),
        };
        if p.wasi().waits_for_network() {
            // Sockets (and maybe stdin too: then checked every 50 ms, without blocking on it).
            let now = host.now();
            if wants_stdin {
                match host.stdin(Some(now))? {
                    Some(data) if !data.is_empty() => p.wasi().push_stdin(&data),
                    Some(_) => {}
                    None => p.wasi().close_stdin(),
                }
                host.wait_network(Some(deadline.map_or(now + 50_000_000, |d| d.min(now + 50_000_000))))?;
            } else {
                host.wait_network(deadline)?;
            }
        } else if wants_stdin {
            match host.stdin(deadline)? {
                Some(data) => p.wasi().push_stdin(&data),
                None => p.wasi().close_stdin(),
            }
        } else if let Some(d) = deadline {
            host.sleep_until(d)?;
        } else {
            host.yield_now();
        }
    }
}
