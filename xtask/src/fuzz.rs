//! `cargo xtask fuzz`: throws generated and mutated inputs at Keel's loader, engine boundary,
//! WASI layer and archive reader on the host, and keeps any input that makes them panic. Also
//! `--in-keel N`: runs N generated modules inside the real kernel and checks it survives with its
//! memory back at the baseline.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use keel_vfs::{Lookup, MemFs, OpenOptions, Vfs};
use keel_wasi::{Config, Preopen, System, WasiCtx};
use keel_wasm::runner::{self, Interrupted};
use keel_wasm::{Limits, Process, Program};

use crate::build;
use crate::wasi_imports;

/// A small deterministic PRNG (xorshift64*), so a seed reproduces a whole run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

struct FakeSys;

impl System for FakeSys {
    fn realtime_ns(&self) -> u64 {
        1_800_000_000_000_000_000
    }
    fn monotonic_ns(&self) -> u64 {
        1_000
    }
    fn random(&mut self, buf: &mut [u8]) {
        buf.fill(7);
    }
}

struct NullHost;

impl runner::Host for NullHost {
    fn output(&mut self, _fd: u32, _data: &[u8]) {}
    fn stdin(&mut self, _d: Option<u64>) -> Result<Option<Vec<u8>>, Interrupted> {
        Ok(None)
    }
    fn sleep_until(&mut self, _d: u64) -> Result<(), Interrupted> {
        Ok(())
    }
    fn interrupted(&mut self) -> bool {
        false
    }
    fn now(&self) -> u64 {
        u64::MAX / 2
    }
}

/// A namespace with a sandbox and a canary outside it.
fn sandbox_vfs() -> &'static Vfs {
    let vfs = Vfs::new(Arc::new(MemFs::new(8 << 20, || 0)));
    vfs.mkdir("/", "/sandbox", false).ok();
    vfs.mkdir("/", "/sandbox/d", false).ok();
    if let Ok(mut h) = vfs.open("/", "/canary", OpenOptions::write_new(), false) {
        let _ = h.write(b"canary");
    }
    if let Ok(mut h) = vfs.open("/", "/sandbox/f", OpenOptions::write_new(), false) {
        let _ = h.write(b"file in the sandbox");
    }
    Box::leak(Box::new(vfs))
}

/// Checks nothing outside the sandbox changed.
fn sandbox_intact(vfs: &Vfs) -> Result<(), String> {
    let names: Vec<String> =
        vfs.readdir("/", "/", false).map_err(|e| e.to_string())?.into_iter().map(|e| e.name).collect();
    if names != ["canary", "sandbox"] {
        return Err(format!("the root changed: {names:?}"));
    }
    let st = vfs.stat("/", "/canary", Lookup::NOFOLLOW).map_err(|e| e.to_string())?;
    if st.size != 6 {
        return Err("the canary changed".into());
    }
    Ok(())
}

fn run_module(bytes: &[u8]) -> Result<(), String> {
    let Ok(program) = Program::load(bytes) else { return Ok(()) };
    let vfs = sandbox_vfs();
    let config = Config {
        args: vec!["fuzz".into(), "../canary".into()],
        env: vec![("A".into(), "B".into())],
        preopens: vec![Preopen { guest: ".".into(), host: "/sandbox".into() }],
        max_fds: 64,
        tty: [false, false, false],
        listeners: vec![],
    };
    let wasi = WasiCtx::new(vfs, Box::new(FakeSys), config).map_err(|e| format!("{e:?}"))?;
    let limits = Limits { max_memory: 16 << 20, fuel_slice: 50_000, ..Limits::default() };
    if let Ok(mut p) = Process::new(&program, wasi, limits) {
        let _ = runner::run_with_budget(&mut p, &mut NullHost, Some(2_000_000));
    }
    sandbox_intact(vfs)
}

fn smith_module(data: &[u8], imports: &[u8], exports: &[u8]) -> Option<Vec<u8>> {
    let mut u = Unstructured::new(data);
    let mut config: wasm_smith::Config = u.arbitrary().ok()?;
    config.available_imports = Some(imports.to_vec());
    config.exports = Some(exports.to_vec());
    config.simd_enabled = false;
    config.relaxed_simd_enabled = false;
    config.threads_enabled = false;
    config.exceptions_enabled = false;
    config.gc_enabled = false;
    config.memory64_enabled = false;
    config.custom_page_sizes_enabled = false;
    config.wide_arithmetic_enabled = false;
    config.max_memory32_bytes = 16 << 20;
    config.max_memories = 1;
    let module = wasm_smith::Module::new(config, &mut u).ok()?;
    Some(module.to_bytes())
}

/// Mutates `data` a few bytes at a time (flips, inserts, deletions, truncation).
fn mutate(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    for _ in 0..1 + rng.below(8) {
        if v.is_empty() {
            v.push(rng.next() as u8);
            continue;
        }
        let i = rng.below(v.len() as u64) as usize;
        match rng.below(5) {
            0 => v[i] ^= 1 << rng.below(8),
            1 => v[i] = rng.next() as u8,
            2 => v.insert(i, rng.next() as u8),
            3 => {
                v.remove(i);
            }
            _ => v.truncate(i.max(8)),
        }
    }
    v
}

/// Random WASI call sequences, straight against the WASI crate, with arguments that are mostly
/// plausible (small fds, pointers into memory holding path fragments) and sometimes absurd.
fn wasi_calls(rng: &mut Rng) -> Result<(), String> {
    let vfs = sandbox_vfs();
    let config = Config {
        args: vec!["x".into()],
        env: vec![],
        preopens: vec![Preopen { guest: ".".into(), host: "/sandbox".into() }],
        max_fds: 16,
        tty: [false, false, false],
        listeners: vec![],
    };
    let mut w = WasiCtx::new(vfs, Box::new(FakeSys), config).map_err(|e| format!("{e:?}"))?;
    let mut mem = rng.bytes(65536);
    let frags: [&[u8]; 8] = [b"../canary", b"d", b"f", b"..", b"/canary", b"d/../f", b"x/y", b"."];
    for k in 0..32u32 {
        let f = frags[rng.below(frags.len() as u64) as usize];
        let at = 1024 * k as usize;
        mem[at..at + f.len()].copy_from_slice(f);
    }
    for _ in 0..200 {
        let mut a = [0u32; 10];
        for x in a.iter_mut() {
            *x = match rng.below(4) {
                0 => rng.below(8) as u32,
                1 => (rng.below(64) * 1024) as u32,
                2 => rng.below(16) as u32,
                _ => rng.next() as u32,
            };
        }
        let l = |i: usize| a[i] as u64 | ((a[(i + 1) % 10] as u64) << (32 * (a[i] & 1) as u64));
        let m = &mut mem[..];
        let r = match rng.below(46) {
            0 => w.args_get(m, a[0], a[1]),
            1 => w.args_sizes_get(m, a[0], a[1]),
            2 => w.environ_get(m, a[0], a[1]),
            3 => w.environ_sizes_get(m, a[0], a[1]),
            4 => w.clock_res_get(m, a[0], a[1]),
            5 => w.clock_time_get(m, a[0], l(1), a[2]),
            6 => w.fd_advise(a[0], l(1), l(2), a[3]),
            7 => w.fd_allocate(a[0], l(1) % (1 << 20), l(2) % (1 << 20)),
            8 => w.fd_close(a[0]),
            9 => w.fd_datasync(a[0]),
            10 => w.fd_fdstat_get(m, a[0], a[1]),
            11 => w.fd_fdstat_set_flags(a[0], a[1] as u16),
            12 => w.fd_fdstat_set_rights(a[0], l(1), l(2)),
            13 => w.fd_filestat_get(m, a[0], a[1]),
            14 => w.fd_filestat_set_size(a[0], l(1) % (1 << 20)),
            15 => w.fd_filestat_set_times(a[0], l(1), l(2), a[3] as u16),
            16 => w.fd_pread(m, a[0], a[1], a[2] % 64, l(3), a[4]),
            17 => w.fd_prestat_get(m, a[0], a[1]),
            18 => w.fd_prestat_dir_name(m, a[0], a[1], a[2]),
            19 => w.fd_pwrite(m, a[0], a[1], a[2] % 64, l(3) % (1 << 20), a[4]),
            20 => w.fd_read(m, a[0], a[1], a[2] % 64, a[3]),
            21 => w.fd_readdir(m, a[0], a[1], a[2] % 4096, l(3), a[4]),
            22 => w.fd_renumber(a[0], a[1]),
            23 => w.fd_seek(m, a[0], l(1) as i64, a[2] as u8, a[3]),
            24 => w.fd_sync(a[0]),
            25 => w.fd_tell(m, a[0], a[1]),
            26 => w.fd_write(m, a[0], a[1], a[2] % 64, a[3]),
            27 => w.path_create_directory(m, a[0], a[1], a[2] % 16),
            28 => w.path_filestat_get(m, a[0], a[1], a[2], a[3] % 16, a[4]),
            29 => w.path_filestat_set_times(m, a[0], a[1], a[2], a[3] % 16, l(4), l(5), a[6] as u16),
            30 => w.path_link(m, a[0], a[1], a[2], a[3] % 16, a[4], a[5], a[6] % 16),
            31 => w.path_open(m, a[0], a[1], a[2], a[3] % 16, a[4] as u16, l(5), l(6), a[7] as u16, a[8]),
            32 => w.path_readlink(m, a[0], a[1], a[2] % 16, a[3], a[4], a[5]),
            33 => w.path_remove_directory(m, a[0], a[1], a[2] % 16),
            34 => w.path_rename(m, a[0], a[1], a[2] % 16, a[3], a[4], a[5] % 16),
            35 => w.path_symlink(m, a[0], a[1] % 16, a[2], a[3], a[4] % 16),
            36 => w.path_unlink_file(m, a[0], a[1], a[2] % 16),
            37 => w.poll_oneoff(m, a[0], a[1], a[2] % 8, a[3]),
            38 => w.proc_exit(a[0]),
            39 => w.proc_raise(a[0]),
            40 => w.sched_yield(),
            41 => w.random_get(m, a[0], a[1] % 4096),
            42 => w.sock_accept(m, a[0], a[1] as u16, a[2]),
            43 => w.sock_recv(m, a[0], a[1], a[2], a[3] as u16, a[4], a[5]),
            44 => w.sock_send(m, a[0], a[1], a[2], a[3] as u16, a[4]),
            _ => w.sock_shutdown(a[0], a[1] as u8),
        };
        if r.is_err() && w.pending().is_some() {
            w.push_stdin(b"in");
            w.close_stdin();
            let _ = w.complete(&mut mem);
        }
        let _ = w.take_output();
    }
    sandbox_intact(vfs)
}

fn archive_input(rng: &mut Rng, seed_tar: &[u8]) -> Vec<u8> {
    if rng.below(3) == 0 {
        let n = rng.below(4096) as usize;
        rng.bytes(n)
    } else {
        mutate(rng, seed_tar)
    }
}

fn read_archive(data: &[u8]) -> Result<(), String> {
    let leaked: &'static [u8] = Box::leak(data.to_vec().into_boxed_slice());
    if let Ok(fs) = keel_vfs::TarFs::new(leaked) {
        let vfs = Vfs::new(Arc::new(fs));
        let mut stack = vec![String::from("/")];
        while let Some(dir) = stack.pop() {
            for e in vfs.readdir("/", &dir, false).unwrap_or_default() {
                let p = keel_vfs::path::join(&dir, &e.name);
                match e.kind {
                    keel_vfs::FileType::Dir => stack.push(p),
                    _ => {
                        if let Ok(mut h) = vfs.open("/", &p, OpenOptions::read(), false) {
                            let mut buf = [0u8; 512];
                            while h.read(&mut buf).unwrap_or(0) > 0 {}
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn seed_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, d) in [("a.txt", &b"hello"[..]), ("dir/b.bin", &[1, 2, 3][..]), (&"n".repeat(150)[..], b"long")] {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        let _ = b.append_data(&mut h, p, std::io::Cursor::new(d));
    }
    b.into_inner().unwrap_or_default()
}

/// Seed modules for mutation: the test programs and the shipped apps.
fn seed_modules() -> Vec<Vec<u8>> {
    let mut v = vec![wat::parse_str(wasi_imports::bad_pointers_wat()).unwrap_or_default()];
    if let Ok(dir) = std::fs::read_dir(build::out_dir().join("wasm")) {
        for e in dir.flatten() {
            if let Ok(b) = std::fs::read(e.path()) {
                if b.len() < 400_000 {
                    v.push(b);
                }
            }
        }
    }
    v
}

/// Runs one input; a panic becomes an error carrying the input. The input is written to
/// target/fuzz/last-<target>.bin first, so an abort (stack overflow) still leaves it behind.
fn guarded(target: &str, input: &[u8], f: impl FnOnce() -> Result<(), String>) -> Result<(), (String, Vec<u8>)> {
    let dir = build::root().join("target/fuzz");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("last-{}.bin", target.replace(' ', "-"))), input);
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err((format!("{target}: {e}"), input.to_vec())),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err((format!("{target}: panic: {msg}"), input.to_vec()))
        }
    }
}

/// Fuzzes for `seconds` (split between the targets) from `seed`; returns the failures.
/// Runs on a thread with a large stack: on stable Rust (the host) the interpreter's tail calls
/// are not guaranteed, and a failing `memory.grow` loop takes native stack per instruction (the
/// kernel builds wasmi with guaranteed tail calls; its test `hostile::guests` covers that).
pub fn fuzz_host(seconds: u64, seed: u64) -> Vec<(String, Vec<u8>)> {
    std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(move || fuzz_host_inner(seconds, seed))
        .ok()
        .and_then(|h| h.join().ok())
        .unwrap_or_else(|| vec![("fuzz thread".into(), Vec::new())])
}

fn fuzz_host_inner(seconds: u64, seed: u64) -> Vec<(String, Vec<u8>)> {
    let prev_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    let mut rng = Rng::new(seed);
    let imports = wat::parse_str(wasi_imports::all_imports_wat()).unwrap_or_default();
    let exports =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#).unwrap_or_default();
    let seeds = seed_modules();
    let tar = seed_tar();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut counts = [0u64; 4];
    while Instant::now() < deadline && failures.len() < 10 {
        let which = counts.iter().enumerate().min_by_key(|c| c.1).map(|c| c.0).unwrap_or(0);
        counts[which] += 1;
        let r = match which {
            0 => {
                let n = 512 + rng.below(4096) as usize;
                let data = rng.bytes(n);
                // A generator complaint about its own random configuration is not a finding.
                let m = catch_unwind(AssertUnwindSafe(|| smith_module(&data, &imports, &exports))).ok().flatten();
                match m {
                    Some(m) => guarded("wasm-smith module", &m, || run_module(&m)),
                    None => Ok(()),
                }
            }
            1 => {
                let base = &seeds[rng.below(seeds.len() as u64) as usize];
                let m = mutate(&mut rng, base);
                guarded("mutated module", &m, || run_module(&m))
            }
            2 => {
                let s = rng.next();
                guarded("wasi calls", &s.to_le_bytes(), || wasi_calls(&mut Rng::new(s)))
            }
            _ => {
                let a = archive_input(&mut rng, &tar);
                guarded("archive", &a, || read_archive(&a))
            }
        };
        if let Err(f) = r {
            failures.push(f);
        }
    }
    std::panic::set_hook(prev_hook);
    println!(
        "fuzz: {} wasm-smith modules, {} mutated modules, {} WASI call sequences, {} archives (seed {seed})",
        counts[0], counts[1], counts[2], counts[3]
    );
    failures
}

/// Saves failing inputs under target/fuzz/crashes/.
pub fn save(failures: &[(String, Vec<u8>)]) -> Vec<PathBuf> {
    let dir = build::root().join("target/fuzz/crashes");
    let _ = std::fs::create_dir_all(&dir);
    failures
        .iter()
        .enumerate()
        .map(|(i, (what, data))| {
            let p = dir.join(format!("{}-{i}.bin", what.split(':').next().unwrap_or("input").replace(' ', "-")));
            let _ = std::fs::write(&p, data);
            p
        })
        .collect()
}

/// Modules for an in-Keel fuzz batch (written to `dir`).
pub fn in_keel_batch(n: usize, seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(seed);
    let imports = wat::parse_str(wasi_imports::all_imports_wat()).unwrap_or_default();
    let exports =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#).unwrap_or_default();
    let seeds = seed_modules();
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < n {
        i += 1;
        let m = if i % 2 == 0 {
            let data = rng.bytes(2048);
            catch_unwind(AssertUnwindSafe(|| smith_module(&data, &imports, &exports))).ok().flatten()
        } else {
            let k = rng.below(seeds.len() as u64) as usize;
            Some(mutate(&mut rng, &seeds[k]))
        };
        if let Some(m) = m {
            out.push((format!("fuzz/m{:05}.wasm", out.len()), m));
        }
    }
    out
}
