//! `keel-run FILE [ARGS...]`: runs a WASI program on the host exactly as Keel runs it (same
//! engine, same WASI code), with an empty in-memory root as its `.`; stdio is the host's.
//! `cargo xtask bench` uses it to compare Keel with the same engine as a normal Linux program.
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use keel_vfs::{MemFs, Vfs};
use keel_wasi::{Config, Preopen, System, WasiCtx};
use keel_wasm::runner::{self, Interrupted, Outcome};
use keel_wasm::{Limits, Process, Program};

struct HostSystem(Instant);

impl System for HostSystem {
    fn realtime_ns(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
    }
    fn monotonic_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
    fn random(&mut self, buf: &mut [u8]) {
        // Not cryptographic: benchmarks only.
        let mut x = self.monotonic_ns() | 1;
        for b in buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
}

struct StdHost(Instant);

impl runner::Host for StdHost {
    fn output(&mut self, fd: u32, data: &[u8]) {
        if fd == 2 {
            let _ = std::io::stderr().write_all(data);
        } else {
            let _ = std::io::stdout().write_all(data);
        }
    }
    fn stdin(&mut self, _deadline: Option<u64>) -> Result<Option<Vec<u8>>, Interrupted> {
        let mut buf = vec![0u8; 65536];
        match std::io::stdin().read(&mut buf) {
            Ok(0) | Err(_) => Ok(None),
            Ok(n) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
        }
    }
    fn sleep_until(&mut self, deadline: u64) -> Result<(), Interrupted> {
        let now = self.now();
        if deadline > now {
            std::thread::sleep(std::time::Duration::from_nanos(deadline - now));
        }
        Ok(())
    }
    fn interrupted(&mut self) -> bool {
        false
    }
    fn now(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: keel-run FILE [ARGS...]");
        std::process::exit(2);
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("keel-run: {file}: {e}");
            std::process::exit(127);
        }
    };
    let program = match Program::load(&bytes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("keel-run: {file}: {e}");
            std::process::exit(126);
        }
    };
    let start = Instant::now();
    let vfs: &'static Vfs = Box::leak(Box::new(Vfs::new(Arc::new(MemFs::new(1 << 30, || 0)))));
    let config = Config {
        args: args.clone(),
        env: Vec::new(),
        preopens: vec![Preopen { guest: ".".into(), host: "/".into() }],
        max_fds: 1024,
        tty: [false, false, false],
        listeners: Vec::new(),
    };
    let wasi = match WasiCtx::new(vfs, Box::new(HostSystem(start)), config) {
        Ok(w) => w,
        Err((p, e)) => {
            eprintln!("keel-run: {p}: {e}");
            std::process::exit(2);
        }
    };
    // The kernel's slice: the same engine behaviour at slice boundaries as inside Keel.
    let limits = Limits { max_memory: 1 << 30, ..Limits::default() };
    let mut process = match Process::new(&program, wasi, limits) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("keel-run: {file}: {e}");
            std::process::exit(126);
        }
    };
    let code = match runner::run(&mut process, &mut StdHost(start)) {
        Outcome::Exited(c) => c,
        Outcome::Trapped(m) => {
            eprintln!("keel-run: {file}: trap: {m}");
            134
        }
        Outcome::Interrupted => 130,
        Outcome::OutOfFuel(_) => 134,
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
