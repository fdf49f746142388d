//! `grep [-i] [-v] [-n] [-c] [-q] [-r] [--] PATTERN [FILE...]`: lines containing PATTERN (a plain
//! string). `-q` prints nothing (the status says); `-r` searches directories recursively
//! (default `.`), in name order. Combined flags
//! (`-in`), `--` and `--help` work as in GNU grep. Exit status: 0 if a line matched, 1 if none, 2
//! on an error or a bad option (with the usage) — as POSIX grep.
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

const USAGE: &str = "usage: grep [-i] [-v] [-n] [-c] [-q] [-r] [--] PATTERN [FILE...]";

struct Opts {
    ignore_case: bool,
    invert: bool,
    numbers: bool,
    count: bool,
    recursive: bool,
    quiet: bool,
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
            if o.quiet {
                return Ok(hits);
            }
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
    if o.count && !o.quiet {
        match name {
            Some(name) => writeln!(out, "{name}:{hits}")?,
            None => writeln!(out, "{hits}")?,
        }
    }
    Ok(hits)
}

/// The files to search: the operands, with directories expanded (sorted) under `-r`.
fn expand(operands: &[String], recursive: bool, errors: &mut bool) -> Vec<PathBuf> {
    let mut files = Vec::new();
    // A list, not recursion: a deep tree cannot exhaust the stack.
    let mut todo: Vec<PathBuf> = operands.iter().rev().map(PathBuf::from).collect();
    while let Some(p) = todo.pop() {
        if recursive && p.is_dir() {
            match std::fs::read_dir(&p) {
                Ok(rd) => {
                    let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
                    names.sort();
                    todo.extend(names.into_iter().rev());
                }
                Err(e) => {
                    eprintln!("grep: {}: {e}", p.display());
                    *errors = true;
                }
            }
        } else if p.is_dir() {
            eprintln!("grep: {}: Is a directory", p.display());
            *errors = true;
        } else {
            files.push(p);
        }
    }
    files
}

fn display(p: &Path) -> String {
    let s = p.display().to_string();
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

fn main() {
    let mut o =
        Opts { ignore_case: false, invert: false, numbers: false, count: false, recursive: false, quiet: false };
    let mut rest = Vec::new();
    let mut operands_only = false;
    for a in std::env::args().skip(1) {
        if operands_only || a == "-" || !a.starts_with('-') {
            rest.push(a);
        } else if a == "--" {
            operands_only = true;
        } else if a == "--help" {
            println!("{USAGE}\nPrints the lines of each FILE (or stdin) that contain PATTERN.");
            return;
        } else {
            for ch in a[1..].chars() {
                match ch {
                    'i' => o.ignore_case = true,
                    'v' => o.invert = true,
                    'n' => o.numbers = true,
                    'c' => o.count = true,
                    'r' | 'R' => o.recursive = true,
                    'q' => o.quiet = true,
                    _ => {
                        eprintln!("grep: invalid option -- '{ch}'\n{USAGE}");
                        std::process::exit(2);
                    }
                }
            }
        }
    }
    let Some(pattern) = rest.first().cloned() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let pat = if o.ignore_case { pattern.to_lowercase() } else { pattern };
    let mut operands = rest[1..].to_vec();
    if operands.is_empty() && o.recursive {
        operands.push(".".into());
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut total = 0;
    let mut error = false;
    if operands.is_empty() {
        let stdin = io::stdin();
        match search(&mut stdin.lock(), None, &pat, &o, &mut out) {
            Ok(n) => total += n,
            Err(e) => {
                eprintln!("grep: (standard input): {e}");
                error = true;
            }
        }
    }
    let files = expand(&operands, o.recursive, &mut error);
    let show_names = files.len() > 1 || o.recursive;
    for f in &files {
        let name = display(f);
        match std::fs::File::open(f) {
            Ok(file) => match search(&mut BufReader::new(file), show_names.then_some(&name), &pat, &o, &mut out) {
                Ok(n) => total += n,
                Err(e) => {
                    eprintln!("grep: {name}: {e}");
                    error = true;
                }
            },
            Err(e) => {
                eprintln!("grep: {name}: {e}");
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
