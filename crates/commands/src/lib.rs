//! File commands for Keel's shell, written against the VFS and the shell's stream interface so
//! they run the same in the kernel and in host tests.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use keel_shell::exec::{InputStream, OutputStream};
use keel_shell::{Bytes, Io, Shell};
use keel_time::DateTime;
use keel_vfs::path::{file_name, join, normalize};
use keel_vfs::{Error, FileType, Handle, Lookup, Node, OpenOptions, Stat, Vfs};
use sha2::{Digest, Sha256};

/// The commands of this crate: (name, usage: summary, details).
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "ls",
        "ls [-l] [-a] [PATH...]: list directory contents",
        "-l: long format (type, links, size, modification time); -a: also . and ..",
    ),
    ("cd", "cd [DIR]: change the current directory (default $HOME)", ""),
    ("pwd", "pwd: print the current directory", ""),
    ("cat", "cat [FILE...]: print files (stdin when none or '-')", ""),
    ("hexdump", "hexdump [FILE...]: show bytes in hex and ASCII (like hexdump -C)", ""),
    ("mkdir", "mkdir [-p] DIR...: create directories (-p: with parents, no error if existing)", ""),
    ("rm", "rm [-r] [-f] PATH...: remove files (-r: directories too; -f: ignore missing)", ""),
    ("rmdir", "rmdir DIR...: remove empty directories", ""),
    ("touch", "touch FILE...: create empty files or update their time", ""),
    ("cp", "cp [-r] [-a] SRC... DEST: copy files (-r, -a: directories too)", ""),
    ("mv", "mv SRC... DEST: move or rename", ""),
    ("ln", "ln [-s] TARGET LINK: make a hard link (-s: symbolic link)", ""),
    ("stat", "stat PATH...: show file metadata", ""),
    ("sha256sum", "sha256sum [FILE...]: SHA-256 of files (stdin when none)", ""),
    ("df", "df: mounted filesystems and their usage", ""),
    ("sync", "sync: write everything cached to the disks and make it durable", ""),
];

/// The current directory (kept in `$PWD`).
pub fn cwd(shell: &Shell) -> String {
    shell.var("PWD").filter(|p| p.starts_with('/')).unwrap_or("/").to_string()
}

/// Runs one of this crate's commands; `None` if `argv[0]` is not one of them.
pub fn run(vfs: &Vfs, shell: &mut Shell, argv: &[String], io: &mut Io<'_>) -> Option<i32> {
    let name = argv[0].as_str();
    let mut c = Cmd { vfs, cwd: cwd(shell), name, io, status: 0, stopped: false };
    let mut args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    // Commands without flags still answer --help, take `--`, and refuse unknown options.
    if matches!(name, "cat" | "rmdir" | "touch" | "mv" | "stat" | "sha256sum" | "df" | "sync") {
        match c.opts(&args, "") {
            Some((_, operands)) => args = operands,
            None => return Some(c.status),
        }
    }
    match name {
        "ls" => c.ls(&args),
        "cd" => {
            if let Some(new) = c.cd(&args, shell.var("HOME").unwrap_or("/")) {
                shell.vars.insert("PWD".into(), new);
            }
        }
        "pwd" => {
            let d = c.cwd.clone();
            c.io.print(format_args!("{d}\n"));
        }
        "cat" => c.cat(&args),
        "hexdump" => c.hexdump(&args),
        "mkdir" => c.mkdir(&args),
        "rm" => c.rm(&args),
        "rmdir" => c.rmdir(&args),
        "touch" => c.touch(&args),
        "cp" => c.cp(&args),
        "mv" => c.mv(&args),
        "ln" => c.ln(&args),
        "stat" => c.stat(&args),
        "sha256sum" => c.sha256sum(&args),
        "df" => c.df(),
        "sync" => {
            for (path, e) in vfs.sync_all() {
                c.io.eprint(format_args!("sync: {path}: {e}\n"));
                c.status = 1;
            }
        }
        _ => return None,
    }
    Some(c.status)
}

/// Reads a whole file (for `<` redirection and `source`).
pub fn read_file(vfs: &Vfs, cwd: &str, path: &str) -> Result<Vec<u8>, Error> {
    let mut h = vfs.open(cwd, path, OpenOptions::read(), false)?;
    let mut out = Vec::new();
    let mut buf = alloc::vec![0u8; 64 * 1024];
    loop {
        let n = h.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// An open file read by `<` redirection.
pub struct FileIn(Handle);

impl InputStream for FileIn {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        self.0.read(buf).map_err(|e| e.to_string())
    }
}

/// An open file written by `>` and `>>` redirection.
pub struct FileOut(Handle);

impl OutputStream for FileOut {
    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        let mut rest = data;
        while !rest.is_empty() {
            let n = self.0.write(rest).map_err(|e| e.to_string())?;
            rest = &rest[n..];
        }
        Ok(())
    }
}

/// Opens a file for `<`.
pub fn open_input(vfs: &Vfs, cwd: &str, path: &str) -> Result<Box<dyn InputStream>, String> {
    let h = vfs.open(cwd, path, OpenOptions::read(), false).map_err(|e| e.to_string())?;
    if h.stat().is_ok_and(|s| s.kind == FileType::Dir) {
        return Err(Error::IsADirectory.to_string());
    }
    Ok(Box::new(FileIn(h)))
}

/// Opens (creating; truncating unless `append`) a file for `>` and `>>`.
pub fn open_output(vfs: &Vfs, cwd: &str, path: &str, append: bool) -> Result<Box<dyn OutputStream>, String> {
    let opts = if append { OpenOptions::append() } else { OpenOptions::write_new() };
    let h = vfs.open(cwd, path, opts, false).map_err(|e| e.to_string())?;
    Ok(Box::new(FileOut(h)))
}

/// Completes a path for Tab: candidates replacing `word` (directories end in `/`).
pub fn complete_path(vfs: &Vfs, cwd: &str, word: &str) -> Vec<String> {
    let (dir, prefix) = match word.rfind('/') {
        Some(i) => (&word[..=i], &word[i + 1..]),
        None => ("", word),
    };
    let lookup_dir = if dir.is_empty() { "." } else { dir };
    let Ok(entries) = vfs.readdir(cwd, lookup_dir, false) else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter(|e| e.name.starts_with(prefix) && (!e.name.starts_with('.') || prefix.starts_with('.')))
        .map(|e| {
            let is_dir = e.kind == FileType::Dir
                || (e.kind == FileType::Symlink
                    && vfs
                        .stat(cwd, &format!("{dir}{}", e.name), Lookup::FOLLOW)
                        .is_ok_and(|s| s.kind == FileType::Dir));
            format!("{dir}{}{}", e.name, if is_dir { "/" } else { "" })
        })
        .collect()
}

struct Cmd<'v, 'i, 'a> {
    vfs: &'v Vfs,
    cwd: String,
    name: &'v str,
    io: &'i mut Io<'a>,
    status: i32,
    /// Ctrl-C or kill arrived: the command stops quietly with status 130.
    stopped: bool,
}

fn flags<'x>(args: &[&'x str], allowed: &str) -> Result<(String, Vec<&'x str>), char> {
    let mut set = String::new();
    let mut rest = Vec::new();
    let mut only_operands = false;
    for a in args {
        if !only_operands && *a == "--" {
            only_operands = true;
        } else if !only_operands && a.len() > 1 && a.starts_with('-') {
            for ch in a[1..].chars() {
                if !allowed.contains(ch) {
                    return Err(ch);
                }
                set.push(ch);
            }
        } else {
            rest.push(*a);
        }
    }
    Ok((set, rest))
}

fn type_char(k: FileType) -> char {
    match k {
        FileType::File => '-',
        FileType::Dir => 'd',
        FileType::Symlink => 'l',
        FileType::CharDevice => 'c',
    }
}

fn kind_name(k: FileType) -> &'static str {
    match k {
        FileType::File => "regular file",
        FileType::Dir => "directory",
        FileType::Symlink => "symbolic link",
        FileType::CharDevice => "character device",
    }
}

fn date(ns: u64) -> String {
    let d = DateTime::from_unix((ns / 1_000_000_000) as i64);
    format!("{:04}-{:02}-{:02} {:02}:{:02}", d.year, d.month, d.day, d.hour, d.minute)
}

impl Cmd<'_, '_, '_> {
    fn fail(&mut self, what: &str, e: impl core::fmt::Display) {
        if self.stopped {
            return;
        }
        self.io.eprint(format_args!("{}: {what}: {e}\n", self.name));
        self.status = 1;
    }

    /// Between steps of long work (tree walks, copies): Err once Ctrl-C or kill arrived, or the
    /// output can take no more, so that the command ends within a step.
    fn check_stop(&mut self) -> Result<(), Error> {
        if self.stopped {
            return Err(Error::Io);
        }
        if self.io.interrupted() {
            self.stopped = true;
            self.status = if self.io.output_broken() { 1 } else { keel_shell::exec::STATUS_INTERRUPTED };
            return Err(Error::Io);
        }
        Ok(())
    }

    fn usage(&mut self, msg: &str) {
        let usage = COMMANDS.iter().find(|c| c.0 == self.name).map_or("", |c| c.1);
        let usage = usage.split(':').next().unwrap_or(usage);
        self.io.eprint(format_args!("{}: {msg}\nusage: {usage}\n", self.name));
        self.status = 2;
    }

    /// The flags and operands of `args`; None when the command should stop: after `--help`
    /// (usage on stdout, status 0) or an unknown option (usage on stderr, status 2).
    fn opts<'x>(&mut self, args: &[&'x str], allowed: &str) -> Option<(String, Vec<&'x str>)> {
        if args.iter().take_while(|a| **a != "--").any(|a| *a == "--help") {
            let help = COMMANDS.iter().find(|c| c.0 == self.name).map_or("", |c| c.1);
            self.io.print(format_args!("usage: {}\n", help.replacen(": ", "\n  ", 1)));
            return None;
        }
        match flags(args, allowed) {
            Ok(v) => Some(v),
            Err(c) => {
                self.usage(&format!("invalid option -- '{c}'"));
                None
            }
        }
    }

    fn ls(&mut self, args: &[&str]) {
        let Some((f, mut paths)) = self.opts(args, "la1") else {
            return;
        };
        let (long, all) = (f.contains('l'), f.contains('a'));
        if paths.is_empty() {
            paths.push(".");
        }
        let many = paths.len() > 1;
        let mut first = true;
        for p in paths {
            let st = match self.vfs.stat(&self.cwd, p, Lookup::FOLLOW) {
                Ok(s) => s,
                Err(e) => {
                    // A dangling symlink still lists.
                    match self.vfs.stat(&self.cwd, p, Lookup::NOFOLLOW) {
                        Ok(s) => s,
                        Err(_) => {
                            self.fail(&format!("cannot access '{p}'"), e);
                            continue;
                        }
                    }
                }
            };
            if st.kind != FileType::Dir {
                self.show(&[(p.to_string(), st, p.to_string())], long);
                continue;
            }
            if many {
                self.io.print(format_args!("{}{p}:\n", if first { "" } else { "\n" }));
            }
            first = false;
            let entries = match self.vfs.readdir(&self.cwd, p, false) {
                Ok(e) => e,
                Err(e) => {
                    self.fail(&format!("cannot open directory '{p}'"), e);
                    continue;
                }
            };
            let mut rows = Vec::new();
            if all {
                for dot in [".", ".."] {
                    if let Ok(s) = self.vfs.stat(&self.cwd, &join(p, dot), Lookup::FOLLOW) {
                        rows.push((dot.to_string(), s, join(p, dot)));
                    }
                }
            }
            for e in entries {
                if e.name.starts_with('.') && !all {
                    continue;
                }
                let full = join(p, &e.name);
                if let Ok(s) = self.vfs.stat(&self.cwd, &full, Lookup::NOFOLLOW) {
                    rows.push((e.name, s, full));
                }
            }
            self.show(&rows, long);
        }
    }

    fn show(&mut self, rows: &[(String, Stat, String)], long: bool) {
        let mut out = String::new();
        if long {
            let w = rows.iter().map(|r| r.1.size.to_string().len()).max().unwrap_or(1);
            for (name, s, full) in rows {
                let mut line = format!("{} {:>2} {:>w$} {} {name}", type_char(s.kind), s.nlink, s.size, date(s.mtime));
                if s.kind == FileType::Symlink {
                    if let Ok(t) = self.vfs.readlink(&self.cwd, full, false) {
                        line.push_str(" -> ");
                        line.push_str(&t);
                    }
                }
                out.push_str(&line);
                out.push('\n');
            }
        } else if self.io.stdout_is_terminal() && !rows.is_empty() {
            let names: Vec<String> = rows
                .iter()
                .map(|(n, s, _)| if s.kind == FileType::Dir { format!("{n}/") } else { n.clone() })
                .collect();
            let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(1) + 2;
            let cols = (80 / width).max(1);
            for (i, n) in names.iter().enumerate() {
                out.push_str(n);
                if (i + 1) % cols == 0 || i + 1 == names.len() {
                    out.push('\n');
                } else {
                    for _ in n.chars().count()..width {
                        out.push(' ');
                    }
                }
            }
        } else {
            for (n, _, _) in rows {
                out.push_str(n);
                out.push('\n');
            }
        }
        self.io.out(out.as_bytes());
    }

    fn cd(&mut self, args: &[&str], home: &str) -> Option<String> {
        if args.len() > 1 {
            self.usage("too many arguments");
            return None;
        }
        let target = args.first().copied().unwrap_or(home);
        match self.vfs.resolve(&self.cwd, target, Lookup::FOLLOW) {
            Ok(n) => match n.stat() {
                Ok(s) if s.kind == FileType::Dir => Some(n.path),
                Ok(_) => {
                    self.fail(target, Error::NotADirectory);
                    None
                }
                Err(e) => {
                    self.fail(target, e);
                    None
                }
            },
            Err(e) => {
                self.fail(target, e);
                None
            }
        }
    }

    /// Streams a file (or stdin for "-") through `f` in chunks.
    fn each_chunk(&mut self, path: &str, mut f: impl FnMut(&mut Io<'_>, &[u8])) -> bool {
        if path == "-" {
            let mut buf = alloc::vec![0u8; 4096];
            loop {
                let n = self.io.read(&mut buf);
                if n == 0 {
                    return true;
                }
                f(self.io, &buf[..n]);
            }
        }
        let mut h = match self.vfs.open(&self.cwd, path, OpenOptions::read(), false) {
            Ok(h) => h,
            Err(e) => {
                self.fail(path, e);
                return false;
            }
        };
        let mut buf = alloc::vec![0u8; 64 * 1024];
        loop {
            if self.check_stop().is_err() {
                return false;
            }
            match h.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => f(self.io, &buf[..n]),
                Err(e) => {
                    self.fail(path, e);
                    return false;
                }
            }
        }
    }

    fn cat(&mut self, args: &[&str]) {
        let files: Vec<&str> = if args.is_empty() { alloc::vec!["-"] } else { args.to_vec() };
        for f in files {
            if self.stopped {
                break;
            }
            self.each_chunk(f, |io, d| io.out(d));
        }
    }

    fn hexdump(&mut self, args: &[&str]) {
        let Some((_, files)) = self.opts(args, "C") else {
            return;
        };
        let files: Vec<&str> = if files.is_empty() { alloc::vec!["-"] } else { files };
        let mut offset = 0usize;
        let mut pending: Vec<u8> = Vec::new();
        let line = |off: usize, chunk: &[u8]| -> String {
            let mut s = format!("{off:08x} ");
            for i in 0..16 {
                if i == 8 {
                    s.push(' ');
                }
                match chunk.get(i) {
                    Some(b) => s.push_str(&format!(" {b:02x}")),
                    None => s.push_str("   "),
                }
            }
            s.push_str("  |");
            for &b in chunk {
                s.push(if (0x20..0x7f).contains(&b) { char::from(b) } else { '.' });
            }
            s.push_str("|\n");
            s
        };
        for f in files {
            self.each_chunk(f, |io, d| {
                pending.extend_from_slice(d);
                let whole = pending.len() / 16 * 16;
                let mut out = String::new();
                for c in pending[..whole].chunks(16) {
                    out.push_str(&line(offset, c));
                    offset += 16;
                }
                pending.drain(..whole);
                io.out(out.as_bytes());
            });
        }
        let mut out = String::new();
        if !pending.is_empty() {
            out.push_str(&line(offset, &pending));
            offset += pending.len();
        }
        if offset > 0 {
            out.push_str(&format!("{offset:08x}\n"));
        }
        self.io.out(out.as_bytes());
    }

    fn mkdir(&mut self, args: &[&str]) {
        let Some((f, dirs)) = self.opts(args, "p") else {
            return;
        };
        if dirs.is_empty() {
            return self.usage("missing operand");
        }
        for d in dirs {
            if self.stopped {
                break;
            }
            let r =
                if f.contains('p') { self.vfs.mkdir_all(&self.cwd, d) } else { self.vfs.mkdir(&self.cwd, d, false) };
            if let Err(e) = r {
                self.fail(&format!("cannot create directory '{d}'"), e);
            }
        }
    }

    /// Removes `path` and everything below it, depth first with a list instead of recursion (a
    /// tree as deep as the path limit allows must not overflow the kernel stack), going from
    /// directory node to child so that each step costs one lookup, not a walk from `/`.
    fn remove_tree(&mut self, path: &str) -> Result<(), Error> {
        let (parent, name) = self.vfs.resolve_parent(&self.cwd, path, Lookup::FOLLOW)?;
        // (directory, entry, the entry's own entries are gone)
        let mut todo: Vec<(Node, String, bool)> = alloc::vec![(parent, name, false)];
        while let Some((dir, name, emptied)) = todo.pop() {
            self.check_stop()?;
            let node = self.vfs.child(&dir, &name)?;
            if emptied || node.stat()?.kind != FileType::Dir {
                self.vfs.remove_child(&dir, &name)?;
                continue;
            }
            let entries = node.fs.readdir(node.ino)?;
            todo.push((dir, name, true));
            todo.extend(entries.into_iter().map(|e| (node.clone(), e.name, false)));
        }
        Ok(())
    }

    fn rm(&mut self, args: &[&str]) {
        let Some((f, paths)) = self.opts(args, "rfR") else {
            return;
        };
        let (recursive, force) = (f.contains('r') || f.contains('R'), f.contains('f'));
        if paths.is_empty() && !force {
            return self.usage("missing operand");
        }
        for p in paths {
            if self.stopped {
                break;
            }
            let r = match self.vfs.stat(&self.cwd, p, Lookup::NOFOLLOW) {
                Ok(s) if s.kind == FileType::Dir && !recursive => Err(Error::IsADirectory),
                Ok(s) if s.kind == FileType::Dir => {
                    let abs = normalize(&join(&self.cwd, p)).unwrap_or_default();
                    if abs == "/" || file_name(p) == "." || file_name(p) == ".." {
                        self.fail(
                            &format!("refusing to remove '{p}'"),
                            "would remove the current, parent or root directory",
                        );
                        continue;
                    }
                    self.remove_tree(p)
                }
                Ok(_) => self.vfs.unlink(&self.cwd, p, false),
                Err(Error::NotFound) if force => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                self.fail(&format!("cannot remove '{p}'"), e);
            }
        }
    }

    fn rmdir(&mut self, args: &[&str]) {
        if args.is_empty() {
            return self.usage("missing operand");
        }
        for d in args {
            if let Err(e) = self.vfs.rmdir(&self.cwd, d, false) {
                self.fail(&format!("failed to remove '{d}'"), e);
            }
        }
    }

    fn touch(&mut self, args: &[&str]) {
        if args.is_empty() {
            return self.usage("missing file operand");
        }
        for f in args {
            let r = match self.vfs.stat(&self.cwd, f, Lookup::FOLLOW) {
                Ok(_) => self.vfs.set_times(&self.cwd, f, Lookup::FOLLOW, None, None),
                Err(Error::NotFound) => {
                    let opts = OpenOptions { write: true, create: true, ..Default::default() };
                    self.vfs.open(&self.cwd, f, opts, false).map(|_| ())
                }
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                self.fail(&format!("cannot touch '{f}'"), e);
            }
        }
    }

    /// Where SRC goes when the destination is DEST (into it when it is a directory).
    fn target(&self, src: &str, dest: &str, many: bool) -> String {
        let is_dir = self.vfs.stat(&self.cwd, dest, Lookup::FOLLOW).is_ok_and(|s| s.kind == FileType::Dir);
        if is_dir || many {
            join(dest, file_name(src))
        } else {
            dest.to_string()
        }
    }

    fn copy_file(&mut self, src: &str, dst: &str) -> Result<(), Error> {
        let mut from = self.vfs.open(&self.cwd, src, OpenOptions::read(), false)?;
        let a = from.node().clone();
        if let Ok(b) = self.vfs.resolve(&self.cwd, dst, Lookup::FOLLOW) {
            if a.dev == b.dev && a.ino == b.ino {
                return Err(Error::InvalidArgument);
            }
        }
        let mut to = self.vfs.open(&self.cwd, dst, OpenOptions::write_new(), false)?;
        let mut buf = alloc::vec![0u8; 64 * 1024];
        loop {
            self.check_stop()?;
            let n = from.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let w = to.write(rest)?;
                rest = &rest[w..];
            }
        }
    }

    fn copy_tree(&mut self, src: &str, dst: &str) -> Result<(), Error> {
        let st = self.vfs.stat(&self.cwd, src, Lookup::FOLLOW)?;
        if st.kind != FileType::Dir {
            return self.copy_file(src, dst);
        }
        let s = normalize(&join(&self.cwd, src))?;
        let d = normalize(&join(&self.cwd, dst))?;
        if d == s || d.starts_with(&join(&s, "")) {
            return Err(Error::InvalidArgument);
        }
        match self.vfs.mkdir(&self.cwd, dst, false) {
            Ok(()) | Err(Error::AlreadyExists) => {}
            Err(e) => return Err(e),
        }
        // Depth first with a list, node to node, as in remove_tree. Links are followed; one
        // back up the tree ends at the path length limit.
        let mut todo = alloc::vec![(
            self.vfs.resolve(&self.cwd, src, Lookup::FOLLOW)?,
            self.vfs.resolve(&self.cwd, dst, Lookup::FOLLOW)?
        )];
        while let Some((s, d)) = todo.pop() {
            for e in s.fs.readdir(s.ino)? {
                self.check_stop()?;
                let mut from = self.vfs.child(&s, &e.name)?;
                if from.stat()?.kind == FileType::Symlink {
                    from = self.vfs.resolve("/", &from.path, Lookup::FOLLOW)?;
                }
                if from.stat()?.kind == FileType::Dir {
                    let to = self.vfs.mkdir_child(&d, &e.name)?;
                    todo.push((from, to));
                } else {
                    self.copy_file(&from.path, &join(&d.path, &e.name))?;
                }
            }
        }
        Ok(())
    }

    fn cp(&mut self, args: &[&str]) {
        let Some((f, paths)) = self.opts(args, "rRa") else {
            return;
        };
        if paths.len() < 2 {
            return self.usage("missing destination file operand");
        }
        let (srcs, dest) = paths.split_at(paths.len() - 1);
        let dest = dest[0];
        let many = srcs.len() > 1;
        for s in srcs {
            if self.stopped {
                break;
            }
            let t = self.target(s, dest, many);
            let r = match self.vfs.stat(&self.cwd, s, Lookup::FOLLOW) {
                Ok(st) if st.kind == FileType::Dir && !(f.contains('r') || f.contains('R') || f.contains('a')) => {
                    self.fail(&format!("-r not specified; omitting directory '{s}'"), "is a directory");
                    continue;
                }
                Ok(_) => self.copy_tree(s, &t),
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                self.fail(&format!("cannot copy '{s}' to '{t}'"), e);
            }
        }
    }

    fn mv(&mut self, args: &[&str]) {
        if args.len() < 2 {
            return self.usage("missing destination file operand");
        }
        let (srcs, dest) = args.split_at(args.len() - 1);
        let dest = dest[0];
        let many = srcs.len() > 1;
        for s in srcs {
            let t = self.target(s, dest, many);
            let r = match self.vfs.rename(&self.cwd, s, &self.cwd, &t, false) {
                // Across filesystems: copy, then remove.
                Err(Error::CrossDevice) => self.copy_tree(s, &t).and_then(|_| self.remove_tree(s)),
                r => r,
            };
            if let Err(e) = r {
                self.fail(&format!("cannot move '{s}' to '{t}'"), e);
            }
        }
    }

    fn ln(&mut self, args: &[&str]) {
        let Some((f, paths)) = self.opts(args, "s") else {
            return;
        };
        if paths.len() != 2 {
            return self.usage("expected TARGET and LINK");
        }
        let r = if f.contains('s') {
            self.vfs.symlink(paths[0], &self.cwd, paths[1], false)
        } else {
            self.vfs.link(&self.cwd, paths[0], true, &self.cwd, paths[1], false)
        };
        if let Err(e) = r {
            self.fail(&format!("failed to create link '{}'", paths[1]), e);
        }
    }

    fn stat(&mut self, args: &[&str]) {
        if args.is_empty() {
            return self.usage("missing operand");
        }
        for p in args {
            match self.vfs.stat(&self.cwd, p, Lookup::NOFOLLOW) {
                Ok(s) => {
                    let mut out = format!("  File: {p}");
                    if s.kind == FileType::Symlink {
                        if let Ok(t) = self.vfs.readlink(&self.cwd, p, false) {
                            out.push_str(&format!(" -> {t}"));
                        }
                    }
                    out.push_str(&format!(
                        "\n  Size: {:<12} Type: {}\nDevice: {:<10} Inode: {:<10} Links: {}\nAccess: {}\nModify: {}\nChange: {}\n",
                        s.size,
                        kind_name(s.kind),
                        s.dev,
                        s.ino,
                        s.nlink,
                        DateTime::from_unix((s.atime / 1_000_000_000) as i64),
                        DateTime::from_unix((s.mtime / 1_000_000_000) as i64),
                        DateTime::from_unix((s.ctime / 1_000_000_000) as i64),
                    ));
                    self.io.out(out.as_bytes());
                }
                Err(e) => self.fail(&format!("cannot stat '{p}'"), e),
            }
        }
    }

    fn sha256sum(&mut self, args: &[&str]) {
        let files: Vec<&str> = if args.is_empty() { alloc::vec!["-"] } else { args.to_vec() };
        for f in files {
            if self.stopped {
                break;
            }
            let mut h = Sha256::new();
            if self.each_chunk(f, |_, d| h.update(d)) {
                let digest = h.finalize();
                let mut s = String::with_capacity(64 + f.len() + 3);
                for b in digest {
                    s.push_str(&format!("{b:02x}"));
                }
                self.io.print(format_args!("{s}  {f}\n"));
            }
        }
    }

    fn df(&mut self) {
        let mut out =
            format!("{:<14} {:<8} {:>10} {:>10} {:>10} {:>5}\n", "Mounted on", "Type", "Size", "Used", "Avail", "Use%");
        for (path, info) in self.vfs.mounts() {
            let avail = info.total_bytes.saturating_sub(info.used_bytes);
            let pct = (info.used_bytes * 100).checked_div(info.total_bytes).unwrap_or(0);
            out.push_str(&format!(
                "{:<14} {:<8} {:>10} {:>10} {:>10} {:>4}%{}\n",
                path,
                info.kind,
                Bytes(info.total_bytes).to_string(),
                Bytes(info.used_bytes).to_string(),
                Bytes(avail).to_string(),
                pct,
                if info.readonly { " (ro)" } else { "" }
            ));
        }
        self.io.out(out.as_bytes());
    }
}
