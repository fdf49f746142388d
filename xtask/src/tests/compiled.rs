//! compiled:: — the compiled tier: modules precompiled on the host run in Keel as on the
//! interpreter (a differential run over programs, traps and generated modules), forged or stale
//! artefacts are refused, and runaway compiled guests stop on Ctrl-C, `kill` and `--timeout`.
//! (The WASI suite and the corpus on the compiled tier are in `programs.rs`.)

use std::path::PathBuf;
use std::time::Duration;

use super::harness::*;
use super::wasm::*;
use crate::build::{self, Image};

/// `files` plus, for each `.wasm` among them, its artefact beside it when it compiles.
pub(super) fn with_artefacts(files: Vec<(String, Vec<u8>)>) -> Result<Vec<(String, Vec<u8>)>, String> {
    let stage = build::out_dir().join("artefact-stage");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).map_err(|e| e.to_string())?;
    let mut pairs = Vec::new();
    for (i, (name, data)) in files.iter().enumerate() {
        if name.ends_with(".wasm") {
            let src = stage.join(format!("{i}.wasm"));
            std::fs::write(&src, data).map_err(|e| e.to_string())?;
            pairs.push((i, src.clone(), stage.join(format!("{i}.cwasm"))));
        }
    }
    let list: Vec<(PathBuf, PathBuf)> = pairs.iter().map(|(_, w, c)| (w.clone(), c.clone())).collect();
    crate::aot::compile_lenient(&list)?;
    let mut out = files.clone();
    for (i, _, cwasm) in pairs {
        if let Ok(code) = std::fs::read(&cwasm) {
            let name = &files[i].0;
            out.push((keel_artefact::artefact_path(name), code));
        }
    }
    Ok(out)
}

fn owned(files: Vec<(&str, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    files.into_iter().map(|(n, d)| (n.to_string(), d)).collect()
}

/// A module for each kind of trap.
const TRAPS: &[(&str, &str)] = &[
    ("div-zero", "(drop (i32.div_s (i32.const 1) (i32.const 0)))"),
    ("rem-zero", "(drop (i64.rem_u (i64.const 1) (i64.const 0)))"),
    ("overflow", "(drop (i32.div_s (i32.const -2147483648) (i32.const -1)))"),
    ("conversion", "(drop (i32.trunc_f32_s (f32.const nan)))"),
    ("conversion-range", "(drop (i64.trunc_f64_u (f64.const -5)))"),
    ("load-oob", "(drop (i32.load (i32.const 65534)))"),
    ("store-oob", "(i64.store (i32.const -1) (i64.const 1))"),
    ("grown-oob", "(drop (memory.grow (i32.const 1))) (drop (i32.load8_u (i32.const 131072)))"),
    ("unreachable", "unreachable"),
    ("null-call", "(call_indirect (type $v) (i32.const 1))"),
    ("table-oob", "(call_indirect (type $v) (i32.const 7))"),
    ("bad-signature", "(drop (call_indirect (type $i) (i32.const 0)))"),
    ("recursion", "(call $deep)"),
];

fn trap_module(body: &str) -> Result<Vec<u8>, String> {
    let wat = format!(
        r#"(module
          (type $v (func))
          (type $i (func (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (table 2 funcref)
          (elem (i32.const 0) $target)
          (data (i32.const 100) "before\n")
          (func $target)
          (func $deep (call $deep))
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 100))
            (i32.store (i32.const 4) (i32.const 7))
            (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
            {body}))"#
    );
    wat::parse_str(&wat).map_err(|e| e.to_string())
}

/// The output of a run as the two engines must agree on it: the compiled tier's backtrace lines
/// ("  in f at 0x..", "  called from ..") and load errors' engine-specific wording are dropped;
/// after a timeout only the status counts (the engines get different amounts done).
fn comparable(out: &str) -> String {
    if out.ends_with("status=124\n") {
        return "timed out\n".into();
    }
    // Cannot load: each engine's loader words why in its own way.
    if out.ends_with("status=126\n") {
        return "cannot run\n".into();
    }
    out.lines()
        .filter(|l| !(l.starts_with("  in ") || l.starts_with("  called from ") || l.starts_with("  (")))
        .map(|l| match l.find("not a valid WebAssembly module") {
            Some(i) => &l[..i + "not a valid WebAssembly module".len()],
            None => l,
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The same programs on both engines in one boot: bundled programs with input, traps of every
/// kind, the hostile test modules and generated modules; stdout, stderr and status compared.
pub(super) fn same_as_the_interpreter(image: &Image) -> Result<(), String> {
    let mut files = owned(wasm_test_files()?);
    for (name, body) in TRAPS {
        files.push((format!("d/{name}.wasm"), trap_module(body)?));
    }
    let generated = crate::fuzz::in_keel_batch(150, 777);
    files.extend(generated.iter().cloned());
    let files = with_artefacts(files)?;
    let has_artefact = |wasm: &str| {
        let want = keel_artefact::artefact_path(wasm);
        files.iter().any(|(n, _)| *n == want)
    };
    let img = image_with_tree(image, "test-differential", &files)?;
    let mut vm = boot(&img)?;
    vm.run("echo some words of input > /tmp/in; mkdir /tmp/f", STEP)?;
    let mut runs: Vec<String> = vec![
        "/extra_files/wasm/hello.wasm".into(),
        "/extra_files/wasm/calc.wasm 6*7+1".into(),
        "/extra_files/wasm/wc.wasm < /tmp/in".into(),
        "/extra_files/wasm/grep.wasm -c o /tmp/in".into(),
        "--dir /tmp::/tmp /extra_files/wasm/grep.wasm -n words /tmp/in".into(),
        "--dir /tmp /extra_files/wasm/sha256.wasm /tmp/in".into(),
        "--max-memory 4M /extra_files/t/bomb.wasm".into(),
        "/extra_files/t/int-loop.wasm".into(),
        "/extra_files/t/float-loop.wasm".into(),
        "/extra_files/t/trap.wasm".into(),
        "/extra_files/t/recurse.wasm".into(),
        "/extra_files/t/import.wasm".into(),
    ];
    runs.extend(TRAPS.iter().map(|(n, _)| format!("/extra_files/d/{n}.wasm")));
    let mut generated_runs = 0;
    for (path, _) in &generated {
        if has_artefact(path) {
            generated_runs += 1;
            runs.push(format!("--max-memory 16M --dir /tmp/f::. /extra_files/{path}"));
        }
    }
    let mut differ = Vec::new();
    for run in &runs {
        let mut outs = Vec::new();
        for engine in ["interp", "compiled"] {
            // A fresh folder for each run: a generated module may be a mutated file-system test.
            let line = format!(
                "rm -r /tmp/f; mkdir /tmp/f; wasm --engine {engine} --timeout 2 {run} < /dev/null; echo status=$?"
            );
            // Input redirections in `run` come after ours and win.
            outs.push(vm.run(&line, Duration::from_secs(60))?);
        }
        if comparable(&outs[0]) != comparable(&outs[1]) {
            differ.push(format!("wasm {run}\n  interpreter: {:?}\n  compiled:    {:?}", outs[0], outs[1]));
        }
    }
    // The compiled tier says where a trap happened: the function (by its name in the name
    // section, else its index) and the code offset, innermost first.
    let out = vm.run("wasm --engine compiled /extra_files/d/div-zero.wasm", STEP)?;
    check(
        out.starts_with("before\n") && out.contains("trap: integer divide by zero\n  in function 3 at 0x"),
        "a compiled trap names the function and offset",
        &out,
    )?;
    let out = vm.run("wasm --engine compiled /extra_files/t/trap.wasm", STEP)?;
    check(
        out.contains("trap: wasm `unreachable` instruction executed\n  in deep at 0x")
            && out.contains("\n  called from function 1 at 0x"),
        "a backtrace through named functions",
        &out,
    )?;
    println!(
        "      ({} runs on both engines, {generated_runs} of them generated modules; {} differ)",
        runs.len(),
        differ.len()
    );
    check(differ.is_empty(), "the same results on both engines", &differ.join("\n"))?;
    shutdown(vm)
}

/// Hello world with artefacts that are not what this build made: each is refused with its
/// reason, `--engine compiled` fails (126), and `auto` runs the interpreter instead.
pub(super) fn artefacts_are_checked(image: &Image) -> Result<(), String> {
    let wasm_dir = build::out_dir().join("wasm");
    let read = |p: PathBuf| std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()));
    let hello = read(wasm_dir.join("hello.wasm"))?;
    let good = read(wasm_dir.join("hello.cwasm"))?;
    let mut tampered = good.clone();
    let mid = keel_artefact::HEADER_LEN + (good.len() - keel_artefact::HEADER_LEN) / 2;
    tampered[mid] ^= 0x40;
    let truncated = good[..good.len() - 100].to_vec();
    // Sealed by another build: the same compiler with another key.
    let stage = build::out_dir().join("other-build");
    std::fs::create_dir_all(&stage).map_err(|e| e.to_string())?;
    let other_key = stage.join("aot.key");
    std::fs::write(&other_key, "ab".repeat(32)).map_err(|e| e.to_string())?;
    let src = stage.join("hello.wasm");
    std::fs::write(&src, &hello).map_err(|e| e.to_string())?;
    let st = std::process::Command::new(crate::aot::tool()?)
        .arg("--key")
        .arg(&other_key)
        .arg(&src)
        .arg(stage.join("hello.cwasm"))
        .status()
        .map_err(|e| e.to_string())?;
    check(st.success(), "keel-aot with another key", "")?;
    let other_build = read(stage.join("hello.cwasm"))?;
    // Made by this build, but for another module (hello.wasm changed since).
    let stale = read(wasm_dir.join("wc.cwasm"))?;
    // wasmtime's own precompiled format (an ELF file), or anything else.
    let mut foreign = b"\x7fELF\x02\x01\x01\0".to_vec();
    foreign.extend(noise(4000, 9));
    let cases: [(&str, &[u8], &str); 5] = [
        ("tampered", &tampered, "not made by this build of Keel"),
        ("truncated", &truncated, "truncated"),
        ("other-build", &other_build, "not made by this build of Keel"),
        ("stale", &stale, "made from another version of the module"),
        ("foreign", &foreign, "not a Keel artefact"),
    ];
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, art, _) in &cases {
        files.push((format!("a/{name}/hello.wasm"), hello.clone()));
        files.push((format!("a/{name}/hello.cwasm"), art.to_vec()));
    }
    files.push(("a/good/hello.wasm".into(), hello.clone()));
    files.push(("a/good/hello.cwasm".into(), good.clone()));
    let img = image_with_tree(image, "test-artefacts", &files)?;
    let mut vm = boot(&img)?;
    let out = vm.run("wasm --engine compiled /extra_files/a/good/hello.wasm; echo status=$?", STEP)?;
    check(out.starts_with("Hello") && out.ends_with("status=0\n"), "this build's artefact runs", &out)?;
    for (name, _, reason) in &cases {
        let dir = format!("/extra_files/a/{name}");
        let out = vm.run(&format!("wasm --engine compiled {dir}/hello.wasm; echo status=$?"), STEP)?;
        check(
            out.contains(&format!("wasm: {dir}/hello.cwasm: {reason}")) && out.ends_with("status=126\n"),
            &format!("{name}: refused on the compiled tier"),
            &out,
        )?;
        let out = vm.run(&format!("wasm {dir}/hello.wasm; echo status=$?"), STEP)?;
        check(
            out.contains(&format!("{dir}/hello.cwasm: refused: {reason}"))
                && out.contains("Hello, world!")
                && out.ends_with("status=0\n"),
            &format!("{name}: the interpreter runs it instead"),
            &out,
        )?;
        let out = vm.run(&format!("wasm {dir}/hello.cwasm < /dev/null; echo status=$?"), STEP)?;
        if *name == "stale" {
            // By itself it is what it was sealed as: wc.
            check(out == "      0       0       0\nstatus=0\n", "an artefact of this build by itself", &out)?;
        } else {
            check(
                out.ends_with("status=126\n") && !out.contains("Hello"),
                &format!("{name}: not run by itself"),
                &out,
            )?;
        }
    }
    // No artefact: auto is the interpreter, silently; compiled says how to make one.
    vm.run("cp /extra_files/a/good/hello.wasm /tmp/plain.wasm", STEP)?;
    let out = vm.run("wasm /tmp/plain.wasm; echo status=$?", STEP)?;
    check(out.starts_with("Hello") && out.ends_with("status=0\n"), "no artefact: the interpreter", &out)?;
    let out = vm.run("wasm --engine compiled /tmp/plain.wasm; echo status=$?", STEP)?;
    check(out.contains("no artefact /tmp/plain.cwasm") && out.ends_with("status=126\n"), "no artefact", &out)?;
    shutdown(vm)
}

/// Compiled guests that never call out still stop: Ctrl-C (130), `kill` (143), `--timeout`
/// (124); blocked in WASI they stop too; limits and stdin behave as on the interpreter; many
/// at once share the CPU; afterwards the kernel's memory is back.
pub(super) fn runaway_guests_stop(image: &Image) -> Result<(), String> {
    let img = image_with_tree(image, "test-compiled-runaway", &with_artefacts(owned(wasm_test_files()?))?)?;
    let mut vm = boot(&img)?;
    let before = heap_used(&vm.run("mem", STEP)?);
    let c = "wasm --engine compiled";
    super::wasm::ctrl_c_stops_spin(&mut vm, c)?;
    for (prog, what) in [("t/spin.wasm", "endless loop"), ("t/sleep-hour.wasm", "hour-long sleep")] {
        let out = vm.run(&format!("{c} --timeout 0.3 /extra_files/{prog}; echo $?"), Duration::from_secs(10))?;
        check(out.ends_with("timed out after 0.3 s (--timeout)\n124\n"), what, &out)?;
    }
    let out = vm.run(&format!("{c} --max-memory 4M /extra_files/t/bomb.wasm; echo status $?"), STEP)?;
    check(out.contains("memory limit of 4.0 MiB reached") && out.ends_with("status 134\n"), "memory bomb", &out)?;
    let out = vm.run(&format!("echo one two | {c} /extra_files/wasm/wc.wasm"), STEP)?;
    check(out == "      1       2       8\n", "stdin through a pipe", &out)?;
    let out = vm.run(&format!("{c} --fuel 10 /extra_files/t/spin.wasm; echo $?"), STEP)?;
    check(out.contains("--fuel counts the interpreter's instructions") && out.ends_with("2\n"), "--fuel", &out)?;
    // Background jobs: two endless loops killed, a loop finishing beside them.
    super::jobs::kill_jobs(&mut vm, c, "compiled")?;
    // Eight at once, each a whole computation, on one CPU.
    let line: Vec<String> = (0..8).map(|_| format!("{c} /extra_files/t/float-loop.wasm &")).collect();
    vm.run(&line.join(" "), STEP)?;
    let waits: Vec<String> = (1..=8).map(|i| format!("wait %{i}; echo r=$?")).collect();
    let out = vm.run(&waits.join("; "), Duration::from_secs(120))?;
    let done = format!("r={}\n", float_loop_expected());
    check(out.matches(&done).count() == 8, "eight compiled guests at once, each with the right result", &out)?;
    check_heap_back(&mut vm, before, 64 * 1024)?;
    shutdown(vm)
}

/// A shared host folder precompiled as `cargo xtask run --share DIR --compile` does: the
/// programs in it run on the compiled tier, in subfolders too; a module changed on the host
/// afterwards has a stale artefact, which is refused, and the interpreter runs it.
pub(super) fn shared_folder_compiled(image: &Image) -> Result<(), String> {
    let dir = super::share::share_dir("compiled")?;
    let wasm = build::out_dir().join("wasm");
    std::fs::create_dir_all(dir.join("tools")).map_err(|e| e.to_string())?;
    for (from, to) in [("hello.wasm", "hello.wasm"), ("wc.wasm", "tools/wc.wasm")] {
        std::fs::copy(wasm.join(from), dir.join(to)).map_err(|e| e.to_string())?;
    }
    let n = crate::aot::compile_tree(&dir)?;
    check(n == 2, &format!("{n} modules precompiled"), "")?;
    check(dir.join("tools/wc.cwasm").exists(), "the artefact is beside its module", "")?;
    // hello.wasm changes after it was compiled: its artefact is now stale.
    std::fs::copy(wasm.join("calc.wasm"), dir.join("hello.wasm")).map_err(|e| e.to_string())?;
    let mut vm = super::share::boot_shared(image, vec![(dir.clone(), "/host".into(), false)])?;
    let out = vm.run("echo a b c | wasm --engine compiled /host/tools/wc.wasm; echo status=$?", STEP)?;
    check(out == "      1       3       6\nstatus=0\n", "a shared program on the compiled tier", &out)?;
    let out = vm.run("wasm /host/hello.wasm 6*7; echo status=$?", STEP)?;
    check(
        out.contains("/host/hello.cwasm: refused: made from another version of the module")
            && out.contains("42\n")
            && out.ends_with("status=0\n"),
        "a stale artefact on a share",
        &out,
    )?;
    shutdown(vm)
}
