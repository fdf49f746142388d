//! hostile:: — misbehaving guests and fuzzed modules inside Keel; `cargo xtask fuzz`.

use super::harness::*;
use super::wasm::*;
use crate::build::{self, Image};
use crate::qemu::Vm;
use std::time::{Duration, Instant};

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
    fuzz_in_keel(image, 300, 12345, false)
}

/// The same on the compiled tier: every generated module that compiles runs as native code.
pub(super) fn fuzzed_modules_compiled(image: &Image) -> Result<(), String> {
    fuzz_in_keel(image, 300, 4242, true)
}

/// Modules per script (and per memory check).
const FUZZ_GROUP: usize = 1000;

/// Free physical pages and heap bytes in use, from `mem`.
fn mem_figures(vm: &mut Vm) -> Result<(u64, u64), String> {
    let mem = vm.run("mem", STEP)?;
    match (free_pages(&mem), heap_used(&mem)) {
        (Some(f), Some(h)) => Ok((f, h)),
        _ => Err(format!("cannot read mem: {mem}")),
    }
}

/// Runs `n` generated or mutated modules inside Keel in one boot, a thousand per `source`d
/// script (no round trip per module), each with fuel, memory and time limits; after every
/// thousand the kernel must answer and its memory (free pages and heap) be back at the baseline.
///
/// `compiled`: the modules are precompiled on the host and run on the compiled tier (no fuel
/// there: `--timeout 1` bounds them); those that do not compile are left out.
pub fn fuzz_in_keel(image: &Image, n: usize, seed: u64, compiled: bool) -> Result<(), String> {
    let mut batch = crate::fuzz::in_keel_batch(n, seed);
    let mut files: Vec<(String, Vec<u8>)> = batch.clone();
    if compiled {
        files = super::compiled::with_artefacts(files)?;
        let names: std::collections::HashSet<String> = files.iter().map(|(p, _)| p.clone()).collect();
        batch.retain(|(p, _)| names.contains(&keel_artefact::artefact_path(p)));
        println!("      {} of {n} generated modules compiled", batch.len());
    }
    let limits = if compiled { "--engine compiled --timeout 1" } else { "--fuel 3000000 --timeout 5" };
    for (k, group) in batch.chunks(FUZZ_GROUP).enumerate() {
        let script: String = group
            .iter()
            .map(|(path, _)| {
                format!("wasm {limits} --max-memory 16M --dir /tmp/f::. /extra_files/{path} < /dev/null > /dev/null 2> /dev/null\n")
            })
            .collect();
        files.push((format!("fuzz/run{k}.sh"), script.into_bytes()));
    }
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
    let img = image_with_tree(image, "test-fuzz", &refs)?;
    let mut vm = boot(&img)?;
    vm.run("mkdir /tmp/f", STEP)?;
    let (free0, heap0) = mem_figures(&mut vm)?;
    let groups = batch.len().div_ceil(FUZZ_GROUP);
    for k in 0..groups {
        let t = Instant::now();
        let out = vm.run(&format!("source /extra_files/fuzz/run{k}.sh; echo group done"), Duration::from_secs(3600))?;
        check(out.ends_with("group done\n"), &format!("script {k}: the shell answered"), &out)?;
        vm.run("rm -r /tmp/f; mkdir /tmp/f", STEP)?;
        let (free, heap) = mem_figures(&mut vm)?;
        let done = ((k + 1) * FUZZ_GROUP).min(batch.len());
        println!(
            "      fuzz in Keel: {done}/{} modules, {:.1} s for the last group, free pages {free} (baseline {free0}), heap {heap} B ({heap0})",
            batch.len(),
            t.elapsed().as_secs_f64()
        );
        // Slack: the shell's history and a sourced script's lines stay.
        check(free + 64 >= free0 && heap <= heap0 + 256 * 1024, "memory back at the baseline", "")?;
    }
    let out = vm.run("echo alive", STEP)?;
    check(out == "alive\n", "the kernel is alive", &out)?;
    shutdown(vm)
}

/// Types seeded random bursts into the shell — printable text, control characters, escape
/// sequences, Enter, very long lines — and after each burst checks that a plain `echo` still
/// answers. Ctrl-D is left out (at an empty line it would end the shell, as it should).
pub fn fuzz_console(image: &Image, bursts: usize, seed: u64) -> Result<(), String> {
    let mut vm = boot(image)?;
    let mut x = seed | 1;
    let mut rnd = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    const ESCAPES: [&[u8]; 10] = [
        b"\x1b[A",
        b"\x1b[B",
        b"\x1b[C",
        b"\x1b[D",
        b"\x1b[H",
        b"\x1b[F",
        b"\x1b[3~",
        b"\x1b[",
        b"\x1bO",
        b"\x1b[99;99H",
    ];
    for b in 0..bursts {
        let mut burst = Vec::new();
        let len = if rnd(10) == 0 { 3000 + rnd(3000) } else { rnd(200) };
        for _ in 0..len {
            match rnd(20) {
                0 => burst.extend_from_slice(ESCAPES[rnd(ESCAPES.len() as u64) as usize]),
                1 => burst.push([0x01, 0x03, 0x05, 0x08, 0x09, 0x0b, 0x0c, 0x15, 0x17, 0x7f][rnd(10) as usize]),
                2 => burst.push(b'\r'),
                3 => burst.push(0x80 + rnd(128) as u8),
                _ => burst.push(0x20 + rnd(95) as u8),
            }
        }
        vm.send(&burst)?;
        // End whatever line or program is pending, then ask for a plain answer.
        vm.send(b"\x03")?;
        std::thread::sleep(Duration::from_millis(50));
        vm.send(b"\x03\x15")?;
        // The typed line shows the quotes; only the command's output matches the marker.
        vm.send_line(&format!("echo \"fuzz\"-burst-{b}"))?;
        vm.wait_for(&format!("fuzz-burst-{b}\r\n"), Duration::from_secs(60))
            .map_err(|e| format!("burst {b} (seed {seed}): the shell does not answer: {e}"))?;
    }
    shutdown(vm)
}

pub(super) fn fuzzed_console(image: &Image) -> Result<(), String> {
    fuzz_console(image, 40, 2026)
}

/// `cargo xtask fuzz [--seconds N] [--seed S] [--in-keel N] [--compiled] [--console N] [--minutes M]`
pub fn fuzz_command(args: &[String]) -> Result<i32, String> {
    let compiled = args.iter().any(|a| a == "--compiled");
    let args: Vec<String> = args.iter().filter(|a| *a != "--compiled").cloned().collect();
    let mut seconds = 60;
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1);
    let mut in_keel = 0usize;
    let mut console = 0usize;
    let mut minutes = 0u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = || it.next().and_then(|v| v.parse::<u64>().ok()).ok_or(format!("{a} needs a number"));
        match a.as_str() {
            "--seconds" => seconds = num()?,
            "--seed" => seed = num()?,
            "--in-keel" => in_keel = num()? as usize,
            "--console" => console = num()? as usize,
            "--minutes" => minutes = num()?,
            other => return Err(format!("fuzz: unknown option {other}")),
        }
    }
    let image = build::build_all()?;
    // Soak mode: rounds with fresh seeds until the time is up (each round as configured, with
    // a thousand modules and a hundred bursts when none are asked for).
    let soak_until = (minutes > 0).then(|| Instant::now() + Duration::from_secs(minutes * 60));
    if soak_until.is_some() {
        in_keel = in_keel.max(1000);
        console = console.max(100);
    }
    let mut failed = 0;
    let mut round = 0u64;
    loop {
        let round_seed = seed.wrapping_add(round);
        if soak_until.is_some() {
            println!("fuzz: soak round {round} (seed {round_seed})");
        }
        failed += fuzz_round(&image, seconds, round_seed, (in_keel, compiled), console)?;
        round += 1;
        if soak_until.is_none_or(|u| Instant::now() >= u) || failed > 0 {
            break;
        }
    }
    println!("fuzz: {} passed, {failed} failed", if failed == 0 { 1 } else { 0 });
    Ok(if failed == 0 { 0 } else { 1 })
}

/// One round: host fuzzing, then modules inside Keel and bursts on its console; the failures.
fn fuzz_round(
    image: &Image,
    seconds: u64,
    seed: u64,
    (in_keel, compiled): (usize, bool),
    console: usize,
) -> Result<usize, String> {
    let failures = crate::fuzz::fuzz_host(seconds, seed);
    let saved = crate::fuzz::save(&failures);
    for ((what, _), path) in failures.iter().zip(&saved) {
        println!("FAILED {what}\n    input kept in {}", path.display());
    }
    let mut failed = failures.len();
    if in_keel > 0 {
        build::ensure_qemu()?;
        match fuzz_in_keel(image, in_keel, seed, compiled) {
            Ok(()) => println!("fuzz: {in_keel} modules inside Keel: the kernel survived, memory back at baseline"),
            Err(e) => {
                println!("FAILED in Keel (seed {seed}): {e}");
                failed += 1;
            }
        }
    }
    if console > 0 {
        build::ensure_qemu()?;
        match fuzz_console(image, console, seed) {
            Ok(()) => println!("fuzz: {console} bursts on the console: the shell answered after each"),
            Err(e) => {
                println!("FAILED on the console (seed {seed}): {e}");
                failed += 1;
            }
        }
    }
    Ok(failed)
}
