//! Every WASI function, its success and error paths, called directly on a byte-array memory.
use std::sync::Arc;

use keel_vfs::{MemFs, Vfs};
use keel_wasi::errno::*;
use keel_wasi::types::{
    clockid, eventtype, fdflags, filetype, fstflags, oflags, rights, whence, LOOKUP_SYMLINK_FOLLOW,
};
use keel_wasi::{Abort, Config, Pending, Preopen, System, WasiCtx};

struct Sys;

impl System for Sys {
    fn realtime_ns(&self) -> u64 {
        1_700_000_000_000_000_000
    }
    fn monotonic_ns(&self) -> u64 {
        5_000
    }
    fn random(&mut self, buf: &mut [u8]) {
        buf.fill(0xab);
    }
}

const PRE: u32 = 3;

struct W {
    ctx: WasiCtx,
    mem: Vec<u8>,
    vfs: &'static Vfs,
}

impl W {
    fn new() -> W {
        let vfs = Vfs::new(Arc::new(MemFs::new(1 << 20, || 42)));
        vfs.mkdir("/", "/sandbox", false).unwrap();
        vfs.mkdir("/", "/sandbox/sub", false).unwrap();
        let mut h = vfs.open("/", "/sandbox/data.txt", keel_vfs::OpenOptions::write_new(), false).unwrap();
        h.write(b"0123456789").unwrap();
        drop(h);
        vfs.open("/", "/outside.txt", keel_vfs::OpenOptions::write_new(), false).unwrap();
        let vfs: &'static Vfs = Box::leak(Box::new(vfs));
        let config = Config {
            args: vec!["prog".into(), "a b".into()],
            env: vec![("K".into(), "V".into())],
            preopens: vec![Preopen { guest: "/sandbox".into(), host: "/sandbox".into() }],
            max_fds: 16,
            tty: [true, true, true],
            listeners: vec![],
        };
        W { ctx: WasiCtx::new(vfs, Box::new(Sys), config).unwrap(), mem: vec![0; 65536], vfs }
    }

    /// Puts bytes at `at`, returns (ptr, len).
    fn put(&mut self, at: u32, data: &[u8]) -> (u32, u32) {
        self.mem[at as usize..at as usize + data.len()].copy_from_slice(data);
        (at, data.len() as u32)
    }

    fn u32(&self, at: u32) -> u32 {
        u32::from_le_bytes(self.mem[at as usize..at as usize + 4].try_into().unwrap())
    }

    fn u64(&self, at: u32) -> u64 {
        u64::from_le_bytes(self.mem[at as usize..at as usize + 8].try_into().unwrap())
    }

    /// An iovec array at 100 pointing at `buf` with `len`.
    fn iov(&mut self, buf: u32, len: u32) -> u32 {
        self.put(100, &buf.to_le_bytes());
        self.put(104, &len.to_le_bytes());
        100
    }

    fn open(&mut self, path: &str, of: u16, base: u64, ff: u16) -> Result<u32, u16> {
        let (p, l) = self.put(1000, path.as_bytes());
        let r = self.ctx.path_open(
            &mut self.mem,
            PRE,
            LOOKUP_SYMLINK_FOLLOW,
            p,
            l,
            of,
            base,
            rights::FILE | rights::DIR,
            ff,
            200,
        );
        match r {
            Ok(SUCCESS) => Ok(self.u32(200)),
            Ok(e) => Err(e),
            Err(a) => panic!("{a:?}"),
        }
    }

    fn path(&mut self, path: &str) -> (u32, u32) {
        self.put(1000, path.as_bytes())
    }
}

fn ok(r: Result<u16, Abort>) -> u16 {
    r.expect("no abort")
}

const BAD: u32 = 0xffff_fff0;

#[test]
fn args_and_environ() {
    let mut w = W::new();
    assert_eq!(ok(w.ctx.args_sizes_get(&mut w.mem, 0, 4)), SUCCESS);
    assert_eq!((w.u32(0), w.u32(4)), (2, 9));
    assert_eq!(ok(w.ctx.args_get(&mut w.mem, 16, 64)), SUCCESS);
    assert_eq!(w.u32(16), 64);
    assert_eq!(&w.mem[64..73], b"prog\0a b\0");
    assert_eq!(ok(w.ctx.environ_sizes_get(&mut w.mem, 0, 4)), SUCCESS);
    assert_eq!((w.u32(0), w.u32(4)), (1, 4));
    assert_eq!(ok(w.ctx.environ_get(&mut w.mem, 16, 64)), SUCCESS);
    assert_eq!(&w.mem[64..68], b"K=V\0");
    assert_eq!(ok(w.ctx.args_get(&mut w.mem, BAD, 64)), FAULT);
    assert_eq!(ok(w.ctx.args_sizes_get(&mut w.mem, BAD, 4)), FAULT);
    assert_eq!(ok(w.ctx.environ_get(&mut w.mem, 16, 65534)), FAULT);
    assert_eq!(ok(w.ctx.environ_sizes_get(&mut w.mem, 0, BAD)), FAULT);
}

#[test]
fn clocks_and_random() {
    let mut w = W::new();
    assert_eq!(ok(w.ctx.clock_res_get(&mut w.mem, clockid::MONOTONIC, 0)), SUCCESS);
    assert!(w.u64(0) > 0);
    assert_eq!(ok(w.ctx.clock_res_get(&mut w.mem, 9, 0)), INVAL);
    assert_eq!(ok(w.ctx.clock_time_get(&mut w.mem, clockid::REALTIME, 0, 8)), SUCCESS);
    assert_eq!(w.u64(8), 1_700_000_000_000_000_000);
    assert_eq!(ok(w.ctx.clock_time_get(&mut w.mem, clockid::MONOTONIC, 0, 8)), SUCCESS);
    assert_eq!(w.u64(8), 5_000);
    assert_eq!(ok(w.ctx.clock_time_get(&mut w.mem, clockid::PROCESS_CPUTIME, 0, 8)), SUCCESS);
    assert_eq!(ok(w.ctx.clock_time_get(&mut w.mem, 77, 0, 8)), INVAL);
    assert_eq!(ok(w.ctx.clock_time_get(&mut w.mem, 0, 0, BAD)), FAULT);
    assert_eq!(ok(w.ctx.random_get(&mut w.mem, 32, 16)), SUCCESS);
    assert_eq!(&w.mem[32..48], &[0xab; 16]);
    assert_eq!(ok(w.ctx.random_get(&mut w.mem, 65530, 16)), FAULT);
}

#[test]
fn process_and_scheduling() {
    let mut w = W::new();
    assert_eq!(w.ctx.proc_exit(3), Err(Abort::Exit(3)));
    assert_eq!(ok(w.ctx.proc_raise(2)), NOSYS);
    assert_eq!(w.ctx.sched_yield(), Err(Abort::Suspend));
    assert!(matches!(w.ctx.pending(), Some(Pending::Yield)));
    assert_eq!(w.ctx.complete(&mut w.mem), SUCCESS);
    assert!(w.ctx.pending().is_none());
}

#[test]
fn stdio_read_write_and_suspension() {
    let mut w = W::new();
    let (b, l) = w.put(300, b"out!");
    let iov = w.iov(b, l);
    assert_eq!(ok(w.ctx.fd_write(&mut w.mem, 1, iov, 1, 8)), SUCCESS);
    assert_eq!(w.u32(8), 4);
    assert_eq!(ok(w.ctx.fd_write(&mut w.mem, 2, iov, 1, 8)), SUCCESS);
    assert_eq!(ok(w.ctx.fd_write(&mut w.mem, 1, iov, 1, 8)), SUCCESS);
    assert_eq!(ok(w.ctx.fd_write(&mut w.mem, 1, iov, 1, 8)), SUCCESS);
    // Order kept, runs merged.
    assert_eq!(w.ctx.take_output(), vec![(1, b"out!".to_vec()), (2, b"out!".to_vec()), (1, b"out!out!".to_vec())]);
    assert!(w.ctx.take_output().is_empty());
    assert_eq!(ok(w.ctx.fd_write(&mut w.mem, 0, iov, 1, 8)), NOTCAPABLE);
    assert_eq!(ok(w.ctx.fd_write(&mut w.mem, 77, iov, 1, 8)), BADF);
    assert_eq!(ok(w.ctx.fd_write(&mut w.mem, 1, BAD, 1, 8)), FAULT);
    assert_eq!(ok(w.ctx.fd_write(&mut w.mem, 1, iov, 1, BAD)), FAULT);
    // Reading stdin with nothing there suspends; completing delivers the input.
    let iov = w.iov(400, 16);
    assert_eq!(w.ctx.fd_read(&mut w.mem, 0, iov, 1, 8), Err(Abort::Suspend));
    assert!(!w.ctx.ready(0));
    w.ctx.push_stdin(b"typed\n");
    assert!(w.ctx.ready(0));
    assert_eq!(w.ctx.complete(&mut w.mem), SUCCESS);
    assert_eq!(w.u32(8), 6);
    assert_eq!(&w.mem[400..406], b"typed\n");
    w.ctx.close_stdin();
    assert_eq!(ok(w.ctx.fd_read(&mut w.mem, 0, iov, 1, 8)), SUCCESS);
    assert_eq!(w.u32(8), 0);
    assert_eq!(ok(w.ctx.fd_read(&mut w.mem, 1, iov, 1, 8)), NOTCAPABLE);
    // A flood of output asks to be flushed.
    let iov = w.iov(0, 65536);
    assert_eq!(w.ctx.fd_write(&mut w.mem, 1, iov, 1, 8), Err(Abort::Suspend));
    assert!(matches!(w.ctx.pending(), Some(Pending::Flush { .. })));
}

#[test]
fn prestat() {
    let mut w = W::new();
    assert_eq!(ok(w.ctx.fd_prestat_get(&mut w.mem, PRE, 0)), SUCCESS);
    assert_eq!((w.mem[0], w.u32(4)), (0, 8));
    assert_eq!(ok(w.ctx.fd_prestat_dir_name(&mut w.mem, PRE, 16, 8)), SUCCESS);
    assert_eq!(&w.mem[16..24], b"/sandbox");
    assert_eq!(ok(w.ctx.fd_prestat_dir_name(&mut w.mem, PRE, 16, 3)), NAMETOOLONG);
    assert_eq!(ok(w.ctx.fd_prestat_get(&mut w.mem, 1, 0)), BADF);
    assert_eq!(ok(w.ctx.fd_prestat_get(&mut w.mem, 99, 0)), BADF);
    assert_eq!(ok(w.ctx.fd_prestat_dir_name(&mut w.mem, PRE, BAD, 8)), FAULT);
}

#[test]
fn path_open_and_file_io() {
    let mut w = W::new();
    let fd = w
        .open("data.txt", 0, rights::FD_READ | rights::FD_SEEK | rights::FD_TELL | rights::FD_FILESTAT_GET, 0)
        .unwrap();
    let iov = w.iov(400, 4);
    assert_eq!(ok(w.ctx.fd_read(&mut w.mem, fd, iov, 1, 8)), SUCCESS);
    assert_eq!(&w.mem[400..404], b"0123");
    assert_eq!(ok(w.ctx.fd_tell(&mut w.mem, fd, 16)), SUCCESS);
    assert_eq!(w.u64(16), 4);
    assert_eq!(ok(w.ctx.fd_seek(&mut w.mem, fd, -2, whence::END, 16)), SUCCESS);
    assert_eq!(w.u64(16), 8);
    assert_eq!(ok(w.ctx.fd_seek(&mut w.mem, fd, -100, whence::CUR, 16)), INVAL);
    assert_eq!(ok(w.ctx.fd_seek(&mut w.mem, fd, 0, 9, 16)), INVAL);
    assert_eq!(ok(w.ctx.fd_seek(&mut w.mem, 1, 0, whence::SET, 16)), SPIPE);
    assert_eq!(ok(w.ctx.fd_tell(&mut w.mem, 1, 16)), SPIPE);
    assert_eq!(ok(w.ctx.fd_pread(&mut w.mem, fd, iov, 1, 1, 8)), SUCCESS);
    assert_eq!(&w.mem[400..404], b"1234");
    assert_eq!(ok(w.ctx.fd_pread(&mut w.mem, 1, iov, 1, 0, 8)), NOTCAPABLE);
    // Read-only descriptor: writing is refused.
    assert_eq!(ok(w.ctx.fd_write(&mut w.mem, fd, iov, 1, 8)), NOTCAPABLE);
    assert_eq!(ok(w.ctx.fd_pwrite(&mut w.mem, fd, iov, 1, 0, 8)), NOTCAPABLE);
    // A new file, written and read back with positional I/O.
    let nf = w.open("new.txt", oflags::CREAT | oflags::EXCL, rights::FILE, 0).unwrap();
    let (b, l) = w.put(500, b"abcdef");
    let iov = w.iov(b, l);
    assert_eq!(ok(w.ctx.fd_pwrite(&mut w.mem, nf, iov, 1, 2, 8)), SUCCESS);
    assert_eq!(w.u32(8), 6);
    assert_eq!(ok(w.ctx.fd_filestat_get(&mut w.mem, nf, 600)), SUCCESS);
    assert_eq!(w.mem[616], filetype::REGULAR_FILE);
    assert_eq!(w.u64(632), 8);
    assert_eq!(w.open("new.txt", oflags::CREAT | oflags::EXCL, rights::FILE, 0), Err(EXIST));
    assert_eq!(w.open("missing", 0, rights::FD_READ, 0), Err(NOENT));
    assert_eq!(w.open("data.txt", oflags::DIRECTORY, rights::FD_READ, 0), Err(NOTDIR));
    assert_eq!(w.open("sub", 0, rights::FD_WRITE, 0), Err(ISDIR));
    assert_eq!(w.open("x", 0x40, rights::FD_READ, 0), Err(INVAL));
    // Append mode always writes at the end.
    let af = w.open("data.txt", 0, rights::FILE, fdflags::APPEND).unwrap();
    let (b, l) = w.put(500, b"AB");
    let iov = w.iov(b, l);
    assert_eq!(ok(w.ctx.fd_write(&mut w.mem, af, iov, 1, 8)), SUCCESS);
    assert_eq!(ok(w.ctx.fd_filestat_get(&mut w.mem, af, 600)), SUCCESS);
    assert_eq!(w.u64(632), 12);
    // pwrite on an append descriptor writes at the offset and leaves the position alone.
    assert_eq!(ok(w.ctx.fd_tell(&mut w.mem, af, 640)), SUCCESS);
    let pos = w.u64(640);
    assert_eq!(ok(w.ctx.fd_pwrite(&mut w.mem, af, iov, 1, 0, 8)), SUCCESS);
    assert_eq!(w.u32(8), 2);
    assert_eq!(ok(w.ctx.fd_tell(&mut w.mem, af, 640)), SUCCESS);
    assert_eq!(w.u64(640), pos);
    assert_eq!(ok(w.ctx.fd_filestat_get(&mut w.mem, af, 600)), SUCCESS);
    assert_eq!(w.u64(632), 12);
    // Truncation on open.
    let tf = w.open("data.txt", oflags::TRUNC, rights::FILE, 0).unwrap();
    assert_eq!(ok(w.ctx.fd_filestat_get(&mut w.mem, tf, 600)), SUCCESS);
    assert_eq!(w.u64(632), 0);
    // Reading a directory descriptor.
    let df = w.open("sub", oflags::DIRECTORY, rights::FD_READDIR, 0).unwrap();
    let iov = w.iov(400, 4);
    assert_eq!(ok(w.ctx.fd_read(&mut w.mem, df, iov, 1, 8)), NOTCAPABLE);
}

#[test]
fn fd_table_operations() {
    let mut w = W::new();
    let a = w.open("data.txt", 0, rights::FILE, 0).unwrap();
    let b = w.open("data.txt", 0, rights::FD_READ, 0).unwrap();
    assert_eq!(ok(w.ctx.fd_renumber(a, b)), SUCCESS);
    assert_eq!(ok(w.ctx.fd_close(a)), BADF);
    assert_eq!(ok(w.ctx.fd_renumber(b, 77)), BADF);
    assert_eq!(ok(w.ctx.fd_close(b)), SUCCESS);
    assert_eq!(ok(w.ctx.fd_close(b)), BADF);
    // The limit on open descriptors.
    let mut last = Ok(0);
    for _ in 0..20 {
        last = w.open("data.txt", 0, rights::FD_READ, 0);
    }
    assert_eq!(last, Err(MFILE));
    assert_eq!(w.ctx.open_fds(), 16);
}

#[test]
fn fdstat_flags_and_rights() {
    let mut w = W::new();
    assert_eq!(ok(w.ctx.fd_fdstat_get(&mut w.mem, 1, 0)), SUCCESS);
    assert_eq!(w.mem[0], filetype::CHARACTER_DEVICE);
    assert_eq!(ok(w.ctx.fd_fdstat_get(&mut w.mem, PRE, 0)), SUCCESS);
    assert_eq!(w.mem[0], filetype::DIRECTORY);
    assert_eq!(ok(w.ctx.fd_fdstat_get(&mut w.mem, 50, 0)), BADF);
    assert_eq!(ok(w.ctx.fd_fdstat_get(&mut w.mem, 1, BAD)), FAULT);
    let f = w.open("data.txt", 0, rights::FILE, 0).unwrap();
    assert_eq!(ok(w.ctx.fd_fdstat_set_flags(f, fdflags::APPEND)), SUCCESS);
    assert_eq!(ok(w.ctx.fd_fdstat_get(&mut w.mem, f, 0)), SUCCESS);
    assert_eq!(u16::from_le_bytes([w.mem[2], w.mem[3]]), fdflags::APPEND);
    assert_eq!(ok(w.ctx.fd_fdstat_set_flags(f, 0x100)), INVAL);
    assert_eq!(ok(w.ctx.fd_fdstat_set_rights(f, rights::FD_READ, 0)), SUCCESS);
    assert_eq!(ok(w.ctx.fd_fdstat_set_rights(f, rights::FD_READ | rights::FD_WRITE, 0)), NOTCAPABLE);
    let iov = w.iov(400, 4);
    assert_eq!(ok(w.ctx.fd_write(&mut w.mem, f, iov, 1, 8)), NOTCAPABLE);
    assert_eq!(ok(w.ctx.fd_fdstat_set_flags(f, 0)), NOTCAPABLE);
}

#[test]
fn filestat_size_times_allocate_advise_sync() {
    let mut w = W::new();
    let f = w.open("data.txt", 0, rights::FILE, 0).unwrap();
    assert_eq!(ok(w.ctx.fd_filestat_set_size(f, 3)), SUCCESS);
    assert_eq!(ok(w.ctx.fd_filestat_get(&mut w.mem, f, 0)), SUCCESS);
    assert_eq!(w.u64(32), 3);
    assert_eq!(ok(w.ctx.fd_filestat_set_size(PRE, 3)), NOTCAPABLE);
    assert_eq!(ok(w.ctx.fd_filestat_set_size(1, 3)), NOTCAPABLE);
    assert_eq!(ok(w.ctx.fd_allocate(f, 10, 10)), SUCCESS);
    assert_eq!(ok(w.ctx.fd_filestat_get(&mut w.mem, f, 0)), SUCCESS);
    assert_eq!(w.u64(32), 20);
    assert_eq!(ok(w.ctx.fd_allocate(f, u64::MAX, 2)), FBIG);
    assert_eq!(ok(w.ctx.fd_filestat_set_times(f, 11, 22, fstflags::ATIM | fstflags::MTIM)), SUCCESS);
    assert_eq!(ok(w.ctx.fd_filestat_get(&mut w.mem, f, 0)), SUCCESS);
    assert_eq!((w.u64(40), w.u64(48)), (11, 22));
    assert_eq!(ok(w.ctx.fd_filestat_set_times(f, 0, 0, fstflags::ATIM | fstflags::ATIM_NOW)), INVAL);
    assert_eq!(ok(w.ctx.fd_filestat_get(&mut w.mem, 99, 0)), BADF);
    assert_eq!(ok(w.ctx.fd_advise(f, 0, 10, 1)), SUCCESS);
    assert_eq!(ok(w.ctx.fd_advise(f, 0, 10, 9)), INVAL);
    assert_eq!(ok(w.ctx.fd_advise(99, 0, 10, 1)), BADF);
    assert_eq!(ok(w.ctx.fd_sync(f)), SUCCESS);
    assert_eq!(ok(w.ctx.fd_datasync(f)), SUCCESS);
    assert_eq!(ok(w.ctx.fd_sync(99)), BADF);
    assert_eq!(ok(w.ctx.fd_datasync(PRE)), NOTCAPABLE);
}

#[test]
fn readdir_with_cookies() {
    let mut w = W::new();
    assert_eq!(ok(w.ctx.fd_readdir(&mut w.mem, PRE, 0, 4096, 0, 5000)), SUCCESS);
    let used = w.u32(5000) as usize;
    let mut names = Vec::new();
    let mut off = 0;
    while off + 24 <= used {
        let len = u32::from_le_bytes(w.mem[off + 16..off + 20].try_into().unwrap()) as usize;
        names.push(String::from_utf8_lossy(&w.mem[off + 24..off + 24 + len]).into_owned());
        off += 24 + len;
    }
    assert_eq!(names, [".", "..", "data.txt", "sub"]);
    // From cookie 3: only "sub".
    assert_eq!(ok(w.ctx.fd_readdir(&mut w.mem, PRE, 0, 4096, 3, 5000)), SUCCESS);
    assert_eq!(w.u32(5000), 27);
    // A small buffer is filled completely (the caller then retries with more).
    assert_eq!(ok(w.ctx.fd_readdir(&mut w.mem, PRE, 0, 30, 0, 5000)), SUCCESS);
    assert_eq!(w.u32(5000), 30);
    let f = w.open("data.txt", 0, rights::FILE, 0).unwrap();
    assert_eq!(ok(w.ctx.fd_readdir(&mut w.mem, f, 0, 4096, 0, 5000)), NOTCAPABLE);
    assert_eq!(ok(w.ctx.fd_readdir(&mut w.mem, PRE, 65530, 4096, 0, 5000)), FAULT);
}

#[test]
fn directories_rename_unlink() {
    let mut w = W::new();
    let (p, l) = w.path("newdir");
    assert_eq!(ok(w.ctx.path_create_directory(&mut w.mem, PRE, p, l)), SUCCESS);
    assert_eq!(ok(w.ctx.path_create_directory(&mut w.mem, PRE, p, l)), EXIST);
    let (p2, l2) = w.put(1100, b"moved");
    assert_eq!(ok(w.ctx.path_rename(&mut w.mem, PRE, p, l, PRE, p2, l2)), SUCCESS);
    assert_eq!(ok(w.ctx.path_rename(&mut w.mem, PRE, p, l, PRE, p2, l2)), NOENT);
    assert_eq!(ok(w.ctx.path_remove_directory(&mut w.mem, PRE, p2, l2)), SUCCESS);
    assert_eq!(ok(w.ctx.path_remove_directory(&mut w.mem, PRE, p2, l2)), NOENT);
    let (p, l) = w.path("data.txt");
    assert_eq!(ok(w.ctx.path_remove_directory(&mut w.mem, PRE, p, l)), NOTDIR);
    let (s, sl) = w.put(1100, b"sub");
    assert_eq!(ok(w.ctx.path_unlink_file(&mut w.mem, PRE, s, sl)), ISDIR);
    assert_eq!(ok(w.ctx.path_unlink_file(&mut w.mem, PRE, p, l)), SUCCESS);
    assert_eq!(ok(w.ctx.path_unlink_file(&mut w.mem, PRE, p, l)), NOENT);
    assert_eq!(ok(w.ctx.path_create_directory(&mut w.mem, 1, p, l)), NOTDIR);
    assert_eq!(ok(w.ctx.path_create_directory(&mut w.mem, PRE, BAD, 4)), FAULT);
    let (p, l) = w.put(1000, &[0xff, 0xfe]);
    assert_eq!(ok(w.ctx.path_create_directory(&mut w.mem, PRE, p, l)), ILSEQ);
}

#[test]
fn links_symlinks_and_filestat() {
    let mut w = W::new();
    let (o, ol) = w.put(1000, b"data.txt");
    let (n, nl) = w.put(1100, b"hard");
    assert_eq!(ok(w.ctx.path_link(&mut w.mem, PRE, 0, o, ol, PRE, n, nl)), SUCCESS);
    assert_eq!(ok(w.ctx.path_link(&mut w.mem, PRE, 0, o, ol, PRE, n, nl)), EXIST);
    assert_eq!(ok(w.ctx.path_filestat_get(&mut w.mem, PRE, 0, n, nl, 0)), SUCCESS);
    assert_eq!(w.u64(24), 2);
    let (l, ll) = w.put(1200, b"link");
    assert_eq!(ok(w.ctx.path_symlink(&mut w.mem, o, ol, PRE, l, ll)), SUCCESS);
    assert_eq!(ok(w.ctx.path_symlink(&mut w.mem, o, ol, PRE, l, ll)), EXIST);
    assert_eq!(ok(w.ctx.path_readlink(&mut w.mem, PRE, l, ll, 2000, 64, 8)), SUCCESS);
    assert_eq!(&w.mem[2000..2000 + w.u32(8) as usize], b"data.txt");
    assert_eq!(ok(w.ctx.path_readlink(&mut w.mem, PRE, o, ol, 2000, 64, 8)), INVAL);
    assert_eq!(ok(w.ctx.path_filestat_get(&mut w.mem, PRE, 0, l, ll, 0)), SUCCESS);
    assert_eq!(w.mem[16], filetype::SYMBOLIC_LINK);
    assert_eq!(ok(w.ctx.path_filestat_get(&mut w.mem, PRE, LOOKUP_SYMLINK_FOLLOW, l, ll, 0)), SUCCESS);
    assert_eq!(w.mem[16], filetype::REGULAR_FILE);
    assert_eq!(
        ok(w.ctx.path_filestat_set_times(&mut w.mem, PRE, 0, o, ol, 5, 6, fstflags::ATIM | fstflags::MTIM)),
        SUCCESS
    );
    assert_eq!(ok(w.ctx.path_filestat_get(&mut w.mem, PRE, 0, o, ol, 0)), SUCCESS);
    assert_eq!((w.u64(40), w.u64(48)), (5, 6));
    assert_eq!(ok(w.ctx.path_filestat_set_times(&mut w.mem, PRE, 0, o, ol, 0, 0, 0xf0)), INVAL);
    let (m, ml) = w.put(1300, b"missing");
    assert_eq!(ok(w.ctx.path_filestat_get(&mut w.mem, PRE, 0, m, ml, 0)), NOENT);
    assert_eq!(ok(w.ctx.path_filestat_set_times(&mut w.mem, PRE, 0, m, ml, 0, 0, fstflags::MTIM_NOW)), NOENT);
    assert_eq!(ok(w.ctx.path_link(&mut w.mem, PRE, 0, m, ml, PRE, n, nl)), NOENT);
}

#[test]
fn the_sandbox_holds() {
    let mut w = W::new();
    for bad in ["../outside.txt", "sub/../../outside.txt", "/outside.txt", "/sandbox/data.txt"] {
        assert_eq!(w.open(bad, 0, rights::FD_READ, 0), Err(NOTCAPABLE), "{bad}");
    }
    // Links that point outside (absolute, or climbing above the directory) are refused.
    let (l, ll) = w.put(1200, b"escape");
    for target in ["../outside.txt", "/", "/sandbox/data.txt", "sub/../../x", "a/../../b"] {
        let (t, tl) = w.put(1100, target.as_bytes());
        assert_eq!(ok(w.ctx.path_symlink(&mut w.mem, t, tl, PRE, l, ll)), PERM, "{target}");
    }
    let (l2, ll2) = w.put(1250, b"sub/inner");
    let (t, tl) = w.put(1100, b"../data.txt");
    assert_eq!(
        ok(w.ctx.path_symlink(&mut w.mem, t, tl, PRE, l2, ll2)),
        SUCCESS,
        "sub/inner -> ../data.txt stays inside"
    );
    let (t, tl) = w.put(1100, b"../../data.txt");
    let (l3, ll3) = w.put(1250, b"sub/outer");
    assert_eq!(ok(w.ctx.path_symlink(&mut w.mem, t, tl, PRE, l3, ll3)), PERM);
    assert_eq!(w.open("escape", 0, rights::FD_READ, 0), Err(NOENT));
    // A link planted from outside the sandbox (the host, on a shared folder) is not followed out.
    w.vfs.symlink("../outside.txt", "/sandbox", "escape", false).unwrap();
    assert_eq!(w.open("escape", 0, rights::FD_READ, 0), Err(NOTCAPABLE));
    let (d, dl) = w.put(1300, b"../x");
    assert_eq!(ok(w.ctx.path_create_directory(&mut w.mem, PRE, d, dl)), NOTCAPABLE);
    assert_eq!(ok(w.ctx.path_unlink_file(&mut w.mem, PRE, d, dl)), NOTCAPABLE);
    let (o, ol) = w.put(1000, b"data.txt");
    assert_eq!(ok(w.ctx.path_rename(&mut w.mem, PRE, o, ol, PRE, d, dl)), NOTCAPABLE);
    assert_eq!(ok(w.ctx.path_link(&mut w.mem, PRE, 0, o, ol, PRE, d, dl)), NOTCAPABLE);
    assert_eq!(ok(w.ctx.path_filestat_get(&mut w.mem, PRE, 0, d, dl, 0)), NOTCAPABLE);
    // Symlink not followed when asked not to (O_NOFOLLOW).
    let (p, pl) = w.put(1000, b"escape");
    let r = w.ctx.path_open(&mut w.mem, PRE, 0, p, pl, 0, rights::FD_READ, 0, 0, 200);
    assert_eq!(r, Ok(LOOP));
}

#[test]
fn poll_oneoff_clocks_and_fds() {
    let mut w = W::new();
    // A clock 1 ms away and stdin: nothing ready, so it suspends.
    let sub = |w: &mut W, at: u32, userdata: u64, tag: u8, a: u32, timeout: u64| {
        w.put(at, &userdata.to_le_bytes());
        w.mem[at as usize + 8] = tag;
        w.put(at + 16, &a.to_le_bytes());
        w.put(at + 24, &timeout.to_le_bytes());
    };
    sub(&mut w, 0, 1, eventtype::CLOCK, clockid::MONOTONIC, 1_000_000);
    sub(&mut w, 48, 2, eventtype::FD_READ, 0, 0);
    assert_eq!(w.ctx.poll_oneoff(&mut w.mem, 0, 200, 2, 500), Err(Abort::Suspend));
    assert!(!w.ctx.ready(5_000));
    assert!(w.ctx.ready(1_005_000));
    assert_eq!(w.ctx.complete(&mut w.mem), SUCCESS);
    // The fake monotonic clock stays at 5 µs, so neither fired yet: zero events is allowed.
    assert_eq!(w.u32(500), 0);
    // A file is always ready; stdout is always writable.
    let f = w.open("data.txt", 0, rights::FILE, 0).unwrap();
    sub(&mut w, 0, 7, eventtype::FD_READ, f, 0);
    sub(&mut w, 48, 8, eventtype::FD_WRITE, 1, 0);
    assert_eq!(ok(w.ctx.poll_oneoff(&mut w.mem, 0, 200, 2, 500)), SUCCESS);
    assert_eq!(w.u32(500), 2);
    assert_eq!(w.u64(200), 7);
    assert_eq!(w.u64(216), 10);
    assert_eq!(w.u64(232), 8);
    // A clock already expired fires at once; a bad fd reports EBADF in its event.
    sub(&mut w, 0, 9, eventtype::CLOCK, clockid::MONOTONIC, 0);
    sub(&mut w, 48, 10, eventtype::FD_READ, 99, 0);
    assert_eq!(ok(w.ctx.poll_oneoff(&mut w.mem, 0, 200, 2, 500)), SUCCESS);
    assert_eq!(w.u32(500), 2);
    assert_eq!(u16::from_le_bytes([w.mem[232 + 8], w.mem[232 + 9]]), BADF);
    assert_eq!(ok(w.ctx.poll_oneoff(&mut w.mem, 0, 200, 0, 500)), INVAL);
    assert_eq!(ok(w.ctx.poll_oneoff(&mut w.mem, 65500, 200, 2, 500)), FAULT);
    sub(&mut w, 0, 1, 9, 0, 0);
    assert_eq!(ok(w.ctx.poll_oneoff(&mut w.mem, 0, 200, 1, 500)), INVAL);
}

#[test]
fn files_are_not_sockets() {
    let mut w = W::new();
    assert_eq!(ok(w.ctx.sock_accept(&mut w.mem, PRE, 0, 0)), NOTSOCK);
    assert_eq!(ok(w.ctx.sock_recv(&mut w.mem, 1, 0, 0, 0, 0, 0)), NOTSOCK);
    assert_eq!(ok(w.ctx.sock_send(&mut w.mem, 1, 0, 0, 0, 0)), NOTSOCK);
    assert_eq!(ok(w.ctx.sock_shutdown(2, 0)), NOTSOCK);
    assert_eq!(ok(w.ctx.sock_accept(&mut w.mem, 99, 0, 0)), BADF);
    assert_eq!(ok(w.ctx.sock_shutdown(99, 0)), BADF);
}

#[test]
fn every_function_is_named() {
    assert_eq!(keel_wasi::FUNCTIONS.len(), 46);
    let mut names = keel_wasi::FUNCTIONS.to_vec();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 46);
}

#[test]
fn one_call_moves_at_most_four_mib() {
    // 6000 iovecs of 1 MiB, all over the same guest buffer: 5.9 GiB asked (more than a u32).
    let mut w = W::new();
    w.mem.resize(2 << 20, 0);
    let table = 1 << 20;
    for i in 0..6000u32 {
        let at = table + i * 8;
        w.mem.resize(w.mem.len().max((at + 8) as usize), 0);
        w.put(at, &4096u32.to_le_bytes());
        w.put(at + 4, &(1u32 << 20).to_le_bytes());
    }
    // Output to stdout is kept and then flushed: the call suspends for that, with the count set.
    let r = w.ctx.fd_write(&mut w.mem, 1, table, 6000, 8);
    assert!(matches!(r, Ok(SUCCESS) | Err(Abort::Suspend)), "{r:?}");
    assert_eq!(w.u32(8), 4 << 20, "a short write of 4 MiB");
    let out: usize = w.ctx.take_output().iter().map(|(_, d)| d.len()).sum();
    assert_eq!(out, 4 << 20);
}

mod dispatch {
    use super::*;
    use keel_wasi::dispatch::{call, CallError, MAX_PARAMS, SIGNATURES};

    #[test]
    fn every_function_has_a_signature_and_runs_by_name() {
        let names: Vec<&str> = SIGNATURES.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, keel_wasi::FUNCTIONS.to_vec());
        for (name, sig) in SIGNATURES {
            assert!(sig.len() <= MAX_PARAMS && sig.chars().all(|c| c == 'i' || c == 'I'), "{name}");
            if name == "proc_exit" {
                continue;
            }
            let mut w = W::new();
            // Zero arguments: each function answers (an errno or a suspension), none is unknown.
            let r = call(&mut w.ctx, &mut w.mem, name, &[0; MAX_PARAMS]);
            assert!(r.is_ok(), "{name}: {r:?}");
        }
    }

    #[test]
    fn arguments_reach_the_function() {
        let mut w = W::new();
        let (p, l) = w.put(200, b"via table\n");
        let iov = w.iov(p, l);
        let r = call(&mut w.ctx, &mut w.mem, "fd_write", &[1, u64::from(iov), 1, 300]);
        assert_eq!(r, Ok(Ok(SUCCESS)));
        assert_eq!(w.u32(300), 10);
        let out: Vec<u8> = w.ctx.take_output().into_iter().flat_map(|(_, d)| d).collect();
        assert_eq!(out, b"via table\n");
        // An i64 argument whole: seek to 7 in data.txt, then tell.
        let fd = w.open("data.txt", 0, rights::FD_SEEK | rights::FD_TELL | rights::FD_READ, 0).unwrap();
        let r = call(&mut w.ctx, &mut w.mem, "fd_seek", &[u64::from(fd), 7, u64::from(whence::SET), 400]);
        assert_eq!(r, Ok(Ok(SUCCESS)));
        assert_eq!(w.u64(400), 7);
        let r = call(&mut w.ctx, &mut w.mem, "fd_seek", &[u64::from(fd), (-2i64) as u64, u64::from(whence::CUR), 400]);
        assert_eq!(r, Ok(Ok(SUCCESS)));
        assert_eq!(w.u64(400), 5);
    }

    #[test]
    fn narrow_arguments_out_of_range_are_einval() {
        let mut w = W::new();
        let r = call(&mut w.ctx, &mut w.mem, "fd_seek", &[3, 0, 0x1_00, 400]);
        assert_eq!(r, Ok(Ok(INVAL)));
        let r = call(&mut w.ctx, &mut w.mem, "fd_fdstat_set_flags", &[1, 0x1_0000]);
        assert_eq!(r, Ok(Ok(INVAL)));
    }

    #[test]
    fn exit_unknown_and_short_calls() {
        let mut w = W::new();
        assert_eq!(call(&mut w.ctx, &mut w.mem, "proc_exit", &[3]), Ok(Err(Abort::Exit(3))));
        assert_eq!(call(&mut w.ctx, &mut w.mem, "no_such_call", &[]), Err(CallError::Unknown));
        assert_eq!(call(&mut w.ctx, &mut w.mem, "fd_write", &[1, 2]), Err(CallError::Arity));
    }
}
