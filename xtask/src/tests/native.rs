//! native:: — static (PIE) x86_64 Linux programs in user mode: the same output as on Linux,
//! many at once, in pipelines with WASM programs, crashes that end only the program, memory
//! that comes back, unsupported calls and dynamic executables refused clearly.

use std::process::Command;
use std::time::{Duration, Instant};

use super::harness::*;
use crate::build::{out_dir, root, Image};
use crate::qemu::{Vm, PROMPT};

fn host_output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Free pages from `mem`.
fn free(vm: &mut Vm) -> Result<u64, String> {
    let mem = vm.run("mem", STEP)?;
    free_pages(&mem).ok_or(format!("no free pages in:\n{mem}"))
}

pub(super) fn same_output_as_on_linux(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let out = vm.run("hello-native one two; echo status $?", STEP)?;
    contains(&out, "argv[0] = hello-native\nargv[1] = one\nargv[2] = two\n")?;
    contains(&out, "42 printf works 3.142\nstatus 0\n")?;
    let out = vm.run("export WHO=keel; /extra_files/bin/hello-native x; echo status $?", STEP)?;
    contains(&out, "argv[0] = /extra_files/bin/hello-native\nargv[1] = x\nWHO=keel\n")?;
    contains(&out, "status 3\n")?;
    let out = vm.run("help hello-native", STEP)?;
    contains(&out, "a native program on $PATH")?;
    // Files, pipes, mmap: every line as on Linux.
    let bin = out_dir().join("bin");
    let host_dir = std::env::temp_dir().join(format!("keel-native-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&host_dir);
    let linux = host_output(Command::new(bin.join("files")).arg(&host_dir))?;
    check(linux.ends_with("files: 0 failures\n"), "files passes on Linux", &linux)?;
    let keel = vm.run("files /tmp/native-files", Duration::from_secs(60))?;
    check(keel == linux, &format!("files prints on Keel what it prints on Linux:\n{linux}"), &keel)?;
    // Lua: the interpreter's tour, run from the same relative path on both.
    let linux =
        host_output(Command::new(bin.join("lua")).arg("lua/selftest.lua").current_dir(root().join("extra_files")))?;
    check(linux.lines().count() > 10, "Lua runs on Linux", &linux)?;
    let keel = vm.run("cd /extra_files; lua lua/selftest.lua; cd /", Duration::from_secs(120))?;
    check(keel == linux, &format!("Lua prints on Keel what it prints on Linux:\n{linux}"), &keel)?;
    // Rust std.
    let linux = host_output(
        Command::new(root().join("apps/native/rust/target/x86_64-unknown-linux-musl/release/rhello"))
            .args(["b", "a", "b"]),
    )?;
    let keel = vm.run("rhello b a b", STEP)?;
    check(keel == linux && keel.contains("b: 2\n"), &format!("rhello as on Linux:\n{linux}"), &keel)?;
    shutdown(vm)
}

pub(super) fn eight_at_once_and_in_pipelines(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    // Eight copies of one program at once: each at its own random address.
    let starts: Vec<String> = (1..=8)
        .map(|i| format!("lua -e 'local s=0 for k=1,{} do s=s+k end print(s)' > /tmp/lua{i} &", 2_000_000 + i))
        .collect();
    let out = vm.run(&starts.join(" "), STEP)?;
    check(out.matches("] ").count() == 8, "8 jobs started", &out)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut most = 0;
    while Instant::now() < deadline {
        let ps = vm.run("ps", STEP)?;
        let n = ps.lines().filter(|l| l.contains("native")).count();
        most = most.max(n);
        if most >= 4 || (most > 0 && n == 0) {
            break;
        }
    }
    check(most >= 2, &format!("several native programs alive at once (saw {most})"), "")?;
    vm.run("wait", Duration::from_secs(180))?;
    for i in 1..=8u64 {
        let n = 2_000_000 + i;
        let out = vm.run(&format!("cat /tmp/lua{i}"), STEP)?;
        check(out == format!("{}\n", n * (n + 1) / 2), &format!("program {i}'s sum"), &out)?;
    }
    // Native and WASM in one pipeline, both ways.
    let out = vm.run("hello-native pipe | upper", STEP)?;
    contains(&out, "ARGV[1] = PIPE\n")?;
    let out = vm.run("pipelat send 20 | pipelat recv", STEP)?;
    contains(&out, " us, 20 messages\n")?;
    let out = vm.run("echo one two one | rhello | wc -l", STEP)?;
    check(out.trim() == "4", "rhello's four lines counted by a WASM wc", &out)?;
    let out =
        vm.run("cat /extra_files/welcome.txt | lua -e 'local n=0 for l in io.lines() do n=n+1 end print(n)'", STEP)?;
    let lines =
        std::fs::read_to_string(root().join("extra_files/welcome.txt")).map_err(|e| e.to_string())?.lines().count();
    check(out == format!("{lines}\n"), "lua counts the lines of a pipe", &out)?;
    shutdown(vm)
}

pub(super) fn crashes_end_only_the_program(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let before = free(&mut vm)?;
    let cases = [
        ("null", "killed by SIGSEGV: page fault reading 0x0 (null pointer) at rip", 139),
        ("text", "killed by SIGSEGV: page fault writing", 139),
        ("ill", "killed by SIGILL: illegal instruction at rip", 132),
        ("div", "killed by SIGFPE: divide error at rip", 136),
        ("stack", "(stack overflow) at rip", 139),
        ("priv", "killed by SIGSEGV: general protection fault", 139),
        ("kernel", "killed by SIGSEGV: page fault reading 0xffffc00000000000", 139),
        ("abort", "killed by SIGABRT", 134),
    ];
    for (kind, says, status) in cases {
        let out = vm.run(&format!("oops {kind}; echo status $?"), STEP)?;
        contains(&out, says)?;
        contains(&out, &format!("status {status}\n"))?;
        check(out.contains("(image+0x") || kind == "abort", "the report places rip in the program", &out)?;
    }
    let out = vm.run("oops syscall", STEP)?;
    contains(&out, "keel: /extra_files/bin/oops: system call 999 is not supported: ENOSYS\nsyscall 999 returned -1\n")?;
    // A memory bomb meets the limit: malloc fails, the program says so and ends normally.
    let out = vm.run("oops bomb; echo status $?", Duration::from_secs(120))?;
    contains(&out, "malloc failed after ")?;
    contains(&out, "memory limit of ")?;
    contains(&out, "status 0\n")?;
    // A dynamically linked program is refused by name.
    let out = vm.run("/extra_files/tests/dynamic-hello; echo status $?", STEP)?;
    contains(&out, "not supported: needs an interpreter (/lib64/ld-linux-x86-64.so.2)")?;
    contains(&out, "status 126\n")?;
    // Every page came back: the kernel is fine and its memory where it was.
    let after = free(&mut vm)?;
    check(after + 16 >= before, &format!("free pages back to the baseline: {before} -> {after}"), "")?;
    let out = vm.run("mem", STEP)?;
    contains(&out, "native:   0 B in pages")?;
    shutdown(vm)
}

pub(super) fn mmap_stress_gives_pages_back(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    // Warm up once (the first run may grow the kernel heap for good).
    vm.run("files /tmp/warm > /dev/null", Duration::from_secs(60))?;
    let before = free(&mut vm)?;
    for i in 0..3 {
        let out = vm.run(&format!("files /tmp/f{i} | grep failures"), Duration::from_secs(60))?;
        contains(&out, "0 failures")?;
    }
    let after = free(&mut vm)?;
    check(
        after + 16 >= before,
        &format!("free pages back to the baseline after mmap stress: {before} -> {after}"),
        "",
    )?;
    shutdown(vm)
}

pub(super) fn kill_ctrl_c_and_trace(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let out = vm.run("oops spin & oops sleep &", STEP)?;
    check(out.contains("[1] ") && out.contains("[2] "), "two jobs", &out)?;
    std::thread::sleep(Duration::from_millis(500));
    let ps = vm.run("ps", STEP)?;
    check(ps.lines().filter(|l| l.contains("native")).count() == 2, "ps shows both as native", &ps)?;
    let out = vm.run("kill %1; kill %2; sleep 0.5", Duration::from_secs(30))?;
    check(out.matches("Done (143)").count() == 2, "both killed (computing and sleeping)", &out)?;
    // Ctrl-C stops a foreground program computing in user mode.
    vm.send_line("oops spin")?;
    std::thread::sleep(Duration::from_millis(500));
    vm.send(b"\x03")?;
    vm.wait_for(PROMPT, Duration::from_secs(10))?;
    let out = vm.run("echo status $?", STEP)?;
    contains(&out, "status 130\n")?;
    // trace: each call with its result.
    let out = vm.run("trace hello-native", STEP)?;
    contains(&out, "arch_prctl(0x1002, ")?;
    contains(&out, "writev(1, ")?;
    contains(&out, "exit_group(0) = ? (exit 0)")?;
    let out = vm.run("trace files /tmp/t | grep failures", Duration::from_secs(60))?;
    for needle in ["open(", "mremap(", "files: 0 failures"] {
        let tail: String = out.lines().rev().take(8).collect::<Vec<_>>().join("\n");
        check(out.contains(needle), &format!("trace of a bigger program shows {needle:?}"), &tail)?;
    }
    let out = vm.run("trace cat /x", STEP)?;
    contains(&out, "not a native program")?;
    shutdown(vm)
}

pub(super) fn hostile_system_calls(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    vm.run("mkdir /tmp/fz; cd /tmp/fz", STEP)?;
    // Random system calls with random arguments (oops fuzz), three seeds: whatever the program
    // does to itself, the kernel answers afterwards and gives every page back.
    for seed in [1, 2, 3] {
        let out = vm.run(
            &format!("oops fuzz 20000 {seed} > /dev/null 2> /dev/null; echo status $?"),
            Duration::from_secs(120),
        )?;
        check(out.contains("status "), &format!("fuzz seed {seed} ended"), &out)?;
    }
    vm.run("cd /", STEP)?;
    let out = vm.run("mem", STEP)?;
    contains(&out, "native:   0 B in pages")?;
    let out = vm.run("hello-native after; echo alive", STEP)?;
    contains(&out, "argv[1] = after\n")?;
    contains(&out, "alive\n")?;
    shutdown(vm)
}
