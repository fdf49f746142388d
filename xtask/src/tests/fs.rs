//! fs:: — the boot archive, /tmp and the memory filesystems.

use super::harness::*;
use crate::build::Image;
use crate::qemu::{Options, PROMPT};
use std::time::Duration;

/// Files of the test tree: (relative path, contents).
pub(super) fn test_tree() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("top.txt", b"top level\n".to_vec()),
        ("nested/deeper/deepest/leaf.txt", b"a leaf\n".to_vec()),
        ("with space/file with spaces.txt", b"spaces are fine\n".to_vec()),
        ("unicode/héllo wörld ✓.txt", "unicode ✓\n".as_bytes().to_vec()),
        ("bin/random-5MiB.bin", noise(5 << 20, 42)),
        ("bin/empty-file", Vec::new()),
    ]
}

pub(super) fn extra_files_match_the_host(image: &Image) -> Result<(), String> {
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

pub(super) fn extra_files_are_read_only(image: &Image) -> Result<(), String> {
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

pub(super) fn tmp_works_like_unix_tmp(image: &Image) -> Result<(), String> {
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

pub(super) fn big_extra_files_are_not_copied(image: &Image) -> Result<(), String> {
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

/// Paths as deep as the limit allows (4 KB, 2000 components) are handled in linear time and
/// without recursion: mkdir -p, stat, cp -r and rm -r of such a tree answer at once and the
/// kernel survives (rm -r used to overflow the shell's stack; mkdir -p took 20 s). Past the
/// limits: ENAMETOOLONG and ELOOP.
pub(super) fn deep_paths(image: &Image) -> Result<(), String> {
    let mut vm = boot(image)?;
    let deep = format!("/tmp/p{}", "/d".repeat(1999));
    vm.run(&format!("P={deep}"), STEP)?;
    let out = vm.run("mkdir -p $P && stat $P > /dev/null && echo made", STEP)?;
    check(out == "made\n", "mkdir -p and stat of a 2000-component path", &out)?;
    let out = vm.run("cp -r /tmp/p /tmp/c && rm -r /tmp/p && rm -r /tmp/c && ls /tmp | cat; echo gone", STEP)?;
    check(out == "gone\n", "cp -r and rm -r of a 2000-deep tree", &out)?;
    let out = vm.run("mkdir -p /tmp//q//./r/ && ls /tmp/q | cat", STEP)?;
    check(out == "r\n", "doubled slashes and dots", &out)?;
    // Lines stop at 4096 characters (as a Linux terminal's): build the 4.2 KB path from two.
    vm.run(&format!("A=/tmp/x{}", "/y".repeat(1050)), STEP)?;
    let out = vm.run(&format!("B={}; mkdir -p $A$B", "/y".repeat(1050)), STEP)?;
    contains(&out, "file name too long")?;
    let out = vm.run("ln -s /tmp/loop /tmp/loop; cat /tmp/loop; mkdir -p /tmp/loop/x", STEP)?;
    check(out.matches("too many levels of symbolic links").count() == 2, "symlink loops are ELOOP", &out)?;
    let out = vm.run("echo alive", STEP)?;
    check(out == "alive\n", "the shell answers", &out)?;
    shutdown(vm)
}
