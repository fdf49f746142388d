//! `grep [-i] [-v] [-n] [-c] PATTERN [FILE...]`: lines containing PATTERN (a plain string).
//! Exit status: 0 if a line matched, 1 if none, 2 on error — as POSIX grep.
use std::io::{self, BufRead, BufReader, Write};

struct Opts {
    ignore_case: bool,
    invert: bool,
    numbers: bool,
    count: bool,
}

fn search(reader: &mut dyn BufRead, name: Option<&str>, pat: &str, o: &Opts, out: &mut dyn Write) -> io::Result<usize> {
    let mut hits = 0;
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        n += 1;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\n');
        let found = if o.ignore_case { text.to_lowercase().contains(pat) } else { text.contains(pat) };
        if found != o.invert {
            hits += 1;
            if !o.count {
                if let Some(name) = name {
                    write!(out, "{name}:")?;
                }
                if o.numbers {
                    write!(out, "{n}:")?;
                }
                writeln!(out, "{text}")?;
            }
        }
    }
    if o.count {
        match name {
            Some(name) => writeln!(out, "{name}:{hits}")?,
            None => writeln!(out, "{hits}")?,
        }
    }
    Ok(hits)
}

fn main() {
    let mut o = Opts { ignore_case: false, invert: false, numbers: false, count: false };
    let mut rest = Vec::new();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "-i" => o.ignore_case = true,
            "-v" => o.invert = true,
            "-n" => o.numbers = true,
            "-c" => o.count = true,
            _ => rest.push(a),
        }
    }
    let Some(pattern) = rest.first().cloned() else {
        eprintln!("usage: grep [-i] [-v] [-n] [-c] PATTERN [FILE...]");
        std::process::exit(2);
    };
    let pat = if o.ignore_case { pattern.to_lowercase() } else { pattern };
    let files = &rest[1..];
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut total = 0;
    let mut error = false;
    if files.is_empty() {
        let stdin = io::stdin();
        match search(&mut stdin.lock(), None, &pat, &o, &mut out) {
            Ok(n) => total += n,
            Err(e) => {
                eprintln!("grep: (stdin): {e}");
                error = true;
            }
        }
    }
    for f in files {
        let name = (files.len() > 1).then_some(f.as_str());
        match std::fs::File::open(f) {
            Ok(file) => match search(&mut BufReader::new(file), name, &pat, &o, &mut out) {
                Ok(n) => total += n,
                Err(e) => {
                    eprintln!("grep: {f}: {e}");
                    error = true;
                }
            },
            Err(e) => {
                eprintln!("grep: {f}: {e}");
                error = true;
            }
        }
    }
    let _ = out.flush();
    std::process::exit(if error {
        2
    } else if total > 0 {
        0
    } else {
        1
    });
}
