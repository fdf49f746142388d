//! The interpreter behind the engine boundary: the cases every engine passes, then its own.
use keel_wasm::Program;

fn program(bytes: &[u8]) -> Result<Program, LoadError> {
    Program::load(bytes)
}

include!("cases/mod.rs");

/// A module whose `_start` calls, many times, functions it has never called before, each large
/// enough that translating it costs more fuel than a small slice holds: at some slice boundary a
/// first call must then wait for the next slice, never end the program.
fn first_calls_across_slices() -> String {
    let body = "(drop (i32.add (local.get 0) (i32.const 1)))\n".repeat(300);
    let mut wat = String::from("(module\n  (memory (export \"memory\") 1)\n");
    let mut calls = String::new();
    for i in 0..40 {
        wat.push_str(&format!("  (func $f{i} (param i32)\n{body})\n"));
        calls.push_str(&format!("    (call $f{i} (i32.const {i}))\n"));
    }
    wat.push_str(&format!("  (func (export \"_start\")\n{calls}))"));
    wat
}

#[test]
fn first_calls_at_a_slice_boundary_resume() {
    // Regression: wasmi charged lazy translation in fuel and failed (non-resumably) when the
    // slice held less than the charge: "all fuel consumed" at the first call of a function.
    for slice in [50, 333, 1_000, 2_500, 10_000] {
        let mut p = process(&first_calls_across_slices(), Limits { fuel_slice: slice, ..Limits::default() }).unwrap();
        assert_eq!(runner::run(&mut p, &mut TestHost::default()), Outcome::Exited(0), "slice {slice}");
    }
}

/// Lua 5.4.8 (C, wasi-libc), the real program the fuel trap was reported with.
fn lua(args: &[&str], limits: Limits) -> (Outcome, TestHost) {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/corpus/lua/lua.wasm")).unwrap();
    let program = Program::load(&bytes).unwrap();
    let mut argv = vec!["lua".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let config = Config { args: argv, ..Config::default() };
    let wasi = WasiCtx::new(vfs(), Box::new(Sys), config).unwrap();
    let mut p = Process::new(&program, wasi, limits).unwrap();
    let mut host = TestHost::default();
    (runner::run(&mut p, &mut host), host)
}

#[test]
fn lua_runs_with_the_kernels_fuel_slice() {
    for slice in [Limits::default().fuel_slice, 1_000_000, 10_000] {
        let limits = Limits { fuel_slice: slice, ..Limits::default() };
        let (outcome, h) = lua(&["-e", "io.stdout:write(\"y\\n\")"], limits);
        assert_eq!(outcome, Outcome::Exited(0), "slice {slice}: {}", String::from_utf8_lossy(&h.err));
        assert_eq!(h.out, b"y\n");
        let (outcome, h) = lua(&["-e", "error(\"boom\")"], limits);
        assert_eq!(outcome, Outcome::Exited(1), "slice {slice}");
        assert!(String::from_utf8_lossy(&h.err).starts_with("lua: (command line):1: boom\n"));
        let (outcome, _) = lua(&["-e", "os.exit(3)"], limits);
        assert_eq!(outcome, Outcome::Exited(3));
    }
}
