//! `cargo xtask`: builds Keel's boot image, runs it in QEMU, tests and benchmarks it.
//!
//! Runs on the default stable toolchain; it installs the pinned nightly that builds the kernel.

mod aot;
mod bench;
mod build;
mod disk;
mod fuzz;
mod image;
mod native;
mod oneshot;
mod qemu;
mod tests;
mod wasi_imports;

use std::io::IsTerminal;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build                 build the kernel and the boot files into target/keel/
  image [-o FILE] [--append ARGS]
                        a bootable image for BIOS and UEFI machines (GRUB, Multiboot2):
                        target/keel/keel.iso, for a CD, a USB stick (dd) or `run --boot image`
  run [options]         build, then boot Keel in QEMU with its shell on this terminal
                        (stdin not a terminal: run it as a script, line by line)
  test [FILTER]         host unit tests, then boot tests in QEMU (FILTER: only matching boot tests)
  wasm [options] FILE [ARGS...]
                        run one WASI program in a fresh Keel microVM, like `wasmtime run`
                        (stdio relayed byte for byte, exits with the program's status;
                        `cargo xtask wasm --help` for its options)
  disk create|ls|put|get|cat|fsck IMAGE ...
                        make, fill and inspect disk images on the host (`cargo xtask disk`
                        for details); the same littlefs code Keel mounts /data with
  lint                  rustfmt --check and clippy -D warnings on every crate and the kernel
  bench [--runs N] [--network] [--disk]
                        measure boot, start-up, compute (vs the host), concurrency, I/O,
                        network, disk (--network, --disk: only that part)
  fuzz [--seconds N] [--seed S] [--in-keel N] [--compiled] [--console N] [--minutes M]
                        fuzz loader, engine, WASI and archive reader on the host, N generated
                        modules inside Keel in one boot (memory checked every 1000), N bursts
                        of random keys on the console (--compiled: the modules on the
                        compiled tier); --minutes: soak, rounds with new seeds
                        until M minutes are up; failing inputs go to target/fuzz/crashes
  stress [--minutes M] [--cpus N]
                        SMP soak on one boot (default 5 minutes, 4 CPUs): start/kill races,
                        pipelines and parallel programs round after round, memory and tasks
                        checked after each
  setup                 install what the build needs (pinned toolchain, QEMU)

run options:
  --gui                 open a QEMU window (machine q35) instead of the serial console only
  --mem SIZE            guest memory, e.g. 512M, 2G (default 512M)
  --cpus N              virtual CPUs (default: the host's cores, at most 8)
  --accel auto|kvm|tcg  accelerator (default auto: KVM only with kvm_intel/kvm_amd loaded)
  --machine microvm|q35 machine type (default microvm; --gui and --boot image imply q35)
  --boot pvh|image      pvh (default): QEMU loads the kernel directly (-kernel); image: build
                        the bootable image and boot it from a CD drive through the firmware
  --firmware bios|uefi  with --boot image: SeaBIOS (default) or OVMF (UEFI)
  --append ARGS         kernel command line (e.g. quiet)
  --share DIR[:GUEST][:ro]
                        show a host folder in Keel (default /host, then /host2...), read-write
                        unless :ro; files written there land on the host (repeatable)
  --forward HOSTPORT:GUESTPORT
                        let the host reach a port in Keel at 127.0.0.1:HOSTPORT (repeatable)
  --allow-host PORT     let Keel reach the host's 127.0.0.1:PORT at 10.0.2.100:PORT (repeatable)
  --net-open            lift the network restriction (QEMU user networking without
                        restrict=on: Keel may reach any address the host can); default closed
  --no-net              no network card
  --disk FILE[:SIZE][:ro]
                        attach a virtio disk image (created and formatted with littlefs on
                        first use, default 64M); the first is mounted at /data (repeatable:
                        vda, vdb, ...; others with `mount vdb DIR`)
  --compile             precompile every .wasm in the shared folders for the compiled tier
                        (a .cwasm beside each, sealed for this build)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => build::build_all().map(|_| 0),
        Some("image") => image::command(&args[1..]),
        Some("run") => run(&args[1..]),
        Some("test") => tests::run_all(&args[1..]),
        Some("wasm") => oneshot::command(&args[1..]),
        Some("lint") => build::lint().map(|_| 0),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => tests::fuzz_command(&args[1..]),
        Some("stress") => stress(&args[1..]),
        Some("setup") => build::setup().map(|_| 0),
        Some("relay") => qemu::relay(&args[1..]),
        Some("disk") => disk::command(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            Ok(0)
        }
        Some(other) => Err(format!("unknown command '{other}'\n\n{USAGE}")),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::from(2)
        }
    }
}

fn stress(args: &[String]) -> Result<i32, String> {
    let (mut minutes, mut cpus) = (5.0, 4);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or(format!("{a} needs a value"))?;
        match a.as_str() {
            "--minutes" => minutes = v.parse().map_err(|_| format!("--minutes {v}: not a number"))?,
            "--cpus" => {
                cpus = v.parse().ok().filter(|n| (2..=8).contains(n)).ok_or(format!("--cpus {v}: expected 2 to 8"))?
            }
            other => return Err(format!("stress: unknown option {other}")),
        }
    }
    let image = build::build_all()?;
    tests::smp::stress(&image, minutes, cpus)?;
    println!("stress: passed");
    Ok(0)
}

fn run(args: &[String]) -> Result<i32, String> {
    let mut opts = qemu::Options { cpus: qemu::default_cpus(), ..qemu::Options::default() };
    let mut compile = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--gui" => opts.gui = true,
            "--mem" => opts.mem = value("--mem")?,
            "--cpus" => {
                let v = value("--cpus")?;
                opts.cpus =
                    v.parse().ok().filter(|n| (1..=8).contains(n)).ok_or(format!("--cpus {v}: expected 1 to 8"))?;
            }
            "--accel" => opts.accel = value("--accel")?.parse()?,
            "--machine" => opts.machine = Some(value("--machine")?),
            "--append" => opts.append = value("--append")?,
            "--share" => {
                let spec = value("--share")?;
                let share = qemu::parse_share(&spec, opts.shares.len())?;
                opts.shares.push(share);
            }
            "--compile" => compile = true,
            "--forward" => opts.net.forwards.push(qemu::parse_forward(&value("--forward")?)?),
            "--allow-host" => opts.net.allow_host.push(qemu::parse_port("--allow-host", &value("--allow-host")?)?),
            "--net-open" => opts.net.open = true,
            "--no-net" => opts.net.enabled = false,
            "--disk" => {
                let (file, size, ro) = disk::parse_spec(&value("--disk")?)?;
                disk::prepare(&file, size)?;
                opts.disks.push((file, ro));
            }
            "--boot" => {
                opts.boot = match value("--boot")?.as_str() {
                    "pvh" => qemu::Boot::Pvh,
                    "image" => qemu::Boot::Image(image::default_path()),
                    other => return Err(format!("--boot: expected pvh or image, not '{other}'")),
                }
            }
            "--firmware" => opts.firmware = value("--firmware")?.parse()?,
            other => return Err(format!("run: unknown option '{other}'\n\n{USAGE}")),
        }
    }
    let image = build::build_all()?;
    if let qemu::Boot::Image(path) = &opts.boot {
        image::make(&image, &opts.append, path)?;
    }
    if compile {
        for (dir, guest, _) in &opts.shares {
            let n = aot::compile_tree(dir)?;
            eprintln!("xtask: {n} modules in {} ({guest}) precompiled", dir.display());
        }
    }
    if opts.gui {
        qemu::check_gui()?;
    }
    if std::io::stdin().is_terminal() || opts.gui {
        qemu::interactive(&image, &opts)
    } else {
        qemu::script(&image, &opts)
    }
}
