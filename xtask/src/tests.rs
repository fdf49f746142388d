//! `cargo xtask test`: host unit tests, then boot tests that type into Keel's shell over serial
//! and check what it prints. Every step has a timeout, so a hang fails fast; a kernel fault fails
//! the test and shows the kernel's report.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::build::{self, Image};
use crate::qemu::{Options, Vm, FAULT_STATUS, PROMPT};

type TestFn = fn(&Image) -> Result<(), String>;

pub(crate) const STEP: Duration = Duration::from_secs(20);
/// A fresh prompt (a redraw while editing starts with a bare `\r` instead).
const NEXT_PROMPT: &str = "\r\nkeel> ";

/// Boots Keel and waits for the first prompt.
pub(crate) fn boot(image: &Image) -> Result<Vm, String> {
    boot_with(image, &Options::default())
}

fn boot_with(image: &Image, opts: &Options) -> Result<Vm, String> {
    let mut vm = Vm::boot(image, opts)?;
    vm.wait_for(PROMPT, Duration::from_secs(60))?;
    Ok(vm)
}

pub(crate) fn check(cond: bool, what: &str, output: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("{what}; output was:\n{output}"))
    }
}

pub(crate) fn contains(output: &str, needle: &str) -> Result<(), String> {
    check(output.contains(needle), &format!("expected {needle:?}"), output)
}

/// Powers off through `shutdown` and checks QEMU's status is 0.
pub(crate) fn shutdown(mut vm: Vm) -> Result<(), String> {
    vm.send_line("shutdown")?;
    let st = vm.wait_exit(STEP)?;
    check(st == 0, &format!("shutdown exited with {st}"), &vm.output())
}

// ---- boot and basic commands ----

fn boot_to_prompt(image: &Image) -> Result<(), String> {
    let vm = boot(image)?;
    let t = vm.started.elapsed();
    let out = vm.output();
    contains(&out, "Welcome to Keel")?;
    println!("      (prompt after {:.0} ms, including QEMU start-up)", t.as_secs_f64() * 1000.0);
    shutdown(vm)
}

fn echo_and_help(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let out = vm.run("echo hello   'big  world'", STEP)?;
    check(out == "hello big  world\n", "echo output", &out)?;
    let out = vm.run("help", STEP)?;
    for cmd in ["help", "echo", "uptime", "date", "mem", "shutdown", "reboot", "history"] {
        contains(&out, &format!("  {cmd} "))?;
    }
    let out = vm.run("help mem", STEP)?;
    contains(&out, "mem: physical memory")?;
    let out = vm.run("help nosuch", STEP)?;
    contains(&out, "help: no such command or program on $PATH: nosuch")?;
    shutdown(vm)
}

fn uptime_advances(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let parse = |s: &str| -> Option<f64> { s.trim().strip_prefix("up ")?.strip_suffix('s')?.parse().ok() };
    let a = vm.run("uptime", STEP)?;
    let t1 = parse(&a).ok_or(format!("uptime format: {a:?}"))?;
    vm.run("sleep 0.3", STEP)?;
    let b = vm.run("uptime", STEP)?;
    let t2 = parse(&b).ok_or(format!("uptime format: {b:?}"))?;
    check(t2 - t1 >= 0.3 && t2 - t1 < 30.0, &format!("uptime went from {t1} to {t2}"), &b)?;
    shutdown(vm)
}

fn date_is_the_host_date(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let out = vm.run("date", STEP)?;
    // QEMU's RTC starts at the host's UTC time.
    let host = Command::new("date").args(["-u", "+%Y-%m-%d"]).output().map_err(|e| e.to_string())?;
    let host = String::from_utf8_lossy(&host.stdout).trim().to_string();
    contains(&out, &host)?;
    contains(&out, " UTC")?;
    shutdown(vm)
}

fn mem_reports_pages_and_heap(image: &Image) -> Result<(), String> {
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

fn unknown_command_and_bad_arguments(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let out = vm.run("frobnicate now", STEP)?;
    contains(&out, "keel: frobnicate: command not found")?;
    let out = vm.run("echo $?", STEP)?;
    check(out == "127\n", "status of an unknown command", &out)?;
    let out = vm.run("sleep forever", STEP)?;
    contains(&out, "sleep: invalid time interval 'forever'")?;
    let out = vm.run("crash sideways", STEP)?;
    contains(&out, "crash: sideways: expected")?;
    // An open quote continues on the next line; Ctrl-C abandons it.
    vm.send_line("echo 'unclosed")?;
    vm.wait_for("\n> ", STEP)?;
    vm.send(b"\x03")?;
    vm.wait_for(crate::qemu::PROMPT, STEP)?;
    let out = vm.run("echo $?", STEP)?;
    check(out == "130\n", "status after Ctrl-C", &out)?;
    let out = vm.run("echo a |", STEP)?;
    contains(&out, "missing command after '|'")?;
    let out = vm.run("echo still alive", STEP)?;
    check(out == "still alive\n", "shell goes on", &out)?;
    shutdown(vm)
}

fn exit_status_reaches_the_host(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    vm.send_line("exit 7")?;
    let st = vm.wait_exit(STEP)?;
    check(st == 7, &format!("exit 7 gave {st}"), &vm.output())
}

fn reboot_comes_back(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    vm.send_line("reboot")?;
    vm.wait_for("Welcome to Keel", STEP)?;
    vm.wait_for(PROMPT, STEP)?;
    let out = vm.run("echo back", STEP)?;
    check(out == "back\n", "shell after reboot", &out)?;
    shutdown(vm)
}

fn line_editing_over_serial(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    // Type "eco hi", go left to fix it into "echo hi", then run it.
    vm.send(b"eco hi\x1b[D\x1b[D\x1b[D\x1b[Dh\r")?;
    let out = vm.wait_for(NEXT_PROMPT, STEP)?;
    contains(&out, "\r\nhi\r\n")?;
    // Ctrl-A, Ctrl-K kill the line; history recall with Up.
    vm.send(b"garbage\x01\x0becho second\r")?;
    let out = vm.wait_for(NEXT_PROMPT, STEP)?;
    contains(&out, "\r\nsecond\r\n")?;
    vm.send(b"\x1b[A\x1b[A\r")?;
    let out = vm.wait_for(NEXT_PROMPT, STEP)?;
    contains(&out, "\r\nhi\r\n")?;
    let out = vm.run("history", STEP)?;
    contains(&out, "1  echo hi\n")?;
    contains(&out, "2  echo second\n")?;
    // Ctrl-C abandons the line.
    vm.send(b"echo never\x03")?;
    vm.wait_for(NEXT_PROMPT, STEP)?;
    let out = vm.run("echo $?", STEP)?;
    check(out == "130\n", "status after Ctrl-C", &out)?;
    // Tab completes command names.
    vm.send(b"upti\t\r")?;
    let out = vm.wait_for(NEXT_PROMPT, STEP)?;
    contains(&out, "up ")?;
    shutdown(vm)
}

fn ctrl_c_stops_sleep(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    vm.send_line("sleep 30")?;
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    vm.send(b"\x03")?;
    vm.wait_for(PROMPT, Duration::from_secs(5))?;
    let took = t.elapsed();
    let out = vm.run("echo $?", STEP)?;
    check(out == "130\n", "status after Ctrl-C", &out)?;
    check(took < Duration::from_secs(3), &format!("Ctrl-C took {took:?}"), &out)?;
    shutdown(vm)
}

fn pipes_and_connectors(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let out = vm.run("false && echo no || echo yes; true && echo and", STEP)?;
    check(out == "yes\nand\n", "&& and ||", &out)?;
    let out = vm.run("X=world; echo \"hello $X\" '$X'", STEP)?;
    check(out == "hello world $X\n", "variables", &out)?;
    let out = vm.run("echo a |", STEP)?;
    contains(&out, "missing command after '|'")?;
    let out = vm.run("echo piped through | cat | cat", STEP)?;
    check(out == "piped through\n", "pipe between built-ins", &out)?;
    let out = vm.run("cat /nope 2> /tmp/err; echo status $?; cat /tmp/err", STEP)?;
    check(out == "status 1\ncat: /nope: no such file or directory\n", "2> redirection", &out)?;
    let out = vm.run("time sleep 0.1", STEP)?;
    contains(&out, "real 0.1")?;
    shutdown(vm)
}

fn fault(image: &Image, kind: &str, expect: &[&str]) -> Result<(), String> {
    let mut vm = boot(image)?;
    vm.send_line(&format!("crash {kind}"))?;
    let st = vm.wait_exit(STEP)?;
    let out = vm.output();
    check(st == FAULT_STATUS, &format!("crash {kind}: status {st}, want {FAULT_STATUS}"), &out)?;
    for e in expect {
        contains(&out, e)?;
    }
    Ok(())
}

fn fault_page(image: &Image) -> Result<(), String> {
    fault(
        image,
        "pagefault",
        &["KERNEL EXCEPTION: page fault (#PF)", "address 0x0000400000000000", "rip ", "backtrace"],
    )
}

fn fault_gpf(image: &Image) -> Result<(), String> {
    fault(image, "gpf", &["KERNEL EXCEPTION: general protection fault (#GP)", "error "])
}

fn fault_divide(image: &Image) -> Result<(), String> {
    fault(image, "divide", &["KERNEL EXCEPTION: divide error (#DE)"])
}

fn fault_invalid_opcode(image: &Image) -> Result<(), String> {
    fault(image, "invalid-opcode", &["KERNEL EXCEPTION: invalid opcode (#UD)"])
}

fn fault_stack_overflow(image: &Image) -> Result<(), String> {
    fault(
        image,
        "stack-overflow",
        &["page fault (#PF)", "stack overflow: the address is in the guard page of the shell"],
    )
}

fn fault_panic(image: &Image) -> Result<(), String> {
    fault(image, "panic", &["KERNEL PANIC", "deliberate panic from the crash command"])
}

fn screen_console_and_keyboard(image: &Image) -> Result<(), String> {
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

fn q35_boots_too(image: &Image) -> Result<(), String> {
    let mut vm = boot_with(image, &Options { machine: Some("q35".into()), ..Options::default() })?;
    let out = vm.run("echo on q35", STEP)?;
    check(out == "on q35\n", "echo on q35", &out)?;
    shutdown(vm)
}

// ---- extra files and the filesystem ----

/// Deterministic pseudo-random bytes (xorshift), so test files are reproducible.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Files of the test tree: (relative path, contents).
fn test_tree() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("top.txt", b"top level\n".to_vec()),
        ("nested/deeper/deepest/leaf.txt", b"a leaf\n".to_vec()),
        ("with space/file with spaces.txt", b"spaces are fine\n".to_vec()),
        ("unicode/héllo wörld ✓.txt", "unicode ✓\n".as_bytes().to_vec()),
        ("bin/random-5MiB.bin", noise(5 << 20, 42)),
        ("bin/empty-file", Vec::new()),
    ]
}

/// Builds an image whose extra files are a generated test tree (plus an empty directory).
pub(crate) fn image_with_tree(base: &Image, name: &str, files: &[(&str, Vec<u8>)]) -> Result<Image, String> {
    let dir = build::out_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    for (path, data) in files {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&p, data).map_err(|e| e.to_string())?;
    }
    std::fs::create_dir_all(dir.join("empty dir")).map_err(|e| e.to_string())?;
    let tar = build::out_dir().join(format!("{name}.tar"));
    build::pack(&dir, Some(&build::out_dir().join("wasm")), &tar)?;
    Ok(Image { kernel: base.kernel.clone(), initrd: tar })
}

fn extra_files_match_the_host(image: &Image) -> Result<(), String> {
    let files = test_tree();
    let img = image_with_tree(image, "test-tree", &files)?;
    let mut vm = boot(&img)?;
    for (path, data) in &files {
        let out = vm.run(&format!("sha256sum '/extra_files/{path}'"), STEP)?;
        let want = format!("{}  /extra_files/{path}\n", sha256_hex(data));
        check(out == want, &format!("sha256 of {path}"), &out)?;
    }
    let out = vm.run("ls /extra_files | cat", STEP)?;
    check(out == "bin\nempty dir\nnested\ntop.txt\nunicode\nwasm\nwith space\n", "top-level listing", &out)?;
    let out = vm.run("ls '/extra_files/empty dir' | cat; echo status $?", STEP)?;
    check(out == "status 0\n", "empty directory kept", &out)?;
    let out = vm.run("stat /extra_files/bin/random-5MiB.bin", STEP)?;
    contains(&out, &format!("Size: {}", 5 << 20))?;
    shutdown(vm)
}

fn extra_files_are_read_only(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let out = vm.run("touch /extra_files/x", STEP)?;
    check(out == "touch: cannot touch '/extra_files/x': read-only file system\n", "touch", &out)?;
    let out = vm.run("echo no > /extra_files/welcome.txt", STEP)?;
    check(out == "keel: /extra_files/welcome.txt: read-only file system\n", "redirect", &out)?;
    let out = vm.run("rm /extra_files/welcome.txt", STEP)?;
    contains(&out, "read-only file system")?;
    let out = vm.run("mkdir /extra_files/d", STEP)?;
    contains(&out, "read-only file system")?;
    let out = vm.run("cat /nope", STEP)?;
    check(out == "cat: /nope: no such file or directory\n", "cat error", &out)?;
    shutdown(vm)
}

fn tmp_works_like_unix_tmp(image: &Image) -> Result<(), String> {
    // Small memory, so filling /tmp (half of RAM) is quick.
    let mut vm = boot_with(image, &Options { mem: "96M".into(), ..Options::default() })?;
    let out = vm.run(
        "mkdir -p /tmp/a/b && cd /tmp/a && echo hello > b/f.txt && echo more >> b/f.txt && cat b/f.txt && pwd",
        STEP,
    )?;
    check(out == "hello\nmore\n/tmp/a\n", "write, append, cd", &out)?;
    let out = vm.run("cp b/f.txt copy.txt && mv copy.txt moved.txt && ls | cat && cat < moved.txt", STEP)?;
    check(out == "b\nmoved.txt\nhello\nmore\n", "cp, mv, <", &out)?;
    let out = vm.run("rm -r /tmp/a && ls /tmp | cat && echo gone", STEP)?;
    check(out == "gone\n", "rm -r", &out)?;
    let out = vm.run("cat /dev/zero > /tmp/full; echo $?; rm /tmp/full; echo ok > /tmp/o && cat /tmp/o", STEP)?;
    check(out == "keel: /tmp/full: no space left on device\n1\nok\n", "full /tmp is an error, not a crash", &out)?;
    // An endless pipeline streams (no buffer fills up) until Ctrl-C stops every stage.
    vm.send_line("hexdump /dev/zero | cat > /dev/null")?;
    std::thread::sleep(Duration::from_millis(300));
    vm.send(b"\x03")?;
    vm.wait_for(PROMPT, STEP)?;
    let out = vm.run("echo $?", STEP)?;
    check(out == "130\n", "Ctrl-C ends a pipeline", &out)?;
    let out = vm.run("ls /dev | cat", STEP)?;
    check(out == "null\nrandom\nurandom\nzero\n", "devices", &out)?;
    shutdown(vm)
}

fn source_runs_scripts(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let out = vm.run("source /extra_files/scripts/demo.sh", STEP)?;
    contains(&out, "Keel demo script\nwritten by demo.sh\n")?;
    let out = vm.run("echo 'echo from tmp; Y=5' > /tmp/s.sh; . /tmp/s.sh; echo $Y", STEP)?;
    check(out == "from tmp\n5\n", "source from /tmp", &out)?;
    shutdown(vm)
}

fn tab_completes_paths(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    vm.send(b"cat /extra_files/wel\t\r")?;
    let out = vm.wait_for(NEXT_PROMPT, STEP)?;
    contains(&out, "Welcome to Keel!")?;
    shutdown(vm)
}

fn big_extra_files_are_not_copied(image: &Image) -> Result<(), String> {
    let files = vec![("big/64MiB.bin", noise(64 << 20, 7))];
    let img = image_with_tree(image, "test-big", &files)?;
    let mut vm = boot(&img)?;
    let out = vm.run("mem", STEP)?;
    // Served in place: the heap holds none of the 64 MiB.
    let heap_used = out
        .split("heap:")
        .nth(1)
        .and_then(|s| s.split(" claimed, ").nth(1))
        .and_then(|s| s.split(" used").next())
        .unwrap_or("?")
        .to_string();
    check(heap_used.ends_with("KiB") || heap_used.ends_with(" B"), &format!("heap use {heap_used}"), &out)?;
    let out = vm.run("stat /extra_files/big/64MiB.bin", STEP)?;
    contains(&out, &format!("Size: {}", 64 << 20))?;
    shutdown(vm)
}

// ---- WASM programs ----

const LOOP_ITERATIONS: u64 = 10_000_000;

/// An integer loop of about 10^8 instructions; exits with the low 7 bits of the result.
fn int_loop_wat() -> String {
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

fn int_loop_expected() -> i32 {
    let mut x: u64 = 1;
    for _ in 0..LOOP_ITERATIONS {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    }
    ((x >> 33) & 127) as i32
}

/// A floating-point loop; exits with a value derived from the result.
fn float_loop_wat() -> String {
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

fn float_loop_expected() -> i32 {
    let mut y: f64 = 0.5;
    for _ in 0..LOOP_ITERATIONS {
        y = y * 0.9999993 + 2.25f64.sqrt();
    }
    (y as u32 & 127) as i32
}

const SPIN_WAT: &str = include_str!("../../apps/hostile/spin.wat");
const TRAP_WAT: &str = include_str!("../../apps/hostile/trap.wat");
const RECURSE_WAT: &str = include_str!("../../apps/hostile/recurse.wat");
const BOMB_WAT: &str = include_str!("../../apps/hostile/bomb.wat");
/// Writes 100 MiB of 'x' to stdout in 64 KiB writes.
const FLOOD_WAT: &str = include_str!("../../apps/hostile/flood.wat");
/// 3 million failing memory.grow: found by the fuzzer; without guaranteed tail calls in the
/// interpreter every one of them took native stack, and the kernel task overflowed.
const GROW_LOOP_WAT: &str = include_str!("../../apps/hostile/grow-loop.wat");
const IMPORT_WAT: &str = include_str!("../../apps/hostile/import.wat");

fn wasm_test_files() -> Result<Vec<(&'static str, Vec<u8>)>, String> {
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
    ])
}

fn boot_wasm(image: &Image) -> Result<Vm, String> {
    let img = image_with_tree(image, "test-wasm", &wasm_test_files()?)?;
    boot(&img)
}

fn calc_session(image: &Image) -> Result<(), String> {
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

fn wasi_from_rust_std(image: &Image) -> Result<(), String> {
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

fn exit_codes_and_pipes(image: &Image) -> Result<(), String> {
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

fn traps_and_bad_modules(image: &Image) -> Result<(), String> {
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

fn ctrl_c_stops_a_runaway_guest(image: &Image) -> Result<(), String> {
    let mut vm = boot_wasm(image)?;
    let before = vm.run("mem", STEP)?;
    vm.send_line("wasm /extra_files/t/spin.wasm")?;
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    vm.send(b"\x03")?;
    vm.wait_for(PROMPT, Duration::from_secs(10))?;
    let took = t.elapsed();
    let out = vm.run("echo $?", STEP)?;
    check(out == "130\n", "status after Ctrl-C", &out)?;
    println!("      (prompt back {:.0} ms after Ctrl-C)", took.as_secs_f64() * 1000.0);
    let after = vm.run("mem", STEP)?;
    let (b, a) = (heap_used(&before), heap_used(&after));
    // The shell's history grew by a line or two; the guest's memory (64 KiB and more) is gone.
    check(
        a.is_some() && b.is_some() && a < b.map(|b| b + 8192),
        &format!("heap use back near {b:?}, now {a:?}"),
        &after,
    )?;
    shutdown(vm)
}

/// The heap's used bytes from `mem` output.
fn heap_used(mem: &str) -> Option<u64> {
    let line = mem.lines().find(|l| l.starts_with("heap:"))?;
    let used = line.split(" claimed, ").nth(1)?.split(" used").next()?;
    let (num, unit) = used.split_once(' ')?;
    let v: f64 = num.parse().ok()?;
    let mult = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1048576.0,
        "GiB" => 1073741824.0,
        _ => return None,
    };
    Some((v * mult) as u64)
}

fn long_loops_int_and_float(image: &Image) -> Result<(), String> {
    let mut vm = boot_wasm(image)?;
    let out = vm.run("wasm /extra_files/t/int-loop.wasm; echo $?", Duration::from_secs(120))?;
    check(out == format!("{}\n", int_loop_expected()), "integer loop result", &out)?;
    let out = vm.run("wasm /extra_files/t/float-loop.wasm; echo $?", Duration::from_secs(120))?;
    check(out == format!("{}\n", float_loop_expected()), "float loop result", &out)?;
    shutdown(vm)
}

// ---- tasks and jobs ----

fn twenty_programs_at_once(image: &Image) -> Result<(), String> {
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
    check(ps.lines().count() == 3, "only the shell and idle are left", &ps)?;
    shutdown(vm)
}

fn kill_one_while_others_finish(image: &Image) -> Result<(), String> {
    let mut vm = boot_wasm(image)?;
    let before = heap_used(&vm.run("mem", STEP)?);
    let out = vm.run(
        "wasm /extra_files/t/spin.wasm & wasm /extra_files/t/spin.wasm & wasm /extra_files/t/int-loop.wasm &",
        STEP,
    )?;
    check(out.contains("[1] ") && out.contains("[3] "), "three jobs", &out)?;
    // The jobs start their programs a moment later.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ps = vm.run("ps", STEP)?;
    while ps.lines().filter(|l| l.contains("  wasm ")).count() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        ps = vm.run("ps", STEP)?;
    }
    check(ps.lines().filter(|l| l.contains("  wasm ")).count() == 3, "three programs running", &ps)?;
    vm.run("kill %1", STEP)?;
    // The second job by the pid the shell printed for it: "[2] PID".
    let pid2 = out.split("[2] ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("0").to_string();
    vm.run(&format!("kill {pid2}"), STEP)?;
    let out = vm.run("wait %3; echo loop status $?", Duration::from_secs(120))?;
    check(out.contains(&format!("loop status {}\n", int_loop_expected())), "the third job finished correctly", &out)?;
    check(out.matches("Done (143)").count() == 2, "the killed jobs ended as terminated", &out)?;
    vm.run("wait", STEP)?;
    let ps = vm.run("ps", STEP)?;
    check(!ps.contains("wasm"), "killed jobs are gone", &ps)?;
    let out = vm.run("kill 999", STEP)?;
    contains(&out, "kill: (999): no such process")?;
    let after = heap_used(&vm.run("mem", STEP)?);
    check(
        after.is_some() && before.is_some() && after < before.map(|b| b + 64 * 1024),
        &format!("heap back near {before:?}: {after:?}"),
        "",
    )?;
    shutdown(vm)
}

fn foreground_ctrl_c_spares_background_jobs(image: &Image) -> Result<(), String> {
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

fn pipes_stream_with_backpressure(image: &Image) -> Result<(), String> {
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

fn repeated_programs_do_not_leak(image: &Image) -> Result<(), String> {
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

fn memory_bombs_cannot_starve_the_kernel(image: &Image) -> Result<(), String> {
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

// ---- hostile guests ----

fn hostile_guests(image: &Image) -> Result<(), String> {
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

fn fuzzed_modules_in_keel(image: &Image) -> Result<(), String> {
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

// ---- host folders ----

/// A fresh host folder for a share test.
fn share_dir(name: &str) -> Result<std::path::PathBuf, String> {
    let dir = build::out_dir().join("shares").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

fn boot_shared(image: &Image, shares: Vec<(std::path::PathBuf, String, bool)>) -> Result<Vm, String> {
    boot_with(image, &Options { shares, ..Options::default() })
}

fn share_round_trip(image: &Image) -> Result<(), String> {
    let dir = share_dir("round-trip")?;
    let sizes = [0usize, 1, 4095, 4096, 65536 + 7, (1 << 20) + 3, 5 << 20];
    for (i, n) in sizes.iter().enumerate() {
        std::fs::write(dir.join(format!("f{i}.bin")), noise(*n, i as u64 + 11)).map_err(|e| e.to_string())?;
    }
    let mut vm = boot_shared(image, vec![(dir.clone(), "/host".into(), false)])?;
    vm.run("mkdir /host/copies", STEP)?;
    for (i, n) in sizes.iter().enumerate() {
        let want = sha256_hex(&noise(*n, i as u64 + 11));
        let out = vm.run(&format!("sha256sum /host/f{i}.bin"), STEP)?;
        check(out == format!("{want}  /host/f{i}.bin\n"), &format!("host file f{i} read in Keel"), &out)?;
        vm.run(&format!("cp /host/f{i}.bin /host/copies/f{i}.bin"), STEP)?;
    }
    vm.run("cat /extra_files/wasm/hello.wasm > /host/from-keel.wasm", STEP)?;
    shutdown(vm)?;
    for (i, n) in sizes.iter().enumerate() {
        let back = std::fs::read(dir.join(format!("copies/f{i}.bin"))).map_err(|e| e.to_string())?;
        check(back == noise(*n, i as u64 + 11), &format!("copy of f{i} written by Keel on the host"), "")?;
    }
    let hello = std::fs::read(build::out_dir().join("wasm/hello.wasm")).map_err(|e| e.to_string())?;
    let written = std::fs::read(dir.join("from-keel.wasm")).map_err(|e| e.to_string())?;
    check(hello == written, "a file written in Keel landed on the host", "")
}

fn share_wasm_tools_and_sandbox(image: &Image) -> Result<(), String> {
    let dir = share_dir("tools")?;
    std::fs::write(dir.join("in.txt"), "keel shares folders\nsecond line\n").map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink("/etc/passwd", dir.join("evil")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.join("wt")).map_err(|e| e.to_string())?;
    let mut vm = boot_shared(image, vec![(dir.clone(), "/host".into(), false)])?;
    let out = vm.run("wasm --dir /host::. /extra_files/wasm/upper.wasm in.txt > /host/out.txt; echo $?", STEP)?;
    check(out == "0\n", "upper over the share", &out)?;
    // A program editing files in the share: the WASI checks run in a shared directory.
    vm.run("echo line one > /tmp/in; echo line two >> /tmp/in; echo secret > /host/secret.txt", STEP)?;
    let out = vm.run(
        "wasm --env WT=yes --dir /host/wt::. /extra_files/wasm/wasi-test.wasm alpha 'beta γ' < /tmp/in",
        Duration::from_secs(60),
    )?;
    check(out.contains("wasi-test: 17 ok, 0 failed"), "WASI on a shared folder", &out)?;
    // Symlinks are resolved by Keel: a link to /etc/passwd on the host points nowhere here.
    let out = vm.run("cat /host/evil", STEP)?;
    contains(&out, "no such file or directory")?;
    let out = vm.run("ls /host/.. | cat", STEP)?;
    check(out == "dev\nextra_files\nhost\ntmp\n", ".. from the share is Keel's root", &out)?;
    // Concurrent guests writing different files.
    let jobs: Vec<String> = (1..=4).map(|i| format!("calc '{i}*111' > /host/c{i}.txt &")).collect();
    vm.run(&jobs.join(" "), STEP)?;
    vm.run("wait", Duration::from_secs(60))?;
    shutdown(vm)?;
    let out = std::fs::read_to_string(dir.join("out.txt")).map_err(|e| e.to_string())?;
    check(out == "KEEL SHARES FOLDERS\nSECOND LINE\n", "the result is on the host", &out)?;
    for i in 1..=4 {
        let c = std::fs::read_to_string(dir.join(format!("c{i}.txt"))).map_err(|e| e.to_string())?;
        check(c == format!("{}\n", i * 111), &format!("concurrent guest {i}'s file"), &c)?;
    }
    check(std::fs::read_to_string("/etc/passwd").is_ok(), "host files outside are untouched", "")
}

fn share_read_only_and_vanishing(image: &Image) -> Result<(), String> {
    let ro = share_dir("ro")?;
    std::fs::write(ro.join("keep.txt"), "keep").map_err(|e| e.to_string())?;
    let gone = share_dir("gone")?;
    std::fs::write(gone.join("x.txt"), "x").map_err(|e| e.to_string())?;
    let mut vm = boot_shared(image, vec![(ro.clone(), "/ro".into(), true), (gone.clone(), "/gone".into(), false)])?;
    let out = vm.run("cat /ro/keep.txt; echo; echo no > /ro/keep.txt; rm /ro/keep.txt; touch /ro/new", STEP)?;
    check(
        out == "keep\nkeel: /ro/keep.txt: read-only file system\nrm: cannot remove '/ro/keep.txt': read-only file system\ntouch: cannot touch '/ro/new': read-only file system\n",
        "a read-only share",
        &out,
    )?;
    std::fs::remove_dir_all(&gone).map_err(|e| e.to_string())?;
    let out = vm.run("cat /gone/x.txt; ls /gone; echo y > /gone/y.txt; echo still $?", STEP)?;
    check(
        out.contains("cat: /gone/x.txt:") && out.ends_with("still 1\n"),
        "the host folder vanished: clear errors",
        &out,
    )?;
    let out = vm.run("echo alive", STEP)?;
    check(out == "alive\n", "the kernel goes on", &out)?;
    shutdown(vm)?;
    check(
        std::fs::read_to_string(ro.join("keep.txt")).ok().as_deref() == Some("keep"),
        "the read-only file is intact",
        "",
    )
}

const TESTS: &[(&str, TestFn)] = &[
    ("boot::prompt", boot_to_prompt),
    ("boot::q35", q35_boots_too),
    ("console::screen_and_keyboard", screen_console_and_keyboard),
    ("shell::echo_and_help", echo_and_help),
    ("shell::unknown_command_and_bad_arguments", unknown_command_and_bad_arguments),
    ("shell::line_editing", line_editing_over_serial),
    ("shell::pipes_and_connectors", pipes_and_connectors),
    ("shell::ctrl_c_stops_sleep", ctrl_c_stops_sleep),
    ("time::uptime", uptime_advances),
    ("time::date", date_is_the_host_date),
    ("mem::report", mem_reports_pages_and_heap),
    ("power::exit_status", exit_status_reaches_the_host),
    ("power::reboot", reboot_comes_back),
    ("fs::extra_files_match_the_host", extra_files_match_the_host),
    ("fs::extra_files_are_read_only", extra_files_are_read_only),
    ("fs::tmp_works_like_unix_tmp", tmp_works_like_unix_tmp),
    ("fs::big_extra_files_are_not_copied", big_extra_files_are_not_copied),
    ("shell::source", source_runs_scripts),
    ("shell::environment_and_quoting", crate::suite::shell_environment_and_quoting),
    ("shell::tab_completes_paths", tab_completes_paths),
    ("wasm::calc_session", calc_session),
    ("wasm::wasi_from_rust_std", wasi_from_rust_std),
    ("wasm::exit_codes_and_pipes", exit_codes_and_pipes),
    ("wasm::traps_and_bad_modules", traps_and_bad_modules),
    ("wasm::ctrl_c_stops_a_runaway_guest", ctrl_c_stops_a_runaway_guest),
    ("wasm::long_loops_int_and_float", long_loops_int_and_float),
    ("wasm::poll_on_console_stdin_times_out", crate::suite::poll_on_console_stdin_times_out),
    ("oneshot::command_line", crate::suite::oneshot_command_line),
    ("jobs::twenty_programs_at_once", twenty_programs_at_once),
    ("jobs::kill_one_while_others_finish", kill_one_while_others_finish),
    ("jobs::foreground_ctrl_c_spares_background_jobs", foreground_ctrl_c_spares_background_jobs),
    ("jobs::pipes_stream_with_backpressure", pipes_stream_with_backpressure),
    ("jobs::memory_bombs_cannot_starve_the_kernel", memory_bombs_cannot_starve_the_kernel),
    ("jobs::repeated_programs_do_not_leak", repeated_programs_do_not_leak),
    ("share::round_trip", share_round_trip),
    ("share::wasm_tools_and_sandbox", share_wasm_tools_and_sandbox),
    ("share::read_only_and_vanishing", share_read_only_and_vanishing),
    ("hostile::guests", hostile_guests),
    ("hostile::fuzzed_modules_in_keel", fuzzed_modules_in_keel),
    ("wasi_testsuite::assemblyscript", crate::suite::wasi_testsuite_assemblyscript),
    ("wasi_testsuite::c", crate::suite::wasi_testsuite_c),
    ("wasi_testsuite::rust", crate::suite::wasi_testsuite_rust),
    ("corpus::matches_wasmtime", crate::suite::corpus_matches_wasmtime),
    ("fault::page_fault", fault_page),
    ("fault::general_protection", fault_gpf),
    ("fault::divide", fault_divide),
    ("fault::invalid_opcode", fault_invalid_opcode),
    ("fault::stack_overflow", fault_stack_overflow),
    ("fault::panic", fault_panic),
];

/// Runs the host tests and the boot tests; returns the exit code.
pub fn run_all(args: &[String]) -> Result<i32, String> {
    let mut filter: Option<&str> = None;
    let mut host = true;
    for a in args {
        match a.as_str() {
            "--boot-only" => host = false,
            f if !f.starts_with('-') => filter = Some(f),
            other => return Err(format!("test: unknown option '{other}'")),
        }
    }
    if host {
        println!("== host tests (cargo test --workspace)");
        let st = Command::new("cargo")
            .args(["test", "--workspace", "--locked"])
            .current_dir(build::root())
            .status()
            .map_err(|e| format!("cannot run cargo test: {e}"))?;
        if !st.success() {
            return Err("host tests failed".into());
        }
    }
    println!("== building the boot image");
    let image = build::build_all()?;
    if host {
        println!("== fuzzing on the host (20 s, fixed seed)");
        let failures = crate::fuzz::fuzz_host(20, 2026);
        let saved = crate::fuzz::save(&failures);
        for ((what, _), path) in failures.iter().zip(&saved) {
            println!("fuzz FAILED {what}\n    input kept in {}", path.display());
        }
        if !failures.is_empty() {
            return Err("fuzzing found failures".into());
        }
    }
    build::ensure_qemu()?;
    println!("== boot tests in QEMU ({})", crate::qemu::accel_name(&Options::default()));
    let (mut passed, mut failed) = (0, Vec::new());
    for (name, test) in TESTS {
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let t = Instant::now();
        match test(&image) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:.1}s)", t.elapsed().as_secs_f64());
            }
            Err(e) => {
                println!("test {name} ... FAILED ({:.1}s)\n{}", t.elapsed().as_secs_f64(), indent(&e));
                failed.push(*name);
            }
        }
    }
    println!();
    if !failed.is_empty() {
        println!("failed boot tests: {}", failed.join(", "));
    }
    println!("qemu: {passed} passed, {} failed", failed.len());
    Ok(if failed.is_empty() { 0 } else { 1 })
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}
