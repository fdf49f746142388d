//! The system calls against a fake host: memory is a page table of byte arrays, the console
//! two buffers.

use super::*;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use keel_vfs::MemFs;

struct Fake {
    pages: BTreeMap<u64, Box<[u8; 4096]>>,
    prot: BTreeMap<u64, u64>,
    stdin: VecDeque<u8>,
    out: Vec<u8>,
    err: Vec<u8>,
    clock: u64,
    seed: u64,
    fs_base: u64,
    /// Pages the "system" still has.
    free_pages: u64,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            pages: BTreeMap::new(),
            prot: BTreeMap::new(),
            stdin: VecDeque::new(),
            out: Vec::new(),
            err: Vec::new(),
            clock: 1_000,
            seed: 1,
            fs_base: 0,
            free_pages: 1 << 20,
        }
    }

    /// The program writing its own memory: a first touch gets a frame (what the page-fault
    /// path does), then the bytes land.
    fn poke(&mut self, addr: u64, data: &[u8]) {
        for p in (page_down(addr)..addr + data.len() as u64).step_by(PAGE as usize) {
            if let alloc::collections::btree_map::Entry::Vacant(e) = self.pages.entry(p) {
                e.insert(Box::new([0; 4096]));
                self.prot.insert(p, 3);
                self.free_pages -= 1;
            }
        }
        self.write_user(addr, data);
    }

    fn page(&mut self, addr: u64) -> &mut [u8; 4096] {
        self.pages.get_mut(&page_down(addr)).unwrap_or_else(|| panic!("unmapped {addr:#x} touched"))
    }
}

impl Host for Fake {
    fn map_pages(&mut self, addr: u64, len: u64, _prot: u64) -> Result<(), i64> {
        assert_eq!(addr % PAGE, 0);
        assert_eq!(len % PAGE, 0);
        // As the kernel: a mapping larger than what the system has left is refused.
        if len / PAGE > self.free_pages {
            return Err(-ENOMEM);
        }
        for p in (addr..addr + len).step_by(PAGE as usize) {
            assert!(!self.pages.contains_key(&p), "page {p:#x} mapped twice");
        }
        Ok(())
    }
    fn populate(&mut self, addr: u64, len: u64, prot: u64) -> Result<(), i64> {
        for p in (page_down(addr)..addr + len).step_by(PAGE as usize) {
            if let alloc::collections::btree_map::Entry::Vacant(e) = self.pages.entry(p) {
                if self.free_pages == 0 {
                    return Err(-ENOMEM);
                }
                e.insert(Box::new([0; 4096]));
                self.prot.insert(p, prot);
                self.free_pages -= 1;
            }
        }
        Ok(())
    }
    fn unmap_pages(&mut self, addr: u64, len: u64) {
        for p in (addr..addr + len).step_by(PAGE as usize) {
            if self.pages.remove(&p).is_some() {
                self.prot.remove(&p);
                self.free_pages += 1;
            }
        }
    }
    fn protect_pages(&mut self, addr: u64, len: u64, prot: u64) {
        for p in (addr..addr + len).step_by(PAGE as usize) {
            if self.pages.contains_key(&p) {
                self.prot.insert(p, prot);
            }
        }
    }
    fn move_pages(&mut self, from: u64, to: u64, len: u64, prot: u64) {
        for i in (0..len).step_by(PAGE as usize) {
            if let Some(page) = self.pages.remove(&(from + i)) {
                self.prot.remove(&(from + i));
                assert!(self.pages.insert(to + i, page).is_none());
                self.prot.insert(to + i, prot);
            }
        }
    }
    fn read_user(&mut self, addr: u64, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            let a = addr + i as u64;
            *b = self.pages.get(&page_down(a)).map_or(0, |p| p[(a % PAGE) as usize]);
        }
    }
    fn write_user(&mut self, addr: u64, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            let a = addr + i as u64;
            self.page(a)[(a % PAGE) as usize] = *b;
        }
    }
    fn read_stdin(&mut self, buf: &mut [u8]) -> Result<usize, Stop> {
        let n = buf.len().min(self.stdin.len());
        for (i, b) in self.stdin.drain(..n).enumerate() {
            buf[i] = b;
        }
        Ok(n)
    }
    fn write_out(&mut self, fd: u32, data: &[u8]) -> Result<usize, i64> {
        if fd == 1 { &mut self.out } else { &mut self.err }.extend_from_slice(data);
        Ok(data.len())
    }
    fn isatty(&self, fd: u32) -> bool {
        fd == 1
    }
    fn winsize(&self) -> (u16, u16) {
        (80, 24)
    }
    fn realtime_ns(&self) -> u64 {
        1_700_000_000_000_000_000 + self.clock
    }
    fn monotonic_ns(&self) -> u64 {
        self.clock
    }
    fn cpu_ns(&self) -> u64 {
        5
    }
    fn random(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (self.seed >> 33) as u8;
        }
    }
    fn sleep_until(&mut self, deadline: u64) -> Result<(), Stop> {
        if deadline == u64::MAX {
            return Err(Stop);
        }
        self.clock = self.clock.max(deadline);
        Ok(())
    }
    fn yield_now(&mut self) {}
    fn set_fs_base(&mut self, base: u64) {
        self.fs_base = base;
    }
    fn note(&mut self, line: &str) {
        self.err.extend_from_slice(line.as_bytes());
    }
}

fn vfs() -> &'static Vfs {
    let v = Vfs::new(Arc::new(MemFs::new(1 << 24, || 0)));
    v.mkdir("/", "/tmp", false).unwrap();
    Box::leak(Box::new(v))
}

fn start(limit: u64) -> (Process, Start, Fake) {
    let mut host = Fake::new();
    let argv = [String::from("prog"), String::from("arg")];
    let env = [(String::from("HOME"), String::from("/"))];
    let setup = Setup {
        vfs: vfs(),
        exe: "/bin/prog".into(),
        argv: &argv,
        env: &env,
        cwd: "/".into(),
        pid: 7,
        limit,
        trace: false,
    };
    let (p, s) = Process::load(setup, &crate::elf::tests::tiny_pie(), &mut host).unwrap();
    (p, s, host)
}

const RW: u64 = abi::PROT_READ | abi::PROT_WRITE;

/// Scratch memory for arguments: a fresh anonymous page.
fn scratch(p: &mut Process, h: &mut Fake) -> u64 {
    let Outcome::Return(a) =
        p.syscall(h, nr::MMAP, [0, 4 * PAGE, RW, abi::MAP_PRIVATE | abi::MAP_ANONYMOUS, u64::MAX, 0])
    else {
        panic!()
    };
    assert!(a > 0);
    a as u64
}

fn call(p: &mut Process, h: &mut Fake, n: u64, a: &[u64]) -> i64 {
    let mut args = [0u64; 6];
    args[..a.len()].copy_from_slice(a);
    match p.syscall(h, n, args) {
        Outcome::Return(v) => v,
        other => panic!("{other:?}"),
    }
}

fn put_str(h: &mut Fake, at: u64, s: &str) -> u64 {
    h.poke(at, s.as_bytes());
    h.poke(at + s.len() as u64, &[0]);
    at
}

#[test]
fn load_places_segments_and_stack_at_random_addresses() {
    let (p, s, mut h) = start(64 << 20);
    assert!(s.base >= PIE_BASE && s.base < USER_HIGH);
    assert_eq!(s.entry, s.base + 0x100);
    // The data segment holds the file's bytes, the rest of it zero.
    let mut b = [0u8; 0x110];
    h.read_user(s.base + 0x1200, &mut b);
    assert_eq!(b[5], 5);
    assert_eq!(b[0x100], 0);
    // Text is read+exec, data read+write.
    assert_eq!(h.prot[&s.base], abi::PROT_READ | abi::PROT_EXEC);
    assert_eq!(h.prot[&(s.base + 0x1000)], RW);
    // argc at rsp.
    let mut argc = [0u8; 8];
    h.read_user(s.rsp, &mut argc);
    assert_eq!(u64::from_le_bytes(argc), 2);
    assert_eq!(p.memory_bytes(), 2 * PAGE + STACK_SIZE);
    // Only the pages written so far have frames: the image and the top of the stack.
    assert!(h.pages.len() < 8, "{} pages populated", h.pages.len());
    // Another process lands elsewhere.
    let (_, s2, _) = {
        let mut host = Fake::new();
        host.seed = 99;
        let argv = [String::from("p")];
        let setup = Setup {
            vfs: vfs(),
            exe: "p".into(),
            argv: &argv,
            env: &[],
            cwd: "/".into(),
            pid: 8,
            limit: 1 << 30,
            trace: false,
        };
        let (p, s) = Process::load(setup, &crate::elf::tests::tiny_pie(), &mut host).unwrap();
        (p, s, host)
    };
    assert_ne!(s.base, s2.base);
}

#[test]
fn write_reaches_the_console_and_bad_pointers_are_efault() {
    let (mut p, _, mut h) = start(64 << 20);
    let buf = scratch(&mut p, &mut h);
    h.poke(buf, b"hello\n");
    assert_eq!(call(&mut p, &mut h, nr::WRITE, &[1, buf, 6]), 6);
    assert_eq!(h.out, b"hello\n");
    assert_eq!(call(&mut p, &mut h, nr::WRITE, &[1, 0x1000, 6]), -EFAULT);
    assert_eq!(call(&mut p, &mut h, nr::WRITE, &[1, USER_HIGH - 3, 6]), -EFAULT);
    assert_eq!(call(&mut p, &mut h, nr::WRITE, &[9, buf, 6]), -EBADF);
    // writev gathers.
    h.poke(buf + 100, b"ab");
    h.poke(buf + 200, b"cd\n");
    let mut iov = [0u8; 32];
    abi::put(&mut iov, 0, buf + 100);
    abi::put(&mut iov, 8, 2);
    abi::put(&mut iov, 16, buf + 200);
    abi::put(&mut iov, 24, 3);
    h.poke(buf + 300, &iov);
    assert_eq!(call(&mut p, &mut h, nr::WRITEV, &[1, buf + 300, 2]), 5);
    assert_eq!(h.out, b"hello\nabcd\n");
    // A read into read-only memory is EFAULT, not a kernel write.
    h.stdin.extend(b"xyz");
    call(&mut p, &mut h, nr::MPROTECT, &[buf, PAGE, abi::PROT_READ]);
    assert_eq!(call(&mut p, &mut h, nr::READ, &[0, buf, 3]), -EFAULT);
    assert_eq!(call(&mut p, &mut h, nr::READ, &[0, buf + PAGE, 3]), 3);
}

#[test]
fn files_round_trip_through_the_vfs() {
    let (mut p, _, mut h) = start(64 << 20);
    let buf = scratch(&mut p, &mut h);
    let path = put_str(&mut h, buf, "/tmp/f.txt");
    let fd = call(&mut p, &mut h, nr::OPENAT, &[abi::AT_FDCWD as u64, path, abi::o::RDWR | abi::o::CREAT, 0o644]);
    assert_eq!(fd, 3);
    h.poke(buf + 512, b"0123456789");
    assert_eq!(call(&mut p, &mut h, nr::WRITE, &[3, buf + 512, 10]), 10);
    assert_eq!(call(&mut p, &mut h, nr::LSEEK, &[3, 2, 0]), 2);
    // dup shares the offset.
    assert_eq!(call(&mut p, &mut h, nr::DUP, &[3]), 4);
    assert_eq!(call(&mut p, &mut h, nr::READ, &[4, buf + 1024, 3]), 3);
    let mut got = [0u8; 3];
    h.read_user(buf + 1024, &mut got);
    assert_eq!(&got, b"234");
    assert_eq!(call(&mut p, &mut h, nr::LSEEK, &[3, 0, 1]), 5);
    assert_eq!(call(&mut p, &mut h, nr::FSTAT, &[3, buf + 2048]), 0);
    let mut st = [0u8; 144];
    h.read_user(buf + 2048, &mut st);
    assert_eq!(abi::get(&st, 48), 10);
    assert_eq!(u32::from_le_bytes(st[24..28].try_into().unwrap()) & 0o170000, abi::S_IFREG);
    assert_eq!(call(&mut p, &mut h, nr::CLOSE, &[3]), 0);
    assert_eq!(call(&mut p, &mut h, nr::CLOSE, &[3]), -EBADF);
    // Errors are Linux's.
    let missing = put_str(&mut h, buf + 3000, "/nope/x");
    assert_eq!(call(&mut p, &mut h, nr::OPEN, &[missing, 0]), -ENOENT);
    let tmp = put_str(&mut h, buf + 3000, "/tmp");
    assert_eq!(call(&mut p, &mut h, nr::OPEN, &[tmp, abi::o::WRONLY]), -EISDIR);
    assert_eq!(call(&mut p, &mut h, nr::MKDIR, &[tmp, 0o755]), -EEXIST);
    // getdents64 lists ., .. and the file.
    let dfd = call(&mut p, &mut h, nr::OPEN, &[tmp, abi::o::DIRECTORY]) as u64;
    let n = call(&mut p, &mut h, nr::GETDENTS64, &[dfd, buf + 2048, 1024]);
    assert!(n > 0);
    let mut d = vec![0u8; n as usize];
    h.read_user(buf + 2048, &mut d);
    let mut names = Vec::new();
    let mut at = 0;
    while at < d.len() {
        let len = u16::from_le_bytes([d[at + 16], d[at + 17]]) as usize;
        let name: Vec<u8> = d[at + 19..at + len].iter().take_while(|c| **c != 0).copied().collect();
        names.push(String::from_utf8(name).unwrap());
        at += len;
    }
    assert_eq!(names, [".", "..", "f.txt"]);
    assert_eq!(call(&mut p, &mut h, nr::GETDENTS64, &[dfd, buf + 2048, 1024]), 0);
    // rename, unlink, chdir, getcwd.
    let from = put_str(&mut h, buf + 3000, "/tmp/f.txt");
    let to = put_str(&mut h, buf + 3100, "/tmp/g.txt");
    assert_eq!(call(&mut p, &mut h, nr::RENAME, &[from, to]), 0);
    let tmp = put_str(&mut h, buf + 3300, "/tmp");
    assert_eq!(call(&mut p, &mut h, nr::CHDIR, &[tmp]), 0);
    assert_eq!(call(&mut p, &mut h, nr::GETCWD, &[buf + 3200, 64]), 5);
    let rel = put_str(&mut h, buf + 3000, "g.txt");
    assert_eq!(call(&mut p, &mut h, nr::UNLINK, &[rel]), 0);
    assert_eq!(call(&mut p, &mut h, nr::UNLINK, &[rel]), -ENOENT);
}

#[test]
fn mmap_munmap_give_every_page_back() {
    let (mut p, _, mut h) = start(64 << 20);
    let base_pages = h.pages.len();
    let base_bytes = p.memory_bytes();
    let mut addrs = Vec::new();
    for i in 1..40u64 {
        let a = call(&mut p, &mut h, nr::MMAP, &[0, i * 3000, RW, abi::MAP_PRIVATE | abi::MAP_ANONYMOUS, u64::MAX, 0]);
        assert!(a > 0 && (a as u64).is_multiple_of(PAGE));
        h.poke(a as u64, &[i as u8]);
        addrs.push((a as u64, i * 3000));
    }
    // All distinct and zeroed apart from the byte written.
    for (a, len) in &addrs {
        let mut b = vec![0u8; *len as usize];
        h.read_user(*a, &mut b);
        assert!(b[1..].iter().all(|x| *x == 0));
    }
    for (a, len) in addrs.iter().rev().step_by(2) {
        assert_eq!(call(&mut p, &mut h, nr::MUNMAP, &[*a, *len]), 0);
    }
    for (a, len) in addrs.iter().rev().skip(1).step_by(2) {
        assert_eq!(call(&mut p, &mut h, nr::MUNMAP, &[*a, *len]), 0);
    }
    assert_eq!(h.pages.len(), base_pages);
    assert_eq!(p.memory_bytes(), base_bytes);
    // munmap of an unaligned address is EINVAL; of nothing, fine.
    assert_eq!(call(&mut p, &mut h, nr::MUNMAP, &[USER_LOW + 5, 10]), -EINVAL);
    assert_eq!(call(&mut p, &mut h, nr::MUNMAP, &[USER_LOW, PAGE]), 0);
}

#[test]
fn mremap_grows_in_place_or_moves_with_the_contents() {
    let (mut p, _, mut h) = start(64 << 20);
    let a =
        call(&mut p, &mut h, nr::MMAP, &[0, 2 * PAGE, RW, abi::MAP_PRIVATE | abi::MAP_ANONYMOUS, u64::MAX, 0]) as u64;
    h.poke(a + PAGE + 10, b"keep");
    // Block growth in place with a mapping right after it.
    let after = a + 2 * PAGE;
    let flags = abi::MAP_PRIVATE | abi::MAP_ANONYMOUS | abi::MAP_FIXED_NOREPLACE;
    if p.map.is_free(after, PAGE) {
        assert_eq!(call(&mut p, &mut h, nr::MMAP, &[after, PAGE, RW, flags, u64::MAX, 0]), after as i64);
    }
    assert_eq!(call(&mut p, &mut h, nr::MREMAP, &[a, 2 * PAGE, 8 * PAGE, 0]), -ENOMEM);
    let b = call(&mut p, &mut h, nr::MREMAP, &[a, 2 * PAGE, 8 * PAGE, abi::MREMAP_MAYMOVE]) as u64;
    assert_ne!(a, b);
    let mut got = [0u8; 4];
    h.read_user(b + PAGE + 10, &mut got);
    assert_eq!(&got, b"keep");
    assert!(!p.map.covered(a, PAGE));
    // Shrinking gives pages back.
    let before = p.memory_bytes();
    assert_eq!(call(&mut p, &mut h, nr::MREMAP, &[b, 8 * PAGE, PAGE, 0]), b as i64);
    assert_eq!(p.memory_bytes(), before - 7 * PAGE);
}

#[test]
fn brk_grows_and_shrinks() {
    let (mut p, _, mut h) = start(64 << 20);
    let start = call(&mut p, &mut h, nr::BRK, &[0]) as u64;
    assert_eq!(call(&mut p, &mut h, nr::BRK, &[start + 10_000]), (start + 10_000) as i64);
    h.poke(start + 9_999, &[1]);
    assert_eq!(call(&mut p, &mut h, nr::BRK, &[start + 100]), (start + 100) as i64);
    assert!(!p.map.covered(start + 9_999, 1));
    // Below the start: unchanged.
    assert_eq!(call(&mut p, &mut h, nr::BRK, &[start - PAGE]), (start + 100) as i64);
}

#[test]
fn the_memory_limit_refuses_with_enomem() {
    let (mut p, _, mut h) = start(12 << 20);
    let flags = abi::MAP_PRIVATE | abi::MAP_ANONYMOUS;
    assert_eq!(call(&mut p, &mut h, nr::MMAP, &[0, 8 << 20, RW, flags, u64::MAX, 0]), -ENOMEM);
    assert!(p.limit_hit());
    let start = call(&mut p, &mut h, nr::BRK, &[0]) as u64;
    assert_eq!(call(&mut p, &mut h, nr::BRK, &[start + (8 << 20)]), start as i64);
    // The system running out is ENOMEM too.
    let (mut p, _, mut h) = start_with_free(8);
    assert_eq!(call(&mut p, &mut h, nr::MMAP, &[0, 16 * PAGE, RW, flags, u64::MAX, 0]), -ENOMEM);
}

fn start_with_free(pages: u64) -> (Process, Start, Fake) {
    let (p, s, mut h) = start(1 << 30);
    h.free_pages = pages;
    (p, s, h)
}

#[test]
fn pipes_in_one_process() {
    let (mut p, _, mut h) = start(64 << 20);
    let buf = scratch(&mut p, &mut h);
    assert_eq!(call(&mut p, &mut h, nr::PIPE2, &[buf, abi::o::CLOEXEC]), 0);
    let mut fds = [0u8; 8];
    h.read_user(buf, &mut fds);
    let (r, w) = (
        u32::from_le_bytes(fds[..4].try_into().unwrap()) as u64,
        u32::from_le_bytes(fds[4..].try_into().unwrap()) as u64,
    );
    h.poke(buf + 100, b"through");
    assert_eq!(call(&mut p, &mut h, nr::WRITE, &[w, buf + 100, 7]), 7);
    // A pipe without readers: SIGPIPE ends the process, or EPIPE when the signal is ignored.
    let (r2, w2) = {
        assert_eq!(call(&mut p, &mut h, nr::PIPE, &[buf + 8]), 0);
        let mut fds = [0u8; 8];
        h.read_user(buf + 8, &mut fds);
        (
            u32::from_le_bytes(fds[..4].try_into().unwrap()) as u64,
            u32::from_le_bytes(fds[4..].try_into().unwrap()) as u64,
        )
    };
    assert_eq!(call(&mut p, &mut h, nr::CLOSE, &[r2]), 0);
    let mut args = [w2, buf + 100, 7, 0, 0, 0];
    assert_eq!(p.syscall(&mut h, nr::WRITE, args), Outcome::Signal(abi::SIGPIPE));
    let mut ign = [0u8; 32];
    ign[0] = 1;
    h.poke(buf + 300, &ign);
    assert_eq!(call(&mut p, &mut h, nr::RT_SIGACTION, &[abi::SIGPIPE as u64, buf + 300, 0, 8]), 0);
    args[0] = w2;
    assert_eq!(p.syscall(&mut h, nr::WRITE, args), Outcome::Return(-EPIPE));
    assert_eq!(call(&mut p, &mut h, nr::LSEEK, &[r, 0, 0]), -ESPIPE);
    assert_eq!(call(&mut p, &mut h, nr::READ, &[r, buf + 200, 100]), 7);
    // Reading an empty pipe nobody else can fill waits until stopped.
    let mut args = [0u64; 6];
    args[..3].copy_from_slice(&[r, buf + 200, 100]);
    assert_eq!(p.syscall(&mut h, nr::READ, args), Outcome::Stop);
    assert_eq!(call(&mut p, &mut h, nr::CLOSE, &[w]), 0);
    assert_eq!(call(&mut p, &mut h, nr::READ, &[r, buf + 200, 100]), 0);
    assert_eq!(call(&mut p, &mut h, nr::CLOSE, &[r]), 0);
}

#[test]
fn unknown_calls_are_enosys_and_said_once() {
    let (mut p, _, mut h) = start(64 << 20);
    assert_eq!(call(&mut p, &mut h, 57, &[]), -ENOSYS);
    assert_eq!(call(&mut p, &mut h, 57, &[]), -ENOSYS);
    assert_eq!(call(&mut p, &mut h, 999, &[]), -ENOSYS);
    let err = String::from_utf8(h.err.clone()).unwrap();
    assert_eq!(err.matches("fork (system call 57) is not supported").count(), 1);
    assert!(err.contains("system call 999 is not supported"));
}

#[test]
fn exit_signals_and_thread_pointer() {
    let (mut p, _, mut h) = start(64 << 20);
    assert_eq!(p.syscall(&mut h, nr::EXIT_GROUP, [300, 0, 0, 0, 0, 0]), Outcome::Exit(44));
    assert_eq!(call(&mut p, &mut h, nr::ARCH_PRCTL, &[abi::ARCH_SET_FS, 0x5000_0000_1000]), 0);
    assert_eq!(h.fs_base, 0x5000_0000_1000);
    assert_eq!(call(&mut p, &mut h, nr::ARCH_PRCTL, &[abi::ARCH_SET_FS, 0xffff_8000_0000_0000]), -EPERM);
    assert_eq!(p.syscall(&mut h, nr::TGKILL, [7, 7, 6, 0, 0, 0]), Outcome::Signal(abi::SIGABRT));
    assert_eq!(call(&mut p, &mut h, nr::KILL, &[7, 0]), 0);
    assert_eq!(call(&mut p, &mut h, nr::KILL, &[123, 9]), -ESRCH);
}

#[test]
fn trace_shows_calls_paths_and_errors() {
    let (mut p, _, mut h) = start(64 << 20);
    p.trace = true;
    let buf = scratch(&mut p, &mut h);
    let path = put_str(&mut h, buf, "/nope");
    call(&mut p, &mut h, nr::OPENAT, &[abi::AT_FDCWD as u64, path, 0]);
    let err = String::from_utf8(h.err.clone()).unwrap();
    assert!(err.contains("openat(-100, "), "{err}");
    assert!(err.contains("\"/nope\") = -1 ENOENT (2)"), "{err}");
    assert!(err.contains("mmap(0, 0x4000, 3, 34, -1, 0) = 0x"), "{err}");
}

#[test]
fn tty_queries() {
    let (mut p, _, mut h) = start(64 << 20);
    let buf = scratch(&mut p, &mut h);
    assert_eq!(call(&mut p, &mut h, nr::IOCTL, &[1, abi::TIOCGWINSZ, buf]), 0);
    let mut ws = [0u8; 4];
    h.read_user(buf, &mut ws);
    assert_eq!(ws, [24, 0, 80, 0]);
    assert_eq!(call(&mut p, &mut h, nr::IOCTL, &[2, abi::TIOCGWINSZ, buf]), -ENOTTY);
}

proptest::proptest! {
    /// Random system calls with random arguments never panic the kernel side, and whatever
    /// they do, the pages mapped match the map's count.
    #[test]
    fn random_calls_never_panic(calls in proptest::collection::vec((0u64..335, proptest::array::uniform6(proptest::prelude::any::<u64>()), 0u8..4), 1..40)) {
        let (mut p, _, mut h) = start(64 << 20);
        let buf = scratch(&mut p, &mut h);
        // An open file (fd 3) and a directory (fd 4) for the calls to find.
        let path = put_str(&mut h, buf, "/tmp/data");
        let fd = call(&mut p, &mut h, nr::OPEN, &[path, abi::o::RDWR | abi::o::CREAT, 0o644]);
        h.poke(buf + 64, &[7u8; 3000]);
        call(&mut p, &mut h, nr::WRITE, &[fd as u64, buf + 64, 3000]);
        let dir = put_str(&mut h, buf, "/tmp");
        call(&mut p, &mut h, nr::OPEN, &[dir, abi::o::DIRECTORY]);
        for (n, mut a, mode) in calls {
            // Mix in plausible values: a real buffer, small fds and sizes.
            match mode {
                0 => { a[1] = buf; a[2] %= 4096; a[0] %= 8; }
                1 => { a[0] = buf + a[0] % 4096; a[1] %= 1 << 16; }
                _ => {}
            }
            if n == nr::EXIT || n == nr::EXIT_GROUP || n == nr::READ || n == nr::READV || n == nr::PREAD64 && a[0] == 0 {
                continue;
            }
            let _ = p.syscall(&mut h, n, a);
            proptest::prop_assert!(h.pages.len() as u64 * PAGE <= p.memory_bytes());
        }
    }
}

#[test]
fn links_select_and_affinity() {
    let (mut p, _, mut h) = start(64 << 20);
    let buf = scratch(&mut p, &mut h);
    let file = put_str(&mut h, buf, "/tmp/target");
    let fd = call(&mut p, &mut h, nr::OPEN, &[file, abi::o::WRONLY | abi::o::CREAT, 0o644]);
    assert!(fd >= 3);
    let link = put_str(&mut h, buf + 100, "/tmp/sym");
    assert_eq!(call(&mut p, &mut h, nr::SYMLINK, &[file, link]), 0);
    assert_eq!(call(&mut p, &mut h, nr::READLINK, &[link, buf + 200, 64]), 11);
    let mut got = [0u8; 11];
    h.read_user(buf + 200, &mut got);
    assert_eq!(&got, b"/tmp/target");
    let hard = put_str(&mut h, buf + 300, "/tmp/hard");
    assert_eq!(call(&mut p, &mut h, nr::LINK, &[file, hard]), 0);
    assert_eq!(call(&mut p, &mut h, nr::LINK, &[file, hard]), -EEXIST);
    // select with no descriptors sleeps for its timeout.
    let before = h.clock;
    let mut tv = [0u8; 16];
    abi::put(&mut tv, 0, 2);
    abi::put(&mut tv, 8, 500_000);
    h.poke(buf + 400, &tv);
    assert_eq!(call(&mut p, &mut h, nr::SELECT, &[0, 0, 0, 0, buf + 400]), 0);
    assert_eq!(h.clock - before, 2_500_000_000);
    assert_eq!(call(&mut p, &mut h, nr::SCHED_GETAFFINITY, &[0, 128, buf + 500]), 8);
    assert_eq!(call(&mut p, &mut h, nr::WAIT4, &[u64::MAX, 0, 0, 0]), -ECHILD);
}

#[test]
fn pages_get_frames_when_touched() {
    let (mut p, _, mut h) = start(64 << 20);
    let flags = abi::MAP_PRIVATE | abi::MAP_ANONYMOUS;
    let before = h.pages.len();
    let a = call(&mut p, &mut h, nr::MMAP, &[0, 1 << 20, RW, flags, u64::MAX, 0]) as u64;
    assert_eq!(h.pages.len(), before, "a new mapping has no frames yet");
    // A read fault, a write fault: each page it touches gets its frame.
    assert_eq!(p.fault(&mut h, a + 5, false, false, false), Fault::Mapped);
    assert_eq!(p.fault(&mut h, a + 3 * PAGE, true, false, false), Fault::Mapped);
    assert_eq!(h.pages.len(), before + 2);
    assert_eq!(h.prot[&a], RW);
    // Not allowed: executing data, writing read-only, outside any mapping, a present page.
    assert_eq!(p.fault(&mut h, a, false, true, false), Fault::Denied);
    call(&mut p, &mut h, nr::MPROTECT, &[a + 8 * PAGE, PAGE, abi::PROT_READ]);
    assert_eq!(p.fault(&mut h, a + 8 * PAGE, true, false, false), Fault::Denied);
    assert_eq!(p.fault(&mut h, USER_LOW, false, false, false), Fault::Denied);
    assert_eq!(p.fault(&mut h, a, true, false, true), Fault::Denied);
    // The system out of frames: the fault says so.
    h.free_pages = 0;
    assert_eq!(p.fault(&mut h, a + 10 * PAGE, true, false, false), Fault::NoMemory);
    h.free_pages = 1 << 20;
    // A system call writing into untouched memory populates it; reading untouched memory reads
    // zeros without populating.
    let n = h.pages.len();
    assert_eq!(call(&mut p, &mut h, nr::GETRANDOM, &[a + 20 * PAGE, 16, 0]), 16);
    assert_eq!(h.pages.len(), n + 1);
    assert_eq!(call(&mut p, &mut h, nr::WRITE, &[1, a + 30 * PAGE, 4]), 4);
    assert_eq!(h.out, [0, 0, 0, 0]);
    assert_eq!(h.pages.len(), n + 1);
    // mremap moves the frames with the mapping.
    let c = call(&mut p, &mut h, nr::MMAP, &[0, 4 * PAGE, RW, flags, u64::MAX, 0]) as u64;
    call(&mut p, &mut h, nr::MMAP, &[c + 4 * PAGE, PAGE, RW, flags | abi::MAP_FIXED, u64::MAX, 0]);
    h.poke(c + 2 * PAGE, b"moved");
    let b = call(&mut p, &mut h, nr::MREMAP, &[c, 4 * PAGE, 400 * PAGE, abi::MREMAP_MAYMOVE]) as u64;
    assert_ne!(b, c);
    let mut got = [0u8; 5];
    h.read_user(b + 2 * PAGE, &mut got);
    assert_eq!(&got, b"moved");
    assert!(!h.pages.contains_key(&(c + 2 * PAGE)));
}
