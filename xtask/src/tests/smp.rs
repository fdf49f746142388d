//! smp:: — Keel on 2 and 4 CPUs: every CPU computes, results stay right when programs run in
//! parallel, pipelines whose stages are pinned to different CPUs, and kill racing program exit
//! across CPUs with memory back to its baseline. `cargo xtask stress` runs the same mix for
//! minutes (not in the default test run).

use super::harness::*;
use super::wasm::*;
use crate::build::Image;
use crate::qemu::{Options, Vm};
use std::time::{Duration, Instant};

fn boot_cpus(image: &Image, name: &str, files: Vec<(String, Vec<u8>)>, cpus: usize) -> Result<Vm, String> {
    let mut all: Vec<(String, Vec<u8>)> = wasm_test_files()?.into_iter().map(|(p, d)| (p.to_string(), d)).collect();
    // The native programs of the main image too (hello-native, oops, lua, pipelat).
    let bin = crate::build::out_dir().join("bin");
    for e in std::fs::read_dir(&bin).map_err(|e| format!("{}: {e}", bin.display()))? {
        let p = e.map_err(|e| e.to_string())?.path();
        if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
            all.push((format!("bin/{name}"), std::fs::read(&p).map_err(|e| e.to_string())?));
        }
    }
    all.extend(files);
    let img = image_with_tree(image, name, &all)?;
    let vm = boot_with(&img, &Options { cpus, ..Options::default() })?;
    check(vm.output().contains(&format!("SMP: {cpus} CPUs online")), &format!("{cpus} CPUs started"), &vm.output())?;
    Ok(vm)
}

/// Seconds CPU `cpu` spent running tasks, from `uptime` ("cpuN: busy P% (S.SSSs), ...").
fn busy_seconds(uptime: &str, cpu: usize) -> Option<f64> {
    let line = uptime.lines().find(|l| l.starts_with(&format!("cpu{cpu}: ")))?;
    let inner = line.split_once('(')?.1.split_once(')')?.0;
    let (min, sec) = match inner.split_once("m ") {
        Some((m, s)) => (m.parse::<f64>().ok()?, s),
        None => (0.0, inner),
    };
    Some(min * 60.0 + sec.strip_suffix('s')?.parse::<f64>().ok()?)
}

/// The tasks `ps` shows besides the shell, the idle tasks and the network poller.
fn extra_tasks(ps: &str) -> Vec<String> {
    ps.lines()
        .skip(1)
        .filter(|l| !(l.ends_with(" shell") || l.ends_with(" idle") || l.ends_with(" net")))
        .map(String::from)
        .collect()
}

pub(super) fn every_cpu_computes(image: &Image) -> Result<(), String> {
    let mut vm = boot_cpus(image, "test-smp", Vec::new(), 4)?;
    let before = vm.run("uptime", STEP)?;
    let out = vm.run(
        "wasm --cpu 1 /extra_files/t/spin.wasm & wasm --cpu 2 /extra_files/t/spin.wasm & wasm --cpu 3 /extra_files/t/spin.wasm &",
        STEP,
    )?;
    check(out.contains("[3] "), "three jobs", &out)?;
    std::thread::sleep(Duration::from_millis(2500));
    let ps = vm.run("ps", STEP)?;
    for cpu in 1..=3 {
        let pinned = format!(" {cpu}* ");
        check(
            ps.lines().any(|l| l.contains("spin.wasm") && l.contains(&pinned) && l.contains("running")),
            &format!("a loop runs pinned on CPU {cpu}"),
            &ps,
        )?;
    }
    let after = vm.run("uptime", STEP)?;
    for cpu in 1..=3 {
        let (a, b) = (busy_seconds(&before, cpu), busy_seconds(&after, cpu));
        let (Some(a), Some(b)) = (a, b) else { return Err(format!("uptime per CPU: {after}")) };
        check(b - a >= 1.0, &format!("CPU {cpu} was busy {:.2} s of the 2.5 s", b - a), &after)?;
    }
    vm.run("kill %1 %2 %3; wait", Duration::from_secs(30))?;
    let ps = vm.run("ps", STEP)?;
    check(extra_tasks(&ps).is_empty(), "the three loops were killed", &ps)?;
    let out = vm.run("wasm --cpu 9 /extra_files/wasm/hello.wasm; echo status $?", STEP)?;
    contains(&out, "wasm: --cpu 9: no such CPU (4 online)")?;
    contains(&out, "status 2")?;
    // Four computations at once, unpinned: each result is right.
    let expected = int_loop_expected();
    let line: Vec<String> = (1..=4).map(|_| "wasm /extra_files/t/int-loop.wasm &".to_string()).collect();
    vm.run(&line.join(" "), STEP)?;
    let out =
        vm.run("wait %1; echo r$?; wait %2; echo r$?; wait %3; echo r$?; wait %4; echo r$?", Duration::from_secs(120))?;
    check(out.matches(&format!("r{expected}\n")).count() == 4, "four parallel results are right", &out)?;
    shutdown(vm)
}

pub(super) fn twenty_programs_on_four_cpus(image: &Image) -> Result<(), String> {
    let mut vm = boot_cpus(image, "test-smp", Vec::new(), 4)?;
    let mut starts: Vec<String> = (1..=10).map(|i| format!("calc '{i}*{i}' > /tmp/c{i} &")).collect();
    starts.extend((1..=10).map(|i| format!("lua -e 'print({i}*{i}+1)' > /tmp/l{i} &")));
    let out = vm.run(&starts.join(" "), STEP)?;
    check(out.matches("] ").count() == 20, "20 jobs started", &out)?;
    vm.run("wait", Duration::from_secs(120))?;
    for i in 1..=10 {
        let out = vm.run(&format!("cat /tmp/c{i} /tmp/l{i}"), STEP)?;
        check(out == format!("{}\n{}\n", i * i, i * i + 1), &format!("job {i}'s output"), &out)?;
    }
    let ps = vm.run("ps", STEP)?;
    check(extra_tasks(&ps).is_empty(), "only the shell, the idle tasks and net are left", &ps)?;
    check(ps.lines().filter(|l| l.ends_with(" idle")).count() == 4, "one idle task per CPU", &ps)?;
    shutdown(vm)
}

pub(super) fn pipelines_across_cpus(image: &Image) -> Result<(), String> {
    let text: Vec<u8> =
        noise(256 * 1024, 17).iter().map(|b| b"abcdefgh ijklmnop\nqrstuvwxyz"[usize::from(*b) % 27]).collect();
    let upper: Vec<u8> = text.to_ascii_uppercase();
    let mut vm = boot_cpus(image, "test-smp-pipe", vec![("t/text.txt".into(), text)], 4)?;
    // Three stages, each pinned to its own CPU: the bytes arrive intact and in order.
    let out = vm.run(
        "wasm --cpu 1 /extra_files/wasm/upper.wasm < /extra_files/t/text.txt | wasm --cpu 2 /extra_files/wasm/upper.wasm | wasm --cpu 3 /extra_files/wasm/sha256.wasm",
        Duration::from_secs(120),
    )?;
    contains(&out, &format!("{}  -", sha256_hex(&upper)))?;
    // Native programs handing messages over a pipe, wherever they run.
    let out = vm.run("pipelat send 300 | pipelat recv", Duration::from_secs(60))?;
    contains(&out, "300 messages")?;
    shutdown(vm)
}

/// The kernel built with the `lock-order` checks, on 4 CPUs, through the start/kill race and a
/// pipeline across CPUs: any lock taken out of order would stop it with a report.
pub(super) fn lock_order_checked(image: &Image) -> Result<(), String> {
    let kernel = crate::build::build_kernel_as(&["lock-order"], "keel-lock-order.elf")?;
    // The next plain build must not reuse the checked binary cargo left in its target dir.
    crate::build::build_kernel()?;
    let checked = Image { kernel, initrd: image.initrd.clone() };
    let mut vm = boot_cpus(&checked, "test-smp", Vec::new(), 4)?;
    kill_race(&mut vm, 20)?;
    let out = vm.run(
        "cat /extra_files/welcome.txt | wasm --cpu 1 /extra_files/wasm/upper.wasm | wasm --cpu 2 /extra_files/wasm/wc.wasm",
        Duration::from_secs(60),
    )?;
    check(!out.contains("lock order") && !out.contains("PANIC"), "no lock-order report", &out)?;
    vm.run("mkdir -p /tmp/a/b; echo x > /tmp/a/b/f; cat /tmp/a/b/f", STEP)?;
    // And the checks are live: two locks the wrong way round stop the kernel.
    vm.send_line("crash lock-order")?;
    let status = vm.wait_exit(STEP)?;
    let out = vm.output();
    check(status != 0, "the kernel stopped", &out)?;
    contains(&out, "lock order: taking Jobs while holding Frames")
}

/// One round of the start/kill race: `n` short programs of four kinds started in the
/// background and killed at once (some have ended, some are starting, some compute in ring 3).
fn kill_race_round(vm: &mut Vm, n: usize) -> Result<(), String> {
    let kinds = [
        "hello-native > /tmp/o",
        "wasm /extra_files/wasm/hello.wasm > /tmp/o",
        "oops spin",
        "wasm /extra_files/t/spin.wasm",
        "oops sleep",
    ];
    let starts: Vec<String> = (0..n).map(|i| format!("{} &", kinds[i % kinds.len()])).collect();
    let kills: Vec<String> = (1..=n).map(|i| format!("%{i}")).collect();
    let line = format!("{} kill {} 2> /tmp/e; wait", starts.join(" "), kills.join(" "));
    let out = match vm.run(&line, Duration::from_secs(60)) {
        Ok(out) => out,
        Err(e) => {
            // What was left: stop the wait and look.
            let _ = vm.send(b"\x03");
            std::thread::sleep(Duration::from_secs(1));
            let state = vm.run("ps; jobs; uptime", STEP).unwrap_or_default();
            return Err(format!("{}\nstate after Ctrl-C:\n{state}", e.chars().take(3000).collect::<String>()));
        }
    };
    check(!out.contains("KERNEL"), "no kernel report", &out)
}

/// Starts and kills `rounds` x 10 programs on `vm`, then checks every task is gone and memory
/// is back where it was.
pub(super) fn kill_race(vm: &mut Vm, rounds: usize) -> Result<(), String> {
    vm.run("hello-native > /tmp/o; wasm /extra_files/wasm/hello.wasm > /tmp/o", STEP)?;
    let mem = vm.run("mem", STEP)?;
    let (pages, heap) = (free_pages(&mem), heap_used(&mem));
    for _ in 0..rounds {
        kill_race_round(vm, 10)?;
    }
    let ps = vm.run("ps", STEP)?;
    check(extra_tasks(&ps).is_empty(), "every program ended", &ps)?;
    let mem = vm.run("mem", STEP)?;
    if let (Some(a), Some(b)) = (pages, free_pages(&mem)) {
        // The heap may keep a few pages it grew by; every program's pages are back.
        check(b + 64 >= a, &format!("free pages back to the baseline ({a} before, {b} after)"), &mem)?;
    }
    check_heap_back(vm, heap, 256 * 1024)
}

pub(super) fn kill_races_exit_across_cpus(image: &Image) -> Result<(), String> {
    let mut vm = boot_cpus(image, "test-smp", Vec::new(), 2)?;
    let start = Instant::now();
    kill_race(&mut vm, 100)?;
    eprintln!("      (1000 start/kill cycles on 2 CPUs in {:.1} s)", start.elapsed().as_secs_f64());
    shutdown(vm)
}

/// `cargo xtask stress [--minutes M] [--cpus N]`: the SMP tests' mix, round after round, on one
/// boot, until the time is up; memory and tasks are checked after every round.
pub fn stress(image: &Image, minutes: f64, cpus: usize) -> Result<(), String> {
    let text: Vec<u8> = noise(64 * 1024, 5).iter().map(|b| b"abc def\n"[usize::from(*b) % 8]).collect();
    let digest = sha256_hex(&text.to_ascii_uppercase());
    let mut vm = boot_cpus(image, "test-smp-stress", vec![("t/text.txt".into(), text)], cpus)?;
    let end = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let mut round = 0;
    while Instant::now() < end {
        round += 1;
        kill_race(&mut vm, 10)?;
        let out = vm.run(
            "wasm /extra_files/wasm/upper.wasm < /extra_files/t/text.txt | wasm /extra_files/wasm/sha256.wasm & lua -e 'local s=0 for k=1,200000 do s=s+k end print(s)' & wasm /extra_files/t/int-loop.wasm & wait",
            Duration::from_secs(120),
        )?;
        contains(&out, &digest)?;
        contains(&out, "20000100000")?;
        eprintln!(
            "stress: round {round} ok ({:.0} s left)",
            end.saturating_duration_since(Instant::now()).as_secs_f64()
        );
    }
    shutdown(vm)
}
