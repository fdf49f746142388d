// The engine boundary and the WASI layer together, on small WAT programs: cases every engine
// must pass. Included by `engine.rs` (the interpreter) and by `xtask/aot/tests/compiled.rs` (the
// compiled tier), each defining `fn program(&[u8]) -> Result<Program, LoadError>`.
use std::cell::Cell;
use std::sync::Arc;

use keel_vfs::{MemFs, Vfs};
use keel_wasi::{Config, Preopen, System, WasiCtx};
use keel_wasm::runner::{self, Host, Interrupted, Outcome};
use keel_wasm::{Limits, LoadError, Process};

struct Sys;

impl System for Sys {
    fn realtime_ns(&self) -> u64 {
        1_795_673_400_000_000_000
    }
    fn monotonic_ns(&self) -> u64 {
        NOW.with(|n| n.get())
    }
    fn random(&mut self, buf: &mut [u8]) {
        buf.fill(4);
    }
}

thread_local! {
    static NOW: Cell<u64> = const { Cell::new(1_000) };
}

#[derive(Default)]
struct TestHost {
    stdin: Vec<Vec<u8>>,
    out: Vec<u8>,
    err: Vec<u8>,
    interrupt_after: Option<usize>,
    checks: usize,
    slept: u64,
}

impl Host for TestHost {
    fn output(&mut self, fd: u32, data: &[u8]) {
        if fd == 1 { &mut self.out } else { &mut self.err }.extend_from_slice(data);
    }
    fn stdin(&mut self, _deadline: Option<u64>) -> Result<Option<Vec<u8>>, Interrupted> {
        Ok(if self.stdin.is_empty() { None } else { Some(self.stdin.remove(0)) })
    }
    fn sleep_until(&mut self, deadline: u64) -> Result<(), Interrupted> {
        let now = NOW.with(|n| n.get());
        self.slept += deadline.saturating_sub(now);
        NOW.with(|n| n.set(deadline.max(now)));
        Ok(())
    }
    fn interrupted(&mut self) -> bool {
        self.checks += 1;
        self.interrupt_after.is_some_and(|n| self.checks > n)
    }
    fn now(&self) -> u64 {
        NOW.with(|n| n.get())
    }
}

fn vfs() -> &'static Vfs {
    let v = Vfs::new(Arc::new(MemFs::new(1 << 20, || 0)));
    v.mkdir("/", "/sandbox", false).unwrap();
    Box::leak(Box::new(v))
}

fn process(wat: &str, limits: Limits) -> Result<Process, LoadError> {
    let bytes = wat::parse_str(wat).unwrap();
    let program = program(&bytes)?;
    let config = Config {
        args: vec!["prog".into(), "arg1".into()],
        env: vec![("KEY".into(), "value".into())],
        preopens: vec![Preopen { guest: ".".into(), host: "/sandbox".into() }],
        ..Config::default()
    };
    let wasi = WasiCtx::new(vfs(), Box::new(Sys), config).unwrap();
    Process::new(&program, wasi, limits)
}

fn run(wat: &str, host: &mut TestHost) -> Outcome {
    let mut p = process(wat, Limits { fuel_slice: 10_000, ..Limits::default() }).unwrap();
    runner::run(&mut p, host)
}

const HELLO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello, keel\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 12))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

#[test]
fn hello_world_and_exit_zero() {
    let mut h = TestHost::default();
    assert_eq!(run(HELLO, &mut h), Outcome::Exited(0));
    assert_eq!(h.out, b"hello, keel\n");
}

#[test]
fn proc_exit_code_is_reported() {
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start") (call $exit (i32.const 42)) unreachable))"#;
    assert_eq!(run(wat, &mut TestHost::default()), Outcome::Exited(42));
}

#[test]
fn traps_are_described() {
    let wat = r#"(module (memory (export "memory") 1)
      (func (export "_start") (drop (i32.div_s (i32.const 1) (i32.const 0)))))"#;
    match run(wat, &mut TestHost::default()) {
        Outcome::Trapped(m) => assert!(m.contains("divide by zero") || m.contains("division"), "{m}"),
        o => panic!("{o:?}"),
    }
    let wat = r#"(module (memory (export "memory") 1)
      (func (export "_start") (drop (i32.load (i32.const 70000)))))"#;
    match run(wat, &mut TestHost::default()) {
        Outcome::Trapped(m) => assert!(m.contains("out of bounds"), "{m}"),
        o => panic!("{o:?}"),
    }
    let wat = r#"(module (memory (export "memory") 1) (func $f (call $f)) (func (export "_start") (call $f)))"#;
    match run(wat, &mut TestHost::default()) {
        Outcome::Trapped(m) => assert!(m.contains("stack"), "{m}"),
        o => panic!("{o:?}"),
    }
}

#[test]
fn load_errors_name_the_problem() {
    let unknown =
        r#"(module (import "env" "launch_missiles" (func)) (memory (export "memory") 1) (func (export "_start")))"#;
    let bytes = wat::parse_str(unknown).unwrap();
    let e = program(&bytes).err().unwrap();
    assert_eq!(
        e.to_string(),
        "unknown import: function env::launch_missiles (Keel provides the wasi_snapshot_preview1 functions)"
    );
    let bad_name = r#"(module (import "wasi_snapshot_preview1" "fd_explode" (func)) (func (export "_start")))"#;
    assert!(matches!(program(&wat::parse_str(bad_name).unwrap()), Err(LoadError::UnknownImport { .. })));
    let wrong_sig =
        r#"(module (import "wasi_snapshot_preview1" "fd_close" (func (param i64))) (func (export "_start")))"#;
    assert!(matches!(process(wrong_sig, Limits::default()), Err(LoadError::Link(_))), "signature mismatch");
    assert!(matches!(program(b"\0asm\x01\0\0\0garbage"), Err(LoadError::Invalid(_))));
    assert!(matches!(program(b"not wasm at all"), Err(LoadError::Invalid(_))));
    let no_start = r#"(module (memory (export "memory") 1))"#;
    assert_eq!(process(no_start, Limits::default()).err(), Some(LoadError::NoStart));
}

#[test]
fn an_endless_loop_is_interrupted() {
    let wat = r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#;
    let mut h = TestHost { interrupt_after: Some(5), ..TestHost::default() };
    assert_eq!(run(wat, &mut h), Outcome::Interrupted);
}

#[test]
fn a_memory_bomb_hits_the_limit() {
    // Grows memory by 16 pages until refused, then exits with the page count.
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (loop $l (if (i32.ne (memory.grow (i32.const 16)) (i32.const -1)) (then (br $l))))
        (call $exit (memory.size))))"#;
    let mut p = process(wat, Limits { max_memory: 4 << 20, fuel_slice: 10_000, ..Limits::default() }).unwrap();
    let out = runner::run(&mut p, &mut TestHost::default());
    assert_eq!(out, Outcome::Exited(49));
    assert!(p.memory_limit_hit());
    assert_eq!(p.memory_bytes(), 49 * 65536);
}

#[test]
fn the_system_reserve_stops_growth_below_the_limit() {
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (loop $l (if (i32.ne (memory.grow (i32.const 16)) (i32.const -1)) (then (br $l))))
        (call $exit (memory.size))))"#;
    fn two_mib() -> usize {
        2 << 20
    }
    let limits = Limits { max_memory: 64 << 20, fuel_slice: 10_000, available: Some(two_mib), ..Limits::default() };
    let mut p = process(wat, limits).unwrap();
    // Each step may take at most 2 MiB more; 16 pages (1 MiB) at a time always fits, so it is the
    // per-program limit that ends this bomb: 64 MiB = 1024 pages, 1 + 16k <= 1024.
    assert_eq!(runner::run(&mut p, &mut TestHost::default()), Outcome::Exited(1009));
    fn nothing() -> usize {
        64 << 10
    }
    let limits = Limits { max_memory: 64 << 20, fuel_slice: 10_000, available: Some(nothing), ..Limits::default() };
    let mut p = process(wat, limits).unwrap();
    assert_eq!(runner::run(&mut p, &mut TestHost::default()), Outcome::Exited(1));
    assert!(p.memory_limit_hit());
}

#[test]
fn stdin_is_read_after_suspension() {
    // Copies stdin to stdout until end of input.
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "fd_read" (func $r (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (loop $l
          (i32.store (i32.const 0) (i32.const 100))
          (i32.store (i32.const 4) (i32.const 64))
          (drop (call $r (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
          (if (i32.gt_u (i32.load (i32.const 8)) (i32.const 0))
            (then
              (i32.store (i32.const 4) (i32.load (i32.const 8)))
              (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 12)))
              (br $l))))))"#;
    let mut h = TestHost { stdin: vec![b"first ".to_vec(), b"second".to_vec()], ..TestHost::default() };
    assert_eq!(run(wat, &mut h), Outcome::Exited(0));
    assert_eq!(h.out, b"first second");
}

#[test]
fn poll_oneoff_sleeps_on_a_clock() {
    // One relative clock subscription of 5 ms, then exit with nevents.
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "poll_oneoff" (func $p (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (i64.store (i32.const 0) (i64.const 77))
        (i32.store8 (i32.const 8) (i32.const 0))
        (i32.store (i32.const 16) (i32.const 1))
        (i64.store (i32.const 24) (i64.const 5000000))
        (drop (call $p (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))
        (call $exit (i32.add (i32.load (i32.const 200)) (i32.wrap_i64 (i64.load (i32.const 100)))))))"#;
    let mut h = TestHost::default();
    assert_eq!(run(wat, &mut h), Outcome::Exited(78));
    assert_eq!(h.slept, 5_000_000);
}

#[test]
fn a_flood_of_output_is_flushed_in_pieces() {
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 2)
      (func (export "_start") (local $i i32)
        (i32.store (i32.const 0) (i32.const 16))
        (i32.store (i32.const 4) (i32.const 65536))
        (loop $l
          (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 20))))))"#;
    let mut h = TestHost::default();
    assert_eq!(run(wat, &mut h), Outcome::Exited(0));
    assert_eq!(h.out.len(), 20 * 65536);
}

#[test]
fn bad_pointers_are_efault_not_crashes() {
    // fd_write with an iovec array far outside memory returns EFAULT (21) as exit code.
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (call $exit (call $w (i32.const 1) (i32.const -8) (i32.const 1000000) (i32.const 8)))))"#;
    assert_eq!(run(wat, &mut TestHost::default()), Outcome::Exited(21));
}

