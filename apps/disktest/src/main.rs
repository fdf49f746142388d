//! disktest: what Keel's disk tests and benchmark run, here and under wasmtime on the host.
//!
//!   disktest churn DIR ROUNDS   replace f0..f7 in DIR ROUNDS times each (write f.tmp, fsync,
//!                               rename over f), printing `synced fK vV` after each
//!   disktest verify DIR         check that every fK is wholly one version: `ok fK vV` or `BAD`
//!   disktest bench DIR MIB      sequential and random 4 KiB I/O on a MIB file, fsync latency
//!
//! Each version's content is derived from (file, version), so a reader can tell a whole
//! version from a torn or mixed one.
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

const FILES: u32 = 8;

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// The whole content of version `v` of file `k`.
fn content(k: u32, v: u64) -> Vec<u8> {
    let mut next = rng((u64::from(k) << 40) ^ v);
    // From inline-sized (under 1 KiB) to several 4 KiB blocks.
    let len = match next() % 4 {
        0 => 200 + next() % 600,
        _ => 1000 + next() % 40_000,
    } as usize;
    let mut out = format!("disktest f{k} v{v} len {len}\n").into_bytes();
    out.extend((0..len).map(|_| (next() >> 24) as u8));
    out
}

/// The version a file's content is, if it is wholly one.
fn version_of(k: u32, data: &[u8]) -> Result<u64, String> {
    let line_end = data.iter().position(|&b| b == b'\n').ok_or("no header")?;
    let header = std::str::from_utf8(&data[..line_end]).map_err(|_| "header not text")?;
    let mut words = header.split(' ');
    let ok = words.next() == Some("disktest") && words.next() == Some(&format!("f{k}"));
    let v: u64 = words.next().and_then(|w| w.strip_prefix('v')).and_then(|w| w.parse().ok()).ok_or("bad header")?;
    if !ok {
        return Err(format!("header '{header}' names another file"));
    }
    if content(k, v) != data {
        return Err(format!("v{v}: content is not that version's ({} bytes)", data.len()));
    }
    Ok(v)
}

fn churn(dir: &Path, rounds: u64) -> Result<(), String> {
    let mut versions = Vec::new();
    for k in 0..FILES {
        let _ = fs::remove_file(dir.join(format!("f{k}.tmp")));
        let v = match fs::read(dir.join(format!("f{k}"))) {
            Ok(d) => version_of(k, &d).map_err(|e| format!("f{k}: {e}"))?,
            Err(_) => 0,
        };
        versions.push(v);
    }
    for _ in 0..rounds {
        for k in 0..FILES {
            let v = versions[k as usize] + 1;
            let tmp = dir.join(format!("f{k}.tmp"));
            let mut f = File::create(&tmp).map_err(|e| format!("create f{k}.tmp: {e}"))?;
            let data = content(k, v);
            // In pieces, as programs write.
            for piece in data.chunks(3000) {
                f.write_all(piece).map_err(|e| format!("write f{k}.tmp: {e}"))?;
            }
            f.sync_all().map_err(|e| format!("fsync f{k}.tmp: {e}"))?;
            drop(f);
            fs::rename(&tmp, dir.join(format!("f{k}"))).map_err(|e| format!("rename f{k}: {e}"))?;
            versions[k as usize] = v;
            println!("synced f{k} v{v}");
        }
    }
    Ok(())
}

fn verify(dir: &Path) -> bool {
    let mut bad = 0;
    let mut seen = 0;
    for k in 0..FILES {
        match fs::read(dir.join(format!("f{k}"))) {
            Ok(d) => {
                seen += 1;
                match version_of(k, &d) {
                    Ok(v) => println!("ok f{k} v{v}"),
                    Err(e) => {
                        bad += 1;
                        println!("BAD f{k}: {e}");
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                bad += 1;
                println!("BAD f{k}: {e}");
            }
        }
    }
    println!("verified {seen} files, {bad} bad");
    bad == 0
}

fn rate(bytes: u64, t: Instant) -> f64 {
    bytes as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64().max(1e-9)
}

fn bench(dir: &Path, mib: u64) -> Result<(), String> {
    let path = dir.join("bench.dat");
    let size = mib << 20;
    let block = vec![0x5au8; 64 * 1024];
    fn e(what: &'static str) -> impl Fn(std::io::Error) -> String {
        move |err| format!("{what}: {err}")
    }
    let t = Instant::now();
    let mut f = File::create(&path).map_err(e("create"))?;
    for _ in 0..size / block.len() as u64 {
        f.write_all(&block).map_err(e("write"))?;
    }
    f.sync_all().map_err(e("fsync"))?;
    drop(f);
    println!("seq-write {:.1} MiB/s", rate(size, t));
    let t = Instant::now();
    let mut f = File::open(&path).map_err(e("open"))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(e("read"))?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    println!("seq-read {:.1} MiB/s", rate(total, t));
    let mut next = rng(7);
    let ops = 2000u64;
    let mut small = vec![0u8; 4096];
    let mut f = OpenOptions::new().read(true).write(true).open(&path).map_err(e("open"))?;
    let t = Instant::now();
    for _ in 0..ops {
        let at = (next() % (size / 4096)) * 4096;
        f.seek(SeekFrom::Start(at)).map_err(e("seek"))?;
        f.read_exact(&mut small).map_err(e("read"))?;
    }
    println!("rand-read {:.0} IOPS", ops as f64 / t.elapsed().as_secs_f64().max(1e-9));
    drop(f);
    // Random writes on a 1 MiB file (a copy-on-write filesystem may rewrite more than 4 KiB
    // for each).
    let small_file = dir.join("rand.dat");
    fs::write(&small_file, vec![0u8; 1 << 20]).map_err(e("create"))?;
    let mut f = OpenOptions::new().read(true).write(true).open(&small_file).map_err(e("open"))?;
    let wops = 200u64;
    let t = Instant::now();
    for i in 0..wops {
        let at = (next() % 256) * 4096;
        small[0] = i as u8;
        f.seek(SeekFrom::Start(at)).map_err(e("seek"))?;
        f.write_all(&small).map_err(e("write"))?;
    }
    f.sync_all().map_err(e("fsync"))?;
    println!("rand-write {:.0} IOPS", wops as f64 / t.elapsed().as_secs_f64().max(1e-9));
    drop(f);
    fs::remove_file(&small_file).map_err(e("remove"))?;
    let mut f = File::create(dir.join("fsync.dat")).map_err(e("create"))?;
    let n = 50;
    let t = Instant::now();
    for i in 0..n {
        f.write_all(format!("record {i}\n").as_bytes()).map_err(e("write"))?;
        f.sync_all().map_err(e("fsync"))?;
    }
    println!("fsync {:.0} us", t.elapsed().as_secs_f64() * 1e6 / f64::from(n));
    drop(f);
    fs::remove_file(dir.join("fsync.dat")).map_err(e("remove"))?;
    fs::remove_file(&path).map_err(e("remove"))?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: disktest churn DIR ROUNDS | verify DIR | bench DIR MIB";
    let (Some(cmd), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let dir = Path::new(dir);
    let number = |i: usize| args.get(i).and_then(|s| s.parse::<u64>().ok());
    let r = match (cmd.as_str(), number(3)) {
        ("churn", Some(rounds)) => churn(dir, rounds),
        ("verify", _) => {
            return if verify(dir) { ExitCode::SUCCESS } else { ExitCode::from(1) };
        }
        ("bench", Some(mib)) => bench(dir, mib),
        _ => Err(usage.to_string()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("disktest: {e}");
            ExitCode::from(1)
        }
    }
}
