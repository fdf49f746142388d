//! COM1: console output, the `log` backend, and the receive interrupt feeding the input queue.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use spin::Mutex;
use uart_16550::SerialPort;
use x86_64::instructions::interrupts;

/// I/O port of COM1.
const COM1: u16 = 0x3f8;

static PORT: Mutex<Option<SerialPort>> = Mutex::new(None);

/// Bytes received but not read yet (filled by the interrupt handler).
static INPUT: Mutex<Ring> = Mutex::new(Ring::new());

/// Set when Ctrl-C arrives while a command runs; cleared by whoever acts on it.
static INTERRUPT: AtomicBool = AtomicBool::new(false);
/// True while a command runs: Ctrl-C then interrupts it instead of reaching the line editor.
static COMMAND_RUNNING: AtomicBool = AtomicBool::new(false);

const RING_SIZE: usize = 4096;

struct Ring {
    buf: [u8; RING_SIZE],
    head: usize,
    len: usize,
}

impl Ring {
    const fn new() -> Self {
        Ring { buf: [0; RING_SIZE], head: 0, len: 0 }
    }

    fn push(&mut self, b: u8) {
        if self.len < RING_SIZE {
            self.buf[(self.head + self.len) % RING_SIZE] = b;
            self.len += 1;
        }
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let b = self.buf[self.head];
        self.head = (self.head + 1) % RING_SIZE;
        self.len -= 1;
        Some(b)
    }
}

/// Initialises COM1 (38400 8N1, FIFO, receive interrupt enabled).
pub fn init() {
    // SAFETY: COM1 at 0x3f8 is the standard first serial port; nothing else drives these ports.
    let mut port = unsafe { SerialPort::new(COM1) };
    port.init();
    *PORT.lock() = Some(port);
}

/// Writes raw bytes, turning `\n` into `\r\n` for the terminal.
pub fn write_bytes(data: &[u8]) {
    let mut chunk = [0u8; 256];
    let mut n = 0;
    for &b in data {
        if b == b'\n' {
            chunk[n] = b'\r';
            n += 1;
        }
        chunk[n] = b;
        n += 1;
        if n >= chunk.len() - 1 {
            write_raw(&chunk[..n]);
            n = 0;
        }
    }
    write_raw(&chunk[..n]);
}

/// Writes bytes exactly as given (the line editor produces its own `\r\n`), to the serial
/// port and the screen console.
pub fn write_raw(data: &[u8]) {
    interrupts::without_interrupts(|| {
        let mut guard = PORT.lock();
        if let Some(port) = guard.as_mut() {
            for &b in data {
                port.send_raw(b);
            }
        }
        crate::drivers::console::write(data);
    });
}

/// Adds keyboard input from another console (the PS/2 keyboard) to the input queue.
pub fn push_input(bytes: &[u8]) {
    interrupts::without_interrupts(|| {
        let mut input = INPUT.lock();
        for &b in bytes {
            if b == 0x03 && COMMAND_RUNNING.load(Ordering::SeqCst) {
                INTERRUPT.store(true, Ordering::SeqCst);
                input.clear();
            } else {
                input.push(b);
            }
        }
        drop(input);
        crate::sched::task::wake_input_waiters();
    });
}

/// COM1's line on the master PIC.
const COM1_IRQ: u8 = 4;
/// Set while COM1's interrupt is masked because the input queue is full.
static PAUSED: AtomicBool = AtomicBool::new(false);

/// Moves received bytes to the input queue (Ctrl-C to the interrupt flag while a command runs)
/// until it is full; then masks COM1's interrupt, so that the UART holds the rest and QEMU (or
/// the line) waits instead of bytes being dropped. Reading resumes it. Called from the COM1
/// interrupt and when polling; interrupts must be off.
fn drain_uart() {
    let mut guard = PORT.lock();
    let Some(port) = guard.as_mut() else { return };
    let mut input = INPUT.lock();
    while input.len < RING_SIZE {
        let Ok(b) = port.try_receive() else { break };
        if b == 0x03 && COMMAND_RUNNING.load(Ordering::SeqCst) {
            INTERRUPT.store(true, Ordering::SeqCst);
            // As a Unix terminal does on SIGINT: what was typed ahead goes with the command.
            input.clear();
        } else {
            input.push(b);
        }
    }
    let full = input.len >= RING_SIZE;
    if full != PAUSED.load(Ordering::Relaxed) {
        PAUSED.store(full, Ordering::Relaxed);
        crate::arch::cpu::set_irq_masked(COM1_IRQ, full);
    }
}

/// Called from the COM1 interrupt.
pub fn on_interrupt() {
    drain_uart();
    crate::sched::task::wake_input_waiters();
}

/// Marks whether a command runs (Ctrl-C interrupts it) or the line editor reads (Ctrl-C is a key).
pub fn set_command_running(running: bool) {
    INTERRUPT.store(false, Ordering::SeqCst);
    COMMAND_RUNNING.store(running, Ordering::SeqCst);
}

fn poll() {
    drain_uart();
}

/// Waits (halting the CPU between interrupts) for one byte of input.
pub fn read_blocking() -> u8 {
    loop {
        if let Some(b) = read_interruptible() {
            return b;
        }
    }
}

/// Waits for one byte of input; `None` if Ctrl-C interrupted the running command.
pub fn read_interruptible() -> Option<u8> {
    loop {
        if INTERRUPT.load(Ordering::SeqCst) {
            return None;
        }
        interrupts::disable();
        poll();
        // The lock guard must be gone before interrupts come back on.
        let next = INPUT.lock().pop();
        interrupts::enable();
        if next.is_some() || INTERRUPT.load(Ordering::SeqCst) {
            return next;
        }
        // Let other tasks run (the idle task halts the CPU when nobody needs it) until input
        // arrives: the receive interrupt wakes us; the timeout covers Ctrl-C and lost wake-ups.
        crate::sched::task::sleep_for_input(crate::arch::time::uptime_ns() + 20_000_000);
    }
}

/// True when input is waiting to be read.
pub fn input_available() -> bool {
    interrupts::without_interrupts(|| {
        poll();
        INPUT.lock().len > 0
    })
}

/// True once Ctrl-C was pressed during the running command (stays set until the command ends).
pub fn interrupt_pending() -> bool {
    INTERRUPT.load(Ordering::SeqCst)
}

/// A `fmt::Write` to the console.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Prints to the console.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => {{
        let _ = core::fmt::Write::write_fmt(&mut $crate::drivers::serial::Console, format_args!($($arg)*));
    }};
}

/// Prints a line to the console.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => {{
        $crate::kprint!($($arg)*);
        $crate::kprint!("\n");
    }};
}

/// Writes a message even if the port lock is held (panic and exception reports).
pub fn emergency_write(args: fmt::Arguments<'_>) {
    struct Raw;
    impl Write for Raw {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            // SAFETY: a fresh handle on COM1 for last-words output; the normal user may be
            // interrupted mid-byte, which at worst garbles a character.
            let mut port = unsafe { SerialPort::new(COM1) };
            for b in s.bytes() {
                if b == b'\n' {
                    port.send_raw(b'\r');
                }
                port.send_raw(b);
            }
            Ok(())
        }
    }
    let _ = Raw.write_fmt(args);
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        // Libraries speak only of problems (virtio-drivers logs its feature negotiation at
        // info); the kernel's own messages are the boot log.
        m.target().starts_with("keel") || m.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let ms = crate::arch::time::uptime_ns() / 1_000_000;
            kprintln!("[{:>5}.{:03}] {:<5} {}", ms / 1000, ms % 1000, record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Installs the serial logger; `quiet` keeps only warnings and errors.
pub fn init_logging(quiet: bool) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if quiet { log::LevelFilter::Warn } else { log::LevelFilter::Info });
}
