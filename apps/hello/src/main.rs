//! `hello [NAME]`: greets, and shows what a WASI program sees of its world.
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).cloned().unwrap_or_else(|| "world".to_string());
    println!("Hello, {name}! This is WebAssembly running on Keel.");
    if std::env::var("HELLO_VERBOSE").is_ok() {
        println!("args: {args:?}");
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        println!("seconds since 1970: {secs}");
        for (k, v) in std::env::vars() {
            println!("env {k}={v}");
        }
    }
}
