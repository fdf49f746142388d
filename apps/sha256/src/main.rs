//! `sha256 [FILE...]`: prints `HASH  NAME` like sha256sum; stdin when no file is given.
use sha2::{Digest, Sha256};
use std::io::{self, Read};

fn hash(r: &mut dyn Read) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let mut status = 0;
    if files.is_empty() {
        match hash(&mut io::stdin().lock()) {
            Ok(h) => println!("{h}  -"),
            Err(e) => {
                eprintln!("sha256: {e}");
                status = 1;
            }
        }
    }
    for f in &files {
        match std::fs::File::open(f).and_then(|mut file| hash(&mut file)) {
            Ok(h) => println!("{h}  {f}"),
            Err(e) => {
                eprintln!("sha256: {f}: {e}");
                status = 1;
            }
        }
    }
    std::process::exit(status);
}
