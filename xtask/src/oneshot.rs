//! `cargo xtask wasm`: one WASI program in a fresh Keel microVM, the way `wasmtime run` runs it on
//! the host. Keel boots with `keel.job=`, runs the program and powers off; the program's stdio
//! is relayed over COM2 in `keel-job` frames, byte for byte, and this command exits with the
//! program's status.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use keel_job::{Decoder, Kind};

use crate::build::{self, Image};
use crate::qemu;

pub const USAGE: &str = "\
usage: cargo xtask wasm [options] FILE [ARGS...]
  --dir HOST[::GUEST]   preopen the host directory HOST as GUEST (default: HOST as typed),
                        shared into Keel over 9P (repeatable)
  --env NAME[=VALUE]    give the program this variable (no '=': the host's value); the
                        program sees exactly these (repeatable)
  --mem SIZE            the microVM's memory (default 512M)
  --max-memory SIZE     the program's linear memory limit (default: Keel's)
  --fuel N              stop the program after N units of fuel (runs on the interpreter)
  --compile             precompile FILE on the host for Keel's compiled tier first
  --engine auto|interp|compiled
                        which engine runs it in Keel (default auto: compiled with --compile)
  --accel auto|kvm|tcg  accelerator (default auto)
Exit status: the program's; 134 after a trap (message on stderr); 126 if the module cannot be
loaded; 2 for a bad option or a missing file; 125 if Keel itself failed.";

/// Status when Keel itself failed (no exit status came back).
pub const STATUS_KEEL_FAILED: i32 = 125;

/// One run.
#[derive(Clone, Debug, Default)]
pub struct Job {
    /// (host directory, guest name)
    pub dirs: Vec<(PathBuf, String)>,
    pub env: Vec<(String, String)>,
    pub file: PathBuf,
    /// argv[0] (wasmtime: FILE as typed).
    pub argv0: String,
    pub args: Vec<String>,
    pub mem: Option<String>,
    pub max_memory: Option<String>,
    pub fuel: Option<u64>,
    pub accel: Option<qemu::Accel>,
    /// Precompile FILE for the compiled tier (`--compile`).
    pub compile: bool,
    /// `--engine` for Keel's `wasm` command.
    pub engine: Option<keel_wasm::cli::EngineChoice>,
}

/// Where the program's stdin comes from.
pub enum Stdin {
    /// This process's stdin, until its end.
    Inherit,
    /// These bytes, then end of input.
    Bytes(Vec<u8>),
    /// Open but silent for the whole run (as a test runner's unused pipe).
    Silent,
}

/// What came back from a run.
pub struct Finished {
    pub status: i32,
    /// From the invocation to Keel's ready frame (boot done, program about to load).
    pub ready_after: Option<std::time::Duration>,
    /// From the invocation to the program's first output.
    pub first_output_after: Option<std::time::Duration>,
}

impl Job {
    /// Parses the command line after `wasm`.
    pub fn parse(args: &[String]) -> Result<Job, String> {
        let mut job = Job::default();
        let i = keel_wasm::cli::each_option(args, |name, value| {
            match name {
                "--dir" => {
                    let v = value()?;
                    let (host, guest) = v.split_once("::").unwrap_or((&v, &v));
                    if host.is_empty() || guest.is_empty() {
                        return Err(format!("--dir {v}: expected HOST[::GUEST]"));
                    }
                    let abs = Path::new(host).canonicalize().map_err(|e| format!("--dir {host}: {e}"))?;
                    if !abs.is_dir() {
                        return Err(format!("--dir {host}: not a directory"));
                    }
                    job.dirs.push((abs, guest.to_string()));
                }
                "--env" => {
                    let v = value()?;
                    match v.split_once('=') {
                        Some((k, val)) => job.env.push((k.to_string(), val.to_string())),
                        None => {
                            if let Ok(val) = std::env::var(&v) {
                                job.env.push((v, val));
                            }
                        }
                    }
                }
                "--mem" => job.mem = Some(value()?),
                "--max-memory" => job.max_memory = Some(value()?),
                "--fuel" => {
                    let v = value()?;
                    job.fuel = Some(v.parse().map_err(|_| format!("--fuel {v}: not a number"))?);
                }
                "--accel" => job.accel = Some(value()?.parse()?),
                "--compile" => job.compile = true,
                "--engine" => job.engine = Some(keel_wasm::cli::EngineChoice::parse(&value()?)?),
                other => return Err(format!("unknown option {other}")),
            }
            Ok(())
        })?;
        let file = args.get(i).ok_or("missing FILE")?;
        let path = PathBuf::from(file);
        if !path.is_file() {
            return Err(format!("{file}: no such file"));
        }
        job.file = path;
        job.argv0 = file.clone();
        job.args = args[i + 1..].to_vec();
        Ok(job)
    }

    /// The `wasm` command line Keel runs (paths as Keel sees them).
    fn keel_argv(&self, module: &str) -> Vec<String> {
        let mut argv: Vec<String> = vec!["--argv0".into(), self.argv0.clone()];
        for (i, (_, guest)) in self.dirs.iter().enumerate() {
            argv.push("--dir".into());
            argv.push(format!("/dir{i}::{guest}"));
        }
        for (k, v) in &self.env {
            argv.push("--env".into());
            argv.push(format!("{k}={v}"));
        }
        if let Some(m) = &self.max_memory {
            argv.extend(["--max-memory".into(), m.clone()]);
        }
        if let Some(f) = self.fuel {
            argv.extend(["--fuel".into(), f.to_string()]);
        }
        if let Some(e) = self.engine {
            argv.extend(["--engine".into(), e.as_str().into()]);
        }
        argv.push("--".into());
        argv.push(module.into());
        argv.extend(self.args.iter().cloned());
        argv
    }
}

/// `cargo xtask wasm ...`
pub fn command(args: &[String]) -> Result<i32, String> {
    if args.iter().take_while(|a| a.starts_with("--")).any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(0);
    }
    let job = match Job::parse(args) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("xtask wasm: {e}\n{USAGE}");
            return Ok(2);
        }
    };
    build::set_quiet(true);
    let image = match build::fresh_image() {
        Some(image) => image,
        None => build::build_all()?,
    };
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    Ok(run(&image, &job, Stdin::Inherit, &mut out, &mut err)?.status)
}

enum Event {
    Frame(Kind, Vec<u8>),
    Broken(String),
    End,
}

static RUNS: AtomicU64 = AtomicU64::new(0);

/// Runs `job` in a fresh Keel, writing the program's stdout and stderr to `out` and `err`.
pub fn run(
    image: &Image,
    job: &Job,
    stdin: Stdin,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Finished, String> {
    let started = Instant::now();
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let stage = build::out_dir().join("jobs").join(format!("{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).map_err(|e| format!("{}: {e}", stage.display()))?;
    let result = run_staged(image, job, stdin, out, err, &stage, started);
    let _ = std::fs::remove_dir_all(&stage);
    result
}

fn run_staged(
    image: &Image,
    job: &Job,
    stdin: Stdin,
    out: &mut dyn Write,
    err: &mut dyn Write,
    stage: &Path,
    started: Instant,
) -> Result<Finished, String> {
    let name = job.file.file_name().and_then(|n| n.to_str()).filter(|n| !n.contains(' ')).unwrap_or("program.wasm");
    let module = stage.join("module");
    std::fs::create_dir_all(&module).map_err(|e| e.to_string())?;
    let staged = module.join(name);
    if std::fs::hard_link(&job.file, &staged).is_err() {
        std::fs::copy(&job.file, &staged).map_err(|e| format!("{}: {e}", job.file.display()))?;
    }
    if job.compile {
        crate::aot::compile(&[(staged.clone(), crate::aot::artefact_of(&staged))])?;
    }
    let job_file = module.join("job");
    std::fs::write(&job_file, keel_job::encode_job(&job.keel_argv(&format!("/job/{name}"))))
        .map_err(|e| e.to_string())?;
    let console = stage.join("console.log");

    let mut opts = qemu::Options { mem: job.mem.clone().unwrap_or_else(|| "512M".into()), ..Default::default() };
    if let Some(a) = job.accel {
        opts.accel = a;
    }
    opts.shares.push((module.clone(), "/job".into(), true));
    for (i, (host, _)) in job.dirs.iter().enumerate() {
        opts.shares.push((host.clone(), format!("/dir{i}"), false));
    }
    opts.append = "quiet keel.job=/job/job".into();
    opts.extra = vec![
        "-serial".into(),
        format!("file:{}", console.display()),
        "-chardev".into(),
        "stdio,id=job".into(),
        "-device".into(),
        "isa-serial,chardev=job,iobase=0x2f8,irq=3".into(),
    ];
    let mut cmd = qemu::command(image, &opts);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
    let (Some(mut to_keel), Some(mut from_keel), Some(mut qemu_err)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("QEMU's pipes are missing".into());
    };

    let (events, rx) = mpsc::channel::<Event>();
    std::thread::spawn(move || {
        let mut decoder = Decoder::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from_keel.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = events.send(Event::End);
                    return;
                }
                Ok(n) => {
                    let fed = decoder.feed(&buf[..n], |f| {
                        let _ = events.send(Event::Frame(f.kind, f.payload));
                    });
                    if let Err(e) = fed {
                        let _ = events.send(Event::Broken(e.to_string()));
                        return;
                    }
                }
            }
        }
    });
    let qemu_stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = qemu_err.read_to_string(&mut s);
        s
    });

    // Stdin goes out only once Keel says its end of the channel is ready.
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let feeder = match stdin {
        Stdin::Silent => None,
        Stdin::Bytes(data) => Some(std::thread::spawn(move || {
            if ready_rx.recv().is_ok() {
                feed(&mut std::io::Cursor::new(data), &mut to_keel);
            }
        })),
        Stdin::Inherit => Some(std::thread::spawn(move || {
            if ready_rx.recv().is_ok() {
                feed(&mut std::io::stdin().lock(), &mut to_keel);
            }
        })),
    };

    let mut status = None;
    let mut broken = None;
    let mut ready_after = None;
    let mut first_output_after = None;
    for ev in rx.iter() {
        if matches!(ev, Event::Frame(Kind::Stdout | Kind::Stderr, _)) && first_output_after.is_none() {
            first_output_after = Some(started.elapsed());
        }
        match ev {
            Event::Frame(Kind::Stdout, data) => {
                let _ = out.write_all(&data).and_then(|_| out.flush());
            }
            Event::Frame(Kind::Stderr, data) => {
                let _ = err.write_all(&data).and_then(|_| err.flush());
            }
            Event::Frame(Kind::Ready, _) => {
                ready_after = Some(started.elapsed());
                let _ = ready_tx.send(());
            }
            Event::Frame(Kind::Exit, data) => {
                status = data.get(..4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                break;
            }
            Event::Frame(_, _) => {}
            Event::Broken(e) => {
                broken = Some(e);
                break;
            }
            Event::End => break,
        }
    }
    // The status is in: no need to wait for the power-off.
    let _ = child.kill();
    let _ = child.wait();
    drop(feeder);
    match status {
        Some(status) => Ok(Finished { status, ready_after, first_output_after }),
        None => {
            let log = std::fs::read_to_string(stage.join("console.log")).unwrap_or_default();
            let qemu_said = qemu_stderr.join().unwrap_or_default();
            let _ = writeln!(
                err,
                "xtask wasm: Keel stopped without reporting an exit status{}\n--- Keel console ---\n{}{}",
                broken.map(|b| format!(" ({b})")).unwrap_or_default(),
                log,
                if qemu_said.is_empty() { String::new() } else { format!("--- QEMU ---\n{qemu_said}") }
            );
            Ok(Finished { status: STATUS_KEEL_FAILED, ready_after, first_output_after })
        }
    }
}

/// Sends everything `src` yields as stdin frames, then the end of stdin.
fn feed(src: &mut dyn Read, to_keel: &mut std::process::ChildStdin) {
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match src.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => 0,
        };
        let mut wire = Vec::with_capacity(n + 3);
        keel_job::encode(if n == 0 { Kind::StdinEnd } else { Kind::Stdin }, &buf[..n], &mut wire);
        if to_keel.write_all(&wire).and_then(|_| to_keel.flush()).is_err() || n == 0 {
            return;
        }
    }
}
