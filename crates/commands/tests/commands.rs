//! The file commands, driven through the real shell interpreter over an in-memory namespace.
use std::io::Cursor;
use std::sync::Arc;

use keel_shell::exec::{InputStream, OutputStream};
use keel_shell::{Host, Io, Shell, Terminal};
use keel_vfs::{MemFs, TarFs, Vfs};

fn clock() -> u64 {
    1_795_673_400_000_000_000
}

struct Term(Vec<u8>);

impl Terminal for Term {
    fn write(&mut self, d: &[u8]) {
        self.0.extend_from_slice(d);
    }
    fn read(&mut self, _: &mut [u8]) -> usize {
        0
    }
}

struct TestHost {
    vfs: Vfs,
}

impl Host for TestHost {
    fn run(&mut self, shell: &mut Shell, argv: &[String], io: &mut Io<'_>) -> Option<i32> {
        keel_commands::run(&self.vfs, shell, argv, io)
    }
    fn read_file(&mut self, shell: &Shell, path: &str) -> Result<Vec<u8>, String> {
        keel_commands::read_file(&self.vfs, &keel_commands::cwd(shell), path).map_err(|e| e.to_string())
    }
    fn open_input(&mut self, shell: &Shell, path: &str) -> Result<Box<dyn InputStream>, String> {
        keel_commands::open_input(&self.vfs, &keel_commands::cwd(shell), path)
    }
    fn open_output(&mut self, shell: &Shell, path: &str, append: bool) -> Result<Box<dyn OutputStream>, String> {
        keel_commands::open_output(&self.vfs, &keel_commands::cwd(shell), path, append)
    }
}

struct Sh {
    shell: Shell,
    host: TestHost,
}

impl Sh {
    fn new() -> Sh {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Deterministic);
        for (p, d) in
            [("hello.txt", &b"hello\n"[..]), ("dir/a b.txt", b"spaced"), ("script.sh", b"echo from script\nX=7\n")]
        {
            let mut h = tar::Header::new_gnu();
            h.set_size(d.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, p, Cursor::new(d)).unwrap();
        }
        let ar: &'static [u8] = Box::leak(b.into_inner().unwrap().into_boxed_slice());
        let vfs = Vfs::new(Arc::new(MemFs::new(1 << 24, clock)));
        vfs.mount("/tmp", Arc::new(MemFs::new(1 << 20, clock))).unwrap();
        vfs.mount("/extra_files", Arc::new(TarFs::new(ar).unwrap())).unwrap();
        vfs.mount("/dev", Arc::new(keel_vfs::DevFs::new(|b| b.fill(1), clock()))).unwrap();
        let mut shell = Shell::new();
        shell.vars.insert("PWD".into(), "/".into());
        shell.vars.insert("HOME".into(), "/".into());
        Sh { shell, host: TestHost { vfs } }
    }

    fn run(&mut self, line: &str) -> String {
        let mut t = Term(Vec::new());
        self.shell.run_line(line, &mut self.host, &mut t);
        String::from_utf8(t.0).unwrap()
    }
}

#[test]
fn ls_cat_and_errors_read_like_unix() {
    let mut sh = Sh::new();
    assert_eq!(sh.run("ls /extra_files | cat"), "dir\nhello.txt\nscript.sh\n");
    assert_eq!(sh.run("cat /extra_files/hello.txt '/extra_files/dir/a b.txt'"), "hello\nspaced");
    assert_eq!(sh.run("cat /nope"), "cat: /nope: no such file or directory\n");
    assert_eq!(sh.run("echo $?"), "1\n");
    assert_eq!(sh.run("touch /extra_files/x"), "touch: cannot touch '/extra_files/x': read-only file system\n");
    assert_eq!(sh.run("echo hi > /extra_files/y"), "keel: /extra_files/y: read-only file system\n");
    assert_eq!(sh.run("ls -z"), "ls: invalid option -- 'z'\nusage: ls [-l] [-a] [PATH...]\n");
    let long = sh.run("ls -l /extra_files/hello.txt");
    assert_eq!(long, "-  1 6 1970-01-01 00:00 /extra_files/hello.txt\n");
}

#[test]
fn cd_pwd_mkdir_and_relative_paths() {
    let mut sh = Sh::new();
    assert_eq!(sh.run("mkdir -p /tmp/a/b/c && cd /tmp/a/b && pwd"), "/tmp/a/b\n");
    assert_eq!(sh.run("echo x > c/f; cat c/f; cd ..; pwd; cd; pwd"), "x\n/tmp/a\n/\n");
    assert_eq!(sh.run("cd /extra_files/hello.txt"), "cd: /extra_files/hello.txt: not a directory\n");
    assert_eq!(sh.run("mkdir /tmp/a"), "mkdir: cannot create directory '/tmp/a': file exists\n");
    assert_eq!(sh.run("mkdir /tmp/x/y"), "mkdir: cannot create directory '/tmp/x/y': no such file or directory\n");
}

#[test]
fn redirections_append_and_stdin() {
    let mut sh = Sh::new();
    sh.run("echo one > /tmp/f; echo two >> /tmp/f");
    assert_eq!(sh.run("cat < /tmp/f"), "one\ntwo\n");
    assert_eq!(
        sh.run("cat /tmp/f | sha256sum"),
        "0b8658e2d7fe3e2d2d9e8cf2c9c3d6b6b1bd7b0e5cea0b0b5e2ed2cdd1d7b6a9  -\n"
            .replace("0b8658e2d7fe3e2d2d9e8cf2c9c3d6b6b1bd7b0e5cea0b0b5e2ed2cdd1d7b6a9", &sha("one\ntwo\n"))
    );
}

fn sha(s: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_full_tmp_stops_a_flood_with_a_clear_error() {
    let mut sh = Sh::new();
    // /tmp holds 1 MiB; /dev/zero never ends.
    let out = sh.run("cat /extra_files/hello.txt > /tmp/ok; cat /dev/zero > /tmp/full");
    assert_eq!(out, "keel: /tmp/full: no space left on device\n");
    assert_eq!(sh.run("echo $?"), "1\n");
    assert_eq!(sh.run("rm /tmp/full; echo fine > /tmp/after; cat /tmp/after"), "fine\n");
}

#[test]
fn cp_mv_rm_and_rmdir() {
    let mut sh = Sh::new();
    assert_eq!(sh.run("cp -r /extra_files/dir /tmp/copy && ls /tmp/copy"), "a b.txt\n");
    assert_eq!(
        sh.run("cp /extra_files/dir /tmp/x"),
        "cp: -r not specified; omitting directory '/extra_files/dir': is a directory\n"
    );
    assert_eq!(sh.run("cp /extra_files/hello.txt /tmp && cat /tmp/hello.txt"), "hello\n");
    assert_eq!(sh.run("mv /tmp/hello.txt /tmp/copy/ && ls /tmp/copy | cat"), "a b.txt\nhello.txt\n");
    assert_eq!(sh.run("mv /tmp/copy /renamed && ls /renamed"), "a b.txt    hello.txt\n");
    assert_eq!(sh.run("rmdir /renamed"), "rmdir: failed to remove '/renamed': directory not empty\n");
    assert_eq!(sh.run("rm /renamed"), "rm: cannot remove '/renamed': is a directory\n");
    assert_eq!(sh.run("rm -r /renamed && ls /renamed"), "ls: cannot access '/renamed': no such file or directory\n");
    assert_eq!(sh.run("rm -f /missing; echo $?"), "0\n");
    assert_eq!(sh.run("rm -r /"), "rm: refusing to remove '/': would remove the current, parent or root directory\n");
    assert_eq!(sh.run("cp -r /tmp /tmp/inside"), "cp: cannot copy '/tmp' to '/tmp/inside': invalid argument\n");
    assert_eq!(
        sh.run("mv /extra_files/hello.txt /tmp/"),
        "mv: cannot move '/extra_files/hello.txt' to '/tmp/hello.txt': read-only file system\n"
    );
}

#[test]
fn links_stat_hexdump_df() {
    let mut sh = Sh::new();
    assert_eq!(sh.run("ln -s /extra_files/hello.txt /tmp/l && cat /tmp/l"), "hello\n");
    assert!(sh.run("ls -l /tmp").contains("l -> /extra_files/hello.txt"));
    let st = sh.run("stat /extra_files/hello.txt");
    assert!(st.contains("Size: 6") && st.contains("Type: regular file"), "{st}");
    assert_eq!(
        sh.run("hexdump /extra_files/hello.txt"),
        "00000000  68 65 6c 6c 6f 0a                                 |hello.|\n00000006\n"
    );
    let df = sh.run("df");
    assert!(df.contains("/extra_files") && df.contains("tarfs") && df.contains("(ro)"), "{df}");
}

#[test]
fn source_runs_a_script() {
    let mut sh = Sh::new();
    assert_eq!(sh.run("source /extra_files/script.sh; echo $X"), "from script\n7\n");
    assert_eq!(sh.run("source /nope"), "source: /nope: no such file or directory\n");
    sh.run("echo 'source /tmp/self.sh' > /tmp/self.sh");
    assert!(sh.run("source /tmp/self.sh").contains("nested too deeply"));
}

#[test]
fn completion_of_paths() {
    let sh = Sh::new();
    let c = keel_commands::complete_path(&sh.host.vfs, "/", "/extra_files/h");
    assert_eq!(c, ["/extra_files/hello.txt"]);
    let c = keel_commands::complete_path(&sh.host.vfs, "/", "/ex");
    assert_eq!(c, ["/extra_files/"]);
    let c = keel_commands::complete_path(&sh.host.vfs, "/extra_files", "d");
    assert_eq!(c, ["dir/"]);
}

#[test]
fn trees_with_links_and_mounts_copy_and_remove_like_unix() {
    let mut sh = Sh::new();
    sh.run("mkdir -p /w/a/b/c && echo x > /w/a/b/c/f && echo y > /w/a/top && ln -s /w/a/b /w/a/link");
    // cp -r follows links (a copy of b appears under link); rm -r removes a link, not its target.
    assert_eq!(sh.run("cp -r /w/a /w/copy && cat /w/copy/link/c/f /w/copy/b/c/f /w/copy/top"), "x\nx\ny\n");
    assert_eq!(sh.run("rm -r /w/copy/link && ls /w/copy/b/c && ls /w/a/b/c"), "f\nf\n");
    // A link back up the tree: the copy stops at the path length limit with an error, no hang.
    sh.run("ln -s /w/loop /w/loop; ln -s .. /w/a/b/up");
    let out = sh.run("cp -r /w/a /w/deep; echo $?");
    assert!(out.contains("file name too long") && out.ends_with("1\n"), "{out}");
    assert_eq!(sh.run("rm -r /w/deep /w/a; ls /w | cat"), "copy\nloop\n");
    // A mounted filesystem inside the tree is emptied but stays (busy), like rm -r on Linux.
    assert_eq!(
        sh.run("echo z > /tmp/z; rm -r /tmp; ls /tmp | cat"),
        "rm: cannot remove '/tmp': device or resource busy\n"
    );
}

#[test]
fn help_and_bad_options() {
    let mut sh = Sh::new();
    assert_eq!(sh.run("ls --help; echo $?"), "usage: ls [-l] [-a] [PATH...]\n  list directory contents\n0\n");
    assert_eq!(sh.run("mkdir --bogus /x; echo $?"), "mkdir: invalid option -- '-'\nusage: mkdir [-p] DIR...\n2\n");
    assert_eq!(sh.run("ls -z; echo $?"), "ls: invalid option -- 'z'\nusage: ls [-l] [-a] [PATH...]\n2\n");
    assert_eq!(sh.run("cp -a /extra_files/dir /tmp/arch && ls /tmp/arch"), "a b.txt\n");
    assert_eq!(sh.run("cat -- --help; echo $?"), "cat: --help: no such file or directory\n1\n");
    assert_eq!(sh.run("stat -x /; echo $?"), "stat: invalid option -- 'x'\nusage: stat PATH...\n2\n");
}
