//! `bench WORKLOAD [ARGS]`: one workload, printing `RESULT` so runs can be checked against each
//! other. Workloads: sieve (integers, memory), nbody (floating point), sha256 (hashing a buffer),
//! matmul (floating point, memory traffic), fib (calls), read FILE, write FILE MIB.
use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Instant;

fn sieve(n: usize) -> u64 {
    let mut composite = vec![false; n + 1];
    let mut count = 0u64;
    for i in 2..=n {
        if !composite[i] {
            count += 1;
            // u64: i * i overflows a 32-bit usize on wasm32.
            let mut j = (i as u64) * (i as u64);
            while j <= n as u64 {
                composite[j as usize] = true;
                j += i as u64;
            }
        }
    }
    count
}

fn nbody(steps: usize) -> f64 {
    const N: usize = 5;
    let mut pos = [[0.0f64; 3]; N];
    let mut vel = [[0.0f64; 3]; N];
    let mass = [39.47, 0.037, 0.011, 0.0017, 0.002];
    for i in 0..N {
        pos[i] = [i as f64 * 1.1, (i as f64 * 0.7).sin(), (i as f64 * 0.3).cos()];
        vel[i] = [0.01 * i as f64, -0.02 * i as f64, 0.005];
    }
    let dt = 0.01;
    for _ in 0..steps {
        for i in 0..N {
            for j in i + 1..N {
                let d = [pos[i][0] - pos[j][0], pos[i][1] - pos[j][1], pos[i][2] - pos[j][2]];
                let d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + 1e-9;
                let mag = dt / (d2 * d2.sqrt());
                for k in 0..3 {
                    vel[i][k] -= d[k] * mass[j] * mag;
                    vel[j][k] += d[k] * mass[i] * mag;
                }
            }
        }
        for i in 0..N {
            for k in 0..3 {
                pos[i][k] += dt * vel[i][k];
            }
        }
    }
    pos.iter().map(|p| p[0] + p[1] + p[2]).sum()
}

fn sha(mib: usize) -> String {
    use sha2::{Digest, Sha256};
    let buf: Vec<u8> = (0..mib << 20).map(|i| (i * 31 % 251) as u8).collect();
    let h = Sha256::digest(&buf);
    h.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn matmul(n: usize) -> f64 {
    let a: Vec<f64> = (0..n * n).map(|i| (i % 7) as f64 * 0.5).collect();
    let b: Vec<f64> = (0..n * n).map(|i| (i % 5) as f64 * 0.25).collect();
    let mut c = vec![0.0f64; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                c[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    c.iter().sum()
}

fn fib(n: u32) -> u64 {
    if n < 2 {
        n as u64
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("");
    let t = Instant::now();
    let result = match which {
        "sieve" => sieve(black_box(3_000_000)).to_string(),
        "nbody" => format!("{:.6}", nbody(black_box(200_000))),
        "sha256" => sha(black_box(4)),
        "matmul" => format!("{:.1}", matmul(black_box(160))),
        "fib" => fib(black_box(30)).to_string(),
        "read" => {
            let mut f = std::fs::File::open(&args[2]).expect("open");
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0u64;
            loop {
                let n = f.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            total.to_string()
        }
        "write" => {
            let mib: usize = args[3].parse().expect("MiB");
            let mut f = std::fs::File::create(&args[2]).expect("create");
            let buf = vec![7u8; 1 << 20];
            for _ in 0..mib {
                f.write_all(&buf).expect("write");
            }
            (mib << 20).to_string()
        }
        _ => {
            eprintln!("usage: bench sieve|nbody|sha256|matmul|fib|read FILE|write FILE MIB");
            std::process::exit(2);
        }
    };
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    println!("RESULT {which} {result} {ms:.3}ms");
}
