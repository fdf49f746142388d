//! The `wasm` command: runs a WASI program from the VFS with the shell's streams as its stdio.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use keel_shell::{Io, Shell, Source};
use keel_vfs::{FileType, Lookup};
use keel_wasi::{Config, Preopen, System, WasiCtx};
use keel_wasm::cli::{EngineChoice, WasmArgs, USAGE};
use keel_wasm::runner::{self, Interrupted, Outcome};
use keel_wasm::{Limits, Process, Program};

use crate::proc::aot;
use crate::proc::{default_memory_limit, read_program, stopped_status, Contents, STATUS_CANNOT_RUN};
use crate::{arch::time, fs, mm::memory, random};

/// Exit status after a trap (as wasmtime: 128 + SIGABRT).
const STATUS_TRAP: i32 = 134;
/// Exit status after `--timeout` (as coreutils' `timeout`).
const STATUS_TIMED_OUT: i32 = 124;

struct KernelSystem;

impl System for KernelSystem {
    fn realtime_ns(&self) -> u64 {
        time::realtime_ns()
    }

    fn monotonic_ns(&self) -> u64 {
        time::uptime_ns()
    }

    fn random(&mut self, buf: &mut [u8]) {
        random::fill(buf);
    }
}

struct RunHost<'i, 'a> {
    io: &'i mut Io<'a>,
    /// `--timeout`: the monotonic time the program must be done by.
    until: Option<u64>,
}

impl RunHost<'_, '_> {
    fn timed_out(&self) -> bool {
        self.until.is_some_and(|u| time::uptime_ns() >= u)
    }

    /// The earlier of `deadline` and the timeout.
    fn cap(&self, deadline: Option<u64>) -> Option<u64> {
        match (deadline, self.until) {
            (Some(d), Some(u)) => Some(d.min(u)),
            (d, u) => d.or(u),
        }
    }
}

impl runner::Host for RunHost<'_, '_> {
    fn output(&mut self, fd: u32, data: &[u8]) {
        if fd == 2 {
            self.io.err(data);
        } else {
            self.io.out(data);
        }
    }

    fn stdin(&mut self, deadline: Option<u64>) -> Result<Option<Vec<u8>>, Interrupted> {
        if let Some(d) = self.cap(deadline) {
            if !self.io.wait_readable(d) {
                if self.timed_out() {
                    return Err(Interrupted);
                }
                return Ok(Some(Vec::new()));
            }
        }
        let mut buf = alloc::vec![0u8; 64 * 1024];
        let n = self.io.read(&mut buf);
        if self.io.interrupted() {
            return Err(Interrupted);
        }
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some(buf))
    }

    fn sleep_until(&mut self, deadline: u64) -> Result<(), Interrupted> {
        let end = self.cap(Some(deadline)).unwrap_or(deadline);
        if crate::shell::sleep_until(end, || self.io.interrupted()) || self.timed_out() {
            return Err(Interrupted);
        }
        Ok(())
    }

    fn wait_network(&mut self, deadline: Option<u64>) -> Result<(), Interrupted> {
        // Woken by the network card (or input: Ctrl-C), at the deadline, or after 100 ms to
        // look at Ctrl-C and the stack's timers again.
        let now = time::uptime_ns();
        let end = self.cap(deadline).map_or(now + 100_000_000, |d| d.min(now + 100_000_000));
        crate::sched::task::sleep_for(crate::sched::task::EVENT_NET | crate::sched::task::EVENT_INPUT, end);
        if self.io.interrupted() || self.timed_out() {
            return Err(Interrupted);
        }
        Ok(())
    }

    fn stats(&mut self, memory: usize, _fuel: u64) {
        crate::sched::task::set_mem(memory as u64);
    }

    fn yield_now(&mut self) {
        crate::sched::task::yield_now();
    }

    fn interrupted(&mut self) -> bool {
        self.io.interrupted() || self.timed_out()
    }

    fn now(&self) -> u64 {
        time::uptime_ns()
    }
}

/// `wasm ARGS...`
pub fn command(shell: &mut Shell, argv: &[String], io: &mut Io<'_>) -> i32 {
    let parsed = match WasmArgs::parse(&argv[1..]) {
        Ok(a) => a,
        Err(e) => {
            io.eprint(format_args!("wasm: {e}\n{USAGE}\n"));
            return 2;
        }
    };
    if let Some(cpu) = parsed.cpu {
        if !crate::sched::task::pin_current(Some(cpu)) {
            io.eprint(format_args!("wasm: --cpu {cpu}: no such CPU ({} online)\n", crate::arch::smp::online()));
            return 2;
        }
    }
    let name = parsed.argv0.clone().unwrap_or_else(|| parsed.file.clone());
    run_named(shell, parsed, name, io)
}

/// `$PATH` when the shell has none: native programs, then WASI ones.
pub const DEFAULT_PATH: &str = "/extra_files/bin:/extra_files/wasm";

/// Finds a program on `$PATH` (default `/extra_files/wasm`): `NAME.wasm` or `NAME`.
pub fn find_on_path(shell: &Shell, name: &str) -> Option<String> {
    if name.contains('/') || name.is_empty() {
        return None;
    }
    let path = shell.var("PATH").unwrap_or(DEFAULT_PATH).to_string();
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        for cand in [format!("{dir}/{name}.wasm"), format!("{dir}/{name}")] {
            if fs::vfs().stat("/", &cand, Lookup::FOLLOW).is_ok_and(|s| s.kind == FileType::File) {
                return Some(cand);
            }
        }
    }
    None
}

/// Names of the programs on `$PATH` (for completion and `help`).
pub fn programs_on_path(shell: &Shell) -> Vec<String> {
    let path = shell.var("PATH").unwrap_or(DEFAULT_PATH).to_string();
    let mut out = Vec::new();
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        if let Ok(entries) = fs::vfs().readdir("/", dir, false) {
            for e in entries {
                if let Some(n) = e.name.strip_suffix(".wasm") {
                    out.push(n.to_string());
                } else if e.kind == FileType::File && crate::proc::native::is_native(dir, &e.name) {
                    out.push(e.name);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Runs a program found on `$PATH` by name, with the current directory preopened as `.`.
pub fn run_by_name(shell: &mut Shell, file: String, argv: &[String], io: &mut Io<'_>) -> i32 {
    let args =
        WasmArgs { dirs: alloc::vec![(".".into(), ".".into())], file, args: argv[1..].to_vec(), ..WasmArgs::default() };
    let name = argv[0].clone();
    run_named(shell, args, name, io)
}

/// Reads a module (or artefact) file whole; Err: the status, after saying why.
fn read_module(cwd: &str, file: &str, io: &mut Io<'_>) -> Result<Contents, i32> {
    read_program(cwd, file, &format!("wasm: {file}"), io).map(|(_, contents)| contents)
}

/// The engine for `bytes` (FILE's contents): the compiled tier when asked for or when FILE has an
/// artefact this build sealed, else the interpreter. Err: the status, after saying why.
fn choose_program(a: &WasmArgs, cwd: &str, bytes: &Contents, io: &mut Io<'_>) -> Result<Program, i32> {
    let file = &a.file;
    let cannot = |io: &mut Io<'_>, what: &str, e: &dyn core::fmt::Display| {
        io.eprint(format_args!("wasm: {what}: {e}\n"));
        STATUS_CANNOT_RUN
    };
    if aot::is_artefact(bytes) {
        if a.engine == EngineChoice::Interp || a.fuel.is_some() {
            return Err(cannot(
                io,
                file,
                &"an artefact runs only on the compiled tier (give the module for --engine interp or --fuel)",
            ));
        }
        return aot::load(bytes, None).map_err(|e| cannot(io, file, &e));
    }
    if a.engine != EngineChoice::Interp && a.fuel.is_none() {
        let path = keel_artefact::artefact_path(file);
        if fs::vfs().stat(cwd, &path, Lookup::FOLLOW).is_ok() {
            let artefact = read_module(cwd, &path, io)?;
            match aot::load(&artefact, Some(bytes)) {
                Ok(p) => return Ok(p),
                Err(e) if a.engine == EngineChoice::Compiled => return Err(cannot(io, &path, &e)),
                Err(e) => io.eprint(format_args!("wasm: {path}: refused: {e}; the interpreter runs {file}\n")),
            }
        } else if a.engine == EngineChoice::Compiled {
            let why = format!(
                "no artefact {path} (`cargo xtask build` makes them for bundled programs, `--compile` for shared ones)"
            );
            return Err(cannot(io, file, &why));
        }
    }
    Program::load(&bytes[..]).map_err(|e| cannot(io, file, &e))
}

fn run_named(shell: &mut Shell, a: WasmArgs, argv0: String, io: &mut Io<'_>) -> i32 {
    let cwd = keel_commands::cwd(shell);
    let vfs = fs::vfs();
    let file = &a.file;
    let bytes = match read_module(&cwd, file, io) {
        Ok(b) => b,
        Err(status) => return status,
    };
    let program = match choose_program(&a, &cwd, &bytes, io) {
        Ok(p) => p,
        Err(status) => return status,
    };
    drop(bytes);
    let mut preopens = Vec::new();
    for (host, guest) in &a.dirs {
        match vfs.resolve(&cwd, host, Lookup::FOLLOW) {
            Ok(n) if n.stat().is_ok_and(|s| s.kind == FileType::Dir) => {
                preopens.push(Preopen { guest: guest.clone(), host: n.path.clone() })
            }
            Ok(_) => {
                io.eprint(format_args!("wasm: --dir {host}: not a directory\n"));
                return 2;
            }
            Err(e) => {
                io.eprint(format_args!("wasm: --dir {host}: {e}\n"));
                return 2;
            }
        }
    }
    let mut env = shell.environment();
    for (k, v) in &a.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    let mut args = alloc::vec![argv0];
    args.extend(a.args.iter().cloned());
    let tty = [matches!(io.stdin, Source::Terminal), io.stdout_is_terminal(), true];
    let mut sockets = crate::net::cmd::WasiSockets::default();
    let mut listeners = Vec::new();
    for (addr, port) in &a.listen {
        match sockets.listen(addr, *port) {
            Ok(id) => listeners.push(id),
            Err(e) => {
                io.eprint(format_args!("wasm: --tcplisten {addr}:{port}: {e}\n"));
                return 2;
            }
        }
    }
    let config = Config { args, env, preopens, max_fds: 1024, tty, listeners };
    let mut wasi = match WasiCtx::new(vfs, Box::new(KernelSystem), config) {
        Ok(w) => w,
        Err((path, e)) => {
            io.eprint(format_args!("wasm: {path}: {e}\n"));
            return 2;
        }
    };
    wasi.set_sockets(Box::new(sockets));
    let max_memory = a.max_memory.unwrap_or_else(|| default_memory_limit() as usize);
    let limits = Limits { max_memory, available: Some(memory::available_for_guests), ..Limits::default() };
    let mut process = match Process::new(&program, wasi, limits) {
        Ok(p) => p,
        Err(e) => {
            io.eprint(format_args!("wasm: {file}: {e}\n"));
            return STATUS_CANNOT_RUN;
        }
    };
    let mut host = RunHost { io, until: a.timeout_ns.map(|t| time::uptime_ns().saturating_add(t)) };
    crate::sched::task::set_engine(program.engine_name());
    let outcome = runner::run_with_budget(&mut process, &mut host, a.fuel);
    crate::sched::task::set_engine("");
    let timed_out = host.timed_out();
    let io = host.io;
    if process.memory_limit_hit() {
        if process.memory_denied_by_system() {
            io.eprint(format_args!(
                "wasm: {file}: out of memory: the system keeps its reserve ({} in use by this program)\n",
                keel_shell::Bytes(process.memory_bytes() as u64)
            ));
        } else {
            io.eprint(format_args!(
                "wasm: {file}: memory limit of {} reached (raise it with --max-memory)\n",
                keel_shell::Bytes(max_memory as u64)
            ));
        }
    }
    match outcome {
        Outcome::Exited(code) => code,
        Outcome::Trapped(msg) => {
            io.eprint(format_args!("wasm: {file}: trap: {msg}\n"));
            STATUS_TRAP
        }
        Outcome::OutOfFuel(budget) => {
            io.eprint(format_args!("wasm: {file}: trap: all fuel consumed ({budget} units, --fuel)\n"));
            STATUS_TRAP
        }
        Outcome::Interrupted if timed_out => {
            let secs = a.timeout_ns.unwrap_or(0) as f64 / 1e9;
            io.eprint(format_args!("wasm: {file}: timed out after {secs} s (--timeout)\n"));
            STATUS_TIMED_OUT
        }
        Outcome::Interrupted => stopped_status(io),
    }
}
