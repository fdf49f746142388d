//! disk:: — the virtio disk with littlefs: files survive reboots, WASI programs use it through
//! --dir, power cuts at random moments (QEMU killed) leave every file old or new, damaged images
//! are refused or mounted read-only, a second disk is formatted, mounted and unmounted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::harness::*;
use crate::build::{self, Image};
use crate::disk::read_file;
use crate::qemu::Options;

const DISKTEST: &str = "wasm --dir /data::/data /extra_files/wasm/disktest.wasm";

/// A fresh formatted image of `mib` MiB under target/keel/disks.
fn fresh_image(name: &str, mib: u64) -> Result<PathBuf, String> {
    let dir = build::out_dir().join("disks");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{name}.img"));
    let _ = std::fs::remove_file(&path);
    crate::disk::create(&path, mib << 20)?;
    Ok(path)
}

fn with_disks(disks: &[&Path]) -> Options {
    Options { disks: disks.iter().map(|p| (p.to_path_buf(), false)).collect(), ..Options::default() }
}

pub(super) fn files_survive_a_reboot(image: &Image) -> Result<(), String> {
    let img = fresh_image("reboot", 32)?;
    let host_dir = build::out_dir().join("disks/put");
    let _ = std::fs::remove_dir_all(&host_dir);
    std::fs::create_dir_all(host_dir.join("sub")).map_err(|e| e.to_string())?;
    let from_host = noise(300_000, 5);
    std::fs::write(host_dir.join("sub/from-host.bin"), &from_host).map_err(|e| e.to_string())?;
    crate::disk::command(&["put".into(), img.display().to_string(), host_dir.display().to_string(), "/in".into()])?;

    let mut vm = boot_with(image, &with_disks(&[&img]))?;
    contains(&vm.output(), "disk vda mounted at /data: littlefs")?;
    let out = vm.run("sha256sum /data/in/put/sub/from-host.bin", STEP)?;
    contains(&out, &sha256_hex(&from_host))?;
    let out = vm.run("df", STEP)?;
    check(out.lines().any(|l| l.starts_with("/data") && l.contains("littlefs")), "df lists the disk", &out)?;
    vm.run(
        "echo written in keel > /data/note.txt; mkdir /data/dir; cp /extra_files/wasm/calc.wasm /data/dir/calc.wasm",
        STEP,
    )?;
    let out = vm.run(&format!("{DISKTEST} churn /data 2 > /data/churn.log; echo $?"), Duration::from_secs(60))?;
    check(out == "0\n", "disktest churn on the disk", &out)?;
    let out = vm.run("sync; echo $?", STEP)?;
    check(out == "0\n", "sync", &out)?;
    shutdown(vm)?;

    // On the host, with the same crate.
    let calc = std::fs::read(build::out_dir().join("wasm/calc.wasm")).map_err(|e| e.to_string())?;
    check(read_file(&img, "/dir/calc.wasm")? == Some(calc.clone()), "a copy made in Keel, read on the host", "")?;
    check(read_file(&img, "/note.txt")? == Some(b"written in keel\n".to_vec()), "a file written in Keel", "")?;

    let mut vm = boot_with(image, &with_disks(&[&img]))?;
    let out = vm.run("cat /data/note.txt; sha256sum /data/dir/calc.wasm", STEP)?;
    contains(&out, "written in keel")?;
    contains(&out, &sha256_hex(&calc))?;
    // A program stored on the disk runs from it.
    let out = vm.run("wasm /data/dir/calc.wasm '6*7'", STEP)?;
    check(out == "42\n", "a program run from the disk", &out)?;
    let out = vm.run(&format!("{DISKTEST} verify /data"), Duration::from_secs(60))?;
    contains(&out, "verified 8 files, 0 bad")?;
    contains(&out, "ok f7 v2")?;
    let out = vm.run("fsck vda; echo status=$?", Duration::from_secs(60))?;
    contains(&out, "clean")?;
    contains(&out, "status=0")?;
    shutdown(vm)
}

pub(super) fn wasi_programs_use_it_sandboxed(image: &Image) -> Result<(), String> {
    let img = fresh_image("wasi", 32)?;
    let mut vm = boot_with(image, &with_disks(&[&img]))?;
    vm.run("mkdir /data/wt; echo secret > /data/secret.txt; echo line one > /tmp/in; echo line two >> /tmp/in", STEP)?;
    let out = vm.run(
        "wasm --env WT=yes --dir /data/wt::. /extra_files/wasm/wasi-test.wasm alpha 'beta γ' < /tmp/in",
        Duration::from_secs(60),
    )?;
    // Everything but links, which littlefs does not have: those say so.
    check(out.contains("wasi-test: 14 ok, 3 failed"), "WASI file operations on the disk", &out)?;
    for op in ["hard_link", "symlink", "sandbox_symlink"] {
        check(
            out.lines().any(|l| l.starts_with(&format!("FAIL {op}:")) && l.contains("Unsupported")),
            &format!("{op} is refused as unsupported"),
            &out,
        )?;
    }
    // The sandbox: a program given /data/wt cannot reach /data/secret.txt.
    let out = vm.run("wasm --dir /data/wt::. /extra_files/wasm/upper.wasm ../secret.txt; echo $?", STEP)?;
    check(!out.contains("SECRET"), "a guest escaped its --dir on the disk", &out)?;
    // Running out of space is an error, not damage.
    let out = vm.run(&format!("{DISKTEST} bench /data 40; echo status=$?"), Duration::from_secs(120))?;
    contains(&out, "status=1")?;
    check(out.to_lowercase().contains("space"), "a full disk says so", &out)?;
    vm.run("rm /data/bench.dat", STEP)?;
    let out = vm.run("fsck /data; echo status=$?", Duration::from_secs(60))?;
    contains(&out, "status=0")?;
    shutdown(vm)
}

/// The content of version `v` of disktest's file `k` (its generator, again).
fn disktest_content(k: u32, v: u64) -> Vec<u8> {
    let mut x = ((u64::from(k) << 40) ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let len = match next() % 4 {
        0 => 200 + next() % 600,
        _ => 1000 + next() % 40_000,
    } as usize;
    let mut out = format!("disktest f{k} v{v} len {len}\n").into_bytes();
    out.extend((0..len).map(|_| (next() >> 24) as u8));
    out
}

/// The version of file `k` on the host's copy of the image, checked whole by SHA-256.
fn version_on_image(img: &Path, k: u32) -> Result<Option<u64>, String> {
    let Some(data) = read_file(img, &format!("/f{k}"))? else { return Ok(None) };
    let header = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let header = String::from_utf8_lossy(header).into_owned();
    let v = header
        .split(' ')
        .nth(2)
        .and_then(|w| w.strip_prefix('v'))
        .and_then(|w| w.parse::<u64>().ok())
        .ok_or(format!("f{k}: no version header ({header:?})"))?;
    if sha256_hex(&data) != sha256_hex(&disktest_content(k, v)) {
        return Err(format!("f{k}: {} bytes that are not version {v} (torn or mixed)", data.len()));
    }
    Ok(Some(v))
}

pub(super) fn power_cuts_leave_old_or_new(image: &Image) -> Result<(), String> {
    let cuts: u64 = std::env::var("KEEL_POWER_CUTS").ok().and_then(|s| s.parse().ok()).unwrap_or(50);
    let img = fresh_image("power", 32)?;
    let mut synced = [0u64; 8];
    let mut x: u64 = 0x5eed_0fd1_5c00;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for cut in 0..cuts {
        // Boots again: the filesystem mounts and disktest finds every file whole.
        let mut vm = boot_with(image, &with_disks(&[&img]))?;
        let boot_out = vm.output();
        check(
            boot_out.contains("disk vda mounted at /data") && !boot_out.contains("READ-ONLY"),
            &format!("after cut {cut}, the disk mounts read-write"),
            &boot_out,
        )?;
        if cut > 0 {
            let out = vm.run(&format!("{DISKTEST} verify /data"), Duration::from_secs(60))?;
            check(out.contains(", 0 bad"), &format!("after cut {cut}, disktest verify in Keel"), &out)?;
        }
        // Churn, and pull the plug somewhere in it.
        vm.send_line(&format!("{DISKTEST} churn /data 100000"))?;
        let delay = 150 + rnd() % 1500;
        std::thread::sleep(Duration::from_millis(delay));
        let out = vm.power_cut();
        for line in out.lines() {
            let mut w = line.trim().split(' ');
            if w.next() != Some("synced") {
                continue;
            }
            let k: Option<usize> = w.next().and_then(|f| f.strip_prefix('f')).and_then(|f| f.parse().ok());
            let v: Option<u64> = w.next().and_then(|f| f.strip_prefix('v')).and_then(|f| f.parse().ok());
            if let (Some(k), Some(v)) = (k.filter(|&k| k < 8), v) {
                synced[k] = synced[k].max(v);
            }
        }
        // On the host: every file synced before the cut is that version or the next one, whole.
        for (k, slot) in synced.iter_mut().enumerate() {
            let want = *slot;
            let got = version_on_image(&img, k as u32).map_err(|e| format!("after cut {cut} ({delay} ms): {e}"))?;
            let ok = match got {
                None => want == 0,
                Some(v) => v == want || v == want + 1,
            };
            check(
                ok,
                &format!("after cut {cut} ({delay} ms): f{k} is {got:?}, last synced v{want}"),
                out.lines().rev().take(5).collect::<Vec<_>>().join("\n").as_str(),
            )?;
            // What the disk holds is what counts from here on.
            if let Some(v) = got {
                *slot = v;
            }
        }
    }
    check(synced.iter().all(|&v| v > 0), "the churn made progress before the cuts", &format!("{synced:?}"))
}

/// Overwrites blocks `blocks` (4 KiB each) of `img` with seeded random bytes.
fn damage(img: &Path, blocks: impl Iterator<Item = u64>, seed: u64) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(img).map_err(|e| e.to_string())?;
    for (i, b) in blocks.enumerate() {
        f.write_all_at(&noise(4096, seed + i as u64), b * 4096).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn image_with_files(name: &str) -> Result<PathBuf, String> {
    let img = fresh_image(name, 8)?;
    let dir = build::out_dir().join(format!("disks/{name}-files"));
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["a", "b/c"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
        for i in 0..3 {
            std::fs::write(dir.join(d).join(format!("f{i}")), noise(20_000 * i + 100, i as u64))
                .map_err(|e| e.to_string())?;
        }
    }
    crate::disk::command(&[
        "put".into(),
        img.display().to_string(),
        dir.join("a").display().to_string(),
        dir.join("b").display().to_string(),
        "/".into(),
    ])?;
    Ok(img)
}

pub(super) fn damaged_images_are_refused_or_read_only(image: &Image) -> Result<(), String> {
    // One copy of the superblock pair lost: the other one carries on.
    let img = image_with_files("one-superblock")?;
    damage(&img, [0u64].into_iter(), 1)?;
    let mut vm = boot_with(image, &with_disks(&[&img]))?;
    let boot = vm.output();
    check(
        boot.contains("disk vda mounted at /data") && !boot.contains("READ-ONLY"),
        "one superblock copy is enough",
        &boot,
    )?;
    let out = vm.run("ls /data/b/c", STEP)?;
    contains(&out, "f2")?;
    shutdown(vm)?;

    // Both lost: not mounted, with a reason; fsck says so; no kernel fault.
    let img = image_with_files("no-superblock")?;
    damage(&img, [0u64, 1].into_iter(), 2)?;
    let mut vm = boot_with(image, &with_disks(&[&img]))?;
    let boot = vm.output();
    contains(&boot, "disk vda not mounted: vda: no valid littlefs filesystem")?;
    let out = vm.run("lsblk", STEP)?;
    check(out.lines().any(|l| l.starts_with("vda") && !l.contains("/data")), "lsblk shows vda unmounted", &out)?;
    let out = vm.run("fsck vda; echo status=$?", Duration::from_secs(60))?;
    contains(&out, "DAMAGED")?;
    contains(&out, "status=1")?;
    let out = vm.run("echo x > /data/new.txt; echo $?", STEP)?;
    check(!out.ends_with("0\n"), "nothing lands on an unmounted disk", &out)?;
    shutdown(vm)?;

    // Everything past the root's blocks overwritten: the root still mounts, the check finds
    // the damage, and the disk is mounted read-only.
    let img = image_with_files("no-directories")?;
    damage(&img, 2..2048u64, 3)?;
    let mut vm = boot_with(image, &with_disks(&[&img]))?;
    let boot = vm.output();
    check(
        boot.contains("READ-ONLY: the filesystem is damaged") || boot.contains("disk vda not mounted"),
        "a damaged filesystem is not mounted read-write",
        &boot,
    )?;
    if boot.contains("READ-ONLY") {
        let out = vm.run("touch /data/x; echo $?", STEP)?;
        check(!out.ends_with("0\n"), "writes to a read-only disk fail", &out)?;
        let out = vm.run("fsck /data; echo status=$?", Duration::from_secs(60))?;
        contains(&out, "DAMAGED")?;
        contains(&out, "status=1")?;
    }
    shutdown(vm)?;

    // A file's block list damaged (the first half of the blocks in use after the root pair):
    // the root mounts, the block traversal fails, and the disk is mounted read-only.
    let img = fresh_image("block-list", 8)?;
    let big = build::out_dir().join("disks/block-list-big.bin");
    std::fs::write(&big, noise(200_000, 9)).map_err(|e| e.to_string())?;
    crate::disk::command(&["put".into(), img.display().to_string(), big.display().to_string(), "/".into()])?;
    let bytes = std::fs::read(&img).map_err(|e| e.to_string())?;
    let used: Vec<u64> = (2..bytes.len() / 4096)
        .filter(|b| bytes[b * 4096..(b + 1) * 4096].iter().any(|&x| x != 0))
        .map(|b| b as u64)
        .collect();
    damage(&img, used[..used.len() / 2].iter().copied(), 4)?;
    let mut vm = boot_with(image, &with_disks(&[&img]))?;
    let boot = vm.output();
    contains(&boot, "READ-ONLY: the filesystem is damaged")?;
    let out = vm.run("touch /data/x; echo $?", STEP)?;
    check(!out.ends_with("0\n"), "writes to a read-only disk fail", &out)?;
    let out = vm.run("fsck /data; echo status=$?", Duration::from_secs(60))?;
    contains(&out, "DAMAGED")?;
    contains(&out, "status=1")?;
    shutdown(vm)?;

    // Random blocks, several seeds: the kernel survives whatever the verdict.
    for seed in 0..4u64 {
        let img = image_with_files(&format!("random-{seed}"))?;
        let mut x = seed * 7919 + 1;
        let blocks: Vec<u64> = (0..6)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % 2048
            })
            .collect();
        damage(&img, blocks.into_iter(), seed)?;
        let mut vm = boot_with(image, &with_disks(&[&img]))?;
        vm.run(
            "ls /data /data/a /data/b/c > /tmp/ls.txt; fsck vda; cat /data/a/f1 > /dev/null; echo done",
            Duration::from_secs(60),
        )?;
        let out = vm.run("echo alive", STEP)?;
        check(out == "alive\n", &format!("Keel alive after a damaged disk (seed {seed})"), &vm.output())?;
        check(!vm.output().contains("KERNEL"), "no kernel fault", &vm.output())?;
        shutdown(vm)?;
    }
    Ok(())
}

pub(super) fn second_disk_mkfs_mount_umount(image: &Image) -> Result<(), String> {
    let first = fresh_image("first", 16)?;
    let blank = build::out_dir().join("disks/blank.img");
    let _ = std::fs::remove_file(&blank);
    let f = std::fs::File::create(&blank).map_err(|e| e.to_string())?;
    f.set_len(16 << 20).map_err(|e| e.to_string())?;
    drop(f);
    let mut vm = boot_with(image, &with_disks(&[&first, &blank]))?;
    let out = vm.run("lsblk", STEP)?;
    check(out.lines().any(|l| l.starts_with("vdb") && l.contains("16.0 MiB")), "lsblk lists the second disk", &out)?;
    let out = vm.run("mount vdb /mnt", STEP)?;
    contains(&out, "no valid littlefs filesystem")?;
    contains(&out, "mkfs vdb")?;
    let out = vm.run("mkfs vda", STEP)?;
    contains(&out, "mounted at /data: umount it first")?;
    let out = vm.run("mkfs vdb; mount vdb /mnt", STEP)?;
    contains(&out, "vdb: littlefs created")?;
    contains(&out, "disk vdb mounted at /mnt")?;
    vm.run("cp /extra_files/wasm/hello.wasm /mnt/hello.wasm", STEP)?;
    let out = vm.run("mount", STEP)?;
    contains(&out, "vda on /data type littlefs (rw)")?;
    contains(&out, "vdb on /mnt type littlefs (rw)")?;
    let out = vm.run("umount /mnt; ls /mnt | cat; echo end", STEP)?;
    contains(&out, "disk vdb unmounted from /mnt")?;
    check(!out.contains("hello.wasm"), "the unmounted disk's files are gone from /mnt", &out)?;
    let out = vm.run("mount -r vdb /mnt2; wasm /mnt2/hello.wasm; touch /mnt2/x; echo $?", STEP)?;
    contains(&out, "(read-only)")?;
    contains(&out, "Hello")?;
    check(out.ends_with("1\n"), "a read-only mount refuses writes", &out)?;
    let out = vm.run("umount /data; umount vdb; lsblk", STEP)?;
    check(
        out.lines().filter(|l| l.starts_with("vd")).all(|l| !l.contains(" /")) && out.contains("unmounted from /mnt2"),
        "both unmounted",
        &out,
    )?;
    shutdown(vm)?;
    check(read_file(&blank, "/hello.wasm")?.is_some(), "the file made on vdb is on its image", "")?;
    Ok(())
}
