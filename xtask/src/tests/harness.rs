//! What every boot test uses: booting, checks, shutting down, images with generated files.

use std::time::Duration;

use crate::build::{self, Image};
use crate::qemu::{Options, Vm, PROMPT};

pub(super) type TestFn = fn(&Image) -> Result<(), String>;

/// Timeout of one step (a command typed into the shell).
pub(crate) const STEP: Duration = Duration::from_secs(20);
/// A fresh prompt (a redraw while editing starts with a bare `\r` instead).
pub(super) const NEXT_PROMPT: &str = "\r\nkeel> ";

/// Boots Keel and waits for the first prompt.
pub(crate) fn boot(image: &Image) -> Result<Vm, String> {
    boot_with(image, &Options::default())
}

pub(super) fn boot_with(image: &Image, opts: &Options) -> Result<Vm, String> {
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

/// Deterministic pseudo-random bytes (xorshift), so test files are reproducible.
pub(super) fn noise(len: usize, seed: u64) -> Vec<u8> {
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

pub(super) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds an image whose extra files are a generated test tree (plus an empty directory).
pub(crate) fn image_with_tree<S: AsRef<str>>(
    base: &Image,
    name: &str,
    files: &[(S, Vec<u8>)],
) -> Result<Image, String> {
    let dir = build::out_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    for (path, data) in files {
        let p = dir.join(path.as_ref());
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

/// The heap's used bytes from `mem` output.
pub(super) fn heap_used(mem: &str) -> Option<u64> {
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

pub(super) fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// Free physical pages from `mem` output.
pub(super) fn free_pages(mem: &str) -> Option<u64> {
    mem.lines().find(|l| l.starts_with("physical:"))?.rsplit(", ").next()?.split_whitespace().next()?.parse().ok()
}

/// Checks that the heap in use (from `mem`) is back below `before` plus `slack` bytes.
pub(super) fn check_heap_back(vm: &mut Vm, before: Option<u64>, slack: u64) -> Result<(), String> {
    let mem = vm.run("mem", STEP)?;
    let after = heap_used(&mem);
    check(
        after.is_some() && before.is_some() && after < before.map(|b| b + slack),
        &format!("heap back near {before:?}: {after:?}"),
        &mem,
    )
}
