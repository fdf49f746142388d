//! `wc [-l] [-w] [-c] [FILE...]`: lines, words and bytes of each file (or stdin, also as `-`),
//! with a total for several. No option: all three. Combined flags (`-lw`), `--` and `--help`
//! work as in coreutils; an unknown option prints the usage and exits with status 2.
use std::io::{self, Read};

const USAGE: &str = "usage: wc [-l] [-w] [-c] [FILE...]";

#[derive(Default, Clone, Copy)]
struct Counts {
    lines: u64,
    words: u64,
    bytes: u64,
}

/// Which counts to show, in the fixed order lines, words, bytes.
#[derive(Clone, Copy)]
struct Show {
    lines: bool,
    words: bool,
    bytes: bool,
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

fn show(c: Counts, name: &str, s: Show) {
    let fields: Vec<u64> = [(s.lines, c.lines), (s.words, c.words), (s.bytes, c.bytes)]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, v)| *v)
        .collect();
    // One count of stdin: the bare number (as coreutils); otherwise aligned columns.
    if fields.len() == 1 && name.is_empty() {
        println!("{}", fields[0]);
        return;
    }
    let mut line: String = fields.iter().map(|v| format!("{v:7} ")).collect();
    line.push_str(name);
    println!("{}", line.trim_end());
}

fn main() {
    let mut s = Show { lines: false, words: false, bytes: false };
    let mut files: Vec<String> = Vec::new();
    let mut operands_only = false;
    for a in std::env::args().skip(1) {
        if operands_only || a == "-" || !a.starts_with('-') {
            files.push(a);
        } else if a == "--" {
            operands_only = true;
        } else if a == "--help" {
            println!("{USAGE}\nCounts lines (-l), words (-w) and bytes (-c) of each FILE, or of stdin.");
            return;
        } else {
            for ch in a[1..].chars() {
                match ch {
                    'l' => s.lines = true,
                    'w' => s.words = true,
                    'c' => s.bytes = true,
                    _ => {
                        eprintln!("wc: invalid option -- '{ch}'\n{USAGE}");
                        std::process::exit(2);
                    }
                }
            }
        }
    }
    if !(s.lines || s.words || s.bytes) {
        s = Show { lines: true, words: true, bytes: true };
    }
    let mut status = 0;
    if files.is_empty() {
        files.push("-".into());
    }
    let named = !(files.len() == 1 && files[0] == "-");
    let mut total = Counts::default();
    for f in &files {
        let r = if f == "-" {
            count(&mut io::stdin().lock())
        } else {
            std::fs::File::open(f).and_then(|mut file| count(&mut file))
        };
        match r {
            Ok(c) => {
                show(c, if named { f } else { "" }, s);
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
        show(total, "total", s);
    }
    std::process::exit(status);
}
