//! Running Keel in QEMU: the command line, the interactive console, the script mode, and a
//! driver that tests use to type into the shell and read what it prints.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::build::{self, Image};

/// The shell's prompt.
pub const PROMPT: &str = "keel> ";
/// Status the kernel reports after a panic or CPU exception (see kernel/src/arch/power.rs).
pub const FAULT_STATUS: i32 = 0x7e;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Auto,
    Kvm,
    Tcg,
}

impl FromStr for Accel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Accel::Auto),
            "kvm" => Ok(Accel::Kvm),
            "tcg" => Ok(Accel::Tcg),
            _ => Err(format!("--accel: expected auto, kvm or tcg, not '{s}'")),
        }
    }
}

/// How the kernel gets loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Boot {
    /// QEMU's PVH loader (`-kernel`, `-initrd`, `-append`): fast, no firmware.
    Pvh,
    /// The bootable image (GRUB, Multiboot2) at this path, from a CD drive through the firmware.
    Image(std::path::PathBuf),
}

/// The firmware of a `--boot image` machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Uefi,
}

impl FromStr for Firmware {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bios" => Ok(Firmware::Bios),
            "uefi" => Ok(Firmware::Uefi),
            _ => Err(format!("--firmware: expected bios or uefi, not '{s}'")),
        }
    }
}

/// Keel's network: QEMU's user networking, closed to the world unless a rule opens it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// A network card at all.
    pub enabled: bool,
    /// Lift `restrict=on` (users on their own machines; never in tests here).
    pub open: bool,
    /// host port (bound to 127.0.0.1) -> Keel port.
    pub forwards: Vec<(u16, u16)>,
    /// Host 127.0.0.1 ports Keel may reach, at 10.0.2.100:PORT.
    pub allow_host: Vec<u16>,
}

impl Default for Network {
    fn default() -> Self {
        Network { enabled: true, open: false, forwards: Vec::new(), allow_host: Vec::new() }
    }
}

/// The address in Keel's network where `--allow-host` ports of the host appear.
pub const HOST_IN_KEEL: &str = "10.0.2.100";

/// Parses `--forward HOSTPORT:GUESTPORT`.
pub fn parse_forward(spec: &str) -> Result<(u16, u16), String> {
    let (h, g) = spec.split_once(':').ok_or(format!("--forward {spec}: expected HOSTPORT:GUESTPORT"))?;
    let port = |p: &str| p.parse::<u16>().ok().filter(|&p| p != 0).ok_or(format!("--forward {spec}: bad port '{p}'"));
    Ok((port(h)?, port(g)?))
}

/// `cargo xtask relay ADDR:PORT` (run by QEMU for each connection Keel opens to an allowed
/// host port): stdin and stdout joined to a TCP connection to ADDR:PORT on the loopback.
pub fn relay(args: &[String]) -> Result<i32, String> {
    let target = args.first().ok_or("relay needs ADDR:PORT")?;
    let addr: std::net::SocketAddr = target.parse().map_err(|e| format!("relay {target}: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("relay {target}: only loopback addresses may be reached"));
    }
    // QEMU joins this process's stdout and stderr to Keel's connection: say nothing there.
    let Ok(stream) = std::net::TcpStream::connect(addr) else { return Ok(1) };
    let mut to_server = stream.try_clone().map_err(|e| e.to_string())?;
    // QEMU may hand over a non-blocking socket: a read or write that would block is retried.
    fn pump(mut from: impl Read, mut to: impl Write) {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let mut done = 0;
            while done < n {
                match to.write(&buf[done..n]) {
                    Ok(0) => return,
                    Ok(k) => done += k,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(1))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
            let _ = to.flush();
        }
    }
    let upstream = std::thread::spawn(move || {
        pump(std::io::stdin().lock(), &mut to_server);
        let _ = to_server.shutdown(std::net::Shutdown::Write);
    });
    pump(stream, std::io::stdout().lock());
    // The server is done: end the connection for Keel too, whatever Keel still sends.
    drop(upstream);
    Ok(0)
}

/// Parses `--allow-host PORT`.
pub fn parse_port(flag: &str, spec: &str) -> Result<u16, String> {
    spec.parse::<u16>().ok().filter(|&p| p != 0).ok_or(format!("{flag} {spec}: expected a port (1-65535)"))
}

impl Network {
    /// QEMU's `-netdev` value.
    pub fn netdev(&self) -> String {
        let mut v = String::from("user,id=net0");
        if !self.open {
            v.push_str(",restrict=on");
        }
        for (h, g) in &self.forwards {
            v.push_str(&format!(",hostfwd=tcp:127.0.0.1:{h}-:{g}"));
        }
        // QEMU's `tcp:` target is one connection made at start-up; `cmd:` runs a program for
        // each connection Keel opens: xtask's own relay to the host's loopback.
        let relay = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "xtask".into());
        for p in &self.allow_host {
            v.push_str(&format!(",guestfwd=tcp:{HOST_IN_KEEL}:{p}-cmd:{relay} relay 127.0.0.1:{p}"));
        }
        v
    }
}

/// How to start QEMU.
#[derive(Clone, Debug)]
pub struct Options {
    pub boot: Boot,
    pub net: Network,
    pub firmware: Firmware,
    pub gui: bool,
    pub mem: String,
    /// Virtual CPUs (`-smp`); 1 unless asked.
    pub cpus: usize,
    pub accel: Accel,
    pub machine: Option<String>,
    pub append: String,
    /// More QEMU arguments (tests: a VGA card without a window, a monitor socket).
    pub extra: Vec<String>,
    /// Host folders shared into Keel: (host dir, guest path, read-only).
    pub shares: Vec<(std::path::PathBuf, String, bool)>,
    /// Disk images attached as virtio-blk devices: (image, read-only).
    pub disks: Vec<(std::path::PathBuf, bool)>,
}

/// Parses `--share DIR[:GUEST][:ro]`; GUEST defaults to /host (then /host2, ...).
pub fn parse_share(spec: &str, index: usize) -> Result<(std::path::PathBuf, String, bool), String> {
    let mut parts: Vec<&str> = spec.split(':').collect();
    let ro = parts.last() == Some(&"ro");
    if ro {
        parts.pop();
    }
    let dir = parts.first().filter(|d| !d.is_empty()).ok_or(format!("--share {spec}: missing DIR"))?;
    let path = std::path::Path::new(dir);
    let abs = path.canonicalize().map_err(|e| format!("--share {dir}: {e}"))?;
    if !abs.is_dir() {
        return Err(format!("--share {dir}: not a directory"));
    }
    let default = if index == 0 { "/host".to_string() } else { format!("/host{}", index + 1) };
    let guest = parts.get(1).map(|g| g.to_string()).unwrap_or(default);
    if !guest.starts_with('/') || guest.contains(' ') {
        return Err(format!("--share {spec}: GUEST must be an absolute path without spaces"));
    }
    Ok((abs, guest, ro))
}

impl Default for Options {
    fn default() -> Self {
        Options {
            boot: Boot::Pvh,
            net: Network::default(),
            firmware: Firmware::Bios,
            gui: false,
            mem: "512M".into(),
            cpus: 1,
            accel: Accel::Auto,
            machine: None,
            append: String::new(),
            extra: Vec::new(),
            shares: Vec::new(),
            disks: Vec::new(),
        }
    }
}

/// The default CPU count for `cargo xtask run`: the host's cores, at most 8 (Keel's limit).
pub fn default_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8)
}

/// True when a hardware KVM module is loaded. `/dev/kvm` alone is not enough: on our machines
/// it is backed by `kvm_pvm`, which cannot run the kernel at useful speed.
pub fn hardware_kvm() -> bool {
    let loaded = |m: &str| Path::new("/sys/module").join(m).exists();
    (loaded("kvm_intel") || loaded("kvm_amd")) && Path::new("/dev/kvm").exists()
}

/// The accelerator actually used.
pub fn accel_name(opts: &Options) -> &'static str {
    match opts.accel {
        Accel::Kvm => "kvm",
        Accel::Tcg => "tcg",
        Accel::Auto if hardware_kvm() => "kvm",
        Accel::Auto => "tcg",
    }
}

/// The QEMU command for an image (serial wiring is added by the caller).
pub fn command(image: &Image, opts: &Options) -> Command {
    let machine = machine_name(opts);
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-M", &machine, "-m", &opts.mem]);
    // Each virtual CPU on its own host thread (multi-threaded TCG; KVM is always so).
    let accel = match accel_name(opts) {
        "tcg" if opts.cpus > 1 => "tcg,thread=multi",
        other => other,
    };
    cmd.args(["-accel", accel, "-smp", &opts.cpus.max(1).to_string()]);
    cmd.args(["-no-user-config", "-nodefaults"]);
    cmd.args(["-cpu", "qemu64,+rdrand,+ssse3,+sse4.1,+sse4.2,+popcnt,+smep,+smap"]);
    let pvh = opts.boot == Boot::Pvh;
    match &opts.boot {
        Boot::Pvh => {
            cmd.arg("-kernel").arg(&image.kernel);
            cmd.arg("-initrd").arg(&image.initrd);
        }
        Boot::Image(iso) => {
            cmd.arg("-drive").arg(format!("file={},format=raw,media=cdrom,readonly=on", iso.display()));
            if opts.firmware == Firmware::Uefi {
                cmd.arg("-bios").arg(crate::image::OVMF);
            }
        }
    }
    let mut append = opts.append.clone();
    for (i, (dir, guest, ro)) in opts.shares.iter().enumerate() {
        // With -kernel the command line names each share; a bootable image's command line is
        // fixed, so there the tag is the folder's name and Keel mounts it at /TAG.
        let tag = if pvh { format!("share{i}") } else { guest.trim_start_matches('/').to_string() };
        let mut fsdev = format!("local,id=fs{i},path={},security_model=none", dir.display());
        if *ro {
            fsdev.push_str(",readonly=on");
        }
        // microvm has virtio over MMIO; every other machine (q35, pc) has PCI.
        let device = if machine.starts_with("microvm") { "virtio-9p-device" } else { "virtio-9p-pci" };
        cmd.args(["-fsdev", &fsdev, "-device", &format!("{device},fsdev=fs{i},mount_tag={tag}")]);
        if pvh {
            append.push_str(&format!(" keel.share={tag}:{guest}{}", if *ro { ":ro" } else { "" }));
        }
    }
    // microvm hands its virtio-mmio slots out from the top, and Keel scans them from the bottom:
    // in reverse, the first --disk is the first disk Keel finds (vda).
    let mut disks: Vec<(usize, &(std::path::PathBuf, bool))> = opts.disks.iter().enumerate().collect();
    if machine.starts_with("microvm") {
        disks.reverse();
    }
    for (i, (file, ro)) in disks {
        let mut drive = format!("file={},format=raw,if=none,id=disk{i},cache=writeback", file.display());
        if *ro {
            drive.push_str(",readonly=on");
        }
        let device = if machine.starts_with("microvm") { "virtio-blk-device" } else { "virtio-blk-pci" };
        cmd.args(["-drive", &drive, "-device", &format!("{device},drive=disk{i}")]);
    }
    let append = append.trim().to_string();
    if !append.is_empty() && pvh {
        cmd.args(["-append", &append]);
    }
    if opts.net.enabled {
        let device = if machine.starts_with("microvm") { "virtio-net-device" } else { "virtio-net-pci" };
        cmd.args(["-netdev", &opts.net.netdev(), "-device", &format!("{device},netdev=net0")]);
    }
    cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    if opts.gui {
        cmd.args(["-vga", "std"]);
    } else {
        cmd.args(["-display", "none"]);
    }
    cmd.args(&opts.extra);
    // For debugging by hand, e.g. KEEL_QEMU_EXTRA="-monitor unix:/tmp/mon,server,nowait".
    if let Ok(extra) = std::env::var("KEEL_QEMU_EXTRA") {
        cmd.args(extra.split_whitespace());
    }
    cmd
}

/// The machine type: as asked, else q35 for a window or a bootable image, else microvm.
pub fn machine_name(opts: &Options) -> String {
    match &opts.machine {
        Some(m) => m.clone(),
        None if opts.gui || opts.boot != Boot::Pvh => "q35".into(),
        None => "microvm".into(),
    }
}

/// Debian's package with QEMU's GTK and SDL displays, and a file it installs.
pub const GUI_PACKAGE: (&str, &str) = ("qemu-system-gui", "/usr/lib/x86_64-linux-gnu/qemu/ui-gtk.so");

/// True inside a desktop session (X11 or Wayland).
pub fn has_desktop() -> bool {
    std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

/// Makes sure QEMU can open a window: Debian ships the GTK and SDL displays in
/// `qemu-system-gui`; without it QEMU silently serves VNC on 127.0.0.1:5900 instead.
pub fn check_gui() -> Result<(), String> {
    crate::image::ensure_packages(&[("qemu-system-gui", "/usr/lib/x86_64-linux-gnu/qemu/ui-gtk.so")])
        .map_err(|e| format!("--gui: QEMU has no window display ({e}); or connect a VNC viewer to 127.0.0.1:5900"))?;
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        return Err("--gui: no desktop session (DISPLAY and WAYLAND_DISPLAY are unset); run it from a desktop, or use the serial console without --gui".into());
    }
    Ok(())
}

/// A QEMU monitor on a Unix socket (tests type on the PS/2 keyboard and read guest memory).
pub struct Monitor {
    stream: std::os::unix::net::UnixStream,
}

impl Monitor {
    /// Connects to the socket QEMU was started with (`-monitor unix:PATH,server,nowait`).
    pub fn connect(path: &Path) -> Result<Monitor, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(Duration::from_millis(200))).map_err(|e| e.to_string())?;
                    let mut m = Monitor { stream };
                    m.read_until_prompt()?;
                    return Ok(m);
                }
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("monitor {}: {e}", path.display())),
            }
        }
    }

    fn read_until_prompt(&mut self) -> Result<String, String> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while !out.ends_with(b"(qemu) ") {
            if Instant::now() > deadline {
                return Err("monitor did not answer".into());
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Err("monitor closed".into()),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Runs a monitor command and returns its output.
    pub fn command(&mut self, cmd: &str) -> Result<String, String> {
        self.stream.write_all(format!("{cmd}\n").as_bytes()).map_err(|e| e.to_string())?;
        self.read_until_prompt()
    }

    /// Types text on the PS/2 keyboard (letters, digits, space, a few symbols; `\n` is Enter).
    pub fn type_text(&mut self, text: &str) -> Result<(), String> {
        for c in text.chars() {
            let key = match c {
                ' ' => "spc".to_string(),
                '\n' => "ret".to_string(),
                '-' => "minus".to_string(),
                '/' => "slash".to_string(),
                '.' => "dot".to_string(),
                '_' => "shift-minus".to_string(),
                c if c.is_ascii_uppercase() => format!("shift-{}", c.to_ascii_lowercase()),
                c if c.is_ascii_alphanumeric() => c.to_string(),
                c => return Err(format!("cannot type {c:?}")),
            };
            self.command(&format!("sendkey {key}"))?;
        }
        Ok(())
    }

    /// The 80x25 VGA text screen, read from guest memory, as lines.
    pub fn vga_text(&mut self) -> Result<Vec<String>, String> {
        let out = self.command("xp /2000hx 0xb8000")?;
        let mut chars = Vec::new();
        for line in out.lines() {
            let Some((_, words)) = line.split_once(": ") else { continue };
            for w in words.split_whitespace() {
                if let Ok(v) = u16::from_str_radix(w.trim_start_matches("0x"), 16) {
                    let ch = (v & 0xff) as u8;
                    chars.push(if (0x20..0x7f).contains(&ch) { ch as char } else { '?' });
                }
            }
        }
        Ok(chars.chunks(80).map(|r| r.iter().collect::<String>().trim_end().to_string()).collect())
    }
}

/// Turns QEMU's exit status into Keel's: 0 after a power-off, N after `exit N` (debug-exit
/// reports (N << 1) | 1).
pub fn keel_status(qemu_status: Option<i32>) -> i32 {
    match qemu_status {
        Some(0) => 0,
        Some(s) if s & 1 == 1 => s >> 1,
        Some(s) => s,
        None => 1,
    }
}

fn report_status(status: i32) {
    if status == FAULT_STATUS {
        eprintln!("xtask: Keel stopped after a kernel fault (report above)");
    }
}

/// Boots with the shell on this terminal. Ctrl-C goes to Keel; Ctrl-A X quits QEMU.
pub fn interactive(image: &Image, opts: &Options) -> Result<i32, String> {
    build::ensure_qemu()?;
    let mut cmd = command(image, opts);
    cmd.args(["-chardev", "stdio,id=con,mux=on,signal=off", "-serial", "chardev:con", "-mon", "chardev=con"]);
    eprintln!("xtask: booting Keel ({}, {}); Ctrl-A X quits QEMU", machine_name(opts), accel_name(opts));
    let st = cmd.status().map_err(|e| format!("cannot start QEMU: {e}"))?;
    let status = keel_status(st.code());
    report_status(status);
    Ok(status)
}

/// Runs stdin as a script: waits for the prompt before each line, shows the session on stdout,
/// and shuts Keel down at the end of input, returning its status.
pub fn script(image: &Image, opts: &Options) -> Result<i32, String> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).map_err(|e| format!("reading stdin: {e}"))?;
    let mut vm = Vm::boot(image, opts)?;
    vm.echo = true;
    vm.wait_for(PROMPT, Duration::from_secs(60))?;
    let mut open_quote = String::new();
    for line in input.lines() {
        vm.send_line(line)?;
        open_quote.push_str(line);
        if keel_shell::parse::incomplete(&open_quote) {
            // The shell continues the line: wait for its "> " prompt, not for the command.
            open_quote.push('\n');
            let _ = vm.wait_for("\n> ", Duration::from_secs(10));
            continue;
        }
        open_quote.clear();
        // Wait for the next prompt, or for the program to go quiet (it may be reading input).
        vm.wait_prompt_or_idle(Duration::from_millis(1500));
    }
    vm.wait_prompt_or_idle(Duration::from_millis(1500));
    vm.send_line("exit")?;
    let status = vm.wait_exit(Duration::from_secs(3600))?;
    println!();
    report_status(status);
    Ok(status)
}

#[derive(Default)]
struct Shared {
    out: Vec<u8>,
    eof: bool,
}

/// A running Keel whose serial console is driven through pipes.
pub struct Vm {
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    /// Output before this offset has been consumed by `wait_for`.
    mark: usize,
    /// Copy everything Keel prints to our stdout.
    pub echo: bool,
    echoed: usize,
    pub started: Instant,
}

impl Vm {
    /// Starts QEMU with the serial console on pipes.
    pub fn boot(image: &Image, opts: &Options) -> Result<Vm, String> {
        build::ensure_qemu()?;
        let mut cmd = command(image, opts);
        cmd.args(["-serial", "stdio"]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
        let mut stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let stdin = child.stdin.take();
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let s2 = shared.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = stdout.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*s2;
                let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    g.eof = true;
                    cv.notify_all();
                    return;
                }
                g.out.extend_from_slice(&buf[..n]);
                cv.notify_all();
            }
        });
        Ok(Vm { child, stdin, shared, mark: 0, echo: false, echoed: 0, started })
    }

    fn flush_echo(&mut self, out: &[u8]) {
        if self.echo && out.len() > self.echoed {
            let text: Vec<u8> = out[self.echoed..].iter().copied().filter(|&b| b != b'\r').collect();
            let mut so = std::io::stdout();
            let _ = so.write_all(&text);
            let _ = so.flush();
            self.echoed = out.len();
        }
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        let g = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&g.out).into_owned()
    }

    /// Waits until `pattern` appears after the mark; returns the text from the mark to the end
    /// of the pattern and moves the mark there.
    pub fn wait_for(&mut self, pattern: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.shared.clone();
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let out = &g.out;
            self.flush_echo(out);
            let hay = String::from_utf8_lossy(&out[self.mark.min(out.len())..]).into_owned();
            if let Some(i) = hay.find(pattern) {
                let end = i + pattern.len();
                let text = hay[..end].to_string();
                // Advance by the byte length of the lossy prefix (identical for valid UTF-8).
                self.mark += text.len();
                return Ok(text);
            }
            if g.eof {
                return Err(format!("QEMU exited while waiting for {pattern:?}; output since the last step:\n{hay}"));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("timed out after {timeout:?} waiting for {pattern:?}; output since the last step:\n{hay}\n(all: {:?})", String::from_utf8_lossy(out)));
            }
            g = cv.wait_timeout(g, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Waits for the prompt, or until nothing has been printed for `idle`.
    pub fn wait_prompt_or_idle(&mut self, idle: Duration) {
        let (lock, cv) = &*self.shared.clone();
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut last_len = g.out.len();
        let mut last_change = Instant::now();
        loop {
            let out = &g.out;
            self.flush_echo(out);
            let tail = &out[self.mark.min(out.len())..];
            if let Some(i) = find(tail, PROMPT.as_bytes()) {
                self.mark += i + PROMPT.len();
                return;
            }
            if g.eof {
                return;
            }
            if out.len() != last_len {
                last_len = out.len();
                last_change = Instant::now();
            }
            if last_change.elapsed() >= idle {
                self.mark = out.len();
                return;
            }
            g = cv.wait_timeout(g, Duration::from_millis(50)).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Pulls the plug: kills QEMU at once (what the disk had by then is what a power cut
    /// leaves) and returns everything Keel printed.
    pub fn power_cut(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader thread sees end of file once QEMU is gone.
        let (lock, cv) = &*self.shared.clone();
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !g.eof && Instant::now() < deadline {
            g = cv.wait_timeout(g, Duration::from_millis(50)).unwrap_or_else(|e| e.into_inner()).0;
        }
        String::from_utf8_lossy(&g.out).into_owned()
    }

    /// Sends raw bytes to the serial console.
    pub fn send(&mut self, data: &[u8]) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        stdin.write_all(data).and_then(|_| stdin.flush()).map_err(|e| format!("writing to QEMU: {e}"))
    }

    /// Types a line and Enter.
    pub fn send_line(&mut self, line: &str) -> Result<(), String> {
        self.send(line.as_bytes())?;
        self.send(b"\r")
    }

    /// Runs a shell command: types it, waits for the next prompt, returns what it printed
    /// (without the echoed command line and the prompt).
    pub fn run(&mut self, line: &str, timeout: Duration) -> Result<String, String> {
        self.send_line(line)?;
        let text = self.wait_for(PROMPT, timeout)?;
        let body = text.strip_suffix(PROMPT).unwrap_or(&text);
        let body = body.split_once("\r\n").map_or("", |p| p.1);
        Ok(body.replace("\r\n", "\n"))
    }

    /// Waits for QEMU to exit and returns Keel's status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<i32, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                // Let the reader thread drain what is left.
                let _ = self.wait_eof(Duration::from_secs(2));
                let out = self.shared.0.lock().unwrap_or_else(|e| e.into_inner()).out.clone();
                self.flush_echo(&out);
                return Ok(keel_status(st.code()));
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                return Err(format!("QEMU did not exit within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_eof(&self, timeout: Duration) -> bool {
        let (lock, cv) = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !g.eof {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = cv.wait_timeout(g, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
