//! wasm:: — WASI programs from the shell: sessions, exit codes, pipes, traps, limits, long loops.

use super::harness::*;
use super::programs::image_with_programs;
use crate::build::Image;
use crate::qemu::{Vm, PROMPT};
use std::time::{Duration, Instant};

const LOOP_ITERATIONS: u64 = 10_000_000;

/// An integer loop of about 10^8 instructions; exits with the low 7 bits of the result.
pub(super) fn int_loop_wat() -> String {
    format!(
        r#"(module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start") (local $x i64) (local $i i32)
            (local.set $x (i64.const 1))
            (local.set $i (i32.const {LOOP_ITERATIONS}))
            (loop $l
              (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005)) (i64.const 1442695040888963407)))
              (br_if $l (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
            (call $exit (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 33)) (i64.const 127))))))"#
    )
}

pub(super) fn int_loop_expected() -> i32 {
    let mut x: u64 = 1;
    for _ in 0..LOOP_ITERATIONS {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    }
    ((x >> 33) & 127) as i32
}

/// A floating-point loop; exits with a value derived from the result.
pub(super) fn float_loop_wat() -> String {
    format!(
        r#"(module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start") (local $y f64) (local $i i32)
            (local.set $y (f64.const 0.5))
            (local.set $i (i32.const {LOOP_ITERATIONS}))
            (loop $l
              (local.set $y (f64.add (f64.mul (local.get $y) (f64.const 0.9999993)) (f64.sqrt (f64.const 2.25))))
              (br_if $l (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
            (call $exit (i32.and (i32.trunc_f64_u (local.get $y)) (i32.const 127)))))"#
    )
}

pub(super) fn float_loop_expected() -> i32 {
    let mut y: f64 = 0.5;
    for _ in 0..LOOP_ITERATIONS {
        y = y * 0.9999993 + 2.25f64.sqrt();
    }
    (y as u32 & 127) as i32
}

const SPIN_WAT: &str = include_str!("../../../apps/hostile/spin.wat");
const TRAP_WAT: &str = include_str!("../../../apps/hostile/trap.wat");
const RECURSE_WAT: &str = include_str!("../../../apps/hostile/recurse.wat");
const BOMB_WAT: &str = include_str!("../../../apps/hostile/bomb.wat");
/// Writes 100 MiB of 'x' to stdout in 64 KiB writes.
const FLOOD_WAT: &str = include_str!("../../../apps/hostile/flood.wat");
/// 3 million failing memory.grow: found by the fuzzer; without guaranteed tail calls in the
/// interpreter every one of them took native stack, and the kernel task overflowed.
const GROW_LOOP_WAT: &str = include_str!("../../../apps/hostile/grow-loop.wat");
const IMPORT_WAT: &str = include_str!("../../../apps/hostile/import.wat");
/// fd_write calls asking for 5.9 GiB each, forever.
const WRITE_FLOOD_WAT: &str = include_str!("../../../apps/hostile/write-flood.wat");

pub(super) fn wasm_test_files() -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let w = |src: &str| wat::parse_str(src).map_err(|e| e.to_string());
    Ok(vec![
        ("t/int-loop.wasm", w(&int_loop_wat())?),
        ("t/float-loop.wasm", w(&float_loop_wat())?),
        ("t/spin.wasm", w(SPIN_WAT)?),
        ("t/trap.wasm", w(TRAP_WAT)?),
        ("t/recurse.wasm", w(RECURSE_WAT)?),
        ("t/bomb.wasm", w(BOMB_WAT)?),
        ("t/import.wasm", w(IMPORT_WAT)?),
        ("t/flood.wasm", w(FLOOD_WAT)?),
        ("t/grow-loop.wasm", w(GROW_LOOP_WAT)?),
        ("t/garbage.wasm", noise(1000, 3)),
        ("t/truncated.wasm", w(&int_loop_wat())?[..40].to_vec()),
        ("t/sleep-hour.wasm", w(SLEEP_HOUR_WAT)?),
        ("t/write-flood.wasm", w(WRITE_FLOOD_WAT)?),
    ])
}

/// poll_oneoff on a one-hour clock.
const SLEEP_HOUR_WAT: &str = include_str!("../../../apps/hostile/sleep-hour.wat");

/// Ctrl-C stops a program whose every WASI call asks for gigabytes (each call moves at most
/// 4 MiB): into /dev/null and into a file. Prints how long the prompt took to come back.
pub(super) fn ctrl_c_stops_huge_wasi_calls(image: &Image) -> Result<(), String> {
    let mut vm = boot_wasm(image)?;
    let mut latencies = Vec::new();
    for target in ["/dev/null", "/tmp/flood"] {
        vm.send_line(&format!("wasm /extra_files/t/write-flood.wasm > {target}"))?;
        std::thread::sleep(Duration::from_millis(400));
        let t = Instant::now();
        vm.send(b"\x03")?;
        vm.wait_for(PROMPT, Duration::from_secs(30))?;
        latencies.push(t.elapsed().as_millis());
        let out = vm.run("echo $?; rm -f /tmp/flood", STEP)?;
        // 130, or 1 when /tmp filled up first (the write then fails and the program ends).
        check(out == "130\n" || out == "1\n", &format!("stopped, into {target}"), &out)?;
    }
    println!("      (prompt back {latencies:?} ms after Ctrl-C)");
    shutdown(vm)
}

/// `--timeout` ends a program that computes, sleeps or waits for input past its time (status
/// 124, as coreutils' timeout), and one that finishes in time is not touched.
pub(super) fn timeout_ends_programs(image: &Image) -> Result<(), String> {
    let mut vm = boot_wasm(image)?;
    for (prog, what) in [("t/spin.wasm", "endless loop"), ("t/sleep-hour.wasm", "hour-long sleep")] {
        let out = vm.run(&format!("wasm --timeout 0.3 /extra_files/{prog}; echo $?"), Duration::from_secs(10))?;
        check(out.ends_with("timed out after 0.3 s (--timeout)\n124\n"), what, &out)?;
    }
    let out = vm.run("wasm --timeout 0.3 /extra_files/wasm/calc.wasm; echo $?", Duration::from_secs(10))?;
    check(out.ends_with("124\n"), "waiting for console input", &out)?;
    let out = vm.run("wasm --timeout 30 /extra_files/wasm/hello.wasm; echo $?", STEP)?;
    check(out.ends_with("\n0\n") && out.starts_with("Hello"), "a program done in time", &out)?;
    shutdown(vm)
}

pub(super) fn boot_wasm(image: &Image) -> Result<Vm, String> {
    let img = image_with_tree(image, "test-wasm", &wasm_test_files()?)?;
    boot(&img)
}

pub(super) fn calc_session(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    vm.send_line("calc")?;
    vm.wait_for("calc> ", STEP)?;
    let ask = |vm: &mut Vm, line: &str| -> Result<String, String> {
        vm.send_line(line)?;
        let out = vm.wait_for("calc> ", STEP)?;
        Ok(out.replace("\r\n", "\n"))
    };
    contains(&ask(&mut vm, "1 + 2 * 3")?, "\n7\n")?;
    contains(&ask(&mut vm, "x = sqrt(2)")?, "1.4142135623730951")?;
    contains(&ask(&mut vm, "x * x")?, "2.0000000000000004")?;
    contains(&ask(&mut vm, "2 ^ 10 - x ^ 2")?, "\n1022\n")?;
    contains(&ask(&mut vm, "2 * (3 + 4")?, "error at column 11: missing ')' for the '(' at column 5")?;
    contains(&ask(&mut vm, "1 / 0")?, "error at column 3: division by zero")?;
    contains(&ask(&mut vm, "sin(pi / 2) + log(1000)")?, "\n4\n")?;
    contains(&ask(&mut vm, "help")?, "functions")?;
    vm.send_line("quit")?;
    vm.wait_for(PROMPT, STEP)?;
    let out = vm.run("echo $?; calc 6*7; wasm /extra_files/wasm/calc.wasm '2^0.5'", STEP)?;
    check(out == "0\n42\n1.4142135623730951\n", "calc by name and by path", &out)?;
    shutdown(vm)
}

pub(super) fn wasi_from_rust_std(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    vm.run("mkdir -p /tmp/wt; echo secret > /tmp/secret.txt; echo line one > /tmp/in; echo line two >> /tmp/in", STEP)?;
    let out = vm.run(
        "wasm --env WT=yes --dir /tmp/wt::. /extra_files/wasm/wasi-test.wasm alpha 'beta γ' < /tmp/in; echo status $?",
        Duration::from_secs(60),
    )?;
    check(out.contains("wasi-test: 17 ok, 0 failed") && out.contains("status 0"), "all WASI checks pass", &out)?;
    contains(&out, "to stderr")?;
    let out = vm.run("cat /tmp/secret.txt; ls /tmp | cat", STEP)?;
    check(out == "secret\nin\nsecret.txt\nwt\n", "the guest wrote nothing outside its directory", &out)?;
    shutdown(vm)
}

pub(super) fn exit_codes_and_pipes(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let out = vm.run("hello Keel; echo $?", STEP)?;
    check(out == "Hello, Keel! This is WebAssembly running on Keel.\n0\n", "hello", &out)?;
    let out = vm.run("grep nomatch /extra_files/welcome.txt; echo $?", STEP)?;
    check(out == "1\n", "grep exit status 1", &out)?;
    let out = vm.run("calc 1/0; echo $?", STEP)?;
    check(out == "error at column 2: division by zero\n1\n", "calc exit status", &out)?;
    let out = vm.run("cat /extra_files/welcome.txt | upper | grep -c KEEL", STEP)?;
    check(out == "1\n", "pipe through two WASM programs (C then Rust)", &out)?;
    let out = vm.run("hello | wc", STEP)?;
    check(out == "      1       8      51\n", "hello | wc", &out)?;
    let out = vm.run("upper -c /extra_files/welcome.txt > /tmp/count; cat /tmp/count", STEP)?;
    check(out == "148 /extra_files/welcome.txt\n", "C program with files and redirection", &out)?;
    let out = vm.run("HELLO_VERBOSE=1 hello | grep -c 'env HELLO_VERBOSE=1'", STEP)?;
    check(out == "1\n", "environment reaches the guest", &out)?;
    shutdown(vm)
}

pub(super) fn traps_and_bad_modules(image: &Image) -> Result<(), String> {
    let mut vm = boot_wasm(image)?;
    let out = vm.run("wasm /extra_files/t/trap.wasm; echo status $?", STEP)?;
    check(
        out.contains("wasm: /extra_files/t/trap.wasm: trap:")
            && out.contains("unreachable")
            && out.ends_with("status 134\n"),
        "trap report",
        &out,
    )?;
    let out = vm.run("wasm /extra_files/t/recurse.wasm; echo status $?", STEP)?;
    check(
        out.contains("trap:") && out.contains("stack") && out.ends_with("status 134\n"),
        "deep recursion is a trap",
        &out,
    )?;
    let out = vm.run("wasm /extra_files/t/import.wasm; echo status $?", STEP)?;
    check(
        out.contains("unknown import: function env::launch_missiles") && out.ends_with("status 126\n"),
        "unknown import",
        &out,
    )?;
    let out = vm.run("wasm /extra_files/t/garbage.wasm; echo status $?", STEP)?;
    check(out.contains("not a valid WebAssembly module") && out.ends_with("status 126\n"), "garbage", &out)?;
    let out = vm.run("wasm /extra_files/t/truncated.wasm; echo status $?", STEP)?;
    check(out.contains("not a valid WebAssembly module"), "truncated", &out)?;
    let out = vm.run("wasm /nope.wasm; echo status $?", STEP)?;
    check(out == "wasm: /nope.wasm: no such file or directory\nstatus 127\n", "missing file", &out)?;
    let out = vm.run("wasm --bogus x", STEP)?;
    contains(&out, "wasm: unknown option --bogus")?;
    let out = vm.run("wasm --max-memory 4M /extra_files/t/bomb.wasm; echo status $?", STEP)?;
    check(out.contains("memory limit of 4.0 MiB reached") && out.ends_with("status 134\n"), "memory bomb", &out)?;
    let out = vm.run("wasm --fuel 1000 /extra_files/t/spin.wasm; echo status $?", STEP)?;
    check(out.contains("all fuel consumed") && out.ends_with("status 134\n"), "fuel budget", &out)?;
    let out = vm.run("echo still here", STEP)?;
    check(out == "still here\n", "the kernel goes on", &out)?;
    shutdown(vm)
}

pub(super) fn ctrl_c_stops_a_runaway_guest(image: &Image) -> Result<(), String> {
    let mut vm = boot_wasm(image)?;
    let before = heap_used(&vm.run("mem", STEP)?);
    ctrl_c_stops_spin(&mut vm, "wasm")?;
    // The shell's history grew by a line or two; the guest's memory (64 KiB and more) is gone.
    check_heap_back(&mut vm, before, 8192)?;
    shutdown(vm)
}

/// Ctrl-C on an endless loop started with `wasm` (which may carry options): status 130.
pub(super) fn ctrl_c_stops_spin(vm: &mut Vm, wasm: &str) -> Result<(), String> {
    vm.send_line(&format!("{wasm} /extra_files/t/spin.wasm"))?;
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    vm.send(b"\x03")?;
    vm.wait_for(PROMPT, Duration::from_secs(10))?;
    let took = t.elapsed();
    let out = vm.run("echo $?", STEP)?;
    check(out == "130\n", "status after Ctrl-C", &out)?;
    println!("      (prompt back {:.0} ms after Ctrl-C)", took.as_secs_f64() * 1000.0);
    Ok(())
}

pub(super) fn long_loops_int_and_float(image: &Image) -> Result<(), String> {
    let mut vm = boot_wasm(image)?;
    let out = vm.run("wasm /extra_files/t/int-loop.wasm; echo $?", Duration::from_secs(120))?;
    check(out == format!("{}\n", int_loop_expected()), "integer loop result", &out)?;
    let out = vm.run("wasm /extra_files/t/float-loop.wasm; echo $?", Duration::from_secs(120))?;
    check(out == format!("{}\n", float_loop_expected()), "float loop result", &out)?;
    shutdown(vm)
}

/// poll_oneoff with a 200 ms clock and a read on the console's stdin returns when the clock
/// fires, with nothing typed (it used to wait for a line).
pub(super) fn poll_on_console_stdin_times_out(image: &Image) -> Result<(), String> {
    let img = image_with_programs(image)?;
    let mut vm = boot(&img)?;
    let out = vm.run("wasm /extra_files/t/poll_oneoff_stdio.wasm; echo status $?", Duration::from_secs(30))?;
    contains(&out, "status 0")?;
    shutdown(vm)
}

/// The bundled tools take the options people type (combined flags, `--`, `--help`) and refuse
/// unknown ones with the usage and status 2.
pub(super) fn bundled_tools_take_common_options(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let out =
        vm.run("echo one two three | wc -c; echo one two | wc -lw; wc -l -w -c /extra_files/welcome.txt", STEP)?;
    let mut lines = out.lines();
    check(lines.next() == Some("14"), "wc -c of stdin is a bare number", &out)?;
    check(lines.next() == Some("      1       2"), "wc -lw", &out)?;
    check(lines.next().is_some_and(|l| l.ends_with(" /extra_files/welcome.txt")), "wc -l -w -c FILE", &out)?;
    let out = vm.run("wc -x; echo $?; grep -z k; echo $?", STEP)?;
    check(
        out == "wc: invalid option -- 'x'\nusage: wc [-l] [-w] [-c] [FILE...]\n2\ngrep: invalid option -- 'z'\n\
                usage: grep [-i] [-v] [-n] [-c] [-q] [-r] [--] PATTERN [FILE...]\n2\n",
        "unknown options",
        &out,
    )?;
    vm.run("mkdir -p /tmp/g/s && echo Keel > /tmp/g/a.txt && echo nope > /tmp/g/s/b.txt && echo 'keel too' > /tmp/g/s/c.txt", STEP)?;
    let out = vm.run(
        "cd /tmp/g; grep -rin keel; grep -q Keel a.txt && echo found; grep -vc x a.txt; grep -- -x a.txt; echo $?",
        STEP,
    )?;
    check(out == "a.txt:1:Keel\ns/c.txt:1:keel too\nfound\n1\n1\n", "grep -rin, -q, -vc, --", &out)?;
    let out =
        vm.run("wc --help | grep -c usage; ls --help; echo $?; cp -a /tmp/g /tmp/h && ls /tmp/h/s | cat", STEP)?;
    check(
        out == "1\nusage: ls [-l] [-a] [PATH...]\n  list directory contents\n0\nb.txt\nc.txt\n",
        "--help and cp -a",
        &out,
    )?;
    shutdown(vm)
}
