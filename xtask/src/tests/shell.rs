//! shell:: — the shell as a person types into it.

use super::harness::*;
use super::programs::image_with_programs;
use crate::build::Image;
use crate::qemu::{Options, PROMPT};
use std::time::{Duration, Instant};

pub(super) fn echo_and_help(image: &Image) -> Result<(), String> {
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

pub(super) fn unknown_command_and_bad_arguments(image: &Image) -> Result<(), String> {
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

pub(super) fn line_editing_over_serial(image: &Image) -> Result<(), String> {
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

pub(super) fn pipes_and_connectors(image: &Image) -> Result<(), String> {
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

pub(super) fn ctrl_c_stops_sleep(image: &Image) -> Result<(), String> {
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

pub(super) fn source_runs_scripts(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let out = vm.run("source /extra_files/scripts/demo.sh", STEP)?;
    contains(&out, "Keel demo script\nwritten by demo.sh\n")?;
    let out = vm.run("echo 'echo from tmp; Y=5' > /tmp/s.sh; . /tmp/s.sh; echo $Y", STEP)?;
    check(out == "from tmp\n5\n", "source from /tmp", &out)?;
    shutdown(vm)
}

pub(super) fn tab_completes_paths(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    vm.send(b"cat /extra_files/wel\t\r")?;
    let out = vm.wait_for(NEXT_PROMPT, STEP)?;
    contains(&out, "Welcome to Keel!")?;
    shutdown(vm)
}

/// Programs get the exported variables only; `env -i`, `$'...'` and quotes over lines work.
pub(super) fn shell_environment_and_quoting(image: &Image) -> Result<(), String> {
    let img = image_with_programs(image)?;
    let mut vm = boot(&img)?;
    let lua = "wasm /extra_files/t/lua.wasm -e";
    let show = "\"for _, k in ipairs({'PLAIN', 'EXP', 'HOME', 'PATH', 'ONE'}) do io.write(k, '=', tostring(os.getenv(k)), ' ') end print()\"";
    vm.run("PLAIN=1; export EXP=2", STEP)?;
    let out = vm.run(&format!("{lua} {show}"), STEP)?;
    check(
        out == "PLAIN=nil EXP=2 HOME=/ PATH=/extra_files/bin:/extra_files/wasm ONE=nil \n",
        "exported variables only (HOME, PATH from boot)",
        &out,
    )?;
    let out = vm.run(&format!("ONE=x {lua} {show}; env -i EXP=3 {lua} {show}"), STEP)?;
    check(
        out == "PLAIN=nil EXP=2 HOME=/ PATH=/extra_files/bin:/extra_files/wasm ONE=x \nPLAIN=nil EXP=3 HOME=nil PATH=nil ONE=nil \n",
        "prefix assignment and env -i",
        &out,
    )?;
    let out = vm.run(
        "wasm --env $'c=new\\nline\\ttab' /extra_files/t/lua.wasm -e \"io.write(os.getenv('c'), '|')\"; echo",
        STEP,
    )?;
    check(out == "new\nline\ttab|\n", "a newline reaches a program through $'...'", &out)?;
    // A quote left open continues on the next line, with the continuation prompt.
    vm.send_line("echo 'first")?;
    vm.wait_for("\n> ", STEP)?;
    vm.send_line("second' done")?;
    let out = vm.wait_for(crate::qemu::PROMPT, STEP)?;
    check(out.contains("first\r\nsecond done\r\n"), "a quoted newline", &out)?;
    let out = vm.run("help; help lua; help wasm", STEP)?;
    contains(&out, "  wasm ")?;
    contains(&out, "Programs on $PATH")?;
    contains(&out, " hello ")?;
    contains(&out, "help: no such command or program on $PATH: lua")?;
    contains(&out, "wasm [--dir HOST[::GUEST]]")?;
    let out = vm.run("help hello", STEP)?;
    contains(&out, "hello: a WASI program on $PATH: runs /extra_files/wasm/hello.wasm")?;
    shutdown(vm)
}

/// Ctrl-C stops long built-in work between two steps (status 130, nothing half-printed): a hash
/// of a 96 MiB file, a copy of it, a tree copy. Prints how long the prompt took to come back.
pub(super) fn ctrl_c_stops_builtins(image: &Image) -> Result<(), String> {
    // 1 GiB: /tmp holds 3 x 96 MiB and the start of their copy (long enough to interrupt).
    let mut vm = boot_with(image, &Options { mem: "1G".into(), ..Options::default() })?;
    vm.run(
        "mkdir /tmp/d && cd /tmp/d && bench write big 96 > /dev/null && cp big big2 && cp big big3 && cd /",
        Duration::from_secs(120),
    )?;
    let mut latencies = Vec::new();
    for (cmd, check_after) in [
        ("sha256sum /tmp/d/big /tmp/d/big2", "echo $?"),
        ("cp /tmp/d/big /tmp/copy", "echo $?; stat /tmp/copy; rm /tmp/copy"),
        ("cp -r /tmp/d /tmp/e", "echo $?; stat /tmp/e/big3; rm -r /tmp/e"),
    ] {
        vm.send_line(cmd)?;
        std::thread::sleep(Duration::from_millis(150));
        let t = Instant::now();
        vm.send(b"\x03")?;
        let out = vm.wait_for(PROMPT, Duration::from_secs(30))?;
        latencies.push(t.elapsed().as_millis());
        check(out.contains("^C"), &format!("{cmd}: still running when Ctrl-C came"), &out)?;
        check(!out.contains("  /tmp/d/big") && !out.contains("error"), &format!("{cmd}: stopped quietly"), &out)?;
        let out = vm.run(check_after, STEP)?;
        check(out.lines().next() == Some("130"), &format!("{cmd}: status 130"), &out)?;
        if cmd.starts_with("cp") {
            // Cut short: the copy is smaller than its source, or (tree) not reached yet.
            let size = out
                .split("Size: ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok());
            check(size.is_none_or(|s| s < 96 << 20), &format!("{cmd}: cut short"), &out)?;
        }
    }
    println!("      (prompt back {latencies:?} ms after Ctrl-C)");
    let out = vm.run("echo alive", STEP)?;
    check(out == "alive\n", "the shell answers", &out)?;
    shutdown(vm)
}
