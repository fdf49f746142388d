//! `wc [FILE...]`: lines, words and bytes of each file (or stdin), with a total for several.
use std::io::{self, Read};

#[derive(Default, Clone, Copy)]
struct Counts {
    lines: u64,
    words: u64,
    bytes: u64,
}

fn count(r: &mut dyn Read) -> io::Result<Counts> {
    let mut c = Counts::default();
    let mut buf = [0u8; 65536];
    let mut in_word = false;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(c);
        }
        c.bytes += n as u64;
        for &b in &buf[..n] {
            if b == b'\n' {
                c.lines += 1;
            }
            let space = b.is_ascii_whitespace();
            if !space && !in_word {
                c.words += 1;
            }
            in_word = !space;
        }
    }
}

fn show(c: Counts, name: &str) {
    if name.is_empty() {
        println!("{:7} {:7} {:7}", c.lines, c.words, c.bytes);
    } else {
        println!("{:7} {:7} {:7} {name}", c.lines, c.words, c.bytes);
    }
}

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let mut status = 0;
    if files.is_empty() {
        match count(&mut io::stdin().lock()) {
            Ok(c) => show(c, ""),
            Err(e) => {
                eprintln!("wc: {e}");
                status = 1;
            }
        }
    }
    let mut total = Counts::default();
    for f in &files {
        match std::fs::File::open(f).and_then(|mut file| count(&mut file)) {
            Ok(c) => {
                show(c, f);
                total.lines += c.lines;
                total.words += c.words;
                total.bytes += c.bytes;
            }
            Err(e) => {
                eprintln!("wc: {f}: {e}");
                status = 1;
            }
        }
    }
    if files.len() > 1 {
        show(total, "total");
    }
    std::process::exit(status);
}
