//! The compiled tier on the build host: the engine-boundary cases every engine passes (shared
//! with the interpreter's tests), then what only the compiled tier has. Modules are compiled
//! here with Cranelift for the host and the kernel's engine settings (`compiled::config`).
use std::sync::OnceLock;
use std::time::Duration;

use keel_wasm::compiled::{self, wasmtime};
use keel_wasm::Program;

/// One engine for all tests, its epoch advanced every millisecond as Keel's timer does.
fn engine() -> &'static wasmtime::Engine {
    static ENGINE: OnceLock<wasmtime::Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let engine = wasmtime::Engine::new(&compiled::config()).expect("engine");
        let ticker = engine.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(1));
            ticker.increment_epoch();
        });
        engine
    })
}

fn program(bytes: &[u8]) -> Result<Program, LoadError> {
    let module = wasmtime::Module::new(engine(), bytes).map_err(|e| LoadError::Invalid(e.to_string()))?;
    Program::compiled(&module)
}

include!("../../../crates/wasm/tests/cases/mod.rs");

#[test]
fn runs_on_the_compiled_engine() {
    let p = program(&wat::parse_str(HELLO).unwrap()).unwrap();
    assert_eq!(p.engine_name(), "compiled");
}

#[test]
fn traps_name_the_function_and_offset() {
    let wat = r#"(module (memory (export "memory") 1)
      (func $divide (param i32) (result i32) (i32.div_s (i32.const 1) (local.get 0)))
      (func $middle (result i32) (call $divide (i32.const 0)))
      (func (export "_start") (drop (call $middle))))"#;
    match run(wat, &mut TestHost::default()) {
        Outcome::Trapped(m) => {
            let lines: Vec<&str> = m.lines().collect();
            assert_eq!(lines[0], "integer divide by zero", "{m}");
            assert!(lines[1].starts_with("  in divide at 0x"), "{m}");
            assert!(lines[2].starts_with("  called from middle at 0x"), "{m}");
            assert!(lines[3].starts_with("  called from _start at 0x") || lines[3].contains("function 2"), "{m}");
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn a_blocked_guest_can_be_dropped() {
    // Waits for stdin forever; the runner gives up (Ctrl-C) while it is suspended in fd_read.
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "fd_read" (func $r (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 100))
        (i32.store (i32.const 4) (i32.const 64))
        (drop (call $r (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;
    let mut p = process(wat, Limits::default()).unwrap();
    let mut step = p.run();
    while step == keel_wasm::Step::Preempted {
        step = p.run();
    }
    assert_eq!(step, keel_wasm::Step::Blocked);
    assert!(p.wasi().pending().is_some());
    drop(p);
}

#[test]
fn the_same_results_as_the_interpreter_on_lua() {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/corpus/lua/lua.wasm")).unwrap();
    let script = "local t = {} for i = 1, 2000 do t[i] = i * i end print(#t, t[2000], string.format('%.3f', math.pi))";
    let mut outs = Vec::new();
    for p in [Program::load(&bytes).unwrap(), program(&bytes).unwrap()] {
        let config = Config { args: vec!["lua".into(), "-e".into(), script.into()], ..Config::default() };
        let wasi = WasiCtx::new(vfs(), Box::new(Sys), config).unwrap();
        let mut proc = Process::new(&p, wasi, Limits::default()).unwrap();
        let mut h = TestHost::default();
        let o = runner::run(&mut proc, &mut h);
        outs.push((o, String::from_utf8_lossy(&h.out).into_owned()));
    }
    assert_eq!(outs[0], (Outcome::Exited(0), "2000\t4000000\t3.142\n".to_string()));
    assert_eq!(outs[0], outs[1]);
}
