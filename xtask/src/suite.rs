//! Boot tests that run other people's programs through `cargo xtask wasm`: the official WASI
//! preview1 test suite (vendored in tests/wasi-testsuite) and a corpus of third-party programs
//! (tests/corpus) compared with wasmtime on the host.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::build::{self, Image};
use crate::oneshot::{self, Job, Stdin};

/// Copies a directory tree (files and folders; the suite has no links).
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| format!("{}: {e}", src.display()))?;
        }
    }
    Ok(())
}

/// Runs `work(i)` for i in 0..n on two threads (the machines have two cores; QEMU uses one each).
pub fn parallel<T: Send>(n: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, T)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return;
                }
                let r = work(i);
                results.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
            });
        }
    });
    let mut v = results.into_inner().unwrap_or_else(|e| e.into_inner());
    v.sort_by_key(|(i, _)| *i);
    v.into_iter().map(|(_, r)| r).collect()
}

/// One test of the official suite, as its `.json` describes it (the legacy format: every
/// preview1 test uses it; absent fields take upstream's defaults).
struct Spec {
    args: Vec<String>,
    env: Vec<(String, String)>,
    dirs: Vec<String>,
    root: Option<String>,
    exit_code: i32,
    stdout: Option<String>,
    stderr: Option<String>,
}

fn read_spec(wasm: &Path) -> Result<Spec, String> {
    let json = wasm.with_extension("json");
    let v: serde_json::Value = if json.exists() {
        let text = std::fs::read_to_string(&json).map_err(|e| format!("{}: {e}", json.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json.display()))?
    } else {
        serde_json::Value::Object(Default::default())
    };
    let strings = |key: &str| -> Vec<String> {
        v.get(key)
            .and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let env = v
        .get("env")
        .and_then(|e| e.as_object())
        .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    Ok(Spec {
        args: strings("args"),
        env,
        dirs: strings("dirs"),
        root: v.get("root").and_then(|r| r.as_str()).map(str::to_string),
        exit_code: v.get("exit_code").and_then(|c| c.as_i64()).unwrap_or(0) as i32,
        stdout: v.get("stdout").and_then(|s| s.as_str()).map(str::to_string),
        stderr: v.get("stderr").and_then(|s| s.as_str()).map(str::to_string),
    })
}

/// Runs one test of the suite; Err describes how it failed.
fn run_suite_test(image: &Image, wasm: &Path, scratch: &Path) -> Result<(), String> {
    let spec = read_spec(wasm)?;
    let test_dir = wasm.parent().ok_or("no parent")?;
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
    let mut job = Job { file: wasm.to_path_buf(), args: spec.args.clone(), env: spec.env.clone(), ..Job::default() };
    job.argv0 = wasm.file_name().and_then(|n| n.to_str()).unwrap_or("test.wasm").to_string();
    let mut preopen = |name: &str, guest: &str| -> Result<(), String> {
        let copy = scratch.join(name);
        copy_tree(&test_dir.join(name), &copy)?;
        // Upstream removes leftovers of earlier runs (*.cleanup) first; a fresh copy has none.
        job.dirs.push((copy, guest.to_string()));
        Ok(())
    };
    if let Some(root) = &spec.root {
        preopen(root, "/")?;
    }
    for d in &spec.dirs {
        preopen(d, d)?;
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    // As upstream's runner: stdin is a pipe that stays open and silent.
    let fin = oneshot::run(image, &job, Stdin::Silent, &mut out, &mut err)?;
    let (out, err) = (String::from_utf8_lossy(&out), String::from_utf8_lossy(&err));
    let mut problems = Vec::new();
    if fin.status != spec.exit_code {
        problems.push(format!("exit status {} (expected {})", fin.status, spec.exit_code));
    }
    if spec.stdout.as_deref().is_some_and(|s| s != out) {
        problems.push(format!("stdout {out:?} (expected {:?})", spec.stdout.unwrap_or_default()));
    }
    if spec.stderr.as_deref().is_some_and(|s| s != err) {
        problems.push(format!("stderr {err:?} (expected {:?})", spec.stderr.unwrap_or_default()));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n  stderr: {}", problems.join("; "), err.trim_end().replace('\n', "\n          ")))
    }
}

/// The vendored suite's tests for one source language, sorted.
fn suite_tests(lang: &str) -> Result<Vec<PathBuf>, String> {
    let dir = build::root().join("tests/wasi-testsuite").join(lang);
    let mut tests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    tests.sort();
    Ok(tests)
}

/// Runs every test of one language's part of the suite.
fn run_suite(image: &Image, lang: &str, expected_count: usize) -> Result<(), String> {
    let tests = suite_tests(lang)?;
    if tests.len() != expected_count {
        return Err(format!("{lang}: {} tests found, expected {expected_count}", tests.len()));
    }
    let scratch = build::out_dir().join("wasi-testsuite").join(lang);
    let results = parallel(tests.len(), |i| {
        let name = tests[i].file_stem().and_then(|s| s.to_str()).unwrap_or("?").to_string();
        (name.clone(), run_suite_test(image, &tests[i], &scratch.join(&name)))
    });
    let failed: Vec<String> =
        results.iter().filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}"))).collect();
    println!("    {lang}: {} of {} passed", tests.len() - failed.len(), tests.len());
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}

pub fn wasi_testsuite_assemblyscript(image: &Image) -> Result<(), String> {
    run_suite(image, "assemblyscript", 12)
}

pub fn wasi_testsuite_c(image: &Image) -> Result<(), String> {
    run_suite(image, "c", 14)
}

pub fn wasi_testsuite_rust(image: &Image) -> Result<(), String> {
    run_suite(image, "rust", 46)
}
