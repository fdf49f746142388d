//! One-shot runs for `cargo xtask wasm`: with `keel.job=PATH` on the command line, Keel runs the
//! single `wasm` command described at PATH (see `keel-job`) instead of the shell, relays its stdio
//! over COM2 in frames, reports its exit status and powers off.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use keel_job::{Decoder, Kind};
use keel_shell::exec::{InputStream, OutputStream};
use keel_shell::{Io, Shell, Sink, Source, Terminal};
use spin::Mutex;
use uart_16550::SerialPort;
use x86_64::instructions::interrupts;

use crate::{arch::cpu, arch::power, arch::time, fs, sched::task};

/// I/O port of COM2, the job channel.
const COM2: u16 = 0x2f8;
/// Its line on the master PIC.
const COM2_IRQ: u8 = 3;
/// Stdin bytes held before the channel is paused (the host then waits to send more).
const HIGH_WATER: usize = 256 << 10;
/// Bytes sent with interrupts off at a time.
const SEND_CHUNK: usize = 256;

static PORT: Mutex<Option<SerialPort>> = Mutex::new(None);
static STDIN: Mutex<StdinQueue> = Mutex::new(StdinQueue::new());

struct StdinQueue {
    data: VecDeque<u8>,
    ended: bool,
    paused: bool,
    decoder: Option<Decoder>,
}

impl StdinQueue {
    const fn new() -> Self {
        StdinQueue { data: VecDeque::new(), ended: false, paused: false, decoder: None }
    }
}

/// The job description's path, if the command line names one.
pub fn job_path(cmdline: &str) -> Option<&str> {
    cmdline.split_whitespace().find_map(|w| w.strip_prefix("keel.job="))
}

/// Runs the job at `path` and powers off.
pub fn run(path: &str) -> ! {
    // SAFETY: COM2 at 0x2f8 is the standard second serial port; only this module drives it.
    let mut port = unsafe { SerialPort::new(COM2) };
    port.init();
    *PORT.lock() = Some(port);
    cpu::set_irq_masked(COM2_IRQ, false);
    // The host holds stdin back until the UART is set up (bytes before that could be lost).
    send(Kind::Ready, &[]);
    let status = run_job(path);
    send(Kind::Exit, &status.to_le_bytes());
    power::shutdown()
}

fn run_job(path: &str) -> i32 {
    let argv = match keel_commands::read_file(fs::vfs(), "/", path).map_err(|e| e.to_string()).and_then(|bytes| {
        let text = String::from_utf8(bytes).map_err(|_| "job description is not UTF-8".to_string())?;
        keel_job::decode_job(&text).map_err(|e| e.to_string())
    }) {
        Ok(a) => a,
        Err(e) => {
            send(Kind::Stderr, alloc::format!("keel: job {path}: {e}\n").as_bytes());
            return 2;
        }
    };
    let mut shell = Shell::new();
    let mut term = JobTerminal;
    let mut io = Io::terminal(&mut term);
    io.stdin = Source::Stream(Box::new(JobStdin));
    io.stdout = Sink::stream(Box::new(JobOut(Kind::Stdout)));
    io.stderr = Sink::stream(Box::new(JobOut(Kind::Stderr)));
    let mut full = alloc::vec![String::from("wasm")];
    full.extend(argv);
    crate::proc::wasm::command(&mut shell, &full, &mut io)
}

/// Sends `data` as frames of `kind`.
fn send(kind: Kind, data: &[u8]) {
    let mut wire = Vec::with_capacity(data.len() + 3);
    keel_job::encode(kind, data, &mut wire);
    for chunk in wire.chunks(SEND_CHUNK) {
        interrupts::without_interrupts(|| {
            if let Some(port) = PORT.lock().as_mut() {
                for &b in chunk {
                    port.send_raw(b);
                }
            }
        });
    }
}

/// Moves received bytes into the stdin queue, pausing the channel when the queue is full.
/// Interrupts must be off.
fn drain(q: &mut StdinQueue) {
    let mut guard = PORT.lock();
    let Some(port) = guard.as_mut() else { return };
    let decoder = q.decoder.get_or_insert_with(Decoder::new);
    let (data, ended) = (&mut q.data, &mut q.ended);
    while data.len() < HIGH_WATER {
        let Ok(b) = port.try_receive() else { break };
        let fed = decoder.feed(&[b], |frame| match frame.kind {
            Kind::Stdin => data.extend(frame.payload),
            Kind::StdinEnd => *ended = true,
            _ => {}
        });
        if fed.is_err() {
            // Out of step: nothing more can be trusted on this channel.
            *ended = true;
        }
    }
    let full = data.len() >= HIGH_WATER;
    if full != q.paused {
        q.paused = full;
        cpu::set_irq_masked(COM2_IRQ, full);
    }
}

/// Called from the COM2 interrupt.
pub fn on_interrupt() {
    drain(&mut STDIN.lock());
    task::wake_input_waiters();
}

struct JobStdin;

impl JobStdin {
    /// Waits until stdin has bytes or has ended (true), or `deadline` passes (false).
    fn wait(&mut self, deadline: Option<u64>) -> bool {
        loop {
            let ready = interrupts::without_interrupts(|| {
                let mut q = STDIN.lock();
                drain(&mut q);
                !q.data.is_empty() || q.ended
            });
            if ready {
                return true;
            }
            let now = time::uptime_ns();
            if deadline.is_some_and(|d| now >= d) {
                return false;
            }
            // The COM2 interrupt wakes us; the timeout covers a lost wake-up.
            let until = now + 20_000_000;
            task::sleep_for_input(deadline.map_or(until, |d| d.min(until)));
        }
    }
}

impl InputStream for JobStdin {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        self.wait(None);
        Ok(interrupts::without_interrupts(|| {
            let mut q = STDIN.lock();
            let n = buf.len().min(q.data.len());
            for (dst, src) in buf.iter_mut().zip(q.data.drain(..n)) {
                *dst = src;
            }
            drain(&mut q);
            n
        }))
    }

    fn ready_by(&mut self, deadline: u64) -> bool {
        self.wait(Some(deadline))
    }
}

struct JobOut(Kind);

impl OutputStream for JobOut {
    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        send(self.0, data);
        Ok(())
    }
}

/// The job's "console": there is none; stdio goes through the streams above.
struct JobTerminal;

impl Terminal for JobTerminal {
    fn write(&mut self, data: &[u8]) {
        send(Kind::Stderr, data);
    }

    fn read(&mut self, _buf: &mut [u8]) -> usize {
        0
    }
}
