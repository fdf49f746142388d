//! `cargo xtask image`: a hybrid bootable image (ISO 9660 that is also a disk image) for BIOS
//! and UEFI machines, made by GRUB's `grub-mkrescue` from Debian's `grub-pc-bin`,
//! `grub-efi-amd64-bin`, `xorriso` and `mtools`. GRUB loads the kernel with Multiboot2 and the
//! `extra_files` archive as a module; the same image boots from a CD, a USB stick or a disk.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{self, status, which, Image};

/// Debian packages the image needs, and the file each provides that we check for.
const PACKAGES: [(&str, &str); 5] = [
    ("grub-common", "/usr/bin/grub-mkrescue"),
    ("grub-pc-bin", "/usr/lib/grub/i386-pc/multiboot2.mod"),
    ("grub-efi-amd64-bin", "/usr/lib/grub/x86_64-efi/multiboot2.mod"),
    ("xorriso", "/usr/bin/xorriso"),
    ("mtools", "/usr/bin/mformat"),
];

/// UEFI firmware for QEMU (Debian's `ovmf`).
pub const OVMF: &str = "/usr/share/ovmf/OVMF.fd";

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"))
}

/// Installs Debian packages as root, or says which are missing.
pub fn ensure_packages(wanted: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = wanted.iter().filter(|(_, f)| !Path::new(f).exists()).map(|(p, _)| *p).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if is_root() && which("apt-get") {
        eprintln!("xtask: installing {}", missing.join(" "));
        status(Command::new("apt-get").arg("update").arg("-qq"))?;
        status(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        return Ok(());
    }
    Err(format!("missing packages; install them with: sudo apt-get install {}", missing.join(" ")))
}

/// Makes sure the image tools are installed.
pub fn ensure_tools() -> Result<(), String> {
    ensure_packages(&PACKAGES)
}

/// Makes sure the UEFI firmware is installed.
pub fn ensure_ovmf() -> Result<(), String> {
    ensure_packages(&[("ovmf", OVMF)])
}

/// GRUB's configuration: no menu, Multiboot2 kernel plus the archive. GRUB sets a graphics
/// mode (VESA on BIOS machines, GOP under UEFI) and hands the framebuffer over: one console
/// path for both firmwares.
fn grub_cfg(cmdline: &str) -> String {
    format!(
        "set timeout=0\n\
         set default=0\n\
         insmod all_video\n\
         menuentry \"Keel\" {{\n\
         \x20   multiboot2 /boot/keel.elf {cmdline}\n\
         \x20   module2 /boot/extra_files.tar extra_files\n\
         \x20   boot\n\
         }}\n"
    )
}

/// Builds the image from a built kernel and archive into `out`.
pub fn make(image: &Image, cmdline: &str, out: &Path) -> Result<(), String> {
    ensure_tools()?;
    let stage = build::out_dir().join("iso");
    let _ = std::fs::remove_dir_all(&stage);
    let boot = stage.join("boot");
    std::fs::create_dir_all(boot.join("grub")).map_err(|e| format!("{}: {e}", boot.display()))?;
    let copy = |from: &Path, to: &str| {
        std::fs::copy(from, boot.join(to)).map(|_| ()).map_err(|e| format!("{}: {e}", from.display()))
    };
    // The kernel without its debug information (28 MiB of it): GRUB loads only the segments,
    // and `addr2line` works on target/keel/keel.elf, which keeps it.
    let stripped = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(&image.kernel)
        .arg(boot.join("keel.elf"))
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        copy(&image.kernel, "keel.elf")?;
    }
    copy(&image.initrd, "extra_files.tar")?;
    std::fs::write(boot.join("grub/grub.cfg"), grub_cfg(cmdline)).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("grub-mkrescue");
    cmd.arg("-o").arg(out).arg(&stage);
    // grub-mkrescue reports through xorriso on stderr even when all is well.
    let output = cmd.output().map_err(|e| format!("cannot run grub-mkrescue: {e}"))?;
    if !output.status.success() {
        return Err(format!("grub-mkrescue failed:\n{}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(())
}

/// Where `cargo xtask image` puts the image by default.
pub fn default_path() -> PathBuf {
    build::out_dir().join("keel.iso")
}

/// `cargo xtask image [-o FILE] [--append ARGS]`.
pub fn command(args: &[String]) -> Result<i32, String> {
    let mut out = default_path();
    let mut append = String::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" | "--output" => out = PathBuf::from(it.next().ok_or("-o needs a file")?),
            "--append" => append = it.next().ok_or("--append needs a value")?.clone(),
            other => return Err(format!("image: unknown option '{other}'")),
        }
    }
    let built = build::build_all()?;
    make(&built, &append, &out)?;
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "xtask: {} ({} MiB): boots on BIOS and UEFI machines, from CD or USB; write it to a stick with\n  \
         sudo dd if={} of=/dev/sdX bs=4M conv=fsync   (sdX: the whole stick, not a partition)",
        out.display(),
        size.div_ceil(1 << 20),
        out.display()
    );
    Ok(0)
}
