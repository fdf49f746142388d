//! Booting like a PC: the bootable image under SeaBIOS and OVMF (GRUB, Multiboot2, q35 with
//! PCI), the framebuffer console UEFI needs, a machine without a PIT, and virtio-mmio devices
//! announced on the command line the way Firecracker and Cloud Hypervisor announce them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keel_term::pixels::{glyph, Format, Painter, Surface, CELL_H, CELL_W};

use super::harness::{boot_with, check, contains, shutdown, STEP};
use super::share::share_dir;
use crate::build::{self, Image};
use crate::qemu::{Boot, Firmware, Monitor, Options, Vm};

/// Boots take longer through firmware (OVMF under emulation: several seconds).
const FIRMWARE_BOOT: Duration = Duration::from_secs(120);

fn image_for(image: &Image, name: &str) -> Result<PathBuf, String> {
    let iso = build::out_dir().join(format!("{name}.iso"));
    crate::image::make(image, "", &iso)?;
    Ok(iso)
}

fn boot_image(image: &Image, opts: Options) -> Result<Vm, String> {
    let mut vm = Vm::boot(image, &opts)?;
    vm.wait_for(crate::qemu::PROMPT, FIRMWARE_BOOT)?;
    Ok(vm)
}

fn monitor_socket(name: &str) -> PathBuf {
    let sock = build::out_dir().join(format!("{name}-monitor.sock"));
    let _ = std::fs::remove_file(&sock);
    sock
}

/// Powers off with `shutdown` and checks ACPI did it (not the debug-exit fallback).
fn acpi_power_off(mut vm: Vm) -> Result<(), String> {
    vm.send_line("shutdown")?;
    let st = vm.wait_exit(STEP)?;
    let out = vm.output();
    check(st == 0, &format!("shutdown exited with {st}"), &out)?;
    contains(&out, "power off: ACPI S5")?;
    check(!out.contains("debug-exit"), "the machine turned off through ACPI", &out)
}

/// What a program, a share and the machine report must show on any PC-like boot.
fn works_like_a_pc(vm: &mut Vm, share: &Path) -> Result<(), String> {
    let boot_log = vm.output();
    contains(&boot_log, "booted by Multiboot2")?;
    contains(&boot_log, "virtio over virtio-pci")?;
    // Nothing that only microvm has: no MMIO window, no GED.
    check(!boot_log.contains("microvm"), "no microvm device used", &boot_log)?;
    let out = vm.run("lspci", STEP)?;
    contains(&out, "virtio 9p")?;
    contains(&out, "host bridge")?;
    let out = vm.run("wasm /extra_files/wasm/hello.wasm; echo status $?", STEP)?;
    contains(&out, "status 0")?;
    check(out.lines().count() >= 2, "hello printed something", &out)?;
    let out = vm.run("cat /host/from-host.txt", STEP)?;
    check(out == "written on the host\n", "host file read over virtio-pci", &out)?;
    vm.run("echo written in Keel > /host/from-keel.txt", STEP)?;
    let back = std::fs::read_to_string(share.join("from-keel.txt")).map_err(|e| e.to_string())?;
    check(back == "written in Keel\n", "Keel's file landed on the host", &back)
}

fn shared_folder(name: &str) -> Result<PathBuf, String> {
    let dir = share_dir(name)?;
    std::fs::write(dir.join("from-host.txt"), "written on the host\n").map_err(|e| e.to_string())?;
    Ok(dir)
}

pub(super) fn image_boots_under_bios(image: &Image) -> Result<(), String> {
    image_boots(image, Firmware::Bios, "bios")
}

pub(super) fn image_boots_under_uefi(image: &Image) -> Result<(), String> {
    crate::image::ensure_ovmf()?;
    image_boots(image, Firmware::Uefi, "uefi")
}

/// The bootable image on q35 through `firmware`, with 2 CPUs: both started, a program, a share
/// over virtio-pci, the shell on the framebuffer with the keyboard, ACPI power-off.
fn image_boots(image: &Image, firmware: Firmware, name: &str) -> Result<(), String> {
    let iso = image_for(image, &format!("test-{name}"))?;
    let dir = shared_folder(name)?;
    let sock = monitor_socket(name);
    let opts = Options {
        boot: Boot::Image(iso),
        firmware,
        shares: vec![(dir.clone(), "/host".into(), false)],
        extra: vec!["-vga".into(), "std".into(), "-monitor".into(), format!("unix:{},server,nowait", sock.display())],
        cpus: 2,
        ..Options::default()
    };
    let mut vm = boot_image(image, opts)?;
    contains(&vm.output(), "screen: framebuffer console")?;
    // The firmware parked the second CPU; Keel started it again from its own trampoline.
    contains(&vm.output(), "SMP: 2 CPUs online")?;
    let out = vm.run("wasm --cpu 1 /extra_files/wasm/hello.wasm", STEP)?;
    contains(&out, "Hello, world!")?;
    works_like_a_pc(&mut vm, &dir)?;
    screen_shows_the_shell(&mut vm, &sock, name)?;
    acpi_power_off(vm)
}

/// The shell is drawn on the framebuffer GRUB handed over (UEFI has no text mode; on BIOS
/// machines GRUB sets a VESA mode): read it back from a screenshot, cell by cell, with the
/// kernel's font.
fn screen_shows_the_shell(vm: &mut Vm, sock: &Path, name: &str) -> Result<(), String> {
    let mut mon = Monitor::connect(sock)?;
    // Typed on the PS/2 keyboard, which the firmware left working.
    mon.type_text("echo On The Framebuffer\n")?;
    let out = vm.wait_for(super::harness::NEXT_PROMPT, STEP)?;
    contains(&out, "On The Framebuffer")?;
    let shot = build::out_dir().join(format!("test-{name}-screen.ppm"));
    let screen = wait_screen(
        || {
            let _ = std::fs::remove_file(&shot);
            mon.command(&format!("screendump {}", shot.display()))?;
            read_screen(&shot)
        },
        "keel> echo On The Framebuffer\nOn The Framebuffer",
    )?;
    contains(&screen, "On The Framebuffer")
}

/// Polls `read` until the screen shows `want` (the screen trails the serial output a little).
fn wait_screen(mut read: impl FnMut() -> Result<String, String>, want: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let screen = read()?;
        if screen.contains(want) || Instant::now() > deadline {
            return check(screen.contains(want), &format!("screen shows {want:?}"), &screen).map(|_| screen);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads the text back from a QEMU screendump (binary PPM) of the framebuffer console: each
/// cell is compared with every printable glyph as the kernel draws it.
fn read_screen(ppm: &Path) -> Result<String, String> {
    let data = std::fs::read(ppm).map_err(|e| format!("{}: {e}", ppm.display()))?;
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while at < data.len() && data[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while at < data.len() && !data[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&data[start..at]).into_owned());
    }
    at += 1;
    let (w, h): (usize, usize) = match (fields[0].as_str(), fields[1].parse(), fields[2].parse()) {
        ("P6", Ok(w), Ok(h)) => (w, h),
        _ => return Err(format!("{}: not a binary PPM", ppm.display())),
    };
    let pixels = data.get(at..at + w * h * 3).ok_or("short PPM")?;
    let fmt = Format { red: (16, 8), green: (8, 8), blue: (0, 8) };
    let painter = Painter::new(Surface { width: w, height: h, pitch: w * 4, bytes_per_pixel: 4, format: fmt })
        .ok_or(format!("a {w}x{h} screen is too small for the console"))?;
    let (cw, ch) = painter.cell_size();
    let scale = cw / CELL_W;
    let (left, top) = painter.origin();
    let lit = |x: usize, y: usize| pixels[(y * w + x) * 3..][..3].iter().any(|&c| c > 0x40);
    let mut text = String::new();
    for row in 0..keel_term::ROWS {
        let mut line = String::new();
        for col in 0..keel_term::COLS {
            let (x0, y0) = (left + col * cw, top + row * ch);
            let mut bits = [0u8; 8];
            for (gy, b) in bits.iter_mut().enumerate() {
                for gx in 0..8 {
                    if lit(x0 + gx * scale, y0 + gy * 2 * scale) {
                        *b |= 1 << gx;
                    }
                }
            }
            let c = (0x20u8..0x7f).find(|&b| glyph(b) == bits).map_or('?', char::from);
            line.push(c);
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    debug_assert_eq!(ch, CELL_H * scale);
    Ok(text)
}

pub(super) fn no_pit_needed(image: &Image) -> Result<(), String> {
    // q35 without the 8254: the tick comes from the local APIC, calibrated with the HPET.
    let mut vm = boot_with(image, &Options { machine: Some("q35,pit=off".into()), ..Options::default() })?;
    contains(&vm.output(), "tick from the local APIC, TSC calibrated against HPET")?;
    let parse = |s: &str| -> Option<f64> { s.trim().strip_prefix("up ")?.strip_suffix('s')?.parse().ok() };
    let a = vm.run("uptime", STEP)?;
    let host = Instant::now();
    vm.run("sleep 1", STEP)?;
    let b = vm.run("uptime", STEP)?;
    let elapsed = host.elapsed().as_secs_f64();
    let (t1, t2) = (parse(&a).ok_or(a.clone())?, parse(&b).ok_or(b.clone())?);
    // Keel's clock agrees with the host's about the sleep (generous bounds: a shared machine).
    check(
        t2 - t1 >= 1.0 && t2 - t1 <= elapsed + 0.5,
        &format!("Keel counted {:.2}s, the host {elapsed:.2}s", t2 - t1),
        &b,
    )?;
    shutdown(vm)
}

pub(super) fn announced_mmio_devices(image: &Image) -> Result<(), String> {
    // First boot: no announcement, so Keel probes microvm's fixed window and says where the
    // share's device is.
    let dir = shared_folder("announced")?;
    let shares = vec![(dir.clone(), "/host".to_string(), false)];
    let plain = Options { shares: shares.clone(), ..Options::default() };
    let vm = boot_with(image, &plain)?;
    let log = vm.output();
    contains(&log, "virtio over virtio-mmio (microvm window)")?;
    let addr = log
        .lines()
        .find(|l| l.contains("host folder"))
        .and_then(|l| l.split("virtio-mmio at ").nth(1))
        .and_then(|s| s.split(')').next())
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .ok_or(format!("no device address in the boot log:\n{log}"))?;
    shutdown(vm)?;
    // Announced as Firecracker and Cloud Hypervisor announce devices: found there, the window
    // not probed.
    let announce = |at: u64| Options {
        machine: Some("microvm,auto-kernel-cmdline=off".into()),
        append: format!("virtio_mmio.device=512@{at:#x}:12"),
        ..plain.clone()
    };
    let mut vm = boot_with(image, &announce(addr))?;
    contains(&vm.output(), "virtio over virtio-mmio (command line)")?;
    let out = vm.run("cat /host/from-host.txt", STEP)?;
    check(out == "written on the host\n", "share found where the command line said", &out)?;
    shutdown(vm)?;
    // Announced at the wrong address: Keel believes the command line and finds no share.
    let wrong = if addr == 0xfeb0_0000 { addr + 0x200 } else { addr - 0x200 };
    let mut vm = boot_with(image, &announce(wrong))?;
    let out = vm.run("ls /host; echo status $?", STEP)?;
    check(out.contains("status 1") || out.contains("status 2"), "no share without its device", &out)?;
    shutdown(vm)
}
