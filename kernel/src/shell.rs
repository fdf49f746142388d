//! The kernel side of the shell: the console as a [`Terminal`], and the commands that need the
//! hardware (`mem`, `uptime`, `date`, `shutdown`, ...). Parsing, editing and running command lines
//! is the `keel-shell` crate's job.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use keel_shell::editor::Completer;
use keel_shell::exec::{InputStream, OutputStream, BUILTINS};
use keel_shell::{Bytes, Editor, Event, Host, Io, Shell, Sink, Source, Terminal};
use keel_time::{DateTime, Human};
use spin::Mutex;

use crate::arch::boot::BootInfo;
use crate::{arch::power, arch::time, drivers::serial, fs, mm::memory};

/// Commands implemented here: (name, usage and summary, details).
const COMMANDS: &[(&str, &str, &str)] = &[
    ("help", "help [CMD|PROGRAM]: list commands and programs, or explain one", ""),
    (
        "wasm",
        "wasm [--dir HOST[::GUEST]]... [--env K=V]... [--tcplisten ADDR:PORT]... [--fuel N] [--max-memory SIZE] [--argv0 NAME] FILE [ARGS...]: run a WASI program",
        "FILE is a .wasm module (WASI preview1). The program sees only the --dir folders, the exported\nvariables and the --env ones. A program on $PATH also runs by its name: NAME [ARGS...] (then with\nthe current directory as '.').",
    ),
    (
        "trace",
        "trace PROGRAM [ARGS...]: run a native program and show each Linux system call it makes",
        "Like strace: one line per call on standard error, with its arguments and result (-1 ERRNO on\nfailure). Native programs are static (PIE) x86_64 Linux executables; they run in user mode in\ntheir own address space and, unlike WASI guests, reach every path the shell can.",
    ),
    ("uptime", "uptime: time since boot", ""),
    ("date", "date: current date and time (UTC, from the RTC)", ""),
    ("mem", "mem: physical memory and kernel heap, used and free", ""),
    ("history", "history: list the command history", "Up/Down recall earlier lines."),
    ("clear", "clear: clear the screen", "Ctrl-L does the same while editing."),
    ("sleep", "sleep SECONDS: wait (fractions allowed; Ctrl-C stops)", ""),
    ("time", "time CMD [ARG...]: run a command and print its wall time", ""),
    ("uname", "uname [-a]: system name and version", ""),
    ("lspci", "lspci: the PCI devices found at boot (address, vendor:device, class, virtio type)", ""),
    ("lsblk", "lsblk: the disks, their sizes and where they are mounted", ""),
    (
        "mount",
        "mount [-r] [DISK DIR]: mount a disk's littlefs filesystem at DIR (-r: read-only); alone: list mounts",
        "DISK is vda, vdb, ... (see lsblk). The first disk is mounted at /data at boot. A disk whose\nmetadata is damaged is mounted read-only; one without a valid filesystem is refused.",
    ),
    ("umount", "umount DIR|DISK: write everything out and unmount a disk", "Refused while files are open on it."),
    ("fsck", "fsck DISK|DIR: check a disk's filesystem: every directory, file and block", "Exit status 0 if clean, 1 if damaged."),
    ("mkfs", "mkfs DISK: create an empty littlefs filesystem on an unmounted disk (erases it)", ""),
    ("ip", "ip: the network interface: addresses, route, DNS, counters", ""),
    ("ping", "ping [-c COUNT] HOST: ICMP echo requests, one a second (Ctrl-C stops)", ""),
    (
        "fetch",
        "fetch [-q] [-t SECONDS] [--ca FILE] [-o FILE|-] URL: download over HTTP or HTTPS (redirects followed; a progress bar for long ones)",
        "FILE defaults to the URL's last path segment in the current directory; '-' writes to stdout.\n-t: give up after SECONDS without data (default 30). https:// servers are verified against\nMozilla's roots, or only the PEM CA certificates in --ca FILE. The file appears under its name only when complete. `host` names the host machine\n(10.0.2.100: ports allowed with `cargo xtask run --allow-host PORT`).",
    ),
    ("ps", "ps: list tasks (pid, state, CPU time, memory, command)", ""),
    ("jobs", "jobs: list background jobs (started with CMD &)", ""),
    ("kill", "kill PID|%JOB...: stop a task or background job", ""),
    ("wait", "wait [PID|%JOB...]: wait for background jobs to finish", ""),
    ("fg", "fg [%JOB]: wait for a background job in the foreground (Ctrl-C stops it)", ""),
    ("exit", "exit [N]: power off; QEMU exits with status N (default: last status)", ""),
    ("shutdown", "shutdown: power off (QEMU exits with status 0)", ""),
    ("reboot", "reboot: restart the machine", ""),
    (
        "crash",
        "crash KIND: deliberately fault the kernel (testing the fault reports)",
        "KIND is one of: pagefault, gpf, divide, invalid-opcode, stack-overflow, panic.\nThe kernel prints an exception report with a backtrace and stops.",
    ),
];

static BOOT_CMDLINE: Mutex<String> = Mutex::new(String::new());

/// Remembers what the boot loader said, for `uname -a`.
pub fn set_boot_info(info: &BootInfo) {
    *BOOT_CMDLINE.lock() = info.cmdline().to_string();
}

/// The kernel command line.
pub fn boot_cmdline() -> String {
    BOOT_CMDLINE.lock().clone()
}

/// The console as a command sees it. A background job gets no keyboard input, and stops when it
/// is killed rather than on Ctrl-C.
pub struct Console {
    pub foreground: bool,
}

impl Terminal for Console {
    fn write(&mut self, data: &[u8]) {
        serial::write_bytes(data);
    }

    /// Input counts as ready once a key is waiting (the read then collects the whole line).
    fn input_ready_by(&mut self, deadline: u64) -> bool {
        if !self.foreground {
            return true;
        }
        loop {
            if serial::input_available() || serial::interrupt_pending() {
                return true;
            }
            let now = crate::arch::time::uptime_ns();
            if now >= deadline {
                return false;
            }
            // The receive interrupt wakes us; the timeout covers Ctrl-C and lost wake-ups.
            crate::sched::task::sleep_for_input(deadline.min(now + 20_000_000));
        }
    }

    /// Cooked input: echoes, handles Backspace, returns a line at Enter, 0 at Ctrl-D or Ctrl-C.
    fn read(&mut self, buf: &mut [u8]) -> usize {
        if !self.foreground {
            return 0;
        }
        let mut line: Vec<u8> = Vec::new();
        loop {
            let Some(b) = serial::read_interruptible() else {
                serial::write_bytes(b"^C\n");
                return 0;
            };
            match b {
                0x04 if line.is_empty() => return 0,
                0x04 => {}
                b'\r' | b'\n' => {
                    serial::write_bytes(b"\n");
                    line.push(b'\n');
                    break;
                }
                0x08 | 0x7f => {
                    if line.pop().is_some() {
                        serial::write_raw(b"\x08 \x08");
                    }
                }
                0x1b => {}
                b if b >= 0x20 => {
                    line.push(b);
                    serial::write_raw(&[b]);
                }
                _ => {}
            }
            if line.len() >= buf.len() {
                break;
            }
        }
        let n = line.len().min(buf.len());
        buf[..n].copy_from_slice(&line[..n]);
        n
    }

    fn is_foreground(&self) -> bool {
        self.foreground
    }

    fn interrupted(&mut self) -> bool {
        if self.foreground {
            serial::interrupt_pending() || crate::sched::task::killed()
        } else {
            crate::sched::task::killed()
        }
    }
}

/// Tab completion: command names first, paths (relative to `cwd`) after.
struct Completion<'s> {
    cwd: String,
    /// The shell, for `$PATH` (programs are only listed when Tab is pressed).
    shell: &'s Shell,
}

impl Completer for Completion<'_> {
    fn complete(&self, word: &str, first: bool) -> Vec<String> {
        if first && !word.contains('/') {
            let mut names: Vec<String> = all_commands().into_iter().map(|c| String::from(c.0)).collect();
            names.extend(crate::proc::wasm::programs_on_path(self.shell));
            return names.into_iter().filter(|n| n.starts_with(word)).collect();
        }
        keel_commands::complete_path(fs::vfs(), &self.cwd, word)
    }
}

/// Every command: (name, "usage: summary", details).
fn all_commands() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut all: Vec<(&str, &str, &str)> = COMMANDS.to_vec();
    all.extend(keel_commands::COMMANDS.iter().copied());
    all.extend(BUILTINS.iter().map(|b| (b.0, b.1, "")));
    all.sort();
    all
}

/// The kernel's half of the shell.
struct KernelHost {
    editor: Editor,
}

/// A background job.
struct Job {
    number: usize,
    pid: crate::sched::task::Pid,
    text: String,
}

/// Background jobs of the interactive shell.
static JOBS: crate::sched::lock::Ordered<Vec<Job>> =
    crate::sched::lock::Ordered::new(crate::sched::lock::Rank::Jobs, Vec::new());

/// Finds a job by `%N` or a pid.
fn job_pid(spec: &str) -> Result<crate::sched::task::Pid, String> {
    if let Some(n) = spec.strip_prefix('%') {
        let n: usize = n.parse().map_err(|_| format!("{spec}: no such job"))?;
        return JOBS.lock().iter().find(|j| j.number == n).map(|j| j.pid).ok_or(format!("{spec}: no such job"));
    }
    spec.parse().map_err(|_| format!("{spec}: not a pid or %job"))
}

/// Reports background jobs that finished (before a prompt, as Unix shells do).
fn report_done_jobs() {
    let mut done = Vec::new();
    JOBS.lock().retain(|j| match crate::sched::task::try_reap(j.pid) {
        Some(status) => {
            done.push(format!("[{}]  Done ({})  {}\n", j.number, status.unwrap_or(-1), j.text));
            false
        }
        None => true,
    });
    for d in done {
        serial::write_bytes(d.as_bytes());
    }
}

/// A command body run on its own task.
type TaskBody = Box<dyn FnOnce(&mut Shell, &mut Io<'_>) -> i32>;

/// Runs `body` as a task of its own with this command's streams (so it shows in `ps` with its
/// own CPU time and memory, and can be killed), and waits for it. Ctrl-C (in the foreground) or a
/// kill of the waiting task ends it.
fn run_as_task(shell: &Shell, io: &mut Io<'_>, name: String, body: TaskBody) -> i32 {
    let foreground = io.terminal_mut().is_foreground();
    let stdin = core::mem::replace(&mut io.stdin, Source::Bytes { data: Vec::new(), pos: 0 });
    let (stdout, stderr) = (io.stdout.clone(), io.stderr.clone());
    let mut sh = shell.clone();
    let pid = crate::sched::task::spawn(
        &name,
        Box::new(move || {
            let mut console = Console { foreground };
            let mut io = Io::terminal(&mut console);
            io.stdin = stdin;
            io.stdout = stdout;
            io.stderr = stderr;
            body(&mut sh, &mut io)
        }),
    );
    let Some(pid) = pid else {
        io.eprint(format_args!("keel: cannot start a task: out of memory\n"));
        return 1;
    };
    if foreground {
        wait_task(pid, serial::interrupt_pending)
    } else {
        wait_task(pid, crate::sched::task::killed)
    }
}

/// Waits for a task and returns its status; `stop()` (Ctrl-C in the foreground, a kill of the
/// waiter in the background) kills it. Woken by the task's end, by input, or by a kill.
fn wait_task(pid: crate::sched::task::Pid, stop: fn() -> bool) -> i32 {
    loop {
        if let Some(status) = crate::sched::task::try_reap(pid) {
            return status.unwrap_or(1);
        }
        if stop() {
            // Kill it and give it the CPU to end (waiting would return at once: stop() holds).
            crate::sched::task::kill(pid);
            crate::sched::task::yield_now();
            continue;
        }
        crate::sched::task::EXITS
            .wait(|| crate::sched::task::exited(pid) || stop(), crate::arch::time::uptime_ns() + 100_000_000);
    }
}

impl Host for KernelHost {
    fn run(&mut self, shell: &mut Shell, argv: &[String], io: &mut Io<'_>) -> Option<i32> {
        if let Some(status) = keel_commands::run(fs::vfs(), shell, argv, io) {
            return Some(status);
        }
        let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
        Some(match argv[0].as_str() {
            "help" => help(shell, &args, io),
            "uptime" => {
                let up = time::uptime_ns();
                io.print(format_args!("up {}\n", Human(up)));
                let cpus = crate::sched::task::cpus();
                if cpus.len() > 1 {
                    for (i, c) in cpus.iter().enumerate() {
                        io.print(format_args!(
                            "cpu{i}: busy {:>3}% ({}), {} waiting{}\n",
                            c.busy_ns.saturating_mul(100) / up.max(1),
                            Human(c.busy_ns),
                            c.queued,
                            if c.running != 0 { format!(", running pid {}", c.running) } else { String::new() }
                        ));
                    }
                }
                0
            }
            "date" => {
                let secs = (time::realtime_ns() / 1_000_000_000) as i64;
                io.print(format_args!("{}\n", DateTime::from_unix(secs)));
                0
            }
            "lsblk" => crate::drivers::disk::lsblk(io),
            "mount" => mount_cmd(&args, io),
            "umount" | "fsck" | "mkfs" => {
                let [target] = args[..] else {
                    io.eprint(format_args!("usage: {} DISK|DIR\n", argv[0]));
                    return Some(2);
                };
                let r = match argv[0].as_str() {
                    "umount" => crate::drivers::disk::umount(target).map(|m| (m + "\n", true)),
                    "mkfs" => crate::drivers::disk::mkfs(target).map(|m| (m + "\n", true)),
                    _ => crate::drivers::disk::fsck(target),
                };
                match r {
                    Ok((msg, ok)) => {
                        io.out(msg.as_bytes());
                        i32::from(!ok)
                    }
                    Err(e) => {
                        io.eprint(format_args!("{}: {e}\n", argv[0]));
                        1
                    }
                }
            }
            "ip" => crate::net::cmd::ip(io),
            "ping" => crate::net::cmd::ping(&args, io),
            "fetch" => crate::net::cmd::fetch(shell, &args, io),
            "lspci" => {
                let (devices, access) = crate::drivers::pci::devices();
                if devices.is_empty() {
                    io.out(b"no PCI bus (virtio devices, if any, are on MMIO)\n");
                }
                for d in &devices {
                    let vendor = keel_boot::pci::vendor_name(d.vendor).unwrap_or("");
                    let class = keel_boot::pci::class_name(d.class, d.subclass);
                    let virtio = d
                        .virtio
                        .map(|t| {
                            alloc::format!(
                                ", virtio {}",
                                alloc::format!("{t:?}").trim_start_matches('_').to_lowercase()
                            )
                        })
                        .unwrap_or_default();
                    io.print(format_args!("{} {:04x}:{:04x} {class}{virtio} {vendor}\n", d.at, d.vendor, d.device));
                }
                if !devices.is_empty() {
                    io.print(format_args!("({} functions; configuration space through {access})\n", devices.len()));
                }
                0
            }
            "mem" => {
                let (total, free) = memory::frame_stats();
                let used = total - free;
                let h = memory::heap_stats();
                io.print(format_args!(
                    "physical: {} total, {} used, {} free ({} pages of 4 KiB, {} free)\n",
                    Bytes(total * 4096),
                    Bytes(used * 4096),
                    Bytes(free * 4096),
                    total,
                    free
                ));
                io.print(format_args!(
                    "heap:     {} claimed, {} used, {} free\n",
                    Bytes(h.claimed),
                    Bytes(h.allocated),
                    Bytes(h.claimed.saturating_sub(h.allocated))
                ));
                io.print(format_args!(
                    "large:    {} in blocks of {} or more, straight from the page allocator\n",
                    Bytes(memory::large_bytes()),
                    Bytes(memory::LARGE as u64)
                ));
                io.print(format_args!(
                    "native:   {} in pages and page tables of native programs\n",
                    Bytes(crate::proc::native::pages_in_use() * 4096)
                ));
                0
            }
            "history" => {
                let mut s = String::new();
                for (i, l) in self.editor.history().iter().enumerate() {
                    s.push_str(&format!("{:5}  {l}\n", i + 1));
                }
                io.out(s.as_bytes());
                0
            }
            "clear" => {
                io.out(b"\x1b[2J\x1b[H");
                0
            }
            "sleep" => sleep(&args, io),
            "time" => {
                let start = time::uptime_ns();
                let status = shell.run_argv(&argv[1..], self, io);
                io.eprint(format_args!("real {}\n", Human(time::uptime_ns() - start)));
                status
            }
            "uname" => {
                if args.first() == Some(&"-a") {
                    io.print(format_args!("Keel {} x86_64 (cmdline: {})\n", crate::VERSION, BOOT_CMDLINE.lock()));
                } else {
                    io.out(b"Keel\n");
                }
                0
            }
            "exit" => {
                let code = match args.first() {
                    None => shell.status,
                    Some(a) => match a.parse::<i32>() {
                        Ok(n) => n,
                        Err(_) => {
                            io.eprint(format_args!("exit: {a}: numeric argument required\n"));
                            return Some(2);
                        }
                    },
                };
                shell.exit_requested = Some(code);
                0
            }
            "shutdown" => {
                shell.exit_requested = Some(0);
                0
            }
            "reboot" => {
                io.out(b"rebooting\n");
                power::reboot()
            }
            "crash" => crash(&args, io),
            "ps" => {
                // ON: the CPU a task runs on or last ran on (`*`: pinned there).
                let mut out = String::from("  PID STATE     ON     CPU       MEM  ENGINE    COMMAND\n");
                for t in crate::sched::task::list() {
                    let state = match t.state {
                        crate::sched::task::State::Running => "running",
                        crate::sched::task::State::Ready => "ready",
                        crate::sched::task::State::Sleeping(_) => "sleeping",
                        crate::sched::task::State::Dead => "done",
                    };
                    let mem = if t.mem_bytes > 0 { Bytes(t.mem_bytes).to_string() } else { String::from("-") };
                    let engine = if t.engine.is_empty() { "-" } else { t.engine };
                    let on = format!("{}{}", t.cpu, if t.pinned.is_some() { "*" } else { "" });
                    out.push_str(&format!(
                        "{:>5} {:<8} {:>3} {:>4}.{:02}s {:>9}  {:<8}  {}\n",
                        t.pid,
                        state,
                        on,
                        t.cpu_ns / 1_000_000_000,
                        t.cpu_ns / 10_000_000 % 100,
                        mem,
                        engine,
                        t.name
                    ));
                }
                io.out(out.as_bytes());
                0
            }
            "jobs" => {
                report_done_jobs();
                let mut out = String::new();
                for j in JOBS.lock().iter() {
                    out.push_str(&format!("[{}]  {}  Running  {}\n", j.number, j.pid, j.text));
                }
                io.out(out.as_bytes());
                0
            }
            "kill" => {
                if args.is_empty() {
                    io.eprint(format_args!("kill: usage: kill PID|%JOB...\n"));
                    return Some(2);
                }
                let mut status = 0;
                for a in &args {
                    match job_pid(a) {
                        Ok(pid) if crate::sched::task::kill(pid) => {}
                        Ok(pid) => {
                            io.eprint(format_args!("kill: ({pid}): no such process\n"));
                            status = 1;
                        }
                        Err(e) => {
                            io.eprint(format_args!("kill: {e}\n"));
                            status = 1;
                        }
                    }
                }
                status
            }
            "wait" => {
                let pids: Vec<crate::sched::task::Pid> = if args.is_empty() {
                    JOBS.lock().iter().map(|j| j.pid).collect()
                } else {
                    let mut v = Vec::new();
                    for a in &args {
                        match job_pid(a) {
                            Ok(p) => v.push(p),
                            Err(e) => {
                                io.eprint(format_args!("wait: {e}\n"));
                                return Some(127);
                            }
                        }
                    }
                    v
                };
                let mut status = 0;
                for pid in pids {
                    loop {
                        if let Some(st) = crate::sched::task::try_reap(pid) {
                            status = st.unwrap_or(127);
                            break;
                        }
                        if io.interrupted() {
                            return Some(keel_shell::exec::STATUS_INTERRUPTED);
                        }
                        crate::sched::task::EXITS.wait(
                            || crate::sched::task::exited(pid) || serial::interrupt_pending(),
                            crate::arch::time::uptime_ns() + 100_000_000,
                        );
                    }
                    JOBS.lock().retain(|j| j.pid != pid);
                }
                status
            }
            "fg" => {
                let spec = args
                    .first()
                    .copied()
                    .map(String::from)
                    .or_else(|| JOBS.lock().last().map(|j| format!("%{}", j.number)));
                let Some(spec) = spec else {
                    io.eprint(format_args!("fg: no current job\n"));
                    return Some(1);
                };
                match job_pid(&spec) {
                    Ok(pid) => {
                        if let Some(j) = JOBS.lock().iter().find(|j| j.pid == pid) {
                            io.print(format_args!("{}\n", j.text));
                        }
                        let st = wait_task(pid, serial::interrupt_pending);
                        JOBS.lock().retain(|j| j.pid != pid);
                        st
                    }
                    Err(e) => {
                        io.eprint(format_args!("fg: {e}\n"));
                        1
                    }
                }
            }
            "wasm" => {
                let argv = argv.to_vec();
                run_as_task(
                    shell,
                    io,
                    argv.join(" "),
                    Box::new(move |sh, io| crate::proc::wasm::command(sh, &argv, io)),
                )
            }
            "trace" => {
                let argv = argv.to_vec();
                run_as_task(
                    shell,
                    io,
                    argv.join(" "),
                    Box::new(move |sh, io| crate::proc::native::trace_command(sh, &argv, io)),
                )
            }
            name => {
                let cwd = keel_commands::cwd(shell);
                let file = crate::proc::wasm::find_on_path(shell, name).or_else(|| {
                    // A path runs too: ./prog.wasm, /tmp/x.wasm, /extra_files/bin/lua.
                    (name.contains('/') && (name.ends_with(".wasm") || crate::proc::native::is_native(&cwd, name)))
                        .then(|| name.to_string())
                })?;
                let argv = argv.to_vec();
                if crate::proc::native::is_native(&cwd, &file) {
                    return Some(run_as_task(
                        shell,
                        io,
                        argv.join(" "),
                        Box::new(move |sh, io| crate::proc::native::run(sh, &file, &argv, io, false)),
                    ));
                }
                run_as_task(
                    shell,
                    io,
                    argv.join(" "),
                    Box::new(move |sh, io| crate::proc::wasm::run_by_name(sh, file, &argv, io)),
                )
            }
        })
    }

    fn run_pipeline(&mut self, shell: &mut Shell, commands: &[keel_shell::parse::Command]) -> Option<i32> {
        let n = commands.len();
        let mut readers: Vec<Option<crate::fs::pipe::PipeReader>> = Vec::new();
        let mut writers: Vec<Option<crate::fs::pipe::PipeWriter>> = Vec::new();
        for _ in 0..n - 1 {
            let (w, r) = crate::fs::pipe::pipe();
            writers.push(Some(w));
            readers.push(Some(r));
        }
        let mut pids = Vec::new();
        for (i, cmd) in commands.iter().enumerate() {
            let stdin = if i == 0 { None } else { readers[i - 1].take() };
            let stdout = if i + 1 == n { None } else { writers[i].take() };
            let mut stage_shell = shell.clone();
            let cmd = cmd.clone();
            let name = cmd.words.first().and_then(|w| w.literal()).unwrap_or_else(|| String::from("stage"));
            let pid = crate::sched::task::spawn(
                &name,
                Box::new(move || {
                    let mut host = KernelHost { editor: Editor::new("") };
                    let mut console = Console { foreground: true };
                    let mut io = Io::terminal(&mut console);
                    if let Some(r) = stdin {
                        io.stdin = Source::Stream(Box::new(r));
                    }
                    if let Some(w) = stdout {
                        io.stdout = Sink::stream(Box::new(w));
                    }
                    stage_shell.run_command(&cmd, &mut host, io)
                }),
            );
            match pid {
                Some(p) => pids.push(p),
                None => {
                    serial::write_bytes(b"keel: cannot start a pipeline stage: out of memory\n");
                    for p in &pids {
                        crate::sched::task::kill(*p);
                    }
                }
            }
        }
        // Unused pipe ends close here, so no stage waits for a stage that never started.
        drop(readers);
        drop(writers);
        let mut status = 1;
        for (i, pid) in pids.iter().enumerate() {
            let st = wait_task(*pid, serial::interrupt_pending);
            if i + 1 == pids.len() {
                status = st;
            }
        }
        if pids.len() < n {
            return Some(1);
        }
        Some(status)
    }

    fn background(&mut self, shell: &mut Shell, item: &keel_shell::parse::AndOr, io: &mut Io<'_>) -> i32 {
        let mut job_shell = shell.clone();
        let text = item.text.clone();
        let line = text.clone();
        let name = format!("({})", text);
        let pid = crate::sched::task::spawn(
            &name,
            Box::new(move || {
                let mut host = KernelHost { editor: Editor::new("") };
                let mut console = Console { foreground: false };
                job_shell.run_line(&line, &mut host, &mut console)
            }),
        );
        let Some(pid) = pid else {
            io.eprint(format_args!("keel: cannot start a background job: out of memory\n"));
            return 1;
        };
        let mut jobs = JOBS.lock();
        let number = jobs.iter().map(|j| j.number).max().unwrap_or(0) + 1;
        jobs.push(Job { number, pid, text });
        io.print(format_args!("[{number}] {pid}\n"));
        shell.vars.insert("!".into(), pid.to_string());
        0
    }

    fn read_file(&mut self, shell: &Shell, path: &str) -> Result<Vec<u8>, String> {
        keel_commands::read_file(fs::vfs(), &keel_commands::cwd(shell), path).map_err(|e| e.to_string())
    }

    fn open_input(&mut self, shell: &Shell, path: &str) -> Result<Box<dyn InputStream>, String> {
        keel_commands::open_input(fs::vfs(), &keel_commands::cwd(shell), path)
    }

    fn open_output(&mut self, shell: &Shell, path: &str, append: bool) -> Result<Box<dyn OutputStream>, String> {
        keel_commands::open_output(fs::vfs(), &keel_commands::cwd(shell), path, append)
    }
}

fn help(shell: &Shell, args: &[&str], io: &mut Io<'_>) -> i32 {
    let all = all_commands();
    if let Some(name) = args.first() {
        if let Some(c) = all.iter().find(|c| c.0 == *name) {
            io.print(format_args!("{}\n", c.1));
            if !c.2.is_empty() {
                io.print(format_args!("{}\n", c.2));
            }
            return 0;
        }
        if let Some(file) = crate::proc::wasm::find_on_path(shell, name) {
            if crate::proc::native::is_native("/", &file) {
                io.print(format_args!("{name}: a native program on $PATH: runs {file} (x86_64 Linux, user mode)\n"));
                return 0;
            }
            io.print(format_args!(
                "{name}: a WASI program on $PATH: runs {file}\n  ({name} ARGS... = wasm --dir .::. {file} ARGS...)\n"
            ));
            return 0;
        }
        io.eprint(format_args!("help: no such command or program on $PATH: {name}\n"));
        return 1;
    }
    let mut s = String::from("Keel shell commands:\n");
    for (name, usage, _) in all {
        let summary = usage.split_once(": ").map_or(usage, |p| p.1);
        s.push_str(&format!("  {name:<10} {summary}\n"));
    }
    let programs = crate::proc::wasm::programs_on_path(shell);
    if !programs.is_empty() {
        s.push_str(&format!(
            "Programs on $PATH ({}):\n ",
            shell.var("PATH").unwrap_or(crate::proc::wasm::DEFAULT_PATH)
        ));
        let mut width = 1;
        for p in programs {
            if width + p.len() + 1 > 78 {
                s.push_str("\n ");
                width = 1;
            }
            s.push(' ');
            s.push_str(&p);
            width += p.len() + 1;
        }
        s.push('\n');
    }
    s.push_str("Operators: ; && || | < > >> 2> 2>&1, quotes ('..' \"..\" $'..'), $VAR, $?. Keys: arrows, Tab, Ctrl-A/E/U/K/W/L/C.\n");
    io.out(s.as_bytes());
    0
}

fn sleep(args: &[&str], io: &mut Io<'_>) -> i32 {
    let Some(arg) = args.first() else {
        io.eprint(format_args!("sleep: missing operand (seconds)\n"));
        return 2;
    };
    let secs: f64 = match arg.parse() {
        Ok(s) if (0.0..1e7).contains(&s) => s,
        _ => {
            io.eprint(format_args!("sleep: invalid time interval '{arg}'\n"));
            return 2;
        }
    };
    let end = time::uptime_ns() + (secs * 1e9) as u64;
    if sleep_until(end, || io.interrupted()) {
        return keel_shell::exec::STATUS_INTERRUPTED;
    }
    0
}

/// Sleeps until `end` (monotonic ns), waking every few ms to check `stop`; true if stopped.
pub fn sleep_until(end: u64, mut stop: impl FnMut() -> bool) -> bool {
    loop {
        if stop() {
            return true;
        }
        let now = time::uptime_ns();
        if now >= end {
            return false;
        }
        crate::sched::task::sleep_until(end.min(now + 5_000_000));
    }
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let buf = [depth; 64];
    core::hint::black_box(&buf);
    recurse(depth + 1) + buf[3]
}

fn crash(args: &[&str], io: &mut Io<'_>) -> i32 {
    match args.first().copied() {
        Some("pagefault") => {
            // SAFETY: deliberately touches an unmapped address to test the page-fault report.
            unsafe { core::ptr::read_volatile(0x0000_4000_0000_0000 as *const u64) };
        }
        Some("gpf") => {
            // SAFETY: deliberately uses a non-canonical address to raise #GP.
            unsafe { core::ptr::read_volatile(0x8000_0000_0000_0000 as *const u64) };
        }
        Some("divide") => {
            // SAFETY: deliberately divides by zero in hardware to raise #DE.
            unsafe {
                core::arch::asm!("xor edx, edx", "xor ecx, ecx", "div ecx", out("eax") _, out("edx") _, out("ecx") _)
            };
        }
        Some("invalid-opcode") => {
            // SAFETY: deliberately executes UD2 to raise #UD.
            unsafe { core::arch::asm!("ud2") };
        }
        Some("stack-overflow") => {
            let r = recurse(core::hint::black_box(0));
            io.print(format_args!("{r}\n"));
        }
        Some("panic") => panic!("deliberate panic from the crash command"),
        Some("lock-order") => {
            // Two ordered locks the wrong way round (a deadlock waiting to happen): a kernel
            // built with the lock-order checks stops here; others go on.
            let (jobs, free) = x86_64::instructions::interrupts::without_interrupts(|| {
                let frames = memory::FRAMES.lock();
                let jobs = JOBS.lock();
                (jobs.len(), frames.free_pages())
            });
            io.print(format_args!("took Frames, then Jobs: {jobs} jobs ({free} free pages)\n"));
        }
        other => {
            io.eprint(format_args!(
                "crash: {}: expected pagefault, gpf, divide, invalid-opcode, stack-overflow, panic or lock-order\n",
                other.unwrap_or("missing argument")
            ));
            return 2;
        }
    }
    1
}

/// Runs the interactive shell on the serial console; never returns.
pub fn run() -> ! {
    let mut shell = Shell::new();
    shell.export("HOME", "/");
    shell.export("PWD", "/");
    shell.export("PATH", crate::proc::wasm::DEFAULT_PATH);
    let mut host = KernelHost { editor: Editor::new("keel> ") };
    let mut console = Console { foreground: true };
    let ms = time::uptime_ns() / 1_000_000;
    crate::kprintln!("\nWelcome to Keel {} (booted in {ms} ms). Type 'help' for commands.", crate::VERSION);
    let mut out = String::new();
    // A line whose quote is still open: it continues on the next line (prompt "> ").
    let mut pending: Option<String> = None;
    loop {
        if pending.is_none() {
            report_done_jobs();
        }
        out.clear();
        host.editor.set_prompt(if pending.is_some() { "> " } else { "keel> " });
        host.editor.start(&mut out);
        serial::write_raw(out.as_bytes());
        let line = loop {
            out.clear();
            let b = serial::read_blocking();
            let completion = Completion { cwd: keel_commands::cwd(&shell), shell: &shell };
            let ev = host.editor.feed(b, &mut out, &completion);
            serial::write_raw(out.as_bytes());
            match ev {
                Event::Pending => {}
                Event::Line(l) => break Some(l),
                Event::Interrupt => {
                    pending = None;
                    shell.status = keel_shell::exec::STATUS_INTERRUPTED;
                    break None;
                }
                Event::Eof => {
                    serial::write_bytes(b"exit\n");
                    shell.exit_requested = Some(shell.status);
                    break None;
                }
            }
        };
        let line = line.and_then(|l| {
            let full = match pending.take() {
                Some(p) => alloc::format!("{p}\n{l}"),
                None => l,
            };
            if keel_shell::parse::incomplete(&full) {
                pending = Some(full);
                None
            } else {
                Some(full)
            }
        });
        if let Some(line) = line {
            host.editor.add_history(&line);
            serial::set_command_running(true);
            shell.run_line(&line, &mut host, &mut console);
            crate::mm::memory::trim();
            if serial::interrupt_pending() {
                serial::write_bytes(b"^C\n");
            }
            serial::set_command_running(false);
        }
        if let Some(code) = shell.exit_requested {
            match u32::try_from(code) {
                Ok(0) => power::shutdown(),
                Ok(c) => power::exit_qemu(c),
                Err(_) => power::exit_qemu(1),
            }
        }
    }
}

/// `mount [-r] DISK DIR`, or alone: the mount table.
fn mount_cmd(args: &[&str], io: &mut Io<'_>) -> i32 {
    let (readonly, rest) = match args.first() {
        Some(&"-r") => (true, &args[1..]),
        _ => (false, args),
    };
    match rest {
        [] => {
            let mut out = String::new();
            for (path, info) in fs::vfs().mounts() {
                let source = crate::drivers::disk::name_at(&path).unwrap_or_else(|| String::from(info.kind));
                out.push_str(&alloc::format!(
                    "{source} on {path} type {} ({})\n",
                    info.kind,
                    if info.readonly { "ro" } else { "rw" }
                ));
            }
            io.out(out.as_bytes());
            0
        }
        [disk, dir] => match crate::drivers::disk::mount(disk, dir, readonly) {
            Ok(msg) => {
                io.print(format_args!("{msg}\n"));
                0
            }
            Err(e) => {
                io.eprint(format_args!("mount: {e}\n"));
                1
            }
        },
        _ => {
            io.eprint(format_args!("usage: mount [-r] DISK DIR\n"));
            2
        }
    }
}
