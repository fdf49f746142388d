#![feature(wasi_ext)]
//! `wasi-test`: run with `--dir DIR::.` (an empty scratch directory) and some stdin; prints one
//! line per check and exits with the number of failed checks.
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct T {
    ok: u32,
    failed: u32,
}

impl T {
    fn check(&mut self, name: &str, r: Result<(), String>) {
        match r {
            Ok(()) => {
                self.ok += 1;
                println!("ok {name}");
            }
            Err(e) => {
                self.failed += 1;
                println!("FAIL {name}: {e}");
            }
        }
    }
}

fn e<E: std::fmt::Debug>(x: E) -> String {
    format!("{x:?}")
}

fn expect(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn main() {
    let mut t = T { ok: 0, failed: 0 };
    let args: Vec<String> = std::env::args().collect();
    t.check("args", expect(args.len() == 3 && args[1] == "alpha" && args[2] == "beta γ", &format!("{args:?}")));
    t.check("env", expect(std::env::var("WT").as_deref() == Ok("yes"), "WT=yes missing"));

    t.check(
        "write_read",
        (|| {
            fs::write("f.txt", b"hello").map_err(e)?;
            let mut f = fs::OpenOptions::new().append(true).open("f.txt").map_err(e)?;
            f.write_all(b" world").map_err(e)?;
            drop(f);
            let s = fs::read_to_string("f.txt").map_err(e)?;
            expect(s == "hello world", &s)
        })(),
    );
    t.check(
        "metadata",
        (|| {
            let m = fs::metadata("f.txt").map_err(e)?;
            expect(m.len() == 11 && m.is_file(), &format!("{m:?}"))?;
            let d = fs::metadata(".").map_err(e)?;
            expect(d.is_dir(), "dir")?;
            let age = m.modified().map_err(e)?.duration_since(UNIX_EPOCH).map_err(e)?;
            expect(age.as_secs() > 1_600_000_000, &format!("mtime {age:?}"))
        })(),
    );
    t.check(
        "seek_and_set_len",
        (|| {
            let mut f = fs::OpenOptions::new().read(true).write(true).open("f.txt").map_err(e)?;
            f.seek(SeekFrom::Start(6)).map_err(e)?;
            let mut s = String::new();
            f.read_to_string(&mut s).map_err(e)?;
            expect(s == "world", &s)?;
            f.set_len(5).map_err(e)?;
            expect(fs::read("f.txt").map_err(e)? == b"hello", "truncate")?;
            let pos = f.seek(SeekFrom::End(-2)).map_err(e)?;
            expect(pos == 3, &format!("pos {pos}"))
        })(),
    );
    t.check(
        "directories",
        (|| {
            fs::create_dir_all("a/b/c").map_err(e)?;
            fs::write("a/b/c/x", b"1").map_err(e)?;
            fs::write("a/y", b"2").map_err(e)?;
            let mut names: Vec<String> = fs::read_dir("a")
                .map_err(e)?
                .map(|d| d.map(|d| d.file_name().to_string_lossy().into_owned()))
                .collect::<Result<_, _>>()
                .map_err(e)?;
            names.sort();
            expect(names == ["b", "y"], &format!("{names:?}"))?;
            expect(fs::remove_dir("a/b").is_err(), "removed a non-empty directory")?;
            fs::remove_dir_all("a").map_err(e)?;
            expect(fs::metadata("a").is_err(), "still there")
        })(),
    );
    t.check(
        "rename",
        (|| {
            fs::write("r1", b"r").map_err(e)?;
            fs::rename("r1", "r2").map_err(e)?;
            expect(fs::metadata("r1").is_err() && fs::read("r2").map_err(e)? == b"r", "rename")
        })(),
    );
    t.check(
        "hard_link",
        (|| {
            fs::hard_link("r2", "r3").map_err(e)?;
            fs::remove_file("r2").map_err(e)?;
            expect(fs::read("r3").map_err(e)? == b"r", "link content")
        })(),
    );
    t.check(
        "symlink",
        (|| {
            std::os::wasi::fs::symlink_path("r3", "s").map_err(e)?;
            expect(fs::read_link("s").map_err(e)?.to_str() == Some("r3"), "readlink")?;
            expect(fs::read("s").map_err(e)? == b"r", "follow")?;
            expect(fs::symlink_metadata("s").map_err(e)?.file_type().is_symlink(), "lstat")
        })(),
    );
    t.check(
        "errors",
        (|| {
            let nf = fs::read("missing").unwrap_err();
            expect(nf.kind() == std::io::ErrorKind::NotFound, &e(nf))?;
            fs::create_dir("d").map_err(e)?;
            let ex = fs::create_dir("d").unwrap_err();
            expect(ex.kind() == std::io::ErrorKind::AlreadyExists, &e(ex))?;
            expect(fs::read("d").is_err(), "read a directory")
        })(),
    );
    t.check(
        "sandbox_dotdot",
        expect(fs::read("../secret.txt").is_err() && fs::File::create("../evil").is_err(), "escaped with .."),
    );
    t.check("sandbox_absolute", expect(fs::read("/extra_files/welcome.txt").is_err(), "escaped with an absolute path"));
    t.check(
        "sandbox_symlink",
        (|| {
            // Links that would point outside the sandbox cannot even be made (as in wasmtime).
            let out = std::os::wasi::fs::symlink_path("../secret.txt", "out");
            expect(out.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied), &format!("{out:?}"))?;
            expect(fs::read("out").is_err(), "escaped through a symlink")?;
            let abs = std::os::wasi::fs::symlink_path("/etc", "abs");
            expect(abs.is_err(), "made an absolute symlink")?;
            expect(fs::read_dir("abs").is_err(), "escaped through an absolute symlink")?;
            // One that stays inside works.
            fs::create_dir_all("linkdir").map_err(e)?;
            std::os::wasi::fs::symlink_path("../linkdir", "linkdir/self").map_err(e)?;
            expect(fs::read_dir("linkdir/self").is_ok(), "a symlink inside the sandbox")
        })(),
    );
    t.check(
        "clocks",
        (|| {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(e)?;
            expect(now.as_secs() > 1_700_000_000, &format!("{now:?}"))?;
            let a = Instant::now();
            std::thread::sleep(Duration::from_millis(20));
            let el = a.elapsed();
            expect(el >= Duration::from_millis(20) && el < Duration::from_secs(5), &format!("slept {el:?}"))
        })(),
    );
    t.check(
        "random",
        (|| {
            use std::collections::hash_map::RandomState;
            use std::hash::BuildHasher;
            let a = RandomState::new().hash_one(1u32);
            let b = RandomState::new().hash_one(1u32);
            expect(a != b, "two random hash keys were equal")
        })(),
    );
    t.check(
        "stdin",
        (|| {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(e)?;
            expect(s == "line one\nline two\n", &format!("{s:?}"))
        })(),
    );
    t.check("stderr", std::io::stderr().write_all(b"to stderr\n").map_err(e));
    println!("wasi-test: {} ok, {} failed", t.ok, t.failed);
    std::process::exit(t.failed as i32);
}
