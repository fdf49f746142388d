//! Native programs: static (PIE) x86_64 Linux executables run by their path or name, each in its
//! own address space in ring 3, with the shell's streams as stdin/stdout/stderr. `keel-linux`
//! decides everything (loading, memory map, system calls); this file gives it page tables, the
//! console, clocks and sleep, and turns traps into reports.
//!
//! A native program is not sandboxed like a WASI guest: it reaches every path the shell can.

use alloc::format;
use alloc::string::String;

use keel_linux::abi::{self, errno};
use keel_linux::process::{Fault, Host, Outcome, Process, Setup, Stop};
use keel_shell::{Io, Shell, Source};
use keel_vfs::{FileType, OpenOptions};

use crate::arch::user::{self, AddressSpace, Exit, UserRegs};
use crate::proc::{default_memory_limit, read_program, stopped_status, STATUS_CANNOT_RUN};
use crate::{arch::time, fs, mm::memory, random, sched::task};

/// True if `path` (from `cwd`) is an ELF file.
pub fn is_native(cwd: &str, path: &str) -> bool {
    let Ok(h) = fs::vfs().open(cwd, path, OpenOptions::read(), false) else { return false };
    if !h.stat().is_ok_and(|s| s.kind == FileType::File) {
        return false;
    }
    let mut magic = [0u8; 4];
    h.pread(&mut magic, 0).is_ok_and(|n| n == 4) && keel_linux::elf::is_elf(&magic)
}

struct NativeHost<'i, 'a> {
    space: AddressSpace,
    io: &'i mut Io<'a>,
    cpu_at_start: u64,
}

impl NativeHost<'_, '_> {
    fn stop(&mut self) -> bool {
        self.io.interrupted() || task::killed()
    }
}

impl Host for NativeHost<'_, '_> {
    fn map_pages(&mut self, _addr: u64, len: u64, _prot: u64) -> Result<(), i64> {
        // Frames come when pages are touched; a mapping larger than what the system could
        // still give is refused now (the kernel keeps its reserve, as for WASM guests).
        if len > memory::available_for_guests() as u64 {
            return Err(-errno::ENOMEM);
        }
        Ok(())
    }

    fn populate(&mut self, addr: u64, len: u64, prot: u64) -> Result<(), i64> {
        if len > memory::available_for_guests() as u64 || !self.space.populate(addr, len, prot) {
            return Err(-errno::ENOMEM);
        }
        Ok(())
    }

    fn move_pages(&mut self, from: u64, to: u64, len: u64, prot: u64) {
        self.space.move_pages(from, to, len, prot);
    }

    fn unmap_pages(&mut self, addr: u64, len: u64) {
        self.space.unmap(addr, len);
    }

    fn protect_pages(&mut self, addr: u64, len: u64, prot: u64) {
        self.space.protect(addr, len, prot);
    }

    fn read_user(&mut self, addr: u64, buf: &mut [u8]) {
        self.space.read(addr, buf);
    }

    fn write_user(&mut self, addr: u64, data: &[u8]) {
        self.space.write(addr, data);
    }

    fn read_stdin(&mut self, buf: &mut [u8]) -> Result<usize, Stop> {
        let n = self.io.read(buf);
        if self.stop() {
            return Err(Stop);
        }
        Ok(n)
    }

    fn write_out(&mut self, fd: u32, data: &[u8]) -> Result<usize, i64> {
        if fd == 2 {
            self.io.err(data);
        } else {
            self.io.out(data);
        }
        if self.io.output_broken() {
            return Err(-errno::EPIPE);
        }
        Ok(data.len())
    }

    fn isatty(&self, fd: u32) -> bool {
        match fd {
            0 => matches!(self.io.stdin, Source::Terminal),
            1 => self.io.stdout_is_terminal(),
            _ => true,
        }
    }

    fn winsize(&self) -> (u16, u16) {
        (80, 24)
    }

    fn realtime_ns(&self) -> u64 {
        time::realtime_ns()
    }

    fn monotonic_ns(&self) -> u64 {
        time::uptime_ns()
    }

    fn cpu_ns(&self) -> u64 {
        task::cpu_ns().saturating_sub(self.cpu_at_start)
    }

    fn random(&mut self, buf: &mut [u8]) {
        random::fill(buf);
    }

    fn sleep_until(&mut self, deadline: u64) -> Result<(), Stop> {
        let io = &mut *self.io;
        if crate::shell::sleep_until(deadline, || io.interrupted() || task::killed()) {
            return Err(Stop);
        }
        Ok(())
    }

    fn yield_now(&mut self) {
        task::yield_now();
    }

    fn set_fs_base(&mut self, base: u64) {
        user::set_fs_base(base);
    }

    fn note(&mut self, line: &str) {
        self.io.err(line.as_bytes());
    }
}

/// The signal for an exception vector.
fn signal_of(vector: u64) -> i32 {
    match vector {
        0 | 16 | 19 => abi::SIGFPE,
        6 => abi::SIGILL,
        3 | 1 => abi::SIGTRAP,
        17 => abi::SIGBUS,
        _ => abi::SIGSEGV,
    }
}

/// What happened, in words, for the report.
fn describe(vector: u64, error: u64) -> String {
    match vector {
        0 => "divide error".into(),
        6 => "illegal instruction".into(),
        3 => "breakpoint".into(),
        13 => "general protection fault".into(),
        14 => {
            let what = if error & 16 != 0 {
                "executing"
            } else if error & 2 != 0 {
                "writing"
            } else {
                "reading"
            };
            format!("page fault {what}")
        }
        16 | 19 => "floating-point exception".into(),
        17 => "alignment check".into(),
        v => format!("exception {v}"),
    }
}

/// Runs the executable `file` with `argv` (argv[0] as typed) and returns its exit status.
pub fn run(shell: &Shell, file: &str, argv: &[String], io: &mut Io<'_>, trace: bool) -> i32 {
    let cwd = keel_commands::cwd(shell);
    let vfs = fs::vfs();
    let name = argv.first().cloned().unwrap_or_else(|| String::from(file));
    // The boot archive's files are read in place; others are copied for the load only.
    let (exe, contents) = match read_program(&cwd, file, &name, io) {
        Ok(p) => p,
        Err(status) => return status,
    };
    let Some(space) = AddressSpace::new() else {
        io.eprint(format_args!("{name}: out of memory\n"));
        return STATUS_CANNOT_RUN;
    };
    space.activate();
    let mut host = NativeHost { space, io, cpu_at_start: task::cpu_ns() };
    let env = shell.environment();
    let setup =
        Setup { vfs, exe, argv, env: &env, cwd, pid: task::current_pid(), limit: default_memory_limit(), trace };
    let (mut process, start) = match Process::load(setup, &contents, &mut host) {
        Ok(p) => p,
        Err(e) => {
            host.io.eprint(format_args!("{name}: {e}\n"));
            return STATUS_CANNOT_RUN;
        }
    };
    drop(contents);
    task::set_engine("native");
    let mut regs = UserRegs::new(start.entry, start.rsp);
    let status = loop {
        match user::run(&mut regs) {
            Exit::Syscall => {
                let g = &regs.gpr;
                let args = [g[user::RDI], g[user::RSI], g[user::RDX], g[user::R10], g[user::R8], g[user::R9]];
                let outcome = process.syscall(&mut host, g[user::RAX], args);
                task::set_mem(process.memory_bytes());
                match outcome {
                    Outcome::Return(v) => regs.gpr[user::RAX] = v as u64,
                    Outcome::Exit(code) => break code,
                    // A shell says nothing about SIGPIPE: the reader is gone on purpose.
                    Outcome::Signal(abi::SIGPIPE) => break 128 + abi::SIGPIPE,
                    Outcome::Signal(sig) => {
                        host.io.eprint(format_args!("{name}: killed by {} (sent to itself)\n", abi::signal_name(sig)));
                        break 128 + sig;
                    }
                    Outcome::Stop => break stopped_status(host.io),
                }
                if task::killed() {
                    break stopped_status(host.io);
                }
            }
            Exit::PageFault { addr, error } => {
                let (write, exec, present) = (error & 2 != 0, error & 16 != 0, error & 1 != 0);
                let rip = regs.gpr[user::RIP];
                match process.fault(&mut host, addr, write, exec, present) {
                    Fault::Mapped => {
                        task::set_mem(process.memory_bytes());
                        if task::killed() {
                            break stopped_status(host.io);
                        }
                    }
                    Fault::Denied => {
                        let what = format!("{} {addr:#x} ({})", describe(14, error), process.describe_fault(addr));
                        break killed(host.io, &name, abi::SIGSEGV, &what, rip, start.base);
                    }
                    Fault::NoMemory => {
                        let what = format!("out of memory (touching {addr:#x})");
                        break killed(host.io, &name, abi::SIGKILL, &what, rip, start.base);
                    }
                }
            }
            Exit::Trap(t) if t.vector == user::KILLED => break stopped_status(host.io),
            // Page faults come as `PageFault`: this is any other exception.
            Exit::Trap(t) => {
                break killed(host.io, &name, signal_of(t.vector), &describe(t.vector, t.error), t.rip, start.base)
            }
        }
    };
    if process.limit_hit() {
        host.io.eprint(format_args!("{name}: memory limit of {} reached\n", keel_shell::Bytes(process.limit())));
    }
    process.release(&mut host);
    drop(process);
    drop(host);
    task::set_engine("");
    task::set_mem(0);
    status
}

/// Reports a program ended by `sig` (what happened, where: `rip` and its offset in the image
/// loaded at `base`) and returns its status, 128 + `sig`.
fn killed(io: &mut Io<'_>, name: &str, sig: i32, what: &str, rip: u64, base: u64) -> i32 {
    let place = if rip >= base && rip - base < keel_linux::elf::MAX_SPAN {
        format!(" (image+{:#x})", rip - base)
    } else {
        String::new()
    };
    io.eprint(format_args!("{name}: killed by {}: {what} at rip {rip:#x}{place}\n", abi::signal_name(sig)));
    128 + sig
}

/// `trace PROGRAM [ARGS...]`: runs a native program showing each system call and its result.
pub fn trace_command(shell: &Shell, argv: &[String], io: &mut Io<'_>) -> i32 {
    let Some(prog) = argv.get(1) else {
        io.eprint(format_args!("usage: trace PROGRAM [ARGS...]\n"));
        return 2;
    };
    let cwd = keel_commands::cwd(shell);
    let file = if prog.contains('/') { Some(prog.clone()) } else { crate::proc::wasm::find_on_path(shell, prog) };
    let Some(file) = file.filter(|f| is_native(&cwd, f)) else {
        io.eprint(format_args!("trace: {prog}: not a native program (trace follows Linux system calls)\n"));
        return 127;
    };
    run(shell, &file, &argv[1..], io, true)
}

/// For `mem`: frames held by native programs (their pages and page tables).
pub fn pages_in_use() -> u64 {
    user::user_pages()
}
