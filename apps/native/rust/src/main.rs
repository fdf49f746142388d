//! A Rust program built with std for Linux (musl), run natively by Keel.
use std::collections::BTreeMap;
use std::io::{Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("hello from Rust on Keel: {} argument(s)", args.len() - 1);
    // Word counts of stdin (or of the arguments).
    let mut text = String::new();
    if args.len() > 1 {
        text = args[1..].join(" ");
    } else {
        let _ = std::io::stdin().read_to_string(&mut text);
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for w in text.split_whitespace() {
        *counts.entry(w).or_default() += 1;
    }
    for (w, n) in &counts {
        println!("{w}: {n}");
    }
    // A file round trip through std::fs.
    let path = std::env::temp_dir().join("rhello.txt");
    std::fs::write(&path, b"written by std::fs\n").expect("write");
    let back = std::fs::read_to_string(&path).expect("read");
    std::fs::remove_file(&path).expect("remove");
    print!("{back}");
    std::io::stdout().flush().expect("flush");
}
