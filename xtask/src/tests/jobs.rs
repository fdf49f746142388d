//! jobs:: — many programs at once, kill, Ctrl-C, pipes with backpressure, leaks, memory bombs.

use super::harness::*;
use super::wasm::*;
use crate::build::Image;
use crate::qemu::{Options, Vm, PROMPT};
use std::time::{Duration, Instant};

pub(super) fn twenty_programs_at_once(image: &Image) -> Result<(), String> {
    let mut vm = boot_wasm(image)?;
    // One line starting all 20 (each job writes its own file), then wait for all.
    let starts: Vec<String> = (1..=20).map(|i| format!("calc '{i}*{i}' > /tmp/out{i} &")).collect();
    let out = vm.run(&starts.join(" "), STEP)?;
    check(out.matches("] ").count() == 20, "20 jobs started", &out)?;
    let ps = vm.run("ps", STEP)?;
    check(ps.lines().filter(|l| l.contains("calc")).count() >= 2, "several programs alive at once", &ps)?;
    vm.run("wait", Duration::from_secs(120))?;
    for i in 1..=20 {
        let out = vm.run(&format!("cat /tmp/out{i}"), STEP)?;
        check(out == format!("{}\n", i * i), &format!("job {i}'s output"), &out)?;
    }
    let ps = vm.run("ps", STEP)?;
    let kernel_tasks = ps.lines().filter(|l| l.ends_with(" net")).count();
    check(ps.lines().count() == 3 + kernel_tasks, "only the shell, idle (and net) are left", &ps)?;
    shutdown(vm)
}

pub(super) fn kill_one_while_others_finish(image: &Image) -> Result<(), String> {
    let mut vm = boot_wasm(image)?;
    let before = heap_used(&vm.run("mem", STEP)?);
    kill_jobs(&mut vm, "wasm", "interpreter")?;
    let out = vm.run("kill 999", STEP)?;
    contains(&out, "kill: (999): no such process")?;
    check_heap_back(&mut vm, before, 64 * 1024)?;
    shutdown(vm)
}

/// Two endless loops and a computation as background jobs (each started with `wasm`, which may
/// carry options; `ps` must show them on `engine`): the loops are killed by job number and by
/// pid, the computation finishes.
pub(super) fn kill_jobs(vm: &mut Vm, wasm: &str, engine: &str) -> Result<(), String> {
    let out = vm.run(
        &format!(
            "{wasm} /extra_files/t/spin.wasm & {wasm} /extra_files/t/spin.wasm & {wasm} /extra_files/t/int-loop.wasm &"
        ),
        STEP,
    )?;
    check(out.contains("[1] ") && out.contains("[3] "), "three jobs", &out)?;
    // The jobs start their programs a moment later (`ps` names the engine once one is loaded).
    let on_engine = format!("  {engine:<8}  wasm ");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ps = vm.run("ps", STEP)?;
    while ps.lines().filter(|l| l.contains(&on_engine)).count() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        ps = vm.run("ps", STEP)?;
    }
    check(ps.lines().filter(|l| l.contains("  wasm ")).count() == 3, "three programs running", &ps)?;
    check(ps.lines().filter(|l| l.contains(&on_engine)).count() == 3, &format!("ps shows them on the {engine}"), &ps)?;
    // The second job by the pid the shell printed for it: "[2] PID". All on one line: a job
    // that ends is reported (and forgotten) at the next prompt, and the third may be quick.
    let pid2 = out.split("[2] ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("0").to_string();
    let out = vm.run(&format!("kill %1; kill {pid2}; wait %3; echo loop status $?"), Duration::from_secs(120))?;
    check(out.contains(&format!("loop status {}\n", int_loop_expected())), "the third job finished correctly", &out)?;
    check(out.matches("Done (143)").count() == 2, "the killed jobs ended as terminated", &out)?;
    vm.run("wait", STEP)?;
    let ps = vm.run("ps", STEP)?;
    check(!ps.contains("wasm"), "killed jobs are gone", &ps)
}

pub(super) fn foreground_ctrl_c_spares_background_jobs(image: &Image) -> Result<(), String> {
    let mut vm = boot_wasm(image)?;
    vm.run("wasm /extra_files/t/int-loop.wasm > /tmp/bg &", STEP)?;
    vm.send_line("wasm /extra_files/t/spin.wasm")?;
    std::thread::sleep(Duration::from_millis(300));
    vm.send(b"\x03")?;
    vm.wait_for(PROMPT, Duration::from_secs(10))?;
    let out = vm.run("jobs", STEP)?;
    check(out.contains("Running") || out.contains("Done"), "the background job survived Ctrl-C", &out)?;
    let out = vm.run("wait; echo $?", Duration::from_secs(120))?;
    check(out.ends_with(&format!("{}\n", int_loop_expected())), "background job status", &out)?;
    shutdown(vm)
}

pub(super) fn pipes_stream_with_backpressure(image: &Image) -> Result<(), String> {
    // 100 MiB through a 64 KiB pipe: only possible if both programs run at once.
    let mut vm = boot_with(
        &image_with_tree(image, "test-wasm", &wasm_test_files()?)?,
        &Options { mem: "128M".into(), ..Options::default() },
    )?;
    let t = Instant::now();
    let out = vm.run("wasm /extra_files/t/flood.wasm | wc", Duration::from_secs(600))?;
    check(out == "      0       1 104857600\n", "100 MiB counted on the other side", &out)?;
    println!("      (100 MiB through a pipe in {:.1} s)", t.elapsed().as_secs_f64());
    // A reader that stops early ends the writer (broken pipe), even an endless one.
    let out = vm.run("cat /dev/zero | wasm /extra_files/t/trap.wasm; echo $?", STEP)?;
    contains(&out, "134\n")?;
    let out =
        vm.run("echo keel is here > /tmp/k; echo not this >> /tmp/k; cat /tmp/k | upper | grep -c KEEL | cat", STEP)?;
    check(out == "1\n", "four-stage pipeline", &out)?;
    shutdown(vm)
}

pub(super) fn repeated_programs_do_not_leak(image: &Image) -> Result<(), String> {
    // Regression: a task's captured state was never dropped (it called exit instead of
    // returning), leaking ~1 KiB per program run.
    let mut vm = boot(image)?;
    let line: Vec<&str> = (0..40).map(|_| "hello > /dev/null").collect();
    let line = line.join("; ");
    vm.run(&line, Duration::from_secs(120))?;
    let a = heap_used(&vm.run("mem", STEP)?);
    vm.run(&line, Duration::from_secs(120))?;
    let b = heap_used(&vm.run("mem", STEP)?);
    // The second batch adds one history line (under 2 KiB) and nothing per program.
    check(
        a.is_some() && b.is_some() && b < a.map(|a| a + 4096),
        &format!("heap after 40 runs {a:?}, after 80 {b:?}"),
        "",
    )?;
    shutdown(vm)
}

pub(super) fn memory_bombs_cannot_starve_the_kernel(image: &Image) -> Result<(), String> {
    let img = image_with_tree(image, "test-wasm", &wasm_test_files()?)?;
    let mut vm = boot_with(&img, &Options { mem: "160M".into(), ..Options::default() })?;
    let before = heap_used(&vm.run("mem", STEP)?);
    let bombs: Vec<String> = (0..4).map(|_| "wasm --max-memory 1G /extra_files/t/bomb.wasm &".to_string()).collect();
    vm.run(&bombs.join(" "), STEP)?;
    let out = vm.run("wait; echo waited", Duration::from_secs(120))?;
    check(
        out.contains("the system keeps its reserve") && out.contains("waited"),
        "bombs stopped by the reserve",
        &out,
    )?;
    let out = vm.run("echo alive; ls /extra_files | cat", STEP)?;
    contains(&out, "alive\n")?;
    let after = heap_used(&vm.run("mem", STEP)?);
    check(
        after.is_some() && before.is_some() && after < before.map(|b| b + 64 * 1024),
        &format!("heap back near {before:?}: {after:?}"),
        "",
    )?;
    shutdown(vm)
}
