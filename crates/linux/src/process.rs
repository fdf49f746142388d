//! A Linux process as Keel runs it: its address-space map, open files, working directory and
//! heap, and the system calls musl programs make, answered over Keel's VFS.
//!
//! One thread per process, no `fork`/`exec` (the shell starts programs), no signal delivery: a
//! signal sent to itself (`abort`, `raise`) ends the process with that signal; handlers are
//! recorded for `rt_sigaction`'s sake but never run. Every other call answers `ENOSYS` and is
//! reported once on the program's standard error.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt::Write as _;

use keel_vfs::{FileType, Handle, Lookup, OpenOptions, SeekFrom, Vfs};

use crate::abi::{self, errno::*, nr, FileInfo};
use crate::elf::{self, ElfError, Image};
use crate::mm::{Kind, Map};
use crate::stack;
use crate::{page_down, page_up, PAGE};

/// The lowest user address (PML4 slot 128: the slots below belong to the kernel's identity map).
pub const USER_LOW: u64 = 0x0000_4000_0000_0000;
/// One past the highest user address.
pub const USER_HIGH: u64 = 0x0000_7fff_ffff_f000;
/// Where position-independent programs are placed (plus a random offset of up to 1 TiB).
const PIE_BASE: u64 = 0x0000_5000_0000_0000;
/// The top of the stack region (minus a random offset of up to 256 MiB).
const STACK_TOP: u64 = 0x0000_7ff0_0000_0000;
/// The main thread's stack (`RLIMIT_STACK`, as Linux's default); pages get frames when used.
pub const STACK_SIZE: u64 = 8 << 20;
/// Unmapped room below the stack that `mmap` never hands out: a fault there is a stack overflow.
pub const STACK_GUARD: u64 = 16 << 20;
/// Most open files.
pub const MAX_FDS: usize = 1024;
/// Largest single read or write moved through the kernel at once.
const MAX_IO: usize = 1 << 20;
/// A pipe's buffer.
const PIPE_BUF: usize = 64 * 1024;

/// The kernel side of a process: page tables, the shell's streams, clocks, sleeping.
pub trait Host {
    /// A new mapping at `addr..addr + len` (page-aligned) with `prot`: its pages are zero and
    /// get frames when first touched ([`Host::populate`]). `Err(ENOMEM)` when the system could
    /// not give that much.
    fn map_pages(&mut self, addr: u64, len: u64, prot: u64) -> Result<(), i64>;
    /// Gives fresh zeroed frames to the pages of `addr..addr + len` that have none yet, with
    /// `prot`. `Err(ENOMEM)` when frames ran out.
    fn populate(&mut self, addr: u64, len: u64, prot: u64) -> Result<(), i64>;
    /// Unmaps pages (their frames go back to the system).
    fn unmap_pages(&mut self, addr: u64, len: u64);
    /// Changes the access of the pages that have frames (the others get it when populated).
    fn protect_pages(&mut self, addr: u64, len: u64, prot: u64);
    /// Moves the frames of `from..from + len` to `to..` (mremap), with `prot`.
    fn move_pages(&mut self, from: u64, to: u64, len: u64, prot: u64);
    /// Copies from user pages (the caller has checked the range); pages without a frame read
    /// as zeros.
    fn read_user(&mut self, addr: u64, buf: &mut [u8]);
    /// Copies to user pages whatever their protection (the caller has checked the range and
    /// populated it).
    fn write_user(&mut self, addr: u64, data: &[u8]);
    /// Reads the shell's standard input; blocks. `Err` when the program must stop (Ctrl-C, kill).
    fn read_stdin(&mut self, buf: &mut [u8]) -> Result<usize, Stop>;
    /// Writes standard output (1) or error (2). `Err(EPIPE)` when nobody reads any more.
    fn write_out(&mut self, fd: u32, data: &[u8]) -> Result<usize, i64>;
    /// Whether stream 0, 1 or 2 is the terminal.
    fn isatty(&self, fd: u32) -> bool;
    /// The terminal's (columns, rows).
    fn winsize(&self) -> (u16, u16);
    fn realtime_ns(&self) -> u64;
    fn monotonic_ns(&self) -> u64;
    /// CPU time used by this process.
    fn cpu_ns(&self) -> u64;
    fn random(&mut self, buf: &mut [u8]);
    /// Sleeps until the monotonic time `deadline`; `Err` when the program must stop.
    fn sleep_until(&mut self, deadline: u64) -> Result<(), Stop>;
    fn yield_now(&mut self);
    /// Sets the `fs` base register (thread pointer) of the process.
    fn set_fs_base(&mut self, base: u64);
    /// A diagnostic line for the user (`trace` output, unsupported calls): standard error.
    fn note(&mut self, line: &str);
}

/// The program must stop now (Ctrl-C, kill, timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stop;

/// What a system call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Return this value (negative: `-errno`) to the program.
    Return(i64),
    /// The process called `exit`/`exit_group`.
    Exit(i32),
    /// The process sent itself a signal whose default action ends it.
    Signal(i32),
    /// Stop (Ctrl-C, kill).
    Stop,
}

/// What a page fault in user mode was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The page got its frame: the program goes on.
    Mapped,
    /// Not an access the program may make there: it ends (SIGSEGV).
    Denied,
    /// Allowed, but no frame left: it ends (out of memory).
    NoMemory,
}

/// Why a program could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    Elf(ElfError),
    /// A fixed-address executable outside the user half Keel gives programs.
    FixedAddress(u64),
    /// Arguments and environment too large.
    ArgsTooLong,
    /// Memory (the limit or the system).
    NoMemory,
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::Elf(e) => e.fmt(f),
            LoadError::FixedAddress(a) => write!(
                f,
                "not supported: linked at the fixed address {a:#x}, where Keel's kernel lives; build it as a static PIE"
            ),
            LoadError::ArgsTooLong => f.write_str("argument list too long"),
            LoadError::NoMemory => f.write_str("not enough memory to load it"),
        }
    }
}

impl From<ElfError> for LoadError {
    fn from(e: ElfError) -> Self {
        LoadError::Elf(e)
    }
}

/// A directory entry as `getdents64` reports it: name, inode, `d_type`.
type DirRecord = (String, u64, u8);

/// An in-process pipe (`pipe2`): a bounded buffer and whether each end is still open.
struct Pipe {
    data: VecDeque<u8>,
    readers: usize,
    writers: usize,
}

enum File {
    /// The shell's stream 0, 1 or 2.
    Console(u32),
    Node {
        handle: Handle,
        /// Directory entries snapshot for `getdents64` and the next index.
        dir: Option<(Vec<DirRecord>, usize)>,
        nonblock: bool,
    },
    PipeRead(Rc<RefCell<Pipe>>),
    PipeWrite(Rc<RefCell<Pipe>>),
}

impl Drop for File {
    fn drop(&mut self) {
        match self {
            File::PipeRead(p) => p.borrow_mut().readers -= 1,
            File::PipeWrite(p) => p.borrow_mut().writers -= 1,
            _ => {}
        }
    }
}

#[derive(Clone)]
struct Fd {
    file: Rc<RefCell<File>>,
    cloexec: bool,
}

/// Where a program starts: its first instruction and stack pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Start {
    pub entry: u64,
    pub rsp: u64,
    /// Where the image was placed (the load base of a PIE).
    pub base: u64,
}

/// A running program's state.
pub struct Process {
    vfs: &'static Vfs,
    map: Map,
    files: Vec<Option<Fd>>,
    cwd: String,
    exe: String,
    brk_start: u64,
    brk: u64,
    mmap_top: u64,
    stack_low: u64,
    limit: u64,
    limit_hit: bool,
    pid: u64,
    sigactions: [[u8; 32]; 65],
    sigmask: u64,
    umask: u64,
    fs_base: u64,
    trace: bool,
    /// Unsupported calls already reported (reported once each).
    reported: Vec<u64>,
    /// The path the current call read, for `trace`.
    last_path: Option<String>,
}

/// How a process is set up.
pub struct Setup<'a> {
    pub vfs: &'static Vfs,
    /// The program's path (`/proc/self/exe`, `AT_EXECFN`).
    pub exe: String,
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: String,
    pub pid: u64,
    /// Most bytes the process may map.
    pub limit: u64,
    pub trace: bool,
}

fn err(e: keel_vfs::Error) -> i64 {
    -abi::vfs_errno(e)
}

fn dtype(k: FileType) -> u8 {
    match k {
        FileType::File => abi::DT_REG,
        FileType::Dir => abi::DT_DIR,
        FileType::Symlink => abi::DT_LNK,
        FileType::CharDevice => abi::DT_CHR,
    }
}

/// Random bits from the host, for placement.
fn rand_u64(host: &mut dyn Host) -> u64 {
    let mut b = [0u8; 8];
    host.random(&mut b);
    u64::from_le_bytes(b)
}

impl Process {
    /// Loads `image` (an ELF file's bytes) into a fresh address space through `host` and builds
    /// the initial stack. The program starts at the returned [`Start`].
    pub fn load(setup: Setup<'_>, image: &[u8], host: &mut dyn Host) -> Result<(Process, Start), LoadError> {
        let img = elf::parse(image)?;
        let base = if img.pie {
            PIE_BASE + (rand_u64(host) % (1 << 28)) * PAGE - img.low
        } else {
            if img.low < USER_LOW || img.high > PIE_BASE {
                return Err(LoadError::FixedAddress(img.low));
            }
            0
        };
        let stack_high = STACK_TOP - (rand_u64(host) % (1 << 16)) * PAGE;
        let stack_low = stack_high - STACK_SIZE;
        let brk_start = base + img.high + (rand_u64(host) % 2048) * PAGE;
        let console = |n| Some(Fd { file: Rc::new(RefCell::new(File::Console(n))), cloexec: false });
        let mut p = Process {
            vfs: setup.vfs,
            map: Map::new(),
            files: vec![console(0), console(1), console(2)],
            cwd: setup.cwd,
            exe: setup.exe,
            brk_start,
            brk: brk_start,
            mmap_top: stack_low - STACK_GUARD - (rand_u64(host) % (1 << 20)) * PAGE,
            stack_low,
            limit: setup.limit,
            limit_hit: false,
            pid: setup.pid,
            sigactions: [[0; 32]; 65],
            sigmask: 0,
            umask: 0o022,
            fs_base: 0,
            trace: setup.trace,
            reported: Vec::new(),
            last_path: None,
        };
        p.load_segments(&img, base, image, host)?;
        p.map_new(host, stack_low, STACK_SIZE, abi::PROT_READ | abi::PROT_WRITE, Kind::Stack)
            .map_err(|_| LoadError::NoMemory)?;
        let mut random = [0u8; 16];
        host.random(&mut random);
        let argv: Vec<&[u8]> = setup.argv.iter().map(|a| a.as_bytes()).collect();
        let env_strings: Vec<String> = setup.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let envp: Vec<&[u8]> = env_strings.iter().map(|e| e.as_bytes()).collect();
        let auxv = [
            (stack::AT_PHDR, base + img.phdr),
            (stack::AT_PHENT, img.phent),
            (stack::AT_PHNUM, img.phnum),
            (stack::AT_PAGESZ, PAGE),
            (stack::AT_BASE, 0),
            (stack::AT_FLAGS, 0),
            (stack::AT_ENTRY, base + img.entry),
            (stack::AT_UID, 0),
            (stack::AT_EUID, 0),
            (stack::AT_GID, 0),
            (stack::AT_EGID, 0),
            (stack::AT_HWCAP, 0),
            (stack::AT_CLKTCK, 100),
            (stack::AT_SECURE, 0),
        ];
        let st = stack::build(stack_high, &argv, &envp, &auxv, random).ok_or(LoadError::ArgsTooLong)?;
        p.populate(host, st.rsp, st.bytes.len() as u64).map_err(|_| LoadError::NoMemory)?;
        host.write_user(st.rsp, &st.bytes);
        Ok((p, Start { entry: base + img.entry, rsp: st.rsp, base }))
    }

    /// Maps the image's segments at `base`; a page two segments share gets both accesses.
    fn load_segments(&mut self, img: &Image, base: u64, data: &[u8], host: &mut dyn Host) -> Result<(), LoadError> {
        let mut ranges: Vec<(u64, u64, u64)> = Vec::new();
        let mut segs = img.segments.clone();
        segs.sort_by_key(|s| s.vaddr);
        for s in &segs {
            let mut lo = page_down(base + s.vaddr);
            let hi = page_up(base + s.vaddr + s.memsz).ok_or(LoadError::NoMemory)?;
            if let Some(last) = ranges.last_mut() {
                if last.1 > lo {
                    // The shared page: cut from the previous range, given both accesses.
                    let prot = last.2 | s.prot;
                    last.1 -= PAGE;
                    if last.1 == last.0 {
                        ranges.pop();
                    }
                    ranges.push((lo, lo + PAGE, prot));
                    lo += PAGE;
                }
            }
            if hi > lo {
                ranges.push((lo, hi, s.prot));
            }
        }
        for (lo, hi, prot) in ranges {
            self.map_new(host, lo, hi - lo, prot, Kind::Image).map_err(|_| LoadError::NoMemory)?;
        }
        for s in &segs {
            let bytes = &data[s.offset as usize..(s.offset + s.filesz) as usize];
            self.populate(host, base + s.vaddr, s.memsz).map_err(|_| LoadError::NoMemory)?;
            host.write_user(base + s.vaddr, bytes);
        }
        Ok(())
    }

    /// Maps fresh pages, within the limit.
    fn map_new(&mut self, host: &mut dyn Host, addr: u64, len: u64, prot: u64, kind: Kind) -> Result<(), i64> {
        if self.map.committed().saturating_add(len) > self.limit {
            self.limit_hit = true;
            return Err(-ENOMEM);
        }
        host.map_pages(addr, len, prot).map_err(|_| -ENOMEM)?;
        self.map.insert(addr, len, prot, kind);
        Ok(())
    }

    /// Gives frames to every page of `addr..addr + len` (which is mapped), each with its
    /// range's access.
    fn populate(&mut self, host: &mut dyn Host, addr: u64, len: u64) -> Result<(), i64> {
        let end = page_up(addr.saturating_add(len)).ok_or(-EFAULT)?;
        let mut at = page_down(addr);
        while at < end {
            let a = *self.map.find(at).ok_or(-EFAULT)?;
            let stop = a.end.min(end);
            host.populate(at, stop - at, a.prot)?;
            at = stop;
        }
        Ok(())
    }

    /// A page fault at `addr` in user mode: if the access is allowed there, the page gets its
    /// frame and the program goes on.
    pub fn fault(&mut self, host: &mut dyn Host, addr: u64, write: bool, exec: bool, present: bool) -> Fault {
        let Some(a) = self.map.find(addr).copied() else { return Fault::Denied };
        let allowed = if write {
            a.prot & abi::PROT_WRITE != 0
        } else if exec {
            a.prot & abi::PROT_EXEC != 0
        } else {
            a.prot != 0
        };
        // A page with a frame already has its access in the page tables: a fault on it is a
        // real violation.
        if !allowed || present {
            return Fault::Denied;
        }
        match host.populate(page_down(addr), PAGE, a.prot) {
            Ok(()) => Fault::Mapped,
            Err(_) => Fault::NoMemory,
        }
    }

    fn unmap(&mut self, host: &mut dyn Host, addr: u64, len: u64) {
        for a in self.map.remove(addr, len) {
            host.unmap_pages(a.start, a.end - a.start);
        }
    }

    /// Bytes the process has mapped.
    pub fn memory_bytes(&self) -> u64 {
        self.map.committed()
    }

    /// True once a request was refused for the memory limit.
    pub fn limit_hit(&self) -> bool {
        self.limit_hit
    }

    /// The process's memory limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The thread pointer the process set (`arch_prctl`).
    pub fn fs_base(&self) -> u64 {
        self.fs_base
    }

    /// What a fault at `addr` hit, for the report: "stack overflow" below the stack, else the
    /// kind of mapping or "unmapped".
    pub fn describe_fault(&self, addr: u64) -> &'static str {
        if addr < self.stack_low && addr >= self.stack_low.saturating_sub(STACK_GUARD) {
            return "stack overflow";
        }
        match self.map.find(addr) {
            Some(a) if a.prot == 0 => "inaccessible page",
            Some(a) => match a.kind {
                Kind::Image => "program image (write to read-only or execute of data)",
                Kind::Heap => "heap",
                Kind::Stack => "stack",
                Kind::Anon | Kind::File => "mapping",
            },
            None if addr < 4096 => "null pointer",
            None => "unmapped address",
        }
    }

    /// Unmaps everything (the kernel then drops the page tables).
    pub fn release(&mut self, host: &mut dyn Host) {
        let all: Vec<(u64, u64)> = self.map.areas().map(|a| (a.start, a.end)).collect();
        for (s, e) in all {
            self.unmap(host, s, e - s);
        }
        self.files.clear();
    }

    // ---- user memory ----

    fn read_mem(&mut self, host: &mut dyn Host, addr: u64, len: usize) -> Result<Vec<u8>, i64> {
        if !self.map.check(addr, len as u64, abi::PROT_READ) {
            return Err(-EFAULT);
        }
        let mut buf = vec![0u8; len];
        host.read_user(addr, &mut buf);
        Ok(buf)
    }

    fn write_mem(&mut self, host: &mut dyn Host, addr: u64, data: &[u8]) -> Result<(), i64> {
        if !self.map.check(addr, data.len() as u64, abi::PROT_WRITE) {
            return Err(-EFAULT);
        }
        if data.is_empty() {
            return Ok(());
        }
        self.populate(host, addr, data.len() as u64)?;
        host.write_user(addr, data);
        Ok(())
    }

    fn read_u64(&mut self, host: &mut dyn Host, addr: u64) -> Result<u64, i64> {
        let b = self.read_mem(host, addr, 8)?;
        Ok(abi::get(&b, 0))
    }

    /// A NUL-terminated string of at most 4096 bytes (a path).
    fn read_cstr(&mut self, host: &mut dyn Host, addr: u64) -> Result<String, i64> {
        let mut out = Vec::new();
        let mut at = addr;
        loop {
            let chunk = (PAGE - at % PAGE).min(256) as usize;
            let b = self.read_mem(host, at, chunk)?;
            if let Some(end) = b.iter().position(|c| *c == 0) {
                out.extend_from_slice(&b[..end]);
                break;
            }
            out.extend_from_slice(&b);
            if out.len() > 4096 {
                return Err(-ENAMETOOLONG);
            }
            at += chunk as u64;
        }
        let s = String::from_utf8(out).map_err(|_| -ENOENT)?;
        if self.trace {
            self.last_path = Some(s.clone());
        }
        Ok(s)
    }

    // ---- files ----

    fn fd(&self, fd: u64) -> Result<Rc<RefCell<File>>, i64> {
        self.files.get(fd as usize).and_then(|f| f.as_ref()).map(|f| f.file.clone()).ok_or(-EBADF)
    }

    fn insert_fd(&mut self, file: File, cloexec: bool, from: usize) -> Result<i64, i64> {
        let fd = Fd { file: Rc::new(RefCell::new(file)), cloexec };
        self.insert_shared(fd, from)
    }

    fn insert_shared(&mut self, fd: Fd, from: usize) -> Result<i64, i64> {
        let slot = (from..MAX_FDS).find(|i| self.files.get(*i).is_none_or(|f| f.is_none())).ok_or(-EMFILE)?;
        if slot >= self.files.len() {
            self.files.resize(slot + 1, None);
        }
        self.files[slot] = Some(fd);
        Ok(slot as i64)
    }

    /// The directory a `*at` call starts from.
    fn base_of(&self, dirfd: u64, path: &str) -> Result<String, i64> {
        if path.starts_with('/') || dirfd as i64 as i32 == abi::AT_FDCWD as i32 {
            return Ok(self.cwd.clone());
        }
        let f = self.fd(dirfd)?;
        let f = f.borrow();
        match &*f {
            File::Node { handle, .. } if handle.stat().is_ok_and(|s| s.kind == FileType::Dir) => {
                Ok(handle.node().path.clone())
            }
            _ => Err(-ENOTDIR),
        }
    }

    fn info_of(&self, file: &File) -> Result<FileInfo, i64> {
        Ok(match file {
            File::Console(n) => FileInfo {
                ino: u64::from(*n) + 1,
                mode: abi::S_IFCHR | 0o620,
                nlink: 1,
                rdev: 0x8800,
                ..Default::default()
            },
            File::Node { handle, .. } => FileInfo::from_vfs(&handle.stat().map_err(err)?),
            File::PipeRead(_) | File::PipeWrite(_) => {
                FileInfo { mode: abi::S_IFIFO | 0o600, nlink: 1, ..Default::default() }
            }
        })
    }

    fn open(&mut self, dirfd: u64, path: &str, flags: u64) -> Result<i64, i64> {
        if path.is_empty() {
            return Err(-ENOENT);
        }
        let base = self.base_of(dirfd, path)?;
        let acc = flags & abi::o::ACCMODE;
        if flags & abi::o::PATH == 0 && acc == 3 {
            return Err(-EINVAL);
        }
        let opts = OpenOptions {
            read: acc == abi::o::RDONLY || acc == abi::o::RDWR || flags & abi::o::PATH != 0,
            write: acc == abi::o::WRONLY || acc == abi::o::RDWR,
            append: flags & abi::o::APPEND != 0,
            create: flags & abi::o::CREAT != 0,
            exclusive: flags & abi::o::EXCL != 0 && flags & abi::o::CREAT != 0,
            truncate: flags & abi::o::TRUNC != 0 && acc != abi::o::RDONLY,
            directory: flags & abi::o::DIRECTORY != 0,
            nofollow: flags & abi::o::NOFOLLOW != 0,
        };
        let handle = self.vfs.open(&base, path, opts, false).map_err(err)?;
        let file = File::Node { handle, dir: None, nonblock: flags & abi::o::NONBLOCK != 0 };
        self.insert_fd(file, flags & abi::o::CLOEXEC != 0, 0)
    }

    fn read_file(
        &mut self,
        host: &mut dyn Host,
        fd: u64,
        len: usize,
        at: Option<u64>,
    ) -> Result<Vec<u8>, Result<i64, Stop>> {
        let f = self.fd(fd).map_err(Ok)?;
        let mut buf = vec![0u8; len.min(MAX_IO)];
        let mut f = f.borrow_mut();
        let n = match (&mut *f, at) {
            (File::Console(0), None) => host.read_stdin(&mut buf).map_err(Err)?,
            (File::Console(_), _) => return Err(Ok(-EBADF)),
            (File::Node { handle, .. }, at) => {
                if handle.stat().is_ok_and(|s| s.kind == FileType::Dir) {
                    return Err(Ok(-EISDIR));
                }
                match at {
                    Some(off) => handle.pread(&mut buf, off),
                    None => handle.read(&mut buf),
                }
                .map_err(|e| Ok(err(e)))?
            }
            (File::PipeRead(_), Some(_)) => return Err(Ok(-ESPIPE)),
            (File::PipeRead(p), None) => {
                loop {
                    let mut pipe = p.borrow_mut();
                    if !pipe.data.is_empty() || pipe.writers == 0 {
                        let n = buf.len().min(pipe.data.len());
                        for (i, b) in pipe.data.drain(..n).enumerate() {
                            buf[i] = b;
                        }
                        break n;
                    }
                    drop(pipe);
                    // Only this process could write: it would wait forever (as on Linux).
                    host.sleep_until(u64::MAX).map_err(Err)?;
                }
            }
            (File::PipeWrite(_), _) => return Err(Ok(-EBADF)),
        };
        buf.truncate(n);
        Ok(buf)
    }

    fn write_file(&mut self, host: &mut dyn Host, fd: u64, data: &[u8], at: Option<u64>) -> Result<i64, Stop> {
        let f = match self.fd(fd) {
            Ok(f) => f,
            Err(e) => return Ok(e),
        };
        let mut f = f.borrow_mut();
        Ok(match (&mut *f, at) {
            (File::Console(0), _) => -EBADF,
            (File::Console(_), Some(_)) => -ESPIPE,
            (File::Console(n), None) => match host.write_out(*n, data) {
                Ok(n) => n as i64,
                Err(e) => e,
            },
            (File::Node { handle, .. }, at) => match at {
                Some(off) => handle.pwrite(data, off),
                None => handle.write(data),
            }
            .map_or_else(err, |n| n as i64),
            (File::PipeWrite(_), Some(_)) => -ESPIPE,
            (File::PipeWrite(p), None) => loop {
                let mut pipe = p.borrow_mut();
                if pipe.readers == 0 {
                    break -EPIPE;
                }
                let room = PIPE_BUF - pipe.data.len();
                if room > 0 || data.is_empty() {
                    let n = room.min(data.len());
                    pipe.data.extend(&data[..n]);
                    break n as i64;
                }
                drop(pipe);
                host.sleep_until(u64::MAX)?;
            },
            (File::PipeRead(_), _) => -EBADF,
        })
    }

    fn iovecs(&mut self, host: &mut dyn Host, iov: u64, count: u64) -> Result<Vec<(u64, u64)>, i64> {
        if count > 1024 {
            return Err(-EINVAL);
        }
        let raw = self.read_mem(host, iov, count as usize * 16)?;
        let v: Vec<(u64, u64)> =
            (0..count as usize).map(|i| (abi::get(&raw, i * 16), abi::get(&raw, i * 16 + 8))).collect();
        if v.iter().try_fold(0u64, |acc, (_, l)| acc.checked_add(*l)).is_none_or(|t| t > i64::MAX as u64) {
            return Err(-EINVAL);
        }
        Ok(v)
    }

    fn getdents(&mut self, host: &mut dyn Host, fd: u64, buf: u64, count: u64) -> Result<i64, i64> {
        let f = self.fd(fd)?;
        let mut f = f.borrow_mut();
        let File::Node { handle, dir, .. } = &mut *f else { return Err(-ENOTDIR) };
        let st = handle.stat().map_err(err)?;
        if st.kind != FileType::Dir {
            return Err(-ENOTDIR);
        }
        if dir.is_none() {
            let mut list = vec![(".".to_string(), st.ino, abi::DT_DIR), ("..".to_string(), 1, abi::DT_DIR)];
            for e in handle.readdir().map_err(err)? {
                list.push((e.name, e.ino, dtype(e.kind)));
            }
            *dir = Some((list, 0));
        }
        let Some((list, pos)) = dir else { return Ok(0) };
        let mut out = Vec::new();
        while *pos < list.len() {
            let (name, ino, t) = &list[*pos];
            let rec = abi::dirent64(*ino, *pos as u64 + 1, *t, name);
            if out.len() + rec.len() > count as usize {
                if out.is_empty() {
                    return Err(-EINVAL);
                }
                break;
            }
            out.extend_from_slice(&rec);
            *pos += 1;
        }
        drop(f);
        self.write_mem(host, buf, &out)?;
        Ok(out.len() as i64)
    }

    fn stat_path(&mut self, host: &mut dyn Host, dirfd: u64, path_ptr: u64, flags: u64) -> Result<FileInfo, i64> {
        let path = self.read_cstr(host, path_ptr)?;
        if path.is_empty() {
            if flags & abi::AT_EMPTY_PATH != 0 {
                let f = self.fd(dirfd)?;
                let f = f.borrow();
                return self.info_of(&f);
            }
            return Err(-ENOENT);
        }
        let base = self.base_of(dirfd, &path)?;
        let how = if flags & abi::AT_SYMLINK_NOFOLLOW != 0 { Lookup::NOFOLLOW } else { Lookup::FOLLOW };
        let s = self.vfs.stat(&base, &path, how).map_err(err)?;
        Ok(FileInfo::from_vfs(&s))
    }

    // ---- memory calls ----

    fn brk(&mut self, host: &mut dyn Host, want: u64) -> i64 {
        let cur = self.brk;
        if want < self.brk_start || want > self.brk_start + (1 << 40) {
            return cur as i64;
        }
        let (Some(old_end), Some(new_end)) = (page_up(cur), page_up(want)) else { return cur as i64 };
        if new_end > old_end {
            if !self.map.is_free(old_end, new_end - old_end) || new_end > self.mmap_top {
                return cur as i64;
            }
            let rw = abi::PROT_READ | abi::PROT_WRITE;
            if self.map_new(host, old_end, new_end - old_end, rw, Kind::Heap).is_err() {
                return cur as i64;
            }
        } else if new_end < old_end {
            self.unmap(host, new_end, old_end - new_end);
        }
        self.brk = want;
        want as i64
    }

    fn mmap(&mut self, host: &mut dyn Host, a: [u64; 6]) -> Result<i64, i64> {
        let [addr, len, prot, flags, fd, off] = a;
        if len == 0 || prot & !7 != 0 {
            return Err(-EINVAL);
        }
        let len = page_up(len).filter(|l| *l <= USER_HIGH - USER_LOW).ok_or(-ENOMEM)?;
        let anon = flags & abi::MAP_ANONYMOUS != 0;
        let kind = flags & 3;
        if kind != abi::MAP_PRIVATE && kind != abi::MAP_SHARED {
            return Err(-EINVAL);
        }
        if !anon && (off % PAGE != 0) {
            return Err(-EINVAL);
        }
        // A shared writable file mapping would have to write back to the file.
        if !anon && kind == abi::MAP_SHARED && prot & abi::PROT_WRITE != 0 {
            return Err(-ENODEV);
        }
        let file = if anon {
            None
        } else {
            let f = self.fd(fd)?;
            let b = f.borrow();
            match &*b {
                File::Node { handle, .. } if handle.readable() => Some(handle.clone()),
                File::Node { .. } => return Err(-EACCES),
                _ => return Err(-ENODEV),
            }
        };
        let fixed = flags & (abi::MAP_FIXED | abi::MAP_FIXED_NOREPLACE) != 0;
        let in_range =
            |s: u64| s.is_multiple_of(PAGE) && s >= USER_LOW && s.checked_add(len).is_some_and(|e| e <= USER_HIGH);
        let start = if fixed {
            if !in_range(addr) {
                return Err(-EINVAL);
            }
            if flags & abi::MAP_FIXED_NOREPLACE != 0 && !self.map.is_free(addr, len) {
                return Err(-EEXIST);
            }
            self.unmap(host, addr, len);
            addr
        } else if addr != 0 && in_range(addr) && self.map.is_free(addr, len) {
            addr
        } else {
            self.map.find_free(len, USER_LOW, self.mmap_top).ok_or(-ENOMEM)?
        };
        self.map_new(host, start, len, prot, if anon { Kind::Anon } else { Kind::File })?;
        if let Some(h) = file {
            let size = h.stat().map_err(err)?.size;
            let filled = size.saturating_sub(off).min(len);
            if filled > 0 {
                self.populate(host, start, filled)?;
            }
            let mut done = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            while done < len {
                let n =
                    h.pread(&mut buf[..(len - done).min(64 * 1024) as usize], off.saturating_add(done)).map_err(err)?;
                if n == 0 {
                    break;
                }
                host.write_user(start + done, &buf[..n]);
                done += n as u64;
            }
        }
        Ok(start as i64)
    }

    fn mremap(&mut self, host: &mut dyn Host, a: [u64; 6]) -> Result<i64, i64> {
        let [old, old_len, new_len, flags, _, _] = a;
        if old % PAGE != 0 || new_len == 0 || flags & abi::MREMAP_FIXED != 0 {
            return Err(-EINVAL);
        }
        let old_len = page_up(old_len).ok_or(-EINVAL)?;
        let new_len = page_up(new_len).filter(|l| *l <= USER_HIGH - USER_LOW).ok_or(-ENOMEM)?;
        let area = *self.map.find(old).ok_or(-EFAULT)?;
        if old_len == 0 || !self.map.covered(old, old_len) || area.end < old + old_len {
            return Err(-EFAULT);
        }
        if new_len <= old_len {
            self.unmap(host, old + new_len, old_len - new_len);
            return Ok(old as i64);
        }
        let grow = new_len - old_len;
        if old + new_len <= USER_HIGH && self.map.is_free(old + old_len, grow) {
            self.map_new(host, old + old_len, grow, area.prot, area.kind)?;
            return Ok(old as i64);
        }
        if flags & abi::MREMAP_MAYMOVE == 0 {
            return Err(-ENOMEM);
        }
        let to = self.map.find_free(new_len, USER_LOW, self.mmap_top).ok_or(-ENOMEM)?;
        // The frames move with the mapping (no copy); the old range is gone after.
        self.map_new(host, to, new_len, area.prot, area.kind)?;
        host.move_pages(old, to, old_len, area.prot);
        self.unmap(host, old, old_len);
        Ok(to as i64)
    }

    /// A write that found no reader: `SIGPIPE` ends the process unless it ignores the signal
    /// (then the program sees `EPIPE`), as on Linux.
    fn sigpipe(&self, r: i64) -> Result<i64, Call> {
        let ignored = abi::get(&self.sigactions[abi::SIGPIPE as usize], 0) == 1;
        if r == -EPIPE && !ignored {
            return Err(Call::Done(Outcome::Signal(abi::SIGPIPE)));
        }
        Ok(r)
    }

    // ---- the call table ----

    /// Runs system call `n` with arguments `a`.
    pub fn syscall(&mut self, host: &mut dyn Host, n: u64, a: [u64; 6]) -> Outcome {
        self.last_path = None;
        let out = match self.dispatch(host, n, a) {
            Ok(v) => Outcome::Return(v),
            Err(Call::Errno(e)) => Outcome::Return(e),
            Err(Call::Done(o)) => o,
        };
        if self.trace {
            self.trace_line(host, n, &a, out);
        }
        out
    }

    fn trace_line(&mut self, host: &mut dyn Host, n: u64, a: &[u64; 6], out: Outcome) {
        let mut line = String::new();
        match abi::syscall_name(n) {
            Some(name) => line.push_str(name),
            None => {
                let _ = write!(line, "syscall_{n}");
            }
        }
        line.push('(');
        let shown = abi::syscall_args(n);
        for (i, v) in a[..shown].iter().enumerate() {
            if i > 0 {
                line.push_str(", ");
            }
            let as_int = *v as i64;
            if (-4096..4096).contains(&as_int) {
                let _ = write!(line, "{as_int}");
            } else {
                let _ = write!(line, "{v:#x}");
            }
        }
        if let Some(p) = &self.last_path {
            let _ = write!(line, " \"{p}\"");
        }
        line.push(')');
        match out {
            Outcome::Return(v) if (-4095..0).contains(&v) => {
                let _ = write!(line, " = -1 {} ({})", abi::errno_name(-v), -v);
            }
            Outcome::Return(v) if v >= USER_LOW as i64 => {
                let _ = write!(line, " = {v:#x}");
            }
            Outcome::Return(v) => {
                let _ = write!(line, " = {v}");
            }
            Outcome::Exit(c) => {
                let _ = write!(line, " = ? (exit {c})");
            }
            Outcome::Signal(s) => {
                let _ = write!(line, " = ? ({})", abi::signal_name(s));
            }
            Outcome::Stop => line.push_str(" = ? (interrupted)"),
        }
        line.push('\n');
        host.note(&line);
    }

    fn dispatch(&mut self, host: &mut dyn Host, n: u64, a: [u64; 6]) -> Result<i64, Call> {
        Ok(match n {
            nr::READ | nr::PREAD64 => {
                let at = (n == nr::PREAD64).then_some(a[3]);
                if at.is_some_and(|o| (o as i64) < 0) {
                    return Err(Call::Errno(-EINVAL));
                }
                if !self.map.check(a[1], a[2], abi::PROT_WRITE) {
                    return Err(Call::Errno(-EFAULT));
                }
                let data = self.read_file(host, a[0], a[2] as usize, at).map_err(Call::from_io)?;
                self.write_mem(host, a[1], &data)?;
                data.len() as i64
            }
            nr::WRITE | nr::PWRITE64 => {
                let at = (n == nr::PWRITE64).then_some(a[3]);
                let len = (a[2] as usize).min(MAX_IO);
                let data = self.read_mem(host, a[1], len)?;
                let r = self.write_file(host, a[0], &data, at).map_err(|_| Call::Done(Outcome::Stop))?;
                self.sigpipe(r)?
            }
            nr::READV => {
                let iov = self.iovecs(host, a[1], a[2])?;
                for (p, l) in &iov {
                    if !self.map.check(*p, *l, abi::PROT_WRITE) {
                        return Err(Call::Errno(-EFAULT));
                    }
                }
                let total: u64 = iov.iter().map(|(_, l)| *l).sum();
                let data = self.read_file(host, a[0], total as usize, None).map_err(Call::from_io)?;
                let mut at = 0;
                for (p, l) in iov {
                    if at >= data.len() {
                        break;
                    }
                    let n = (l as usize).min(data.len() - at);
                    self.write_mem(host, p, &data[at..at + n])?;
                    at += n;
                }
                data.len() as i64
            }
            nr::WRITEV => {
                let iov = self.iovecs(host, a[1], a[2])?;
                let mut data = Vec::new();
                for (p, l) in iov {
                    let room = MAX_IO - data.len();
                    let chunk = self.read_mem(host, p, (l as usize).min(room))?;
                    data.extend_from_slice(&chunk);
                }
                let r = self.write_file(host, a[0], &data, None).map_err(|_| Call::Done(Outcome::Stop))?;
                self.sigpipe(r)?
            }
            nr::OPEN => {
                let path = self.read_cstr(host, a[0])?;
                self.open(abi::AT_FDCWD as u64, &path, a[1])?
            }
            nr::OPENAT => {
                let path = self.read_cstr(host, a[1])?;
                self.open(a[0], &path, a[2])?
            }
            nr::CLOSE => {
                let slot = self.files.get_mut(a[0] as usize).ok_or(Call::Errno(-EBADF))?;
                slot.take().ok_or(Call::Errno(-EBADF))?;
                0
            }
            nr::LSEEK => {
                let f = self.fd(a[0])?;
                let mut f = f.borrow_mut();
                match &mut *f {
                    File::Node { handle, dir, .. } => {
                        if let Some((_, pos)) = dir {
                            if a[2] == 0 {
                                *pos = a[1] as usize;
                                return Ok(a[1] as i64);
                            }
                            return Err(Call::Errno(-EINVAL));
                        }
                        let to = match a[2] {
                            0 => SeekFrom::Start(a[1]),
                            1 => SeekFrom::Current(a[1] as i64),
                            2 => SeekFrom::End(a[1] as i64),
                            _ => return Err(Call::Errno(-EINVAL)),
                        };
                        if a[2] == 0 && (a[1] as i64) < 0 {
                            return Err(Call::Errno(-EINVAL));
                        }
                        handle.seek(to).map_err(err)? as i64
                    }
                    _ => return Err(Call::Errno(-ESPIPE)),
                }
            }
            nr::STAT | nr::LSTAT => {
                let flags = if n == nr::LSTAT { abi::AT_SYMLINK_NOFOLLOW } else { 0 };
                let info = self.stat_path(host, abi::AT_FDCWD as u64, a[0], flags)?;
                self.write_mem(host, a[1], &info.to_stat())?;
                0
            }
            nr::FSTAT => {
                let f = self.fd(a[0])?;
                let info = self.info_of(&f.borrow())?;
                self.write_mem(host, a[1], &info.to_stat())?;
                0
            }
            nr::NEWFSTATAT => {
                let info = self.stat_path(host, a[0], a[1], a[3])?;
                self.write_mem(host, a[2], &info.to_stat())?;
                0
            }
            nr::STATX => {
                let info = self.stat_path(host, a[0], a[1], a[2])?;
                self.write_mem(host, a[4], &info.to_statx())?;
                0
            }
            nr::ACCESS | nr::FACCESSAT | nr::FACCESSAT2 => {
                let (dirfd, p, mode) =
                    if n == nr::ACCESS { (abi::AT_FDCWD as u64, a[0], a[1]) } else { (a[0], a[1], a[2]) };
                let path = self.read_cstr(host, p)?;
                let base = self.base_of(dirfd, &path)?;
                let node = self.vfs.resolve(&base, &path, Lookup::FOLLOW).map_err(err)?;
                if mode & 2 != 0 && node.fs.readonly() {
                    return Err(Call::Errno(-EROFS));
                }
                0
            }
            nr::GETDENTS64 => self.getdents(host, a[0], a[1], a[2])?,
            nr::MKDIR | nr::MKDIRAT => {
                let (dirfd, p) = if n == nr::MKDIR { (abi::AT_FDCWD as u64, a[0]) } else { (a[0], a[1]) };
                let path = self.read_cstr(host, p)?;
                let base = self.base_of(dirfd, &path)?;
                self.vfs.mkdir(&base, &path, false).map_err(err)?;
                0
            }
            nr::UNLINK | nr::UNLINKAT | nr::RMDIR => {
                let (dirfd, p, flags) = match n {
                    nr::UNLINK => (abi::AT_FDCWD as u64, a[0], 0),
                    nr::RMDIR => (abi::AT_FDCWD as u64, a[0], abi::AT_REMOVEDIR),
                    _ => (a[0], a[1], a[2]),
                };
                let path = self.read_cstr(host, p)?;
                let base = self.base_of(dirfd, &path)?;
                if flags & abi::AT_REMOVEDIR != 0 {
                    self.vfs.rmdir(&base, &path, false).map_err(err)?;
                } else {
                    let st = self.vfs.stat(&base, &path, Lookup::NOFOLLOW).map_err(err)?;
                    if st.kind == FileType::Dir {
                        return Err(Call::Errno(-EISDIR));
                    }
                    self.vfs.unlink(&base, &path, false).map_err(err)?;
                }
                0
            }
            nr::RENAME | nr::RENAMEAT | nr::RENAMEAT2 => {
                let (fd1, p1, fd2, p2) = if n == nr::RENAME {
                    (abi::AT_FDCWD as u64, a[0], abi::AT_FDCWD as u64, a[1])
                } else {
                    (a[0], a[1], a[2], a[3])
                };
                if n == nr::RENAMEAT2 && a[4] != 0 {
                    return Err(Call::Errno(-EINVAL));
                }
                let from = self.read_cstr(host, p1)?;
                let to = self.read_cstr(host, p2)?;
                let b1 = self.base_of(fd1, &from)?;
                let b2 = self.base_of(fd2, &to)?;
                self.vfs.rename(&b1, &from, &b2, &to, false).map_err(err)?;
                0
            }
            nr::READLINK | nr::READLINKAT => {
                let (dirfd, p, buf, size) =
                    if n == nr::READLINK { (abi::AT_FDCWD as u64, a[0], a[1], a[2]) } else { (a[0], a[1], a[2], a[3]) };
                let path = self.read_cstr(host, p)?;
                let target = if path == "/proc/self/exe" {
                    self.exe.clone()
                } else {
                    let base = self.base_of(dirfd, &path)?;
                    let st = self.vfs.stat(&base, &path, Lookup::NOFOLLOW).map_err(err)?;
                    if st.kind != FileType::Symlink {
                        return Err(Call::Errno(-EINVAL));
                    }
                    self.vfs.readlink(&base, &path, false).map_err(err)?
                };
                let n = target.len().min(size as usize);
                self.write_mem(host, buf, &target.as_bytes()[..n])?;
                n as i64
            }
            nr::GETCWD => {
                let mut s = self.cwd.clone().into_bytes();
                s.push(0);
                if (a[1] as usize) < s.len() {
                    return Err(Call::Errno(-ERANGE));
                }
                self.write_mem(host, a[0], &s)?;
                s.len() as i64
            }
            nr::CHDIR => {
                let path = self.read_cstr(host, a[0])?;
                let node = self.vfs.resolve(&self.cwd, &path, Lookup::FOLLOW).map_err(err)?;
                if node.stat().map_err(err)?.kind != FileType::Dir {
                    return Err(Call::Errno(-ENOTDIR));
                }
                self.cwd = node.path;
                0
            }
            nr::DUP => {
                let fd = self.files.get(a[0] as usize).cloned().flatten().ok_or(Call::Errno(-EBADF))?;
                self.insert_shared(Fd { cloexec: false, ..fd }, 0)?
            }
            nr::DUP2 | nr::DUP3 => {
                let fd = self.files.get(a[0] as usize).cloned().flatten().ok_or(Call::Errno(-EBADF))?;
                if a[1] as usize >= MAX_FDS {
                    return Err(Call::Errno(-EBADF));
                }
                if a[0] == a[1] {
                    if n == nr::DUP3 {
                        return Err(Call::Errno(-EINVAL));
                    }
                    return Ok(a[1] as i64);
                }
                if self.files.len() <= a[1] as usize {
                    self.files.resize(a[1] as usize + 1, None);
                }
                let cloexec = n == nr::DUP3 && a[2] & abi::o::CLOEXEC != 0;
                self.files[a[1] as usize] = Some(Fd { cloexec, ..fd });
                a[1] as i64
            }
            nr::FCNTL => {
                let slot = self.files.get(a[0] as usize).cloned().flatten().ok_or(Call::Errno(-EBADF))?;
                match a[1] {
                    abi::F_DUPFD | abi::F_DUPFD_CLOEXEC => {
                        let cloexec = a[1] == abi::F_DUPFD_CLOEXEC;
                        self.insert_shared(Fd { cloexec, ..slot }, a[2] as usize)?
                    }
                    abi::F_GETFD => i64::from(slot.cloexec),
                    abi::F_SETFD => {
                        if let Some(Some(f)) = self.files.get_mut(a[0] as usize) {
                            f.cloexec = a[2] & abi::FD_CLOEXEC != 0;
                        }
                        0
                    }
                    abi::F_GETFL => match &*slot.file.borrow() {
                        File::Console(0) | File::PipeRead(_) => abi::o::RDONLY as i64,
                        File::Console(_) | File::PipeWrite(_) => abi::o::WRONLY as i64,
                        File::Node { handle, nonblock, .. } => {
                            let acc = match (handle.readable(), handle.writable()) {
                                (true, true) => abi::o::RDWR,
                                (false, true) => abi::o::WRONLY,
                                _ => abi::o::RDONLY,
                            };
                            let app = if handle.is_append() { abi::o::APPEND } else { 0 };
                            let nb = if *nonblock { abi::o::NONBLOCK } else { 0 };
                            (acc | app | nb) as i64
                        }
                    },
                    abi::F_SETFL => {
                        if let File::Node { handle, nonblock, .. } = &mut *slot.file.borrow_mut() {
                            handle.set_append(a[2] & abi::o::APPEND != 0);
                            *nonblock = a[2] & abi::o::NONBLOCK != 0;
                        }
                        0
                    }
                    _ => return Err(Call::Errno(-EINVAL)),
                }
            }
            nr::PIPE | nr::PIPE2 => {
                let pipe = Rc::new(RefCell::new(Pipe { data: VecDeque::new(), readers: 1, writers: 1 }));
                let cloexec = n == nr::PIPE2 && a[1] & abi::o::CLOEXEC != 0;
                if !self.map.check(a[0], 8, abi::PROT_WRITE) {
                    return Err(Call::Errno(-EFAULT));
                }
                let r = self.insert_fd(File::PipeRead(pipe.clone()), cloexec, 0)?;
                let w = match self.insert_fd(File::PipeWrite(pipe), cloexec, 0) {
                    Ok(w) => w,
                    Err(e) => {
                        self.files[r as usize] = None;
                        return Err(Call::Errno(e));
                    }
                };
                let mut b = [0u8; 8];
                b[..4].copy_from_slice(&(r as i32).to_le_bytes());
                b[4..].copy_from_slice(&(w as i32).to_le_bytes());
                self.write_mem(host, a[0], &b)?;
                0
            }
            nr::IOCTL => {
                let f = self.fd(a[0])?;
                let tty = matches!(&*f.borrow(), File::Console(n) if host.isatty(*n));
                match a[1] {
                    abi::TIOCGWINSZ if tty => {
                        let (cols, rows) = host.winsize();
                        let mut b = [0u8; 8];
                        b[0..2].copy_from_slice(&rows.to_le_bytes());
                        b[2..4].copy_from_slice(&cols.to_le_bytes());
                        self.write_mem(host, a[2], &b)?;
                        0
                    }
                    abi::TCGETS if tty => {
                        self.write_mem(host, a[2], &abi::termios())?;
                        0
                    }
                    _ => return Err(Call::Errno(-ENOTTY)),
                }
            }
            nr::FSYNC | nr::FDATASYNC => {
                let f = self.fd(a[0])?;
                if let File::Node { handle, .. } = &*f.borrow() {
                    handle.sync().map_err(err)?;
                }
                0
            }
            nr::TRUNCATE => {
                let path = self.read_cstr(host, a[0])?;
                let h = self
                    .vfs
                    .open(&self.cwd, &path, OpenOptions { write: true, ..Default::default() }, false)
                    .map_err(err)?;
                h.set_size(a[1]).map_err(err)?;
                0
            }
            nr::FTRUNCATE => {
                let f = self.fd(a[0])?;
                match &*f.borrow() {
                    File::Node { handle, .. } => {
                        handle
                            .set_size(a[1])
                            .map_err(|e| if e == keel_vfs::Error::BadHandle { -EINVAL } else { err(e) })?
                    }
                    _ => return Err(Call::Errno(-EINVAL)),
                }
                0
            }
            nr::UTIMENSAT => 0,
            // No users or permission bits in Keel's filesystems: changing them is accepted.
            nr::CHMOD | nr::FCHMOD | nr::FCHMODAT | nr::CHOWN | nr::FCHOWN | nr::LCHOWN | nr::FCHOWNAT => 0,
            nr::MADVISE | nr::MSYNC | nr::FLOCK | nr::FADVISE64 => 0,
            nr::SYMLINK | nr::SYMLINKAT => {
                let (target, dirfd, p) =
                    if n == nr::SYMLINK { (a[0], abi::AT_FDCWD as u64, a[1]) } else { (a[0], a[1], a[2]) };
                let target = self.read_cstr(host, target)?;
                let path = self.read_cstr(host, p)?;
                let base = self.base_of(dirfd, &path)?;
                self.vfs.symlink(&target, &base, &path, false).map_err(err)?;
                0
            }
            nr::LINK | nr::LINKAT => {
                let (fd1, p1, fd2, p2, follow) = if n == nr::LINK {
                    (abi::AT_FDCWD as u64, a[0], abi::AT_FDCWD as u64, a[1], false)
                } else {
                    (a[0], a[1], a[2], a[3], a[4] & 0x400 != 0)
                };
                let old = self.read_cstr(host, p1)?;
                let new = self.read_cstr(host, p2)?;
                let (b1, b2) = (self.base_of(fd1, &old)?, self.base_of(fd2, &new)?);
                self.vfs.link(&b1, &old, follow, &b2, &new, false).map_err(err)?;
                0
            }
            nr::FCHDIR => {
                let path = self.base_of(a[0], "")?;
                self.cwd = path;
                0
            }
            nr::WAIT4 => return Err(Call::Errno(-ECHILD)),
            nr::GETPGID | nr::GETSID => self.pid as i64,
            nr::SETPGID | nr::SETSID => return Err(Call::Errno(-EPERM)),
            nr::SCHED_GETAFFINITY => {
                // One CPU for the process.
                let len = a[1].min(8) as usize;
                if len == 0 {
                    return Err(Call::Errno(-EINVAL));
                }
                let mask = 1u64.to_le_bytes();
                self.write_mem(host, a[2], &mask[..len])?;
                len as i64
            }
            nr::GETRUSAGE => {
                let mut b = [0u8; 144];
                let cpu = host.cpu_ns();
                abi::put(&mut b, 0, cpu / 1_000_000_000);
                abi::put(&mut b, 8, cpu % 1_000_000_000 / 1000);
                abi::put(&mut b, 32, self.map.committed() / 1024); // ru_maxrss, KiB
                self.write_mem(host, a[1], &b)?;
                0
            }
            nr::TIMES => {
                let ticks = host.cpu_ns() / 10_000_000;
                if a[0] != 0 {
                    let mut b = [0u8; 32];
                    abi::put(&mut b, 0, ticks);
                    self.write_mem(host, a[0], &b)?;
                }
                (host.monotonic_ns() / 10_000_000) as i64
            }
            nr::SELECT | nr::PSELECT6 => {
                // Without descriptors: a sleep (the old portable way). With descriptors: as
                // poll, every asked one is reported ready (reads from the console then block).
                if a[0] == 0 {
                    if a[4] != 0 {
                        let raw = self.read_mem(host, a[4], 16)?;
                        let secs = abi::get(&raw, 0);
                        let sub = abi::get(&raw, 8);
                        let ns = if n == nr::SELECT { sub.saturating_mul(1000) } else { sub };
                        let total = secs.saturating_mul(1_000_000_000).saturating_add(ns);
                        host.sleep_until(host.monotonic_ns().saturating_add(total))
                            .map_err(|_| Call::Done(Outcome::Stop))?;
                    }
                    return Ok(0);
                }
                let nfds = a[0].min(1024);
                let bytes = nfds.div_ceil(64) as usize * 8;
                let mut ready = 0;
                for set in [a[1], a[2]] {
                    if set != 0 {
                        let bits = self.read_mem(host, set, bytes)?;
                        ready += bits.iter().map(|b| b.count_ones() as i64).sum::<i64>();
                    }
                }
                if a[3] != 0 {
                    self.write_mem(host, a[3], &vec![0u8; bytes])?;
                }
                ready
            }
            nr::UMASK => {
                let old = self.umask;
                self.umask = a[0] & 0o777;
                old as i64
            }
            nr::BRK => self.brk(host, a[0]),
            nr::MMAP => self.mmap(host, a)?,
            nr::MUNMAP => {
                if !a[0].is_multiple_of(PAGE) || a[1] == 0 {
                    return Err(Call::Errno(-EINVAL));
                }
                let len = page_up(a[1]).ok_or(Call::Errno(-EINVAL))?;
                self.unmap(host, a[0], len);
                0
            }
            nr::MPROTECT => {
                if !a[0].is_multiple_of(PAGE) || a[2] & !7 != 0 {
                    return Err(Call::Errno(-EINVAL));
                }
                let len = page_up(a[1]).ok_or(Call::Errno(-ENOMEM))?;
                if len == 0 {
                    return Ok(0);
                }
                if !self.map.protect(a[0], len, a[2]) {
                    return Err(Call::Errno(-ENOMEM));
                }
                host.protect_pages(a[0], len, a[2]);
                0
            }
            nr::MREMAP => self.mremap(host, a)?,
            nr::EXIT | nr::EXIT_GROUP => return Err(Call::Done(Outcome::Exit((a[0] & 0xff) as i32))),
            nr::CLOCK_GETTIME => {
                let ns = match a[0] {
                    abi::CLOCK_REALTIME | abi::CLOCK_REALTIME_COARSE => host.realtime_ns(),
                    abi::CLOCK_MONOTONIC
                    | abi::CLOCK_MONOTONIC_RAW
                    | abi::CLOCK_MONOTONIC_COARSE
                    | abi::CLOCK_BOOTTIME => host.monotonic_ns(),
                    abi::CLOCK_PROCESS_CPUTIME_ID | abi::CLOCK_THREAD_CPUTIME_ID => host.cpu_ns(),
                    _ => return Err(Call::Errno(-EINVAL)),
                };
                self.write_mem(host, a[1], &abi::timespec(ns))?;
                0
            }
            nr::CLOCK_GETRES => {
                if a[1] != 0 {
                    self.write_mem(host, a[1], &abi::timespec(1))?;
                }
                0
            }
            nr::GETTIMEOFDAY => {
                if a[0] != 0 {
                    let ns = host.realtime_ns();
                    let mut b = [0u8; 16];
                    abi::put(&mut b, 0, ns / 1_000_000_000);
                    abi::put(&mut b, 8, ns % 1_000_000_000 / 1000);
                    self.write_mem(host, a[0], &b)?;
                }
                0
            }
            nr::TIME => {
                let secs = host.realtime_ns() / 1_000_000_000;
                if a[0] != 0 {
                    self.write_mem(host, a[0], &secs.to_le_bytes())?;
                }
                secs as i64
            }
            nr::NANOSLEEP | nr::CLOCK_NANOSLEEP => {
                let (req, abs) = if n == nr::NANOSLEEP { (a[0], false) } else { (a[2], a[1] & 1 != 0) };
                let raw = self.read_mem(host, req, 16)?;
                let mut ts = [0u8; 16];
                ts.copy_from_slice(&raw);
                let ns = abi::read_timespec(&ts).ok_or(Call::Errno(-EINVAL))?;
                let deadline = if abs {
                    let clock = a[0];
                    if clock == abi::CLOCK_REALTIME {
                        host.monotonic_ns().saturating_add(ns.saturating_sub(host.realtime_ns()))
                    } else {
                        ns
                    }
                } else {
                    host.monotonic_ns().saturating_add(ns)
                };
                host.sleep_until(deadline).map_err(|_| Call::Done(Outcome::Stop))?;
                0
            }
            nr::GETRANDOM => {
                let len = (a[1] as usize).min(MAX_IO);
                if !self.map.check(a[0], len as u64, abi::PROT_WRITE) {
                    return Err(Call::Errno(-EFAULT));
                }
                let mut buf = vec![0u8; len];
                host.random(&mut buf);
                self.write_mem(host, a[0], &buf)?;
                len as i64
            }
            nr::UNAME => {
                let u = abi::utsname(["Keel", "keel", "6.1.0-keel", "#1 Keel", "x86_64", "(none)"]);
                self.write_mem(host, a[0], &u)?;
                0
            }
            nr::GETPID | nr::GETTID | nr::SET_TID_ADDRESS | nr::GETPGRP => self.pid as i64,
            nr::GETPPID => 1,
            nr::GETUID | nr::GETGID | nr::GETEUID | nr::GETEGID => 0,
            nr::RT_SIGACTION => {
                let sig = a[0] as usize;
                if sig == 0 || sig > 64 || sig == abi::SIGKILL as usize || sig == 19 {
                    return Err(Call::Errno(-EINVAL));
                }
                if a[2] != 0 {
                    let old = self.sigactions[sig];
                    self.write_mem(host, a[2], &old)?;
                }
                if a[1] != 0 {
                    let new = self.read_mem(host, a[1], 32)?;
                    self.sigactions[sig].copy_from_slice(&new);
                }
                0
            }
            nr::RT_SIGPROCMASK => {
                if a[2] != 0 {
                    let old = self.sigmask.to_le_bytes();
                    self.write_mem(host, a[2], &old)?;
                }
                if a[1] != 0 {
                    let set = self.read_u64(host, a[1])?;
                    self.sigmask = match a[0] {
                        0 => self.sigmask | set,
                        1 => self.sigmask & !set,
                        2 => set,
                        _ => return Err(Call::Errno(-EINVAL)),
                    };
                }
                0
            }
            nr::SIGALTSTACK | nr::SET_ROBUST_LIST => 0,
            nr::KILL | nr::TGKILL | 200 => {
                let (pid, sig) = match n {
                    nr::TGKILL => (a[1], a[2]),
                    _ => (a[0], a[1]),
                };
                if pid != self.pid && pid as i64 != 0 && pid as i64 != -1 {
                    return Err(Call::Errno(-ESRCH));
                }
                if sig == 0 {
                    return Ok(0);
                }
                if sig > 64 {
                    return Err(Call::Errno(-EINVAL));
                }
                // SIGCHLD, SIGCONT, SIGURG, SIGWINCH are ignored by default.
                if matches!(sig, 17 | 18 | 23 | 28) {
                    return Ok(0);
                }
                return Err(Call::Done(Outcome::Signal(sig as i32)));
            }
            nr::ARCH_PRCTL => match a[0] {
                abi::ARCH_SET_FS => {
                    if a[1] >= USER_HIGH {
                        return Err(Call::Errno(-EPERM));
                    }
                    self.fs_base = a[1];
                    host.set_fs_base(a[1]);
                    0
                }
                abi::ARCH_GET_FS => {
                    let v = self.fs_base.to_le_bytes();
                    self.write_mem(host, a[1], &v)?;
                    0
                }
                _ => return Err(Call::Errno(-EINVAL)),
            },
            nr::SCHED_YIELD => {
                host.yield_now();
                0
            }
            nr::FUTEX => {
                // One thread: nobody else could wake a waiter (and no lock is ever contended), so
                // a wait answers EAGAIN at once, after checking its word is readable (EFAULT).
                let op = a[1] & 0x7f;
                if op == 0 || op == 9 {
                    self.read_mem(host, a[0], 4)?;
                    return Err(Call::Errno(-EAGAIN));
                }
                0
            }
            nr::GETRLIMIT | nr::PRLIMIT64 => {
                let (res, new, old) = if n == nr::GETRLIMIT { (a[0], 0, a[1]) } else { (a[1], a[2], a[3]) };
                if n == nr::PRLIMIT64 && a[0] != 0 && a[0] != self.pid {
                    return Err(Call::Errno(-ESRCH));
                }
                if new != 0 {
                    return Err(Call::Errno(-EPERM));
                }
                let v = match res {
                    3 => STACK_SIZE,
                    7 => MAX_FDS as u64,
                    9 | 2 => self.limit,
                    0..=15 => u64::MAX,
                    _ => return Err(Call::Errno(-EINVAL)),
                };
                if old != 0 {
                    let mut b = [0u8; 16];
                    abi::put(&mut b, 0, v);
                    abi::put(&mut b, 8, v);
                    self.write_mem(host, old, &b)?;
                }
                0
            }
            nr::POLL | nr::PPOLL => {
                // Files, pipes with data and the console are ready; report every fd as ready
                // for what it asked (reads from the console then block in `read`).
                let count = a[1].min(1024) as usize;
                let raw = self.read_mem(host, a[0], count * 8)?;
                let mut out = raw.clone();
                let mut ready = 0;
                for i in 0..count {
                    let fd = i32::from_le_bytes([raw[i * 8], raw[i * 8 + 1], raw[i * 8 + 2], raw[i * 8 + 3]]);
                    let events = u16::from_le_bytes([raw[i * 8 + 4], raw[i * 8 + 5]]);
                    let rev = if fd < 0 {
                        0
                    } else if self.fd(fd as u64).is_err() {
                        0x20 // POLLNVAL
                    } else {
                        events & 0x5 // POLLIN | POLLOUT
                    };
                    out[i * 8 + 6..i * 8 + 8].copy_from_slice(&rev.to_le_bytes());
                    if rev != 0 {
                        ready += 1;
                    }
                }
                self.write_mem(host, a[0], &out)?;
                ready
            }
            _ => {
                if !self.reported.contains(&n) {
                    self.reported.push(n);
                    let name = abi::syscall_name(n)
                        .map_or_else(|| format!("system call {n}"), |s| format!("{s} (system call {n})"));
                    host.note(&format!("keel: {}: {name} is not supported: ENOSYS\n", self.exe));
                }
                return Err(Call::Errno(-ENOSYS));
            }
        })
    }
}

/// How a call ended early: an error number, or the process ends.
enum Call {
    Errno(i64),
    Done(Outcome),
}

impl From<i64> for Call {
    fn from(e: i64) -> Self {
        Call::Errno(e)
    }
}

impl Call {
    fn from_io(r: Result<i64, Stop>) -> Call {
        match r {
            Ok(e) => Call::Errno(e),
            Err(Stop) => Call::Done(Outcome::Stop),
        }
    }
}

#[cfg(test)]
mod tests;
