//! Building: the pinned toolchain, the kernel ELF, and the boot files.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a boot needs.
pub struct Image {
    pub kernel: PathBuf,
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

fn status(cmd: &mut Command) -> Result<(), String> {
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
    Ok(())
}

/// Makes sure QEMU is installed: with apt-get when running as root, else says how.
pub fn ensure_qemu() -> Result<(), String> {
    if which("qemu-system-x86_64") {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if is_root && which("apt-get") {
        eprintln!("xtask: installing QEMU (apt-get install qemu-system-x86)");
        status(Command::new("apt-get").arg("update").arg("-qq"))?;
        status(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "qemu-system-x86",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        return Ok(());
    }
    Err(
        "qemu-system-x86_64 not found; install it with: sudo apt-get install qemu-system-x86"
            .into(),
    )
}

pub fn which(prog: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

/// `cargo xtask setup`.
pub fn setup() -> Result<(), String> {
    ensure_toolchain()?;
    ensure_qemu()
}

/// Builds the kernel (release) and copies it to target/keel/keel.elf.
pub fn build_kernel() -> Result<PathBuf, String> {
    ensure_toolchain()?;
    status(kernel_cargo()?.args(["build", "--release", "--locked"]))?;
    let built = root().join("kernel/target/x86_64-keel/release/keel");
    let out = out_dir();
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let dest = out.join("keel.elf");
    std::fs::copy(&built, &dest).map_err(|e| format!("copy {}: {e}", built.display()))?;
    Ok(dest)
}

/// Everything a boot needs.
pub fn build_all() -> Result<Image, String> {
    let kernel = build_kernel()?;
    Ok(Image { kernel })
}

/// rustfmt and clippy, on the host crates and on the kernel.
pub fn lint() -> Result<(), String> {
    ensure_toolchain()?;
    let root = root();
    status(
        Command::new("cargo")
            .args(["fmt", "--all", "--check"])
            .current_dir(&root),
    )?;
    status(
        Command::new("cargo")
            .args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ])
            .current_dir(&root),
    )?;
    status(kernel_cargo()?.args(["fmt", "--check"]))?;
    status(kernel_cargo()?.args(["clippy", "--release", "--locked", "--", "-D", "warnings"]))?;
    Ok(())
}
