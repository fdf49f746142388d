//! boot::, console::, time::, mem::, power:: — the machine comes up, keeps time, reports memory, powers off.

use super::harness::*;
use crate::build::{self, Image};
use crate::qemu::{Options, PROMPT};
use std::process::Command;
use std::time::{Duration, Instant};

pub(super) fn boot_to_prompt(image: &Image) -> Result<(), String> {
    let vm = boot(image)?;
    let t = vm.started.elapsed();
    let out = vm.output();
    contains(&out, "Welcome to Keel")?;
    println!("      (prompt after {:.0} ms, including QEMU start-up)", t.as_secs_f64() * 1000.0);
    shutdown(vm)
}

pub(super) fn q35_boots_too(image: &Image) -> Result<(), String> {
    let mut vm = boot_with(image, &Options { machine: Some("q35".into()), cpus: 2, ..Options::default() })?;
    contains(&vm.output(), "SMP: 2 CPUs online")?;
    let out = vm.run("echo on q35", STEP)?;
    check(out == "on q35\n", "echo on q35", &out)?;
    let out = vm.run("wasm --cpu 1 /extra_files/wasm/hello.wasm", STEP)?;
    contains(&out, "Hello, world!")?;
    shutdown(vm)
}

pub(super) fn screen_console_and_keyboard(image: &Image) -> Result<(), String> {
    let sock = build::out_dir().join("test-monitor.sock");
    let _ = std::fs::remove_file(&sock);
    let opts = Options {
        machine: Some("q35".into()),
        extra: vec!["-vga".into(), "std".into(), "-monitor".into(), format!("unix:{},server,nowait", sock.display())],
        ..Options::default()
    };
    let mut vm = boot_with(image, &opts)?;
    let mut mon = crate::qemu::Monitor::connect(&sock)?;
    // Typed on the PS/2 keyboard; the shell answers on both consoles.
    mon.type_text("echo Typed On The Keyboard\n")?;
    let out = vm.wait_for(NEXT_PROMPT, STEP)?;
    contains(&out, "Typed On The Keyboard")?;
    // The screen is drawn just after the serial output: allow it a moment.
    let want = "keel> echo Typed On The Keyboard\nTyped On The Keyboard\nkeel>";
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut screen = mon.vga_text()?.join("\n");
    while !screen.contains(want) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        screen = mon.vga_text()?.join("\n");
    }
    contains(&screen, want)?;
    // Editing keys work from the keyboard too.
    mon.type_text("echo ac")?;
    mon.command("sendkey left")?;
    mon.type_text("b\n")?;
    let out = vm.wait_for(NEXT_PROMPT, STEP)?;
    contains(&out, "\r\nabc\r\n")?;
    shutdown(vm)
}

pub(super) fn uptime_advances(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let parse =
        |s: &str| -> Option<f64> { s.lines().next()?.trim().strip_prefix("up ")?.strip_suffix('s')?.parse().ok() };
    let a = vm.run("uptime", STEP)?;
    let t1 = parse(&a).ok_or(format!("uptime format: {a:?}"))?;
    vm.run("sleep 0.3", STEP)?;
    let b = vm.run("uptime", STEP)?;
    let t2 = parse(&b).ok_or(format!("uptime format: {b:?}"))?;
    check(t2 - t1 >= 0.3 && t2 - t1 < 30.0, &format!("uptime went from {t1} to {t2}"), &b)?;
    shutdown(vm)
}

pub(super) fn date_is_the_host_date(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let out = vm.run("date", STEP)?;
    // QEMU's RTC starts at the host's UTC time.
    let host = Command::new("date").args(["-u", "+%Y-%m-%d"]).output().map_err(|e| e.to_string())?;
    let host = String::from_utf8_lossy(&host.stdout).trim().to_string();
    contains(&out, &host)?;
    contains(&out, " UTC")?;
    shutdown(vm)
}

pub(super) fn mem_reports_pages_and_heap(image: &Image) -> Result<(), String> {
    let mut vm = boot_with(image, &Options { mem: "256M".into(), ..Options::default() })?;
    let out = vm.run("mem", STEP)?;
    contains(&out, "physical: ")?;
    contains(&out, "heap: ")?;
    // 256 MiB of guest RAM: the usable part is a bit less.
    let total =
        out.split("physical: ").nth(1).and_then(|s| s.split(" MiB total").next()).and_then(|s| s.parse::<f64>().ok());
    check(total.is_some_and(|t| (200.0..=256.0).contains(&t)), "physical total near 256 MiB", &out)?;
    shutdown(vm)
}

pub(super) fn exit_status_reaches_the_host(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    vm.send_line("exit 7")?;
    let st = vm.wait_exit(STEP)?;
    check(st == 7, &format!("exit 7 gave {st}"), &vm.output())
}

pub(super) fn reboot_comes_back(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    vm.send_line("reboot")?;
    vm.wait_for("Welcome to Keel", STEP)?;
    vm.wait_for(PROMPT, STEP)?;
    let out = vm.run("echo back", STEP)?;
    check(out == "back\n", "shell after reboot", &out)?;
    shutdown(vm)
}

/// Memory comes back: filling /tmp to its limit and emptying it ten times, and 1000 programs
/// with 64 MiB memories one after another, leave the free physical pages where they were.
pub(super) fn memory_comes_back(image: &Image) -> Result<(), String> {
    let script = "wasm /extra_files/big-memory.wasm\n".repeat(1000);
    let files = [
        ("big-memory.wasm", wat::parse_str(BIG_MEMORY_WAT).map_err(|e| e.to_string())?),
        ("thousand.sh", script.into_bytes()),
    ];
    let img = image_with_tree(image, "memory-tree", &files)?;
    let mut vm = boot(&img)?;
    // Warm up the shell (its history and buffers) with small commands, then take the baseline.
    vm.run("mem; echo x > /tmp/small; rm /tmp/small", STEP)?;
    let before = vm.run("mem", STEP)?;
    let base = free_pages(&before).ok_or(format!("no free pages in: {before}"))?;
    for _ in 0..10 {
        let out = vm.run("cat /dev/zero > /tmp/f; rm /tmp/f", STEP)?;
        contains(&out, "no space left on device")?;
    }
    let out = vm.run("source /extra_files/thousand.sh; echo $?", Duration::from_secs(900))?;
    check(out == "0\n", "1000 programs with 64 MiB memories", &out)?;
    let after = vm.run("mem", STEP)?;
    let now = free_pages(&after).ok_or(format!("no free pages in: {after}"))?;
    // A few pages of slack for the shell's history (it grows by a line per command).
    check(now + 64 >= base, &format!("free pages back to {base} (now {now})"), &format!("{before}{after}"))?;
    contains(&after, "large:    0 B")?;
    shutdown(vm)
}

/// Touches every page of a 64 MiB memory, then exits 0.
const BIG_MEMORY_WAT: &str = r#"(module
  (memory (export "memory") 1024)
  (func (export "_start") (local $a i32)
    (loop $l
      (i32.store8 (local.get $a) (i32.const 1))
      (br_if $l (i32.lt_u (local.tee $a (i32.add (local.get $a) (i32.const 4096))) (i32.const 67108864))))))"#;
