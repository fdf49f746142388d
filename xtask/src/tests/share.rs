//! share:: — host folders over 9P: round trips, WASM tools, sandbox, read-only, vanishing.

use super::harness::*;
use crate::build::{self, Image};
use crate::qemu::{Options, Vm};
use std::time::Duration;

/// A fresh host folder for a share test.
pub(super) fn share_dir(name: &str) -> Result<std::path::PathBuf, String> {
    let dir = build::out_dir().join("shares").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

pub(super) fn boot_shared(image: &Image, shares: Vec<(std::path::PathBuf, String, bool)>) -> Result<Vm, String> {
    boot_with(image, &Options { shares, ..Options::default() })
}

pub(super) fn share_round_trip(image: &Image) -> Result<(), String> {
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

pub(super) fn share_wasm_tools_and_sandbox(image: &Image) -> Result<(), String> {
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

pub(super) fn share_read_only_and_vanishing(image: &Image) -> Result<(), String> {
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
