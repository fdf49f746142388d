//! The compiled tier on the build host: the build's artefact key, the `keel-aot` precompiler
//! (built on the kernel's pinned nightly, like the kernel: wasmtime 50 needs it), and
//! precompiling modules into sealed `.cwasm` artefacts, cached by module and key.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::build::{self, out_dir, root};

/// The file holding this build tree's key (64 hex digits), made at the first build.
pub fn key_file() -> PathBuf {
    out_dir().join("aot.key")
}

/// The build's key, generated from the OS's randomness the first time.
pub fn key_hex() -> Result<String, String> {
    let path = key_file();
    if let Ok(k) = std::fs::read_to_string(&path) {
        if keel_artefact::parse_key(&k).is_some() {
            return Ok(k.trim().to_string());
        }
    }
    let mut bytes = [0u8; keel_artefact::KEY_LEN];
    let mut f = std::fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?;
    std::io::Read::read_exact(&mut f, &mut bytes).map_err(|e| format!("/dev/urandom: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(out_dir()).map_err(|e| format!("{}: {e}", out_dir().display()))?;
    std::fs::write(&path, &hex).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(hex)
}

/// Builds `keel-aot` (release, pinned nightly) once per run of xtask and returns its path.
pub fn tool() -> Result<PathBuf, String> {
    static BUILT: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.as_ref() {
        return Ok(p.clone());
    }
    let p = build_tool()?;
    *built = Some(p.clone());
    Ok(p)
}

fn build_tool() -> Result<PathBuf, String> {
    build::ensure_toolchain()?;
    let dir = root().join("xtask/aot");
    let mut cargo = build::kernel_cargo()?;
    cargo.current_dir(&dir).args(["build", "--release", "--locked"]);
    if build::quiet() {
        cargo.arg("-q");
    }
    build::status(&mut cargo)?;
    Ok(dir.join("target/release/keel-aot"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Precompiles each `(module, artefact)` pair with this build's key. A module compiled before
/// with the same key and compiler comes from the cache (target/keel/aot-cache).
pub fn compile(pairs: &[(PathBuf, PathBuf)]) -> Result<(), String> {
    let failed = compile_lenient(pairs)?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("not compiled: {}", failed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")))
    }
}

/// Like [`compile`], but a module that does not compile (invalid WASM) only gets no artefact:
/// returns those modules.
pub fn compile_lenient(pairs: &[(PathBuf, PathBuf)]) -> Result<Vec<PathBuf>, String> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let key = key_hex()?;
    let tool = tool()?;
    let tool_id = std::fs::metadata(&tool)
        .and_then(|m| m.modified())
        .map(|t| format!("{t:?}"))
        .map_err(|e| format!("{}: {e}", tool.display()))?;
    let cache = out_dir().join("aot-cache");
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let mut todo: Vec<String> = Vec::new();
    let mut cached = Vec::new();
    for (wasm, out) in pairs {
        let bytes = std::fs::read(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
        let mut h = Sha256::new();
        h.update(&bytes);
        h.update(key.as_bytes());
        h.update(tool_id.as_bytes());
        let entry = cache.join(format!("{}.cwasm", &hex(&h.finalize())[..32]));
        if !entry.exists() && !todo.iter().any(|t| Path::new(t) == entry) {
            todo.push(wasm.display().to_string());
            todo.push(entry.display().to_string());
        }
        cached.push((entry, out.clone()));
    }
    if !todo.is_empty() {
        let mut cmd = std::process::Command::new(&tool);
        cmd.arg("--key").arg(key_file()).args(&todo);
        // Its reasons are not needed: callers get the modules that failed.
        cmd.stderr(std::process::Stdio::null());
        // A failure shows as a missing cache entry below.
        let _ = cmd.status().map_err(|e| format!("{}: {e}", tool.display()))?;
    }
    let mut failed = Vec::new();
    for ((entry, out), (wasm, _)) in cached.into_iter().zip(pairs) {
        if entry.exists() {
            build::copy_if_changed(&entry, &out)?;
        } else {
            failed.push(wasm.clone());
        }
    }
    Ok(failed)
}

/// Where the artefact of `module` goes: beside it, where Keel's `wasm` command looks for it
/// (`keel_artefact::artefact_path`).
pub fn artefact_of(module: &Path) -> PathBuf {
    let name = module.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    module.with_file_name(keel_artefact::artefact_path(&name))
}

/// Precompiles every `.wasm` below `dir` (recursively) into a `.cwasm` beside it.
pub fn compile_tree(dir: &Path) -> Result<usize, String> {
    let pairs: Vec<(PathBuf, PathBuf)> =
        build::wasm_files(dir)?.into_iter().map(|m| (m.clone(), artefact_of(&m))).collect();
    compile(&pairs)?;
    Ok(pairs.len())
}
