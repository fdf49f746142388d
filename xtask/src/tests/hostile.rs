//! hostile:: — misbehaving guests and fuzzed modules inside Keel; `cargo xtask fuzz`.

use super::harness::*;
use super::wasm::*;
use crate::build::{self, Image};
use std::time::Duration;

pub(super) fn hostile_guests(image: &Image) -> Result<(), String> {
    let mut files = wasm_test_files()?;
    files.push((
        "t/bad-pointers.wasm",
        wat::parse_str(crate::wasi_imports::bad_pointers_wat()).map_err(|e| e.to_string())?,
    ));
    let img = image_with_tree(image, "test-hostile", &files)?;
    let mut vm = boot(&img)?;
    let before = heap_used(&vm.run("mem", STEP)?);
    // Every WASI function with out-of-bounds and wrapping pointers, huge counts, absurd fds.
    let out = vm.run("mkdir /tmp/hp; wasm --dir /tmp/hp::. /extra_files/t/bad-pointers.wasm; echo status $?", STEP)?;
    check(out == "survived\nstatus 0\n", "every WASI call returned an errno", &out)?;
    // Regression (fuzzer): millions of failing memory.grow must not exhaust the kernel stack.
    let out = vm.run("wasm /extra_files/t/grow-loop.wasm; echo status $?", Duration::from_secs(120))?;
    check(out == "status 0\n", "a failing memory.grow loop", &out)?;
    // Reading stdin after its end, from a pipe and from /dev/null.
    let out = vm.run("wasm /extra_files/wasm/wc.wasm < /dev/null; echo hi | wc", STEP)?;
    check(out == "      0       0       0\n      1       1       3\n", "stdin after EOF", &out)?;
    // Flooding stdout into /dev/null finishes; into a full /tmp stops with an error.
    let out = vm.run("wasm /extra_files/t/flood.wasm > /dev/null; echo $?", STEP)?;
    check(out == "0\n", "flood into /dev/null", &out)?;
    // Writing to read-only files, escaping the preopen.
    let out = vm.run("wasm --dir /extra_files::. /extra_files/wasm/upper.wasm /extra_files/t/../wasm/hello.wasm > /dev/null; echo $?", STEP)?;
    check(out.contains("upper:") && out.ends_with("1\n"), "absolute path outside the preopen", &out)?;
    // The C hostile program: descriptors, escapes, read-only files, iovecs, memory.
    let out = vm.run(
        "mkdir /tmp/h; wasm --max-memory 64M --dir /tmp/h::. --dir /extra_files::ro /extra_files/wasm/hostile.wasm < /dev/null; echo status $?; rm -r /tmp/h",
        Duration::from_secs(120),
    )?;
    check(out.contains("hostile: 0 failed") && out.contains("status 0"), "the C hostile program's checks", &out)?;
    // Nothing changed, and the kernel's memory is back.
    let out = vm.run("ls /tmp/hp | cat; ls / | cat", STEP)?;
    check(out == "dev\nextra_files\ntmp\n", "no files created outside", &out)?;
    let after = heap_used(&vm.run("mem", STEP)?);
    check(
        after.is_some() && before.is_some() && after < before.map(|b| b + 64 * 1024),
        &format!("heap back near {before:?}: {after:?}"),
        "",
    )?;
    shutdown(vm)
}

pub(super) fn fuzzed_modules_in_keel(image: &Image) -> Result<(), String> {
    fuzz_in_keel(image, 24, 12345)
}

/// Runs `n` generated or mutated modules inside Keel; it must answer after each and end with
/// its heap at the baseline.
pub fn fuzz_in_keel(image: &Image, n: usize, seed: u64) -> Result<(), String> {
    let batch = crate::fuzz::in_keel_batch(n, seed);
    let files: Vec<(&str, Vec<u8>)> = batch.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
    let img = image_with_tree(image, "test-fuzz", &files)?;
    let mut vm = boot(&img)?;
    vm.run("mkdir /tmp/f", STEP)?;
    let before = heap_used(&vm.run("mem", STEP)?);
    for (path, _) in &batch {
        let out = vm.run(
            &format!("wasm --fuel 3000000 --max-memory 16M --dir /tmp/f::. /extra_files/{path} < /dev/null > /dev/null 2> /dev/null; echo done $?"),
            Duration::from_secs(60),
        )?;
        check(out.contains("done "), &format!("{path}: the shell answered"), &out)?;
    }
    let out = vm.run("echo alive", STEP)?;
    check(out == "alive\n", "the kernel is alive", &out)?;
    vm.run("rm -r /tmp/f", STEP)?;
    let after = heap_used(&vm.run("mem", STEP)?);
    check(
        after.is_some() && before.is_some() && after <= before.map(|b| b + 64 * 1024),
        &format!("heap back near {before:?}: {after:?}"),
        "",
    )?;
    shutdown(vm)
}

/// `cargo xtask fuzz [--seconds N] [--seed S] [--in-keel N]`
pub fn fuzz_command(args: &[String]) -> Result<i32, String> {
    let mut seconds = 60;
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1);
    let mut in_keel = 0usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = || it.next().and_then(|v| v.parse::<u64>().ok()).ok_or(format!("{a} needs a number"));
        match a.as_str() {
            "--seconds" => seconds = num()?,
            "--seed" => seed = num()?,
            "--in-keel" => in_keel = num()? as usize,
            other => return Err(format!("fuzz: unknown option {other}")),
        }
    }
    let image = build::build_all()?;
    let failures = crate::fuzz::fuzz_host(seconds, seed);
    let saved = crate::fuzz::save(&failures);
    for ((what, _), path) in failures.iter().zip(&saved) {
        println!("FAILED {what}\n    input kept in {}", path.display());
    }
    let mut failed = failures.len();
    if in_keel > 0 {
        build::ensure_qemu()?;
        match fuzz_in_keel(&image, in_keel, seed) {
            Ok(()) => println!("fuzz: {in_keel} modules inside Keel: the kernel survived, memory back at baseline"),
            Err(e) => {
                println!("FAILED in Keel: {e}");
                failed += 1;
            }
        }
    }
    println!("fuzz: {} passed, {failed} failed", if failed == 0 { 1 } else { 0 });
    Ok(if failed == 0 { 0 } else { 1 })
}
