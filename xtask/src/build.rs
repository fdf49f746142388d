//! Building: the pinned toolchain, the kernel ELF, and the boot files.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a boot needs.
#[derive(Clone)]
pub struct Image {
    pub kernel: PathBuf,
    /// The archive of extra files (`-initrd`).
    pub initrd: PathBuf,
}

/// The repository root (xtask lives one level below it).
pub fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

/// target/keel: where the boot files are put.
pub fn out_dir() -> PathBuf {
    root().join("target").join("keel")
}

pub fn status(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{shown} failed ({s})")),
        Err(e) => Err(format!("cannot run {shown}: {e}")),
    }
}

/// The nightly channel pinned in kernel/rust-toolchain.toml.
pub fn kernel_toolchain() -> Result<String, String> {
    let path = root().join("kernel").join("rust-toolchain.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .filter_map(|l| l.split('"').nth(1))
        .map(String::from)
        .next()
        .ok_or_else(|| format!("{}: no channel", path.display()))
}

/// A `cargo` command on the pinned kernel toolchain, free of the outer cargo's environment.
pub fn kernel_cargo() -> Result<Command, String> {
    let tc = kernel_toolchain()?;
    let mut cmd = Command::new("rustup");
    cmd.args(["run", &tc, "cargo"]);
    for var in [
        "RUSTC",
        "RUSTDOC",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO",
        "RUSTUP_TOOLCHAIN",
    ] {
        cmd.env_remove(var);
    }
    // C inside the kernel (littlefs): no libc, no red zone (interrupts share the stack), no
    // stack protector, absolute addressing like the Rust code; bindgen reads the headers with
    // clang's own freestanding stdint.h.
    cmd.env("CFLAGS_x86_64_keel", "-ffreestanding -fno-stack-protector -mno-red-zone -fno-pic -O2");
    cmd.env("BINDGEN_EXTRA_CLANG_ARGS_x86_64_keel", "-ffreestanding");
    cmd.current_dir(root().join("kernel"));
    Ok(cmd)
}

/// Installs the pinned nightly with rust-src, rustfmt and clippy unless already there
/// (RUSTUP_AUTO_INSTALL=0 on our machines: nothing installs it implicitly).
pub fn ensure_toolchain() -> Result<(), String> {
    let tc = kernel_toolchain()?;
    let sysroot = Command::new("rustup")
        .args(["run", &tc, "rustc", "--print", "sysroot"])
        .env("RUSTUP_AUTO_INSTALL", "0")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let complete = sysroot.as_ref().is_some_and(|s| {
        s.join("lib/rustlib/src/rust/library/core").exists()
            && s.join("bin/cargo-clippy").exists()
            && s.join("bin/rustfmt").exists()
    });
    if !complete {
        eprintln!("xtask: installing toolchain {tc} (rust-src, rustfmt, clippy)");
        status(Command::new("rustup").args([
            "toolchain",
            "install",
            &tc,
            "--profile",
            "minimal",
            "--component",
            "rust-src,rustfmt,clippy",
        ]))?;
    }
    let has_musl = sysroot.as_ref().is_some_and(|s| s.join("lib/rustlib").join(crate::native::RUST_TARGET).exists());
    if !has_musl {
        eprintln!("xtask: adding the {} target to {tc}", crate::native::RUST_TARGET);
        status(Command::new("rustup").args(["target", "add", crate::native::RUST_TARGET, "--toolchain", &tc]))?;
    }
    let has_wasm = sysroot.as_ref().is_some_and(|s| s.join("lib/rustlib/wasm32-wasip1").exists());
    if !has_wasm {
        eprintln!("xtask: adding the wasm32-wasip1 target to {tc}");
        status(Command::new("rustup").args(["target", "add", "wasm32-wasip1", "--toolchain", &tc]))?;
    }
    Ok(())
}

/// Makes sure clang with wasi-libc is there for the C programs (apt-get as root). Returns false
/// (after saying why) where it cannot be installed: the C programs are then left out.
pub fn ensure_clang() -> bool {
    let sysroot = Path::new("/usr/include/wasm32-wasi");
    if which("clang") && sysroot.exists() {
        return true;
    }
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    if is_root && which("apt-get") {
        eprintln!("xtask: installing clang and wasi-libc for the C programs");
        let ok = status(Command::new("apt-get").arg("update").arg("-qq")).is_ok()
            && status(
                Command::new("apt-get")
                    .args([
                        "install",
                        "-y",
                        "-qq",
                        "--no-install-recommends",
                        "clang",
                        "lld",
                        "wasi-libc",
                        "libclang-rt-dev-wasm32",
                    ])
                    .env("DEBIAN_FRONTEND", "noninteractive"),
            )
            .is_ok();
        if ok {
            return true;
        }
    }
    eprintln!("xtask: warning: clang/wasi-libc missing (sudo apt-get install clang lld wasi-libc libclang-rt-dev-wasm32): C programs left out");
    false
}

/// Builds the WASI programs in apps/ into target/keel/wasm/NAME.wasm.
pub fn build_apps() -> Result<PathBuf, String> {
    ensure_toolchain()?;
    let apps = root().join("apps");
    let out = out_dir().join("wasm");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut cargo = kernel_cargo()?;
    cargo.current_dir(&apps).args(["build", "--release", "--locked", "--target", "wasm32-wasip1"]);
    if quiet() {
        cargo.arg("-q");
    }
    status(&mut cargo)?;
    let built = apps.join("target/wasm32-wasip1/release");
    for entry in std::fs::read_dir(&built).map_err(|e| format!("{}: {e}", built.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            if let Some(name) = path.file_name() {
                copy_if_changed(&path, &out.join(name))?;
            }
        }
    }
    let c_dirs = [apps.join("c"), apps.join("hostile")];
    if ensure_clang() {
        for entry in c_dirs.iter().filter_map(|d| std::fs::read_dir(d).ok()).flatten() {
            let src = entry.map_err(|e| e.to_string())?.path();
            if src.extension().is_none_or(|e| e != "c") {
                continue;
            }
            let stem = src.file_stem().and_then(|s| s.to_str()).unwrap_or("prog");
            let dest = out.join(format!("{stem}.wasm"));
            let fresh = match (std::fs::metadata(&src), std::fs::metadata(&dest)) {
                (Ok(s), Ok(d)) => s.modified().ok() < d.modified().ok(),
                _ => false,
            };
            if !fresh {
                status(
                    Command::new("clang").args(["--target=wasm32-wasi", "-O2", "-Wall", "-o"]).arg(&dest).arg(&src),
                )?;
            }
        }
    }
    Ok(out)
}

pub fn copy_if_changed(from: &Path, to: &Path) -> Result<(), String> {
    let data = std::fs::read(from).map_err(|e| format!("{}: {e}", from.display()))?;
    if std::fs::read(to).ok().as_deref() != Some(&data[..]) {
        std::fs::write(to, &data).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    Ok(())
}

/// Makes sure QEMU is installed: with apt-get when running as root, else says how.
pub fn ensure_qemu() -> Result<(), String> {
    if which("qemu-system-x86_64") {
        return Ok(());
    }
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    if is_root && which("apt-get") {
        eprintln!("xtask: installing QEMU (apt-get install qemu-system-x86)");
        status(Command::new("apt-get").arg("update").arg("-qq"))?;
        status(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends", "qemu-system-x86"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        return Ok(());
    }
    Err("qemu-system-x86_64 not found; install it with: sudo apt-get install qemu-system-x86".into())
}

pub fn which(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

/// `cargo xtask setup`.
pub fn setup() -> Result<(), String> {
    ensure_toolchain()?;
    ensure_qemu()?;
    // The bootable image (GRUB for BIOS and UEFI, xorriso, mtools) and the UEFI firmware to
    // boot it in QEMU.
    crate::image::ensure_tools()?;
    crate::image::ensure_ovmf()?;
    // musl for the native programs (apps/native).
    crate::native::ensure_musl()?;
    // libclang for bindgen (littlefs' bindings, in the kernel and the host tests); gcc, which
    // compiles littlefs itself, is on every machine we build on.
    if !Path::new("/usr/lib/llvm-14/lib/libclang.so.1").exists() && !which("clang") {
        crate::image::ensure_packages(&[("libclang1", "/usr/lib/x86_64-linux-gnu/libclang-14.so.1")])?;
    }
    // QEMU's window for `--gui` (GTK: a large download) only where there is a desktop to show
    // it; `run --gui` installs it when first asked, or says how.
    if crate::qemu::has_desktop() {
        crate::image::ensure_packages(&[crate::qemu::GUI_PACKAGE])?;
    }
    Ok(())
}

/// Builds the kernel (release) and copies it to target/keel/keel.elf (with the lock-order
/// checks when KEEL_LOCK_ORDER=1 is set: `kernel/src/sched/README.md`).
pub fn build_kernel() -> Result<PathBuf, String> {
    let checked = std::env::var("KEEL_LOCK_ORDER").is_ok_and(|v| v == "1");
    build_kernel_as(if checked { &["lock-order"] } else { &[] }, "keel.elf")
}

/// Builds the kernel with `features` and copies it to target/keel/NAME.
pub fn build_kernel_as(features: &[&str], name: &str) -> Result<PathBuf, String> {
    ensure_toolchain()?;
    let mut cargo = kernel_cargo()?;
    cargo.args(["build", "--release", "--locked"]);
    if !features.is_empty() {
        cargo.args(["--features", &features.join(",")]);
    }
    // The key the kernel checks artefacts with (baked into the image by kernel/build.rs).
    cargo.env("KEEL_AOT_KEY", crate::aot::key_hex()?);
    if quiet() {
        cargo.arg("-q");
    }
    status(&mut cargo)?;
    let built = root().join("kernel/target/x86_64-keel/release/keel");
    let out = out_dir();
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let dest = out.join(name);
    std::fs::copy(&built, &dest).map_err(|e| format!("copy {}: {e}", built.display()))?;
    Ok(dest)
}

/// Everything a boot needs.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Builds without cargo's progress lines (`cargo xtask wasm`: stderr belongs to the program).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn build_all() -> Result<Image, String> {
    let kernel = build_kernel()?;
    let apps = build_apps()?;
    // Every bundled module gets its artefact for the compiled tier, beside it.
    let mut pairs: Vec<(PathBuf, PathBuf)> =
        wasm_files(&apps)?.into_iter().map(|p| (p.clone(), crate::aot::artefact_of(&p))).collect();
    // And every module among the extra files: its artefact is packed beside it in the archive.
    let extra = root().join("extra_files");
    let staged = out_dir().join("extra-aot");
    let mut extra_artefacts: Vec<(PathBuf, PathBuf)> = Vec::new();
    for module in wasm_files(&extra)? {
        let rel = module.strip_prefix(&extra).map_err(|e| e.to_string())?.to_path_buf();
        let art = crate::aot::artefact_of(&rel);
        if extra.join(&art).exists() {
            continue; // one shipped by hand is packed as it is (and checked in Keel)
        }
        let dest = staged.join(&art);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        pairs.push((module, dest.clone()));
        extra_artefacts.push((art, dest));
    }
    crate::aot::compile(&pairs)?;
    // Native programs (apps/native) as /extra_files/bin.
    extra_artefacts.extend(crate::native::build()?);
    let initrd = out_dir().join("files.tar");
    pack_with(&extra, Some(&apps), &extra_artefacts, &initrd)?;
    // Marks the moment every input was built; see `fresh_image`.
    std::fs::write(out_dir().join(".built"), b"").map_err(|e| format!("{}: {e}", out_dir().display()))?;
    Ok(Image { kernel, initrd })
}

/// The newest modification time of the build's inputs (sources, manifests, lock files, extra
/// files), skipping build output.
fn newest_input() -> Option<std::time::SystemTime> {
    fn walk(p: &Path, newest: &mut std::time::SystemTime) -> Option<()> {
        let meta = std::fs::symlink_metadata(p).ok()?;
        *newest = (*newest).max(meta.modified().ok()?);
        if meta.is_dir() {
            for e in std::fs::read_dir(p).ok()? {
                let e = e.ok()?;
                if e.file_name() != "target" {
                    walk(&e.path(), newest)?;
                }
            }
        }
        Some(())
    }
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for part in ["kernel", "crates", "apps", "extra_files", "xtask/aot", "Cargo.lock", "Cargo.toml"] {
        let p = root().join(part);
        if p.exists() {
            walk(&p, &mut newest)?;
        }
    }
    Some(newest)
}

/// The boot image as last built, when no input changed since (a few ms instead of two cargo
/// runs: `cargo xtask wasm` starts a VM per program). None: build it.
pub fn fresh_image() -> Option<Image> {
    let built = std::fs::metadata(out_dir().join(".built")).ok()?.modified().ok()?;
    let image = Image { kernel: out_dir().join("keel.elf"), initrd: out_dir().join("files.tar") };
    (image.kernel.exists() && image.initrd.exists() && newest_input()? < built).then_some(image)
}

/// Packs every file and directory below `dir` into a tar archive at `out` (recursively, empty
/// directories kept, any name, long names as GNU extensions), adding the built programs in
/// `apps` under `wasm/`. Symlinks and unreadable files are errors: nothing is silently left out.
/// The archive is rewritten only when it changes.
pub fn pack(dir: &Path, apps: Option<&Path>, out: &Path) -> Result<(), String> {
    pack_with(dir, apps, &[], out)
}

/// The `.wasm` files below `dir`, recursively (none if it does not exist).
pub fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.is_dir() {
            out.extend(wasm_files(&p)?);
        } else if p.extension().is_some_and(|x| x == "wasm") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Like [`pack`], adding `extra` files: (path in the archive, file on the host).
pub fn pack_with(dir: &Path, apps: Option<&Path>, extra: &[(PathBuf, PathBuf)], out: &Path) -> Result<(), String> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Complete);
    if dir.exists() {
        add_tree(&mut builder, dir, Path::new(""))?;
    }
    for (path, file) in extra {
        let mut f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
        builder.append_file(path, &mut f).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    if let Some(apps) = apps {
        let wasm_dir = dir.join("wasm");
        if !wasm_dir.exists() {
            builder.append_dir("wasm", apps).map_err(|e| format!("{}: {e}", apps.display()))?;
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(apps)
            .map_err(|e| format!("{}: {e}", apps.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm" || e == keel_artefact::EXTENSION))
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().and_then(|n| n.to_str()).ok_or("bad program name")?.to_string();
            if wasm_dir.join(&name).exists() {
                return Err(format!("extra_files/wasm/{name} has the name of a program built from apps/: rename one"));
            }
            let mut f = std::fs::File::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            builder.append_file(Path::new("wasm").join(&name), &mut f).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    write_archive(builder, out)
}

fn write_archive(builder: tar::Builder<Vec<u8>>, out: &Path) -> Result<(), String> {
    let data = builder.into_inner().map_err(|e| format!("{}: {e}", out.display()))?;
    if std::fs::read(out).ok().as_deref() != Some(&data[..]) {
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(out, &data).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    Ok(())
}

fn add_tree(builder: &mut tar::Builder<Vec<u8>>, dir: &Path, rel: &Path) -> Result<(), String> {
    let here = dir.join(rel);
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(&here)
        .map_err(|e| format!("{}: cannot read directory: {e}", here.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", here.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let rel_path = rel.join(&name);
        let full = dir.join(&rel_path);
        if name.to_str().is_none() {
            return Err(format!("{}: file name is not UTF-8", full.display()));
        }
        let meta = std::fs::symlink_metadata(&full).map_err(|e| format!("{}: {e}", full.display()))?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            return Err(format!(
                "{}: symlinks are not supported in extra_files (copy the file instead)",
                full.display()
            ));
        } else if ft.is_dir() {
            builder.append_dir(&rel_path, &full).map_err(|e| format!("{}: {e}", full.display()))?;
            add_tree(builder, dir, &rel_path)?;
        } else if ft.is_file() {
            let mut f = std::fs::File::open(&full).map_err(|e| format!("{}: cannot read: {e}", full.display()))?;
            builder.append_file(&rel_path, &mut f).map_err(|e| format!("{}: cannot read: {e}", full.display()))?;
        } else {
            return Err(format!("{}: not a regular file or directory", full.display()));
        }
    }
    Ok(())
}

/// rustfmt and clippy, on the host crates and on the kernel.
pub fn lint() -> Result<(), String> {
    ensure_toolchain()?;
    let root = root();
    let host = || -> Result<Command, String> {
        let mut c = kernel_cargo()?;
        c.current_dir(&root).env("CARGO_TARGET_DIR", root.join("target/lint"));
        Ok(c)
    };
    status(host()?.args(["fmt", "--all", "--check"]))?;
    status(host()?.args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]))?;
    // keel-wasm's compiled tier (a feature only the nightly builds enable).
    status(host()?.args([
        "clippy",
        "-p",
        "keel-wasm",
        "--features",
        "compiled",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    status(kernel_cargo()?.args(["fmt", "--check"]))?;
    status(kernel_cargo()?.args(["clippy", "--release", "--locked", "--", "-D", "warnings"]))?;
    // The precompiler (its own workspace) and keel-wasm with the compiled tier it enables.
    let aot = || -> Result<Command, String> {
        let mut c = kernel_cargo()?;
        c.current_dir(root.join("xtask/aot"));
        Ok(c)
    };
    status(aot()?.args(["fmt", "--check"]))?;
    status(aot()?.args(["clippy", "--release", "--all-targets", "--locked", "--", "-D", "warnings"]))?;
    Ok(())
}
