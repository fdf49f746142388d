//! Builds the native programs of `apps/native/` into `target/keel/bin/` (packed as
//! `/extra_files/bin/`): C against Debian's musl and Rust for `x86_64-unknown-linux-musl`, all
//! static position-independent executables.
//!
//! Debian's `musl-gcc` wrapper ignores `-static-pie` (it links `Scrt1.o` and asks for an
//! interpreter), so the C programs go through `apps/native/keel-cc`, which links by hand:
//! `rcrt1.o` (which relocates the program itself), musl's `libc.a`, gcc's runtime, and no dynamic
//! linker.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{out_dir, root, status};

pub const RUST_TARGET: &str = "x86_64-unknown-linux-musl";

/// `apps/native/keel-cc`: gcc with musl's headers, start files and libraries for a static PIE
/// (the one place that knows the link line; users call it too).
fn keel_cc() -> Command {
    let mut cc = Command::new(root().join("apps/native/keel-cc"));
    cc.current_dir(root());
    cc
}

/// Makes sure musl is installed (apt-get as root).
pub fn ensure_musl() -> Result<(), String> {
    crate::image::ensure_packages(&[
        ("musl-tools", "/usr/bin/musl-gcc"),
        ("musl-dev", "/usr/lib/x86_64-linux-musl/rcrt1.o"),
    ])
}

fn newer(src: &[PathBuf], out: &Path) -> bool {
    let Ok(o) = std::fs::metadata(out).and_then(|m| m.modified()) else { return true };
    src.iter().any(|s| std::fs::metadata(s).and_then(|m| m.modified()).map_or(true, |t| t > o))
}

/// Compiles and links C sources into one static PIE.
fn build_c(sources: &[PathBuf], defines: &[&str], out: &Path) -> Result<(), String> {
    let objdir = out_dir().join("native-obj").join(out.file_name().and_then(|n| n.to_str()).unwrap_or("prog"));
    std::fs::create_dir_all(&objdir).map_err(|e| format!("{}: {e}", objdir.display()))?;
    let mut objects = Vec::new();
    for src in sources {
        let obj = objdir.join(src.file_name().ok_or("bad source")?).with_extension("o");
        if newer(std::slice::from_ref(src), &obj) {
            let mut cc = keel_cc();
            cc.args(["-O2", "-g0", "-std=gnu99", "-Wall"]).args(defines).arg("-c").arg(src).arg("-o").arg(&obj);
            status(&mut cc)?;
        }
        objects.push(obj);
    }
    let mut ld = keel_cc();
    ld.args(["-Wl,--gc-sections", "-s", "-o"]).arg(out).args(&objects);
    status(&mut ld)
}

/// Builds every native program; returns (path in the archive, built file) pairs.
pub fn build() -> Result<Vec<(PathBuf, PathBuf)>, String> {
    ensure_musl()?;
    let src = root().join("apps/native");
    let out = out_dir().join("bin");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut built = Vec::new();
    // One program per .c file.
    let mut singles: Vec<PathBuf> = std::fs::read_dir(&src)
        .map_err(|e| format!("{}: {e}", src.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    singles.sort();
    for c in singles {
        let name = c.file_stem().and_then(|s| s.to_str()).ok_or("bad name")?.to_string();
        let dest = out.join(&name);
        if newer(std::slice::from_ref(&c), &dest) {
            build_c(&[c], &[], &dest)?;
        }
        built.push((PathBuf::from("bin").join(&name), dest));
    }
    // Lua, from its vendored sources (the interpreter; luac left out).
    let lua_dir = src.join("lua");
    let mut lua: Vec<PathBuf> = std::fs::read_dir(&lua_dir)
        .map_err(|e| format!("{}: {e}", lua_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c") && p.file_name().is_some_and(|n| n != "luac.c"))
        .collect();
    lua.sort();
    let dest = out.join("lua");
    if newer(&lua, &dest) {
        build_c(&lua, &["-DLUA_USE_POSIX"], &dest)?;
    }
    built.push((PathBuf::from("bin/lua"), dest));
    // A test fixture: hello linked dynamically (glibc), which Keel must refuse by name.
    let dynamic = out_dir().join("native-obj/dynamic-hello");
    if newer(&[src.join("hello-native.c")], &dynamic) {
        status(Command::new("gcc").args(["-O2", "-o"]).arg(&dynamic).arg(src.join("hello-native.c")))?;
    }
    built.push((PathBuf::from("tests/dynamic-hello"), dynamic));
    // Rust, on the pinned toolchain's musl target.
    let rust = src.join("rust");
    let mut cargo = crate::build::kernel_cargo()?;
    cargo.current_dir(&rust).args(["build", "--release", "--locked", "--target", RUST_TARGET]);
    if crate::build::quiet() {
        cargo.arg("-q");
    }
    status(&mut cargo)?;
    let rdest = rust.join("target").join(RUST_TARGET).join("release/rhello");
    built.push((PathBuf::from("bin/rhello"), rdest));
    Ok(built)
}
