//! The network commands of the shell: `ip`, `ping` and `fetch`, over the stack in `net`.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use keel_net::http::{self, Connection, Connector, FetchError, Sink};
use keel_net::tls::{client_config, TlsStream, Trust};
use keel_net::url::{Scheme, Url};
use keel_net::{Lookup, NetError, Sock, TcpStatus};
use keel_shell::exec::{Io, Shell};
use keel_vfs::OpenOptions;

use crate::net::{self, Waited};
use crate::{arch::time, fs};

fn now_ms() -> u64 {
    time::uptime_ns() / 1_000_000
}

/// Ctrl-C or kill: what stops a network command.
fn stopped() -> bool {
    crate::drivers::serial::interrupt_pending() || crate::sched::task::killed()
}

const NO_CARD: &str = "no network card (cargo xtask run gives Keel one unless --no-net)";

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 10 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / 1048576.0),
        n if n >= 10 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

/// `ip`: the interface, its addresses and routes, and its counters.
pub fn ip(io: &mut Io<'_>) -> i32 {
    let report = net::with(|n| {
        let c = n.stack.config().clone();
        let k = n.counters();
        let mac = c.mac.map(|m| m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")).unwrap_or_default();
        let irq = match n.irq {
            Some(crate::arch::cpu::IrqSource::Gsi(g)) => format!("I/O APIC GSI {g}"),
            Some(crate::arch::cpu::IrqSource::PicLine(l)) => format!("PIC line {l}"),
            None => String::from("none (polled)"),
        };
        let taken = net::INTERRUPTS.load(core::sync::atomic::Ordering::Relaxed);
        let mut out = format!("eth0: virtio-net {mac} ({}), interrupt {irq} ({taken} taken)\n", n.place);
        match c.address {
            Some((a, p)) => out.push_str(&format!("  inet {a}/{p}{}\n", if c.from_dhcp { " (DHCP)" } else { "" })),
            None => out.push_str("  no address yet (waiting for DHCP)\n"),
        }
        out.push_str(&format!(
            "  route: default via {}\n",
            c.gateway.map_or(String::from("(none)"), |g| g.to_string())
        ));
        let dns: Vec<String> = c.dns.iter().map(|d| d.to_string()).collect();
        out.push_str(&format!("  dns: {}\n", if dns.is_empty() { String::from("(none)") } else { dns.join(", ") }));
        out.push_str(&format!("  host: {} (the host's 127.0.0.1 ports allowed with --allow-host)\n", net::HOST_ADDR));
        out.push_str(&format!(
            "  rx: {} packets, {} ({} dropped)\n  tx: {} packets, {}\n  sockets: {} open\n",
            k.rx_packets,
            human_bytes(k.rx_bytes),
            k.rx_dropped,
            k.tx_packets,
            human_bytes(k.tx_bytes),
            n.stack.open_sockets()
        ));
        out
    });
    match report {
        Some(text) => {
            io.out(text.as_bytes());
            0
        }
        None => {
            io.eprint(format_args!("ip: {NO_CARD}\n"));
            1
        }
    }
}

/// Resolves `host` (an address, `host`, or a name through the DHCP-given DNS server).
fn resolve(host: &str) -> Result<Ipv4Addr, String> {
    let lookup = net::with(|n| n.stack.resolve(host)).ok_or(NO_CARD)?;
    let lookup = match lookup {
        Ok(l) => l,
        Err(NetError::NoRoute) => {
            return Err(format!("cannot resolve '{host}': no DNS server (is the network up? see `ip`)"))
        }
        Err(e) => return Err(format!("cannot resolve '{host}': {e}")),
    };
    if let Lookup::Done(a) = lookup {
        return Ok(a);
    }
    match net::wait_for(now_ms() + 10_000, &mut stopped, |n| n.stack.lookup_result(lookup).transpose()) {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(_)) => Err(format!("cannot resolve '{host}': name not found")),
        Err(Waited::TimedOut) => Err(format!("cannot resolve '{host}': the DNS server did not answer")),
        Err(Waited::Interrupted) => Err(String::from("interrupted")),
        Err(Waited::NoCard) => Err(String::from(NO_CARD)),
    }
}

/// `ping [-c N] HOST`: ICMP echo requests, one a second.
pub fn ping(args: &[&str], io: &mut Io<'_>) -> i32 {
    let mut count = 4u16;
    let mut host = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "-c" => match it.next().and_then(|v| v.parse::<u16>().ok()).filter(|&c| c > 0) {
                Some(c) => count = c,
                None => {
                    io.eprint(format_args!("ping: -c needs a count (1-65535)\n"));
                    return 2;
                }
            },
            h if host.is_none() && !h.starts_with('-') => host = Some(h),
            other => {
                io.eprint(format_args!("ping: unexpected '{other}'\nusage: ping [-c COUNT] HOST\n"));
                return 2;
            }
        }
    }
    let Some(host) = host else {
        io.eprint(format_args!("usage: ping [-c COUNT] HOST\n"));
        return 2;
    };
    let addr = match resolve(host) {
        Ok(a) => a,
        Err(e) => {
            io.eprint(format_args!("ping: {e}\n"));
            return 2;
        }
    };
    io.print(format_args!("PING {host} ({addr})\n"));
    let mut received = 0u16;
    let mut sent = 0u16;
    for seq in 1..=count {
        let start = time::uptime_ns();
        let r = net::with(|n| n.stack.ping_send(addr, seq, b"keel ping payload")).unwrap_or(Err(NetError::NoRoute));
        if let Err(e) = r {
            io.eprint(format_args!("ping: {e}\n"));
            return 2;
        }
        sent += 1;
        let reply = net::wait_for(now_ms() + 1000, &mut stopped, |n| {
            core::iter::from_fn(|| n.stack.ping_recv()).find(|(s, _)| *s == seq)
        });
        match reply {
            Ok((_, from)) => {
                received += 1;
                let us = (time::uptime_ns() - start) / 1000;
                io.print(format_args!("reply from {from}: icmp_seq={seq} time={}.{:03} ms\n", us / 1000, us % 1000));
                // One request a second.
                let next = start / 1_000_000 + 1000;
                if seq < count && net::wait_for(next, &mut stopped, |_| None::<()>) == Err(Waited::Interrupted) {
                    break;
                }
            }
            Err(Waited::TimedOut) => io.print(format_args!("no reply: icmp_seq={seq}\n")),
            Err(_) => break,
        }
    }
    let loss = if sent == 0 { 100 } else { 100 * u32::from(sent - received) / u32::from(sent) };
    io.print(format_args!("{sent} packets transmitted, {received} received, {loss}% packet loss\n"));
    if stopped() {
        return keel_shell::exec::STATUS_INTERRUPTED;
    }
    if received > 0 {
        0
    } else {
        1
    }
}

/// A TCP connection for the HTTP client: waits block the task, not the CPU.
struct TcpConn {
    sock: Sock,
    /// Silence this long ends the transfer.
    idle_ms: u64,
}

/// Silence on a connection this long ends a fetch (`-t` changes it).
const IDLE_MS: u64 = 30_000;

fn net_error(e: NetError) -> FetchError {
    FetchError::Net(e.to_string())
}

fn waited(w: Waited, idle_ms: u64) -> FetchError {
    match w {
        Waited::Interrupted => FetchError::Interrupted,
        Waited::TimedOut => FetchError::Net(format!("timed out (nothing from the server for {} s)", idle_ms / 1000)),
        Waited::NoCard => FetchError::Net(String::from(NO_CARD)),
    }
}

impl Connection for TcpConn {
    fn send_all(&mut self, data: &[u8]) -> Result<(), FetchError> {
        let mut sent = 0;
        while sent < data.len() {
            let sock = self.sock;
            let k = net::wait_for(now_ms() + self.idle_ms, &mut stopped, |n| match n.stack.send(sock, &data[sent..]) {
                Ok(0) => None,
                other => Some(other),
            })
            .map_err(|w| waited(w, self.idle_ms))?
            .map_err(net_error)?;
            sent += k;
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, FetchError> {
        let sock = self.sock;
        net::wait_for(now_ms() + self.idle_ms, &mut stopped, |n| n.stack.recv(sock, buf).transpose())
            .map_err(|w| waited(w, self.idle_ms))?
            .map_err(net_error)
    }
}

impl Drop for TcpConn {
    fn drop(&mut self) {
        let sock = self.sock;
        net::with(|n| n.stack.close(sock));
    }
}

/// Opens TCP connections to URLs (TLS over them for https://).
pub struct TcpConnector {
    idle_ms: u64,
    /// PEM CA certificates to trust instead of the bundled roots (`--ca FILE`).
    ca: Option<Vec<u8>>,
}

fn unix_seconds() -> u64 {
    time::realtime_ns() / 1_000_000_000
}

/// Connects to `host:port`, waiting for the handshake.
fn connect(host: &str, port: u16) -> Result<Sock, FetchError> {
    let addr = resolve(host).map_err(FetchError::Net)?;
    let sock = net::with(|n| n.stack.connect(addr, port))
        .ok_or(FetchError::Net(String::from(NO_CARD)))?
        .map_err(|e| FetchError::Net(format!("{host}:{port}: {e}")))?;
    let deadline = now_ms() + keel_net::stack::TCP_TIMEOUT_MS + 1000;
    let status = net::wait_for(deadline, &mut stopped, |n| match n.stack.status(sock) {
        Ok(TcpStatus::Connecting) => None,
        other => Some(other),
    });
    let fail = |e: FetchError| {
        net::with(|n| n.stack.abort(sock));
        Err(e)
    };
    match status {
        Ok(Ok(TcpStatus::Open | TcpStatus::PeerClosed)) => Ok(sock),
        Ok(Ok(TcpStatus::Failed(e))) | Ok(Err(e)) => fail(FetchError::Net(format!("{host}:{port}: {e}"))),
        Ok(Ok(TcpStatus::Connecting)) => fail(FetchError::Net(format!("{host}:{port}: timed out"))),
        Err(Waited::TimedOut) => fail(FetchError::Net(format!("{host}:{port}: timed out"))),
        Err(w) => fail(waited(w, 0)),
    }
}

impl Connector for TcpConnector {
    fn connect(&mut self, url: &Url) -> Result<Box<dyn Connection + '_>, FetchError> {
        let tcp = Box::new(TcpConn { sock: connect(&url.host, url.port)?, idle_ms: self.idle_ms });
        if url.scheme != Scheme::Https {
            return Ok(tcp);
        }
        let trust = match &self.ca {
            Some(pem) => Trust::Pem(pem),
            None => Trust::WebPki,
        };
        let config = client_config(trust, unix_seconds).map_err(|e| FetchError::Net(format!("--ca: {e}")))?;
        Ok(Box::new(TlsStream::connect(tcp, config, &url.host)?))
    }
}

/// Where `fetch` puts the body: a temporary file renamed into place at the end, or stdout.
struct FileSink<'a, 'b> {
    handle: Option<keel_vfs::Handle>,
    io: &'a mut Io<'b>,
    written: u64,
    length: Option<u64>,
    started: u64,
    last_draw: u64,
    drew: bool,
    quiet: bool,
}

impl FileSink<'_, '_> {
    fn draw(&mut self, done: bool) {
        let now = time::uptime_ns();
        // Only for downloads that take a while, five times a second.
        if self.quiet || (!done && (now - self.started < 500_000_000 || now - self.last_draw < 200_000_000)) {
            return;
        }
        if done && !self.drew {
            return;
        }
        self.last_draw = now;
        self.drew = true;
        let secs = ((now - self.started) as f64 / 1e9).max(0.001);
        let rate = human_bytes((self.written as f64 / secs) as u64);
        let line = match self.length {
            Some(total) if total > 0 => {
                let pct = (self.written * 100 / total).min(100) as usize;
                let bar: String = (0..30).map(|i| if i * 100 < pct * 30 { '#' } else { '.' }).collect();
                format!("\r[{bar}] {pct:3}% {} of {}, {rate}/s ", human_bytes(self.written), human_bytes(total))
            }
            _ => format!("\r{} received, {rate}/s ", human_bytes(self.written)),
        };
        self.io.eprint(format_args!("{line}"));
        if done {
            self.io.eprint(format_args!("\n"));
        }
    }
}

impl Sink for FileSink<'_, '_> {
    fn begin(&mut self, _status: u16, length: Option<u64>) -> Result<(), FetchError> {
        self.length = length;
        self.started = time::uptime_ns();
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), FetchError> {
        match &mut self.handle {
            Some(h) => {
                let mut off = 0;
                while off < data.len() {
                    let n = h.write(&data[off..]).map_err(|e| FetchError::Sink(format!("cannot write: {e}")))?;
                    if n == 0 {
                        return Err(FetchError::Sink(String::from("cannot write: no space left")));
                    }
                    off += n;
                }
            }
            None => self.io.out(data),
        }
        self.written += data.len() as u64;
        self.draw(false);
        Ok(())
    }
}

/// `fetch URL [-o FILE] [-q]`: HTTP GET to a file (named after the URL by default) or, with
/// `-o -`, to stdout.
pub fn fetch(shell: &Shell, args: &[&str], io: &mut Io<'_>) -> i32 {
    let usage = "usage: fetch [-q] [-t SECONDS] [--ca FILE] [-o FILE|-] URL";
    let mut ca: Option<&str> = None;
    let (mut url, mut out, mut quiet): (Option<&str>, Option<&str>, bool) = (None, None, false);
    let mut idle_ms = IDLE_MS;
    let mut it = args.iter().copied();
    while let Some(a) = it.next() {
        match a {
            "-o" => match it.next() {
                Some(f) => out = Some(f),
                None => {
                    io.eprint(format_args!("fetch: -o needs a file\n{usage}\n"));
                    return 2;
                }
            },
            "-q" => quiet = true,
            "--ca" => match it.next() {
                Some(f) => ca = Some(f),
                None => {
                    io.eprint(format_args!("fetch: --ca needs a file\n{usage}\n"));
                    return 2;
                }
            },
            "-t" => match it.next().and_then(|v| v.parse::<f64>().ok()).filter(|t| *t > 0.0 && *t < 1e6) {
                Some(t) => idle_ms = (t * 1000.0) as u64,
                None => {
                    io.eprint(format_args!("fetch: -t needs seconds\n{usage}\n"));
                    return 2;
                }
            },
            u if url.is_none() && !u.starts_with('-') => url = Some(u),
            other => {
                io.eprint(format_args!("fetch: unexpected '{other}'\n{usage}\n"));
                return 2;
            }
        }
    }
    let Some(url) = url else {
        io.eprint(format_args!("{usage}\n"));
        return 2;
    };
    let parsed = match Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            io.eprint(format_args!("fetch: {url}: {e}\n"));
            return 2;
        }
    };
    let cwd = keel_commands::cwd(shell);
    let ca = match ca {
        Some(f) => match keel_commands::read_file(fs::vfs(), &cwd, f) {
            Ok(pem) => Some(pem),
            Err(e) => {
                io.eprint(format_args!("fetch: --ca {f}: {e}\n"));
                return 2;
            }
        },
        None => None,
    };
    let target = match out {
        Some("-") => None,
        Some(f) => Some(String::from(f)),
        None => match parsed.file_name() {
            Some(n) => Some(String::from(n)),
            None => {
                io.eprint(format_args!("fetch: {url}: no file name in the URL; use -o FILE\n"));
                return 2;
            }
        },
    };
    // Written under a temporary name beside the target, renamed into place when complete.
    let temp = target.as_ref().map(|t| {
        let mut r = [0u8; 4];
        crate::random::fill(&mut r);
        let (dir, name) = match t.rfind('/') {
            Some(i) => (&t[..=i], &t[i + 1..]),
            None => ("", t.as_str()),
        };
        format!("{dir}.{name}.part-{:08x}", u32::from_le_bytes(r))
    });
    let handle = match &temp {
        Some(t) => match fs::vfs().open(&cwd, t, OpenOptions::write_new(), false) {
            Ok(h) => Some(h),
            Err(e) => {
                io.eprint(format_args!("fetch: {}: {e}\n", target.as_deref().unwrap_or("")));
                return 1;
            }
        },
        None => None,
    };
    let now = time::uptime_ns();
    let mut sink = FileSink { handle, io, written: 0, length: None, started: now, last_draw: 0, drew: false, quiet };
    let result = http::fetch(url, &mut TcpConnector { idle_ms, ca }, &mut sink);
    sink.draw(true);
    let FileSink { handle, io, .. } = sink;
    drop(handle);
    match (result, &temp, &target) {
        (Ok(done), Some(t), Some(final_name)) => {
            if let Err(e) = fs::vfs().rename(&cwd, t, &cwd, final_name, false) {
                let _ = fs::vfs().unlink(&cwd, t, false);
                io.eprint(format_args!("fetch: {final_name}: {e}\n"));
                return 1;
            }
            if !quiet {
                io.eprint(format_args!("fetch: {} bytes to {final_name}\n", done.bytes));
            }
            0
        }
        (Ok(_), _, _) => 0,
        (Err(e), t, _) => {
            if let Some(t) = t {
                let _ = fs::vfs().unlink(&cwd, t, false);
            }
            io.eprint(format_args!("fetch: {url}: {e}\n"));
            if e == FetchError::Interrupted {
                keel_shell::exec::STATUS_INTERRUPTED
            } else {
                1
            }
        }
    }
}

/// A WASI program's sockets over the kernel's stack: listeners given with `--tcplisten` and
/// the connections they accept, under handles of the program's own.
#[derive(Default)]
pub struct WasiSockets {
    listeners: alloc::collections::BTreeMap<u64, keel_net::Listener>,
    socks: alloc::collections::BTreeMap<u64, Sock>,
    next: u64,
}

/// WASI's errno for a network error.
fn errno_of(e: NetError) -> keel_wasi::Errno {
    use keel_wasi::errno;
    match e {
        NetError::NoRoute => 23,  // HOSTUNREACH
        NetError::Refused => 14,  // CONNREFUSED
        NetError::TimedOut => 73, // TIMEDOUT
        NetError::Reset => 15,    // CONNRESET
        NetError::Closed => errno::PIPE,
        NetError::InvalidAddress => 4, // ADDRNOTAVAIL
        NetError::AddressInUse => 3,   // ADDRINUSE
        NetError::NameNotFound => errno::INVAL,
        NetError::BadHandle => errno::BADF,
    }
}

impl WasiSockets {
    /// Opens a listening port: `ADDR` must be an address of Keel's (0.0.0.0 for any).
    pub fn listen(&mut self, addr: &str, port: u16) -> Result<u64, String> {
        let a: Ipv4Addr = addr.parse().map_err(|_| format!("'{addr}' is not an IPv4 address"))?;
        let own = net::with(|n| n.stack.config().address.map(|(a, _)| a)).ok_or(String::from(NO_CARD))?;
        if !a.is_unspecified() && !a.is_loopback() && Some(a) != own {
            return Err(format!("{a} is not an address of Keel's (use 0.0.0.0)"));
        }
        let l = net::with(|n| n.stack.listen(port, 32)).ok_or(String::from(NO_CARD))?.map_err(|e| e.to_string())?;
        self.next += 1;
        self.listeners.insert(self.next, l);
        Ok(self.next)
    }
}

impl keel_wasi::Sockets for WasiSockets {
    fn accept(&mut self, listener: u64) -> Result<Option<u64>, keel_wasi::Errno> {
        let l = *self.listeners.get(&listener).ok_or(keel_wasi::errno::BADF)?;
        let got = net::with(|n| {
            n.poll();
            n.stack.accept(l)
        })
        .ok_or(keel_wasi::errno::NOTSOCK)?
        .map_err(errno_of)?;
        Ok(got.map(|s| {
            self.next += 1;
            self.socks.insert(self.next, s);
            self.next
        }))
    }

    fn recv(&mut self, sock: u64, buf: &mut [u8]) -> Result<Option<usize>, keel_wasi::Errno> {
        let s = *self.socks.get(&sock).ok_or(keel_wasi::errno::BADF)?;
        net::with(|n| {
            n.poll();
            n.stack.recv(s, buf)
        })
        .ok_or(keel_wasi::errno::NOTSOCK)?
        .map_err(errno_of)
    }

    fn send(&mut self, sock: u64, data: &[u8]) -> Result<usize, keel_wasi::Errno> {
        let s = *self.socks.get(&sock).ok_or(keel_wasi::errno::BADF)?;
        net::with(|n| {
            let r = n.stack.send(s, data);
            n.poll();
            r
        })
        .ok_or(keel_wasi::errno::NOTSOCK)?
        .map_err(errno_of)
    }

    fn shutdown_write(&mut self, sock: u64) -> Result<(), keel_wasi::Errno> {
        let s = *self.socks.get(&sock).ok_or(keel_wasi::errno::BADF)?;
        net::with(|n| {
            let r = n.stack.shutdown_write(s);
            n.poll();
            r
        })
        .ok_or(keel_wasi::errno::NOTSOCK)?
        .map_err(errno_of)
    }

    fn close(&mut self, sock: u64) {
        if let Some(s) = self.socks.remove(&sock) {
            net::with(|n| {
                n.stack.close(s);
                n.poll();
            });
        }
    }

    fn close_listener(&mut self, listener: u64) {
        if let Some(l) = self.listeners.remove(&listener) {
            net::with(|n| n.stack.unlisten(l));
        }
    }

    fn ready(&mut self, handle: u64, listener: bool, write: bool) -> bool {
        let r = net::with(|n| {
            n.poll();
            if listener {
                self.listeners.get(&handle).is_none_or(|l| n.stack.acceptable(*l))
            } else {
                match self.socks.get(&handle) {
                    Some(s) if write => n.stack.writable(*s),
                    Some(s) => n.stack.readable(*s),
                    None => true,
                }
            }
        });
        r.unwrap_or(true)
    }
}

impl Drop for WasiSockets {
    fn drop(&mut self) {
        let socks: Vec<Sock> = core::mem::take(&mut self.socks).into_values().collect();
        let listeners: Vec<keel_net::Listener> = core::mem::take(&mut self.listeners).into_values().collect();
        if socks.is_empty() && listeners.is_empty() {
            return;
        }
        net::with(|n| {
            for s in socks {
                n.stack.close(s);
            }
            for l in listeners {
                n.stack.unlisten(l);
            }
        });
    }
}
