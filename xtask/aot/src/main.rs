//! `keel-aot --key FILE IN.wasm OUT.cwasm [IN OUT]...`: compiles each module for the kernel's
//! compiled tier (x86-64, Keel's CPU features, the engine settings of
//! `keel_wasm::compiled::config`) and seals the code with the build's key. `cargo xtask` runs it.
use std::process::ExitCode;

use std::io::Read;

use keel_artefact::{parse_key, seal, KEY_LEN, NONCE_LEN};
use keel_wasm::compiled::{self, wasmtime};

fn engine() -> wasmtime::Result<wasmtime::Engine> {
    let mut config = compiled::config();
    // Not the host's OS: the kernel's wasmtime is built for an unknown one.
    config.target("x86_64-unknown-unknown")?;
    for flag in compiled::CPU_FLAGS {
        // SAFETY: the code runs only in Keel, which checks each of these CPU features with CPUID
        // before it loads an artefact (and wasmtime checks them again when deserializing).
        unsafe {
            config.cranelift_flag_enable(flag);
        }
    }
    wasmtime::Engine::new(&config)
}

fn run(args: &[String]) -> Result<(), String> {
    let usage = "usage: keel-aot --key FILE IN.wasm OUT.cwasm [IN.wasm OUT.cwasm]...";
    let (Some("--key"), Some(key_file)) = (args.first().map(String::as_str), args.get(1)) else {
        return Err(usage.into());
    };
    let pairs = &args[2..];
    if pairs.is_empty() || pairs.len() % 2 != 0 {
        return Err(usage.into());
    }
    let hex = std::fs::read_to_string(key_file).map_err(|e| format!("{key_file}: {e}"))?;
    let key: [u8; KEY_LEN] = parse_key(&hex).ok_or_else(|| format!("{key_file}: not a key (64 hex digits)"))?;
    let engine = engine().map_err(|e| format!("engine: {e:?}"))?;
    let mut urandom = std::fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?;
    // Every module is tried: one that does not compile (not valid WASM) is reported and skipped.
    let mut failed = 0;
    for pair in pairs.chunks(2) {
        let (input, output) = (&pair[0], &pair[1]);
        let wasm = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
        let code = match engine.precompile_module(&wasm) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("keel-aot: {input}: {e}");
                failed += 1;
                continue;
            }
        };
        // A fresh random nonce for every artefact: the build never seals two under one.
        let mut nonce = [0u8; NONCE_LEN];
        urandom.read_exact(&mut nonce).map_err(|e| format!("/dev/urandom: {e}"))?;
        let tmp = format!("{output}.tmp");
        std::fs::write(&tmp, seal(&key, &nonce, &wasm, &code)).map_err(|e| format!("{tmp}: {e}"))?;
        std::fs::rename(&tmp, output).map_err(|e| format!("{output}: {e}"))?;
    }
    if failed > 0 {
        return Err(format!("{failed} of {} modules not compiled", pairs.len() / 2));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keel-aot: {e}");
            ExitCode::FAILURE
        }
    }
}
