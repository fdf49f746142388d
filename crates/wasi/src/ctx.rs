//! The per-program WASI state and the 46 functions.
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use keel_vfs::{Error as VfsError, FileType, Handle, Lookup, OpenOptions, SeekFrom, Stat, Vfs};

use crate::mem::{IoVec, Mem};
use crate::types::*;

/// Output is handed to the runner once this much is buffered.
pub const OUTPUT_FLUSH_AT: usize = 64 * 1024;

/// What the environment provides: clocks and randomness.
pub trait System: Send {
    /// Nanoseconds since the Unix epoch.
    fn realtime_ns(&self) -> u64;
    /// Monotonic nanoseconds (any origin).
    fn monotonic_ns(&self) -> u64;
    /// Fills `buf` with cryptographically secure random bytes.
    fn random(&mut self, buf: &mut [u8]);
}

/// TCP sockets, as the host's network stack provides them (handles are the host's). Every
/// operation returns at once: None or 0 when it would have to wait.
pub trait Sockets: Send {
    /// A connection that arrived on a listener.
    fn accept(&mut self, listener: u64) -> Result<Option<u64>, Errno>;
    /// Received bytes; Some(0) at the end of the stream.
    fn recv(&mut self, sock: u64, buf: &mut [u8]) -> Result<Option<usize>, Errno>;
    /// Bytes taken for sending (0: the buffer is full).
    fn send(&mut self, sock: u64, data: &[u8]) -> Result<usize, Errno>;
    /// Ends the sending direction (the peer sees the end of the stream).
    fn shutdown_write(&mut self, sock: u64) -> Result<(), Errno>;
    /// Closes a connection.
    fn close(&mut self, sock: u64);
    /// Stops listening.
    fn close_listener(&mut self, listener: u64);
    /// Whether an operation would proceed now: accept on a listener, or recv (`write` false) /
    /// send (`write` true) on a connection.
    fn ready(&mut self, handle: u64, listener: bool, write: bool) -> bool;
}

/// A directory given to the guest.
#[derive(Clone, Debug)]
pub struct Preopen {
    /// The name the guest sees (e.g. `.` or `/data`).
    pub guest: String,
    /// The real directory in the VFS.
    pub host: String,
}

/// How to set up a program.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub preopens: Vec<Preopen>,
    /// Most open descriptors (0 means the default, 1024).
    pub max_fds: usize,
    /// Whether stdin, stdout and stderr are a terminal (else a pipe or file).
    pub tty: [bool; 3],
    /// Listening sockets given to the guest (`--tcplisten`), numbered after the preopened
    /// directories; they need [`WasiCtx::set_sockets`].
    pub listeners: Vec<u64>,
}

/// Why a function did not return an errno.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Abort {
    /// `proc_exit(code)`.
    Exit(u32),
    /// The guest must wait: see [`WasiCtx::pending`].
    Suspend,
}

/// A poll subscription.
#[derive(Clone, Debug)]
pub struct Subscription {
    pub userdata: u64,
    pub kind: SubKind,
}

#[derive(Clone, Debug)]
pub enum SubKind {
    /// Fires at this monotonic deadline.
    Clock { deadline: u64 },
    /// Descriptor readiness: `read` or write, and whether it is ready without waiting.
    Fd { fd: u32, read: bool, ready: Option<(Errno, u64, u16)> },
    /// Reading stdin (ready once input or end of input is there).
    Stdin,
    /// Socket readiness (asked of the network each time).
    Sock { fd: u32, read: bool, handle: u64, listener: bool },
}

/// A socket operation waiting for the network.
#[derive(Clone, Debug)]
pub enum SockOp {
    Accept { flags: u16, out: u32 },
    Recv { iovs: Vec<IoVec>, nread_ptr: u32, flags_ptr: Option<u32> },
    Send { iovs: Vec<IoVec>, nwritten_ptr: u32 },
}

/// What a suspended guest is waiting for.
#[derive(Clone, Debug)]
pub enum Pending {
    /// `fd_read` on stdin with nothing buffered: the runner must supply input (or end of input).
    StdinRead { iovs: Vec<IoVec>, nread_ptr: u32 },
    /// `poll_oneoff` with nothing ready: wait until `deadline` or until stdin has input (or,
    /// with `wants_net`, a socket is ready).
    Poll {
        subs: Vec<Subscription>,
        out: u32,
        nevents_ptr: u32,
        deadline: Option<u64>,
        wants_stdin: bool,
        wants_net: bool,
    },
    /// A blocking socket operation: wait for the network.
    Sock { handle: u64, listener: bool, write: bool, op: SockOp },
    /// Output must be flushed; then the call returns `result`.
    Flush { result: Errno },
    /// `sched_yield`: let others run.
    Yield,
}

enum Kind {
    Stdin,
    Stdout,
    Stderr,
    File(Handle),
    Dir(Handle),
    Listener(u64),
    Socket(u64),
}

struct Fd {
    kind: Kind,
    base: u64,
    inheriting: u64,
    flags: u16,
    preopen: Option<String>,
}

impl Fd {
    fn need(&self, right: u64) -> Result<(), Errno> {
        if self.base & right == right {
            Ok(())
        } else {
            Err(errno::NOTCAPABLE)
        }
    }

    fn dir(&self) -> Result<&Handle, Errno> {
        match &self.kind {
            Kind::Dir(h) => Ok(h),
            _ => Err(errno::NOTDIR),
        }
    }
}

/// Maps filesystem errors to WASI errno values.
pub fn vfs_errno(e: VfsError) -> Errno {
    match e {
        VfsError::NotFound => errno::NOENT,
        VfsError::NotADirectory => errno::NOTDIR,
        VfsError::IsADirectory => errno::ISDIR,
        VfsError::AlreadyExists => errno::EXIST,
        VfsError::ReadOnly => errno::ROFS,
        VfsError::NotEmpty => errno::NOTEMPTY,
        VfsError::InvalidPath => errno::INVAL,
        VfsError::NameTooLong => errno::NAMETOOLONG,
        VfsError::NoSpace => errno::NOSPC,
        VfsError::CrossDevice => errno::XDEV,
        VfsError::Loop => errno::LOOP,
        VfsError::InvalidArgument => errno::INVAL,
        VfsError::NotSupported => errno::NOTSUP,
        VfsError::Busy => errno::BUSY,
        VfsError::Escape => errno::NOTCAPABLE,
        VfsError::BadHandle => errno::BADF,
        VfsError::PermissionDenied => errno::PERM,
        VfsError::FileTooLarge => errno::FBIG,
        VfsError::Stale => errno::STALE,
        VfsError::Io => errno::IO,
    }
}

fn filetype(k: FileType) -> u8 {
    match k {
        FileType::File => filetype::REGULAR_FILE,
        FileType::Dir => filetype::DIRECTORY,
        FileType::Symlink => filetype::SYMBOLIC_LINK,
        FileType::CharDevice => filetype::CHARACTER_DEVICE,
    }
}

type R = Result<Errno, Abort>;

/// `?` for errno results inside functions returning [`R`].
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok(e),
        }
    };
}

/// The state of one running program.
pub struct WasiCtx {
    vfs: &'static Vfs,
    sys: Box<dyn System>,
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    fds: Vec<Option<Fd>>,
    max_fds: usize,
    start_ns: u64,
    stdin: VecDeque<u8>,
    stdin_eof: bool,
    /// Output in the order it was written: (fd, bytes), runs of one fd merged.
    out: Vec<(u32, Vec<u8>)>,
    out_bytes: usize,
    pending: Option<Pending>,
    tty: [bool; 3],
    sockets: Option<Box<dyn Sockets>>,
}

impl Drop for WasiCtx {
    /// A program that ends (or is killed) leaves no socket open.
    fn drop(&mut self) {
        if let Some(s) = self.sockets.as_mut() {
            for f in self.fds.iter().flatten() {
                match f.kind {
                    Kind::Socket(h) => s.close(h),
                    Kind::Listener(h) => s.close_listener(h),
                    _ => {}
                }
            }
        }
    }
}

impl WasiCtx {
    /// Sets up stdio and the preopened directories (fds 3, 4, ...).
    pub fn new(vfs: &'static Vfs, sys: Box<dyn System>, config: Config) -> Result<WasiCtx, (String, VfsError)> {
        let mut fds = alloc::vec![
            Some(Fd {
                kind: Kind::Stdin,
                base: rights::TTY & !rights::FD_WRITE,
                inheriting: 0,
                flags: 0,
                preopen: None
            }),
            Some(Fd {
                kind: Kind::Stdout,
                base: rights::TTY & !rights::FD_READ,
                inheriting: 0,
                flags: fdflags::APPEND,
                preopen: None
            }),
            Some(Fd {
                kind: Kind::Stderr,
                base: rights::TTY & !rights::FD_READ,
                inheriting: 0,
                flags: fdflags::APPEND,
                preopen: None
            }),
        ];
        for p in &config.preopens {
            let h = vfs
                .open("/", &p.host, OpenOptions { read: true, directory: true, ..Default::default() }, false)
                .map_err(|e| (p.host.clone(), e))?;
            fds.push(Some(Fd {
                kind: Kind::Dir(h),
                base: rights::DIR,
                inheriting: rights::DIR | rights::FILE,
                flags: 0,
                preopen: Some(p.guest.clone()),
            }));
        }
        // After the directories: wasi-libc scans fds from 3 with fd_prestat_get and stops at the
        // first that is not a directory.
        for &l in &config.listeners {
            fds.push(Some(Fd {
                kind: Kind::Listener(l),
                base: rights::LISTENER,
                inheriting: rights::SOCKET,
                flags: 0,
                preopen: None,
            }));
        }
        let start_ns = sys.monotonic_ns();
        Ok(WasiCtx {
            vfs,
            sys,
            args: config.args.into_iter().map(String::into_bytes).collect(),
            env: config
                .env
                .into_iter()
                .map(|(k, v)| {
                    let mut s = k.into_bytes();
                    s.push(b'=');
                    s.extend_from_slice(v.as_bytes());
                    s
                })
                .collect(),
            fds,
            max_fds: if config.max_fds == 0 { 1024 } else { config.max_fds },
            start_ns,
            stdin: VecDeque::new(),
            stdin_eof: false,
            out: Vec::new(),
            out_bytes: 0,
            pending: None,
            tty: config.tty,
            sockets: None,
        })
    }

    /// Gives the program the host's sockets (its listeners and what they accept).
    pub fn set_sockets(&mut self, sockets: Box<dyn Sockets>) {
        self.sockets = Some(sockets);
    }

    // ---- for the runner ----

    /// What the guest waits for, if it is suspended.
    pub fn pending(&self) -> Option<&Pending> {
        self.pending.as_ref()
    }

    /// Takes what the guest wrote to stdout (1) and stderr (2), in the order it was written.
    pub fn take_output(&mut self) -> Vec<(u32, Vec<u8>)> {
        self.out_bytes = 0;
        core::mem::take(&mut self.out)
    }

    /// Adds input for stdin.
    pub fn push_stdin(&mut self, data: &[u8]) {
        self.stdin.extend(data.iter().copied());
    }

    /// Marks the end of stdin.
    pub fn close_stdin(&mut self) {
        self.stdin_eof = true;
    }

    /// True when stdin has buffered data or has ended.
    pub fn stdin_ready(&self) -> bool {
        !self.stdin.is_empty() || self.stdin_eof
    }

    /// Number of open descriptors.
    pub fn open_fds(&self) -> usize {
        self.fds.iter().filter(|f| f.is_some()).count()
    }

    /// Whether a suspended call can complete now (`now` = monotonic ns).
    pub fn ready(&mut self, now: u64) -> bool {
        match &self.pending {
            None => true,
            Some(Pending::StdinRead { .. }) => self.stdin_ready(),
            Some(Pending::Poll { deadline, wants_stdin, subs, .. }) => {
                if deadline.is_some_and(|d| now >= d) || (*wants_stdin && self.stdin_ready()) {
                    return true;
                }
                let socks: Vec<(u64, bool, bool)> = subs
                    .iter()
                    .filter_map(|s| match s.kind {
                        SubKind::Sock { handle, listener, read, .. } => Some((handle, listener, !read)),
                        _ => None,
                    })
                    .collect();
                match self.sockets.as_mut() {
                    Some(net) => socks.into_iter().any(|(h, l, w)| net.ready(h, l, w)),
                    None => false,
                }
            }
            Some(Pending::Sock { handle, listener, write, .. }) => {
                let (h, l, w) = (*handle, *listener, *write);
                self.sockets.as_mut().is_none_or(|n| n.ready(h, l, w))
            }
            Some(Pending::Flush { .. }) | Some(Pending::Yield) => true,
        }
    }

    /// True when the suspended call waits for the network (the runner then sleeps until the
    /// network or a deadline wakes it).
    pub fn waits_for_network(&self) -> bool {
        matches!(self.pending, Some(Pending::Sock { .. }) | Some(Pending::Poll { wants_net: true, .. }))
    }

    /// Finishes the suspended call (once [`WasiCtx::ready`]); returns its errno for the guest.
    pub fn complete(&mut self, memory: &mut [u8]) -> Errno {
        let mut mem = Mem(memory);
        match self.pending.take() {
            None | Some(Pending::Yield) => errno::SUCCESS,
            Some(Pending::Flush { result }) => result,
            Some(Pending::StdinRead { iovs, nread_ptr }) => {
                let n = match self.read_stdin(&mut mem, &iovs) {
                    Ok(n) => n,
                    Err(e) => return e,
                };
                match mem.put_u32(nread_ptr, n) {
                    Ok(()) => errno::SUCCESS,
                    Err(e) => e,
                }
            }
            Some(Pending::Poll { mut subs, out, nevents_ptr, .. }) => {
                let now = self.sys.monotonic_ns();
                self.sock_readiness(&mut subs);
                match self.write_events(&mut mem, &subs, out, nevents_ptr, now) {
                    Ok(_) => errno::SUCCESS,
                    Err(e) => e,
                }
            }
            Some(Pending::Sock { handle, op, .. }) => match self.sock_op(&mut mem, handle, &op) {
                Ok(Some(e)) => e,
                Ok(None) => errno::AGAIN,
                Err(e) => e,
            },
        }
    }

    /// Runs a socket operation: Ok(None) when it would have to wait.
    fn sock_op(&mut self, m: &mut Mem<'_>, handle: u64, op: &SockOp) -> Result<Option<Errno>, Errno> {
        let net = self.sockets.as_mut().ok_or(errno::NOTSOCK)?;
        match op {
            SockOp::Accept { flags, out } => {
                let Some(conn) = net.accept(handle)? else { return Ok(None) };
                let fd =
                    Fd { kind: Kind::Socket(conn), base: rights::SOCKET, inheriting: 0, flags: *flags, preopen: None };
                match self.insert(fd) {
                    Ok(n) => {
                        m.put_u32(*out, n)?;
                        Ok(Some(errno::SUCCESS))
                    }
                    Err(e) => {
                        if let Some(net) = self.sockets.as_mut() {
                            net.close(conn);
                        }
                        Err(e)
                    }
                }
            }
            SockOp::Recv { iovs, nread_ptr, flags_ptr } => {
                let want: usize = iovs.iter().map(|i| i.len as usize).sum::<usize>().min(256 * 1024);
                let mut buf = alloc::vec![0u8; want];
                let got = if want == 0 { Some(0) } else { net.recv(handle, &mut buf)? };
                let Some(n) = got else { return Ok(None) };
                let mut done = 0usize;
                for iov in iovs {
                    if done == n {
                        break;
                    }
                    let take = (iov.len as usize).min(n - done);
                    m.write(iov.ptr, &buf[done..done + take])?;
                    done += take;
                }
                m.put_u32(*nread_ptr, n as u32)?;
                if let Some(p) = flags_ptr {
                    m.write(*p, &0u16.to_le_bytes())?;
                }
                Ok(Some(errno::SUCCESS))
            }
            SockOp::Send { iovs, nwritten_ptr } => {
                let mut data = Vec::new();
                for iov in iovs {
                    data.extend_from_slice(m.slice(iov.ptr, iov.len)?);
                    if data.len() >= 256 * 1024 {
                        break;
                    }
                }
                let n = if data.is_empty() { 0 } else { net.send(handle, &data)? };
                if n == 0 && !data.is_empty() {
                    return Ok(None);
                }
                m.put_u32(*nwritten_ptr, n as u32)?;
                Ok(Some(errno::SUCCESS))
            }
        }
    }

    /// Runs `op` on socket `fd` now, or suspends until the network lets it proceed (or
    /// answers EAGAIN for a non-blocking descriptor).
    fn sock_now(&mut self, mem: &mut [u8], fd: u32, op: SockOp) -> R {
        let f = tri!(self.fd(fd));
        let (handle, listener) = match (&f.kind, &op) {
            (Kind::Listener(h), SockOp::Accept { .. }) => (*h, true),
            (Kind::Socket(h), SockOp::Recv { .. } | SockOp::Send { .. }) => (*h, false),
            (Kind::Listener(_), _) => return Ok(errno::NOTCONN),
            (Kind::Socket(_), _) => return Ok(errno::INVAL),
            _ => return Ok(errno::NOTSOCK),
        };
        let nonblocking = f.flags & fdflags::NONBLOCK != 0;
        let write = matches!(op, SockOp::Send { .. });
        match tri!(self.sock_op(&mut Mem(mem), handle, &op)) {
            Some(e) => Ok(e),
            None if nonblocking => Ok(errno::AGAIN),
            None => self.suspend(Pending::Sock { handle, listener, write, op }),
        }
    }

    fn suspend(&mut self, p: Pending) -> R {
        self.pending = Some(p);
        Err(Abort::Suspend)
    }

    fn fd(&self, fd: u32) -> Result<&Fd, Errno> {
        self.fds.get(fd as usize).and_then(Option::as_ref).ok_or(errno::BADF)
    }

    fn fd_mut(&mut self, fd: u32) -> Result<&mut Fd, Errno> {
        self.fds.get_mut(fd as usize).and_then(Option::as_mut).ok_or(errno::BADF)
    }

    fn insert(&mut self, fd: Fd) -> Result<u32, Errno> {
        if let Some(i) = self.fds.iter().position(Option::is_none) {
            self.fds[i] = Some(fd);
            return Ok(i as u32);
        }
        if self.fds.len() >= self.max_fds {
            return Err(errno::MFILE);
        }
        self.fds.push(Some(fd));
        Ok((self.fds.len() - 1) as u32)
    }

    /// The real path of a directory descriptor with `right`.
    fn dir_base(&self, fd: u32, right: u64) -> Result<String, Errno> {
        let f = self.fd(fd)?;
        let h = f.dir()?;
        f.need(right)?;
        Ok(h.node().path.clone())
    }

    /// A directory descriptor's real path (checking `right`) and a path argument from memory.
    fn at<'m>(&self, m: &'m Mem<'_>, fd: u32, right: u64, path: u32, len: u32) -> Result<(String, &'m str), Errno> {
        let base = self.dir_base(fd, right)?;
        Ok((base, m.str(path, len)?))
    }

    /// The kind of what `p` (without trailing slashes) names, not following a final symlink.
    fn kind_at(&self, base: &str, p: &str) -> Result<FileType, Errno> {
        let how = Lookup { follow: false, confine: true };
        self.vfs.stat(base, p.trim_end_matches('/'), how).map(|st| st.kind).map_err(vfs_errno)
    }

    fn read_stdin(&mut self, mem: &mut Mem<'_>, iovs: &[IoVec]) -> Result<u32, Errno> {
        let mut total = 0u32;
        for iov in iovs {
            let buf = mem.slice_mut(iov.ptr, iov.len)?;
            let mut n = 0;
            while n < buf.len() {
                match self.stdin.pop_front() {
                    Some(b) => {
                        buf[n] = b;
                        n += 1;
                    }
                    None => break,
                }
            }
            total += n as u32;
            if n < buf.len() {
                break;
            }
        }
        Ok(total)
    }

    fn write_filestat(mem: &mut Mem<'_>, ptr: u32, s: &Stat) -> Result<(), Errno> {
        let mut b = [0u8; 64];
        b[0..8].copy_from_slice(&s.dev.to_le_bytes());
        b[8..16].copy_from_slice(&s.ino.to_le_bytes());
        b[16] = filetype(s.kind);
        b[24..32].copy_from_slice(&s.nlink.to_le_bytes());
        b[32..40].copy_from_slice(&s.size.to_le_bytes());
        b[40..48].copy_from_slice(&s.atime.to_le_bytes());
        b[48..56].copy_from_slice(&s.mtime.to_le_bytes());
        b[56..64].copy_from_slice(&s.ctime.to_le_bytes());
        mem.write(ptr, &b)
    }

    fn times(&self, atim: u64, mtim: u64, fst: u16) -> Result<(Option<u64>, Option<u64>), Errno> {
        if fst & !(fstflags::ATIM | fstflags::ATIM_NOW | fstflags::MTIM | fstflags::MTIM_NOW) != 0
            || (fst & fstflags::ATIM != 0 && fst & fstflags::ATIM_NOW != 0)
            || (fst & fstflags::MTIM != 0 && fst & fstflags::MTIM_NOW != 0)
        {
            return Err(errno::INVAL);
        }
        let now = self.sys.realtime_ns();
        let a = if fst & fstflags::ATIM_NOW != 0 {
            Some(now)
        } else if fst & fstflags::ATIM != 0 {
            Some(atim)
        } else {
            None
        };
        let m = if fst & fstflags::MTIM_NOW != 0 {
            Some(now)
        } else if fst & fstflags::MTIM != 0 {
            Some(mtim)
        } else {
            None
        };
        Ok((a, m))
    }

    // ---- args and environment ----

    fn strings_get(mem: &mut Mem<'_>, list: &[Vec<u8>], ptrs: u32, buf: u32) -> Result<(), Errno> {
        let mut p = buf;
        for (i, s) in list.iter().enumerate() {
            mem.put_u32(ptrs.checked_add(4 * i as u32).ok_or(errno::FAULT)?, p)?;
            mem.write(p, s)?;
            let end = p.checked_add(s.len() as u32).ok_or(errno::FAULT)?;
            mem.put_u8(end, 0)?;
            p = end + 1;
        }
        Ok(())
    }

    /// Writes the number of strings and the bytes they need (with their NULs).
    fn put_sizes(mem: &mut [u8], list: &[Vec<u8>], count: u32, size: u32) -> R {
        let mut m = Mem(mem);
        tri!(m.put_u32(count, list.len() as u32));
        tri!(m.put_u32(size, list.iter().map(|s| s.len() as u32 + 1).sum()));
        Ok(errno::SUCCESS)
    }

    pub fn args_get(&mut self, mem: &mut [u8], argv: u32, buf: u32) -> R {
        tri!(Self::strings_get(&mut Mem(mem), &self.args, argv, buf));
        Ok(errno::SUCCESS)
    }

    pub fn args_sizes_get(&mut self, mem: &mut [u8], count: u32, size: u32) -> R {
        Self::put_sizes(mem, &self.args, count, size)
    }

    pub fn environ_get(&mut self, mem: &mut [u8], environ: u32, buf: u32) -> R {
        tri!(Self::strings_get(&mut Mem(mem), &self.env, environ, buf));
        Ok(errno::SUCCESS)
    }

    pub fn environ_sizes_get(&mut self, mem: &mut [u8], count: u32, size: u32) -> R {
        Self::put_sizes(mem, &self.env, count, size)
    }

    // ---- clocks, randomness, scheduling, process ----

    pub fn clock_res_get(&mut self, mem: &mut [u8], id: u32, res: u32) -> R {
        let r = match id {
            clockid::REALTIME | clockid::MONOTONIC | clockid::PROCESS_CPUTIME | clockid::THREAD_CPUTIME => 1u64,
            _ => return Ok(errno::INVAL),
        };
        tri!(Mem(mem).put_u64(res, r));
        Ok(errno::SUCCESS)
    }

    pub fn clock_time_get(&mut self, mem: &mut [u8], id: u32, _precision: u64, time: u32) -> R {
        let t = match id {
            clockid::REALTIME => self.sys.realtime_ns(),
            clockid::MONOTONIC => self.sys.monotonic_ns(),
            clockid::PROCESS_CPUTIME | clockid::THREAD_CPUTIME => self.sys.monotonic_ns() - self.start_ns,
            _ => return Ok(errno::INVAL),
        };
        tri!(Mem(mem).put_u64(time, t));
        Ok(errno::SUCCESS)
    }

    pub fn random_get(&mut self, mem: &mut [u8], buf: u32, len: u32) -> R {
        let mut m = Mem(mem);
        let s = tri!(m.slice_mut(buf, len));
        self.sys.random(s);
        Ok(errno::SUCCESS)
    }

    pub fn sched_yield(&mut self) -> R {
        self.suspend(Pending::Yield)
    }

    pub fn proc_exit(&mut self, code: u32) -> R {
        Err(Abort::Exit(code))
    }

    pub fn proc_raise(&mut self, _sig: u32) -> R {
        Ok(errno::NOSYS)
    }

    // ---- descriptors ----

    pub fn fd_advise(&mut self, fd: u32, _offset: u64, _len: u64, advice: u32) -> R {
        let f = tri!(self.fd(fd));
        tri!(f.need(rights::FD_ADVISE));
        if advice > 5 {
            return Ok(errno::INVAL);
        }
        match f.kind {
            Kind::File(_) => Ok(errno::SUCCESS),
            Kind::Dir(_) => Ok(errno::BADF),
            _ => Ok(errno::SPIPE),
        }
    }

    pub fn fd_allocate(&mut self, fd: u32, offset: u64, len: u64) -> R {
        let f = tri!(self.fd(fd));
        tri!(f.need(rights::FD_ALLOCATE));
        let Kind::File(h) = &f.kind else {
            return Ok(if matches!(f.kind, Kind::Dir(_)) { errno::BADF } else { errno::SPIPE });
        };
        let end = tri!(offset.checked_add(len).ok_or(errno::FBIG));
        if end > i64::MAX as u64 {
            return Ok(errno::FBIG);
        }
        let size = tri!(h.stat().map_err(vfs_errno)).size;
        if end > size {
            tri!(h.set_size(end).map_err(vfs_errno));
        }
        Ok(errno::SUCCESS)
    }

    pub fn fd_close(&mut self, fd: u32) -> R {
        let slot = tri!(self.fds.get_mut(fd as usize).ok_or(errno::BADF));
        let Some(f) = slot.take() else { return Ok(errno::BADF) };
        if let Some(net) = self.sockets.as_mut() {
            match f.kind {
                Kind::Socket(h) => net.close(h),
                Kind::Listener(h) => net.close_listener(h),
                _ => {}
            }
        }
        Ok(errno::SUCCESS)
    }

    pub fn fd_datasync(&mut self, fd: u32) -> R {
        let f = tri!(self.fd(fd));
        tri!(f.need(rights::FD_DATASYNC));
        Ok(match &f.kind {
            Kind::File(h) => h.sync().map_or_else(vfs_errno, |()| errno::SUCCESS),
            Kind::Dir(_) => errno::BADF,
            _ => errno::INVAL,
        })
    }

    pub fn fd_sync(&mut self, fd: u32) -> R {
        let f = tri!(self.fd(fd));
        tri!(f.need(rights::FD_SYNC));
        Ok(match &f.kind {
            Kind::File(h) | Kind::Dir(h) => h.sync().map_or_else(vfs_errno, |()| errno::SUCCESS),
            _ => errno::INVAL,
        })
    }

    pub fn fd_fdstat_get(&mut self, mem: &mut [u8], fd: u32, out: u32) -> R {
        let f = tri!(self.fd(fd));
        let stdio = |i: usize| if self.tty[i] { filetype::CHARACTER_DEVICE } else { filetype::UNKNOWN };
        let ft = match &f.kind {
            Kind::Stdin => stdio(0),
            Kind::Stdout => stdio(1),
            Kind::Stderr => stdio(2),
            Kind::File(h) => h.stat().map(|s| filetype(s.kind)).unwrap_or(filetype::UNKNOWN),
            Kind::Dir(_) => filetype::DIRECTORY,
            Kind::Socket(_) | Kind::Listener(_) => filetype::SOCKET_STREAM,
        };
        let mut b = [0u8; 24];
        b[0] = ft;
        b[2..4].copy_from_slice(&f.flags.to_le_bytes());
        b[8..16].copy_from_slice(&f.base.to_le_bytes());
        b[16..24].copy_from_slice(&f.inheriting.to_le_bytes());
        tri!(Mem(mem).write(out, &b));
        Ok(errno::SUCCESS)
    }

    pub fn fd_fdstat_set_flags(&mut self, fd: u32, flags: u16) -> R {
        let f = tri!(self.fd_mut(fd));
        tri!(f.need(rights::FD_FDSTAT_SET_FLAGS));
        if flags & !(fdflags::APPEND | fdflags::DSYNC | fdflags::NONBLOCK | fdflags::RSYNC | fdflags::SYNC) != 0 {
            return Ok(errno::INVAL);
        }
        if let Kind::File(h) = &mut f.kind {
            h.set_append(flags & fdflags::APPEND != 0);
        }
        f.flags = flags;
        Ok(errno::SUCCESS)
    }

    pub fn fd_fdstat_set_rights(&mut self, fd: u32, base: u64, inheriting: u64) -> R {
        let f = tri!(self.fd_mut(fd));
        if base & !f.base != 0 || inheriting & !f.inheriting != 0 {
            return Ok(errno::NOTCAPABLE);
        }
        f.base = base;
        f.inheriting = inheriting;
        Ok(errno::SUCCESS)
    }

    pub fn fd_filestat_get(&mut self, mem: &mut [u8], fd: u32, out: u32) -> R {
        let f = tri!(self.fd(fd));
        tri!(f.need(rights::FD_FILESTAT_GET));
        let st = match &f.kind {
            Kind::File(h) | Kind::Dir(h) => tri!(h.stat().map_err(vfs_errno)),
            _ => Stat { dev: 0, ino: 0, kind: FileType::CharDevice, size: 0, nlink: 1, atime: 0, mtime: 0, ctime: 0 },
        };
        tri!(Self::write_filestat(&mut Mem(mem), out, &st));
        Ok(errno::SUCCESS)
    }

    pub fn fd_filestat_set_size(&mut self, fd: u32, size: u64) -> R {
        let f = tri!(self.fd(fd));
        tri!(f.need(rights::FD_FILESTAT_SET_SIZE));
        match &f.kind {
            Kind::File(h) => {
                if size > i64::MAX as u64 {
                    return Ok(errno::FBIG);
                }
                tri!(h.set_size(size).map_err(|e| if e == VfsError::BadHandle { errno::BADF } else { vfs_errno(e) }));
                Ok(errno::SUCCESS)
            }
            Kind::Dir(_) => Ok(errno::ISDIR),
            _ => Ok(errno::INVAL),
        }
    }

    pub fn fd_filestat_set_times(&mut self, fd: u32, atim: u64, mtim: u64, fst: u16) -> R {
        let (a, m) = tri!(self.times(atim, mtim, fst));
        let f = tri!(self.fd(fd));
        tri!(f.need(rights::FD_FILESTAT_SET_TIMES));
        match &f.kind {
            Kind::File(h) | Kind::Dir(h) => {
                tri!(h.set_times(a, m).map_err(vfs_errno));
                Ok(errno::SUCCESS)
            }
            _ => Ok(errno::SUCCESS),
        }
    }

    pub fn fd_pread(&mut self, mem: &mut [u8], fd: u32, iovs: u32, iovs_len: u32, offset: u64, nread: u32) -> R {
        let mut m = Mem(mem);
        let iovs = tri!(m.iovecs(iovs, iovs_len));
        let f = tri!(self.fd(fd));
        tri!(f.need(rights::FD_READ | rights::FD_SEEK));
        let h = match &f.kind {
            Kind::File(h) => h,
            Kind::Dir(_) => return Ok(errno::ISDIR),
            _ => return Ok(errno::SPIPE),
        };
        let mut total: u64 = 0;
        for iov in iovs {
            let buf = tri!(m.slice_mut(iov.ptr, iov.len));
            let n = tri!(h.pread(buf, offset + total).map_err(vfs_errno));
            total += n as u64;
            if n < iov.len as usize {
                break;
            }
        }
        tri!(m.put_u32(nread, total as u32));
        Ok(errno::SUCCESS)
    }

    pub fn fd_pwrite(&mut self, mem: &mut [u8], fd: u32, iovs: u32, iovs_len: u32, offset: u64, nwritten: u32) -> R {
        let mut m = Mem(mem);
        let iovs = tri!(m.iovecs(iovs, iovs_len));
        let f = tri!(self.fd(fd));
        tri!(f.need(rights::FD_WRITE | rights::FD_SEEK));
        let h = match &f.kind {
            Kind::File(h) => h,
            Kind::Dir(_) => return Ok(errno::ISDIR),
            _ => return Ok(errno::SPIPE),
        };
        // On a file opened with O_APPEND the data goes at `offset`, as POSIX says (Linux would
        // append; the official suite accepts either), and the file position stays where it is.
        let mut total: u64 = 0;
        for iov in iovs {
            let data = tri!(m.slice(iov.ptr, iov.len));
            let n = tri!(h.pwrite(data, offset + total).map_err(vfs_errno));
            total += n as u64;
        }
        tri!(m.put_u32(nwritten, total as u32));
        Ok(errno::SUCCESS)
    }

    pub fn fd_prestat_get(&mut self, mem: &mut [u8], fd: u32, out: u32) -> R {
        let f = tri!(self.fd(fd));
        let Some(name) = &f.preopen else { return Ok(errno::BADF) };
        let mut m = Mem(mem);
        tri!(m.write(out, &[0, 0, 0, 0]));
        tri!(m.put_u32(out + 4, name.len() as u32));
        Ok(errno::SUCCESS)
    }

    pub fn fd_prestat_dir_name(&mut self, mem: &mut [u8], fd: u32, path: u32, len: u32) -> R {
        let f = tri!(self.fd(fd));
        let Some(name) = &f.preopen else { return Ok(errno::BADF) };
        if (len as usize) < name.len() {
            return Ok(errno::NAMETOOLONG);
        }
        tri!(Mem(mem).write(path, name.as_bytes()));
        Ok(errno::SUCCESS)
    }

    pub fn fd_read(&mut self, mem: &mut [u8], fd: u32, iovs: u32, iovs_len: u32, nread: u32) -> R {
        let mut m = Mem(mem);
        let iovs = tri!(m.iovecs(iovs, iovs_len));
        // The target of the count must be valid before anything is consumed.
        tri!(m.slice(nread, 4));
        let f = tri!(self.fd_mut(fd));
        tri!(f.need(rights::FD_READ));
        let total = match &mut f.kind {
            Kind::Stdin => {
                let want: u64 = iovs.iter().map(|i| u64::from(i.len)).sum();
                if want > 0 && self.stdin.is_empty() && !self.stdin_eof {
                    return self.suspend(Pending::StdinRead { iovs, nread_ptr: nread });
                }
                tri!(self.read_stdin(&mut m, &iovs))
            }
            Kind::File(h) => {
                let mut total = 0u32;
                for iov in iovs {
                    let buf = tri!(m.slice_mut(iov.ptr, iov.len));
                    let n = tri!(h.read(buf).map_err(vfs_errno));
                    total += n as u32;
                    if n < iov.len as usize {
                        break;
                    }
                }
                total
            }
            Kind::Dir(_) => return Ok(errno::ISDIR),
            Kind::Stdout | Kind::Stderr => return Ok(errno::BADF),
            Kind::Socket(_) => {
                return self.sock_now(mem, fd, SockOp::Recv { iovs, nread_ptr: nread, flags_ptr: None });
            }
            Kind::Listener(_) => return Ok(errno::NOTCONN),
        };
        tri!(m.put_u32(nread, total));
        Ok(errno::SUCCESS)
    }

    pub fn fd_write(&mut self, mem: &mut [u8], fd: u32, iovs: u32, iovs_len: u32, nwritten: u32) -> R {
        let mut m = Mem(mem);
        let iovs = tri!(m.iovecs(iovs, iovs_len));
        tri!(m.slice(nwritten, 4));
        let f = tri!(self.fd_mut(fd));
        tri!(f.need(rights::FD_WRITE));
        let mut total: u32 = 0;
        let mut flush = false;
        match &mut f.kind {
            Kind::Stdout | Kind::Stderr => {
                let target = if matches!(f.kind, Kind::Stdout) { 1 } else { 2 };
                for iov in &iovs {
                    let data = tri!(m.slice(iov.ptr, iov.len));
                    if !matches!(self.out.last(), Some((fd, _)) if *fd == target) {
                        self.out.push((target, Vec::new()));
                    }
                    let Some((_, buf)) = self.out.last_mut() else { return Ok(errno::IO) };
                    if buf.try_reserve(data.len()).is_err() {
                        return Ok(errno::NOMEM);
                    }
                    buf.extend_from_slice(data);
                    self.out_bytes += data.len();
                    total += iov.len;
                }
                flush = self.out_bytes >= OUTPUT_FLUSH_AT;
            }
            Kind::File(h) => {
                for iov in &iovs {
                    let data = tri!(m.slice(iov.ptr, iov.len));
                    let n = tri!(h.write(data).map_err(vfs_errno));
                    total += n as u32;
                }
            }
            Kind::Dir(_) => return Ok(errno::ISDIR),
            Kind::Stdin => return Ok(errno::BADF),
            Kind::Socket(_) => return self.sock_now(mem, fd, SockOp::Send { iovs, nwritten_ptr: nwritten }),
            Kind::Listener(_) => return Ok(errno::NOTCONN),
        }
        tri!(m.put_u32(nwritten, total));
        if flush {
            return self.suspend(Pending::Flush { result: errno::SUCCESS });
        }
        Ok(errno::SUCCESS)
    }

    pub fn fd_readdir(&mut self, mem: &mut [u8], fd: u32, buf: u32, buf_len: u32, cookie: u64, bufused: u32) -> R {
        let mut m = Mem(mem);
        tri!(m.slice(buf, buf_len));
        tri!(m.slice(bufused, 4));
        let f = tri!(self.fd(fd));
        tri!(f.need(rights::FD_READDIR));
        let h = tri!(f.dir());
        let st = tri!(h.stat().map_err(vfs_errno));
        let entries = tri!(h.readdir().map_err(vfs_errno));
        let parent_ino = self.vfs.stat(&h.node().path, "..", Lookup::FOLLOW).map(|s| s.ino).unwrap_or(st.ino);
        let mut out: Vec<u8> = Vec::new();
        let all =
            [(String::from("."), st.ino, filetype::DIRECTORY), (String::from(".."), parent_ino, filetype::DIRECTORY)]
                .into_iter()
                .chain(entries.into_iter().map(|e| (e.name, e.ino, filetype(e.kind))));
        for (i, (name, ino, ft)) in all.enumerate().skip(cookie.min(usize::MAX as u64) as usize) {
            if out.len() >= buf_len as usize {
                break;
            }
            let mut d = [0u8; 24];
            d[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            d[8..16].copy_from_slice(&ino.to_le_bytes());
            d[16..20].copy_from_slice(&(name.len() as u32).to_le_bytes());
            d[20] = ft;
            out.extend_from_slice(&d);
            out.extend_from_slice(name.as_bytes());
        }
        let used = out.len().min(buf_len as usize);
        tri!(m.write(buf, &out[..used]));
        tri!(m.put_u32(bufused, used as u32));
        Ok(errno::SUCCESS)
    }

    pub fn fd_renumber(&mut self, from: u32, to: u32) -> R {
        tri!(self.fd(from));
        tri!(self.fd(to));
        if from == to {
            return Ok(errno::SUCCESS);
        }
        let moved = self.fds[from as usize].take();
        self.fds[to as usize] = moved;
        Ok(errno::SUCCESS)
    }

    pub fn fd_seek(&mut self, mem: &mut [u8], fd: u32, offset: i64, whence: u8, newoffset: u32) -> R {
        let mut m = Mem(mem);
        tri!(m.slice(newoffset, 8));
        let f = tri!(self.fd_mut(fd));
        let base = f.base;
        let h = match &mut f.kind {
            Kind::File(h) => h,
            Kind::Dir(_) => return Ok(errno::BADF),
            _ => return Ok(errno::SPIPE),
        };
        // A pure "where am I" needs only FD_TELL.
        let need = if offset == 0 && whence == whence::CUR { rights::FD_TELL } else { rights::FD_SEEK };
        if base & need != need && base & rights::FD_SEEK == 0 {
            return Ok(errno::NOTCAPABLE);
        }
        let to = match whence {
            whence::SET => {
                if offset < 0 {
                    return Ok(errno::INVAL);
                }
                SeekFrom::Start(offset as u64)
            }
            whence::CUR => SeekFrom::Current(offset),
            whence::END => SeekFrom::End(offset),
            _ => return Ok(errno::INVAL),
        };
        let pos = tri!(h.seek(to).map_err(vfs_errno));
        tri!(m.put_u64(newoffset, pos));
        Ok(errno::SUCCESS)
    }

    pub fn fd_tell(&mut self, mem: &mut [u8], fd: u32, out: u32) -> R {
        let f = tri!(self.fd(fd));
        let pos = match &f.kind {
            Kind::File(h) => {
                tri!(f.need(rights::FD_TELL));
                h.tell()
            }
            Kind::Dir(_) => return Ok(errno::BADF),
            _ => return Ok(errno::SPIPE),
        };
        tri!(Mem(mem).put_u64(out, pos));
        Ok(errno::SUCCESS)
    }

    // ---- paths ----

    pub fn path_create_directory(&mut self, mem: &mut [u8], fd: u32, path: u32, len: u32) -> R {
        let m = Mem(mem);
        let (base, p) = tri!(self.at(&m, fd, rights::PATH_CREATE_DIRECTORY, path, len));
        tri!(self.vfs.mkdir(&base, p, true).map_err(vfs_errno));
        Ok(errno::SUCCESS)
    }

    pub fn path_filestat_get(&mut self, mem: &mut [u8], fd: u32, flags: u32, path: u32, len: u32, out: u32) -> R {
        let mut m = Mem(mem);
        let (base, p) = tri!(self.at(&m, fd, rights::PATH_FILESTAT_GET, path, len));
        let how = Lookup { follow: flags & LOOKUP_SYMLINK_FOLLOW != 0, confine: true };
        let st = tri!(self.vfs.stat(&base, p, how).map_err(vfs_errno));
        tri!(Self::write_filestat(&mut m, out, &st));
        Ok(errno::SUCCESS)
    }

    pub fn path_filestat_set_times(
        &mut self,
        mem: &mut [u8],
        fd: u32,
        flags: u32,
        path: u32,
        len: u32,
        atim: u64,
        mtim: u64,
        fst: u16,
    ) -> R {
        let base = tri!(self.dir_base(fd, rights::PATH_FILESTAT_SET_TIMES));
        let (a, mt) = tri!(self.times(atim, mtim, fst));
        let m = Mem(mem);
        let p = tri!(m.str(path, len));
        let how = Lookup { follow: flags & LOOKUP_SYMLINK_FOLLOW != 0, confine: true };
        tri!(self.vfs.set_times(&base, p, how, a, mt).map_err(vfs_errno));
        Ok(errno::SUCCESS)
    }

    pub fn path_link(
        &mut self,
        mem: &mut [u8],
        old_fd: u32,
        flags: u32,
        old: u32,
        old_len: u32,
        new_fd: u32,
        new: u32,
        new_len: u32,
    ) -> R {
        let ob = tri!(self.dir_base(old_fd, rights::PATH_LINK_SOURCE));
        let nb = tri!(self.dir_base(new_fd, rights::PATH_LINK_TARGET));
        let m = Mem(mem);
        let op = tri!(m.str(old, old_len));
        let np = tri!(m.str(new, new_len));
        if np.ends_with('/') {
            return Ok(errno::NOENT);
        }
        tri!(self.vfs.link(&ob, op, flags & LOOKUP_SYMLINK_FOLLOW != 0, &nb, np, true).map_err(vfs_errno));
        Ok(errno::SUCCESS)
    }

    pub fn path_open(
        &mut self,
        mem: &mut [u8],
        fd: u32,
        dirflags: u32,
        path: u32,
        len: u32,
        oflags: u16,
        base_rights: u64,
        inheriting: u64,
        fdflags_: u16,
        out: u32,
    ) -> R {
        let mut m = Mem(mem);
        tri!(m.slice(out, 4));
        let dir = tri!(self.fd(fd));
        let dbase = tri!(dir.dir()).node().path.clone();
        tri!(dir.need(rights::PATH_OPEN));
        if oflags & oflags::CREAT != 0 {
            tri!(dir.need(rights::PATH_CREATE_FILE));
        }
        if oflags & oflags::TRUNC != 0 {
            tri!(dir.need(rights::PATH_FILESTAT_SET_SIZE));
        }
        if oflags & !(oflags::CREAT | oflags::DIRECTORY | oflags::EXCL | oflags::TRUNC) != 0 {
            return Ok(errno::INVAL);
        }
        let allowed = dir.inheriting;
        let p = tri!(m.str(path, len));
        let write = base_rights & (rights::FD_WRITE | rights::FD_ALLOCATE | rights::FD_FILESTAT_SET_SIZE) != 0
            || fdflags_ & fdflags::APPEND != 0
            || oflags & oflags::TRUNC != 0;
        let want_dir = oflags & oflags::DIRECTORY != 0;
        if want_dir && oflags & (oflags::CREAT | oflags::TRUNC) != 0 {
            return Ok(errno::INVAL);
        }
        let nofollow = dirflags & LOOKUP_SYMLINK_FOLLOW == 0;
        // Find out what it is first: a directory opens read-only.
        let existing = self.vfs.resolve(&dbase, p, Lookup { follow: !nofollow, confine: true });
        if let Err(VfsError::Escape) = existing {
            return Ok(errno::NOTCAPABLE);
        }
        let is_dir = existing.as_ref().ok().and_then(|n| n.stat().ok()).is_some_and(|s| s.kind == FileType::Dir);
        if is_dir && oflags & oflags::EXCL != 0 && oflags & oflags::CREAT != 0 {
            return Ok(errno::EXIST);
        }
        if is_dir && write {
            return Ok(errno::ISDIR);
        }
        if let Ok(n) = &existing {
            if nofollow && n.stat().is_ok_and(|s| s.kind == FileType::Symlink) {
                return Ok(errno::LOOP);
            }
        }
        let opts = OpenOptions {
            read: !write || base_rights & rights::FD_READ != 0,
            write: write && !is_dir,
            append: fdflags_ & fdflags::APPEND != 0,
            create: oflags & oflags::CREAT != 0,
            exclusive: oflags & oflags::EXCL != 0,
            truncate: oflags & oflags::TRUNC != 0,
            directory: want_dir,
            nofollow,
        };
        let h = tri!(self.vfs.open(&dbase, p, opts, true).map_err(vfs_errno));
        let kind_is_dir = h.stat().is_ok_and(|s| s.kind == FileType::Dir);
        let (kind, mask) = if kind_is_dir { (Kind::Dir(h), rights::DIR) } else { (Kind::File(h), rights::FILE) };
        let fdv = Fd {
            kind,
            base: base_rights & allowed & mask,
            inheriting: inheriting & allowed,
            flags: fdflags_,
            preopen: None,
        };
        let new = tri!(self.insert(fdv));
        tri!(m.put_u32(out, new));
        Ok(errno::SUCCESS)
    }

    pub fn path_readlink(
        &mut self,
        mem: &mut [u8],
        fd: u32,
        path: u32,
        len: u32,
        buf: u32,
        buf_len: u32,
        used: u32,
    ) -> R {
        let mut m = Mem(mem);
        let (base, p) = tri!(self.at(&m, fd, rights::PATH_READLINK, path, len));
        let target = tri!(self.vfs.readlink(&base, p, true).map_err(vfs_errno));
        let n = target.len().min(buf_len as usize);
        tri!(m.write(buf, &target.as_bytes()[..n]));
        tri!(m.put_u32(used, n as u32));
        Ok(errno::SUCCESS)
    }

    pub fn path_remove_directory(&mut self, mem: &mut [u8], fd: u32, path: u32, len: u32) -> R {
        let m = Mem(mem);
        let (base, p) = tri!(self.at(&m, fd, rights::PATH_REMOVE_DIRECTORY, path, len));
        tri!(self.vfs.rmdir(&base, p, true).map_err(vfs_errno));
        Ok(errno::SUCCESS)
    }

    pub fn path_rename(
        &mut self,
        mem: &mut [u8],
        fd: u32,
        old: u32,
        old_len: u32,
        new_fd: u32,
        new: u32,
        new_len: u32,
    ) -> R {
        let ob = tri!(self.dir_base(fd, rights::PATH_RENAME_SOURCE));
        let nb = tri!(self.dir_base(new_fd, rights::PATH_RENAME_TARGET));
        let m = Mem(mem);
        let op = tri!(m.str(old, old_len));
        let np = tri!(m.str(new, new_len));
        // A trailing slash on a non-directory source is an error, as on POSIX.
        if (op.ends_with('/') || np.ends_with('/')) && tri!(self.kind_at(&ob, op)) != FileType::Dir {
            return Ok(errno::NOTDIR);
        }
        tri!(self.vfs.rename(&ob, op, &nb, np, true).map_err(vfs_errno));
        Ok(errno::SUCCESS)
    }

    pub fn path_symlink(&mut self, mem: &mut [u8], old: u32, old_len: u32, fd: u32, new: u32, new_len: u32) -> R {
        let base = tri!(self.dir_base(fd, rights::PATH_SYMLINK));
        let m = Mem(mem);
        let target = tri!(m.str(old, old_len));
        let p = tri!(m.str(new, new_len));
        if p.ends_with('/') {
            return Ok(errno::NOENT);
        }
        tri!(self.vfs.symlink(target, &base, p, true).map_err(vfs_errno));
        Ok(errno::SUCCESS)
    }

    pub fn path_unlink_file(&mut self, mem: &mut [u8], fd: u32, path: u32, len: u32) -> R {
        let m = Mem(mem);
        let (base, p) = tri!(self.at(&m, fd, rights::PATH_UNLINK_FILE, path, len));
        if p.ends_with('/') {
            return Ok(if tri!(self.kind_at(&base, p)) == FileType::Dir { errno::ISDIR } else { errno::NOTDIR });
        }
        tri!(self.vfs.unlink(&base, p, true).map_err(vfs_errno));
        Ok(errno::SUCCESS)
    }

    // ---- polling ----

    pub fn poll_oneoff(&mut self, mem: &mut [u8], subs_ptr: u32, out: u32, nsubs: u32, nevents: u32) -> R {
        let mut m = Mem(mem);
        if nsubs == 0 {
            return Ok(errno::INVAL);
        }
        let bytes = tri!(nsubs.checked_mul(48).ok_or(errno::FAULT));
        tri!(m.slice(subs_ptr, bytes));
        tri!(m.slice(out, tri!(nsubs.checked_mul(32).ok_or(errno::FAULT))));
        tri!(m.slice(nevents, 4));
        let now = self.sys.monotonic_ns();
        let mut subs = Vec::new();
        let mut deadline: Option<u64> = None;
        let mut wants_stdin = false;
        let mut wants_net = false;
        for i in 0..nsubs {
            let s = subs_ptr + i * 48;
            let userdata = tri!(m.u64(s));
            let tag = tri!(m.u8(s + 8));
            let kind = match tag {
                eventtype::CLOCK => {
                    let id = tri!(m.u32(s + 16));
                    let timeout = tri!(m.u64(s + 24));
                    let flags = tri!(m.u16(s + 40));
                    let d = if flags & SUBCLOCK_ABSTIME != 0 {
                        match id {
                            clockid::REALTIME => {
                                let rt = self.sys.realtime_ns();
                                now.saturating_add(timeout.saturating_sub(rt))
                            }
                            clockid::MONOTONIC => timeout,
                            clockid::PROCESS_CPUTIME | clockid::THREAD_CPUTIME => self.start_ns.saturating_add(timeout),
                            _ => return Ok(errno::INVAL),
                        }
                    } else {
                        if id > clockid::THREAD_CPUTIME {
                            return Ok(errno::INVAL);
                        }
                        now.saturating_add(timeout)
                    };
                    deadline = Some(deadline.map_or(d, |x: u64| x.min(d)));
                    SubKind::Clock { deadline: d }
                }
                eventtype::FD_READ | eventtype::FD_WRITE => {
                    let fd = tri!(m.u32(s + 16));
                    let read = tag == eventtype::FD_READ;
                    match self.fd(fd) {
                        Err(e) => SubKind::Fd { fd, read, ready: Some((e, 0, 0)) },
                        Ok(f) => match (&f.kind, read) {
                            (Kind::Stdin, true) => {
                                wants_stdin = true;
                                SubKind::Stdin
                            }
                            (Kind::File(h), true) => {
                                let left = h.stat().map(|st| st.size.saturating_sub(h.tell())).unwrap_or(0);
                                SubKind::Fd { fd, read, ready: Some((0, left, 0)) }
                            }
                            (Kind::Stdout | Kind::Stderr | Kind::File(_), false) => {
                                SubKind::Fd { fd, read, ready: Some((0, 0, 0)) }
                            }
                            (Kind::Socket(h), _) => {
                                wants_net = true;
                                SubKind::Sock { fd, read, handle: *h, listener: false }
                            }
                            (Kind::Listener(h), true) => {
                                wants_net = true;
                                SubKind::Sock { fd, read, handle: *h, listener: true }
                            }
                            _ => SubKind::Fd { fd, read, ready: Some((errno::BADF, 0, 0)) },
                        },
                    }
                }
                _ => return Ok(errno::INVAL),
            };
            subs.push(Subscription { userdata, kind });
        }
        self.sock_readiness(&mut subs);
        let any_ready = subs.iter().any(|s| match &s.kind {
            SubKind::Clock { deadline } => now >= *deadline,
            SubKind::Fd { ready, .. } => ready.is_some(),
            SubKind::Stdin => self.stdin_ready(),
            SubKind::Sock { .. } => false,
        });
        if !any_ready {
            return self.suspend(Pending::Poll { subs, out, nevents_ptr: nevents, deadline, wants_stdin, wants_net });
        }
        tri!(self.write_events(&mut m, &subs, out, nevents, now));
        Ok(errno::SUCCESS)
    }

    /// Turns socket subscriptions that are ready into answered ones.
    fn sock_readiness(&mut self, subs: &mut [Subscription]) {
        let Some(net) = self.sockets.as_mut() else { return };
        for s in subs.iter_mut() {
            if let SubKind::Sock { fd, read, handle, listener } = s.kind {
                if net.ready(handle, listener, !read) {
                    s.kind = SubKind::Fd { fd, read, ready: Some((0, 0, 0)) };
                }
            }
        }
    }

    fn write_events(
        &self,
        m: &mut Mem<'_>,
        subs: &[Subscription],
        out: u32,
        nevents: u32,
        now: u64,
    ) -> Result<u32, Errno> {
        let mut n = 0u32;
        for s in subs {
            let (ty, err, nbytes, flags) = match &s.kind {
                SubKind::Clock { deadline } if now >= *deadline => (eventtype::CLOCK, 0, 0, 0),
                SubKind::Clock { .. } => continue,
                SubKind::Fd { read, ready: Some((e, nb, fl)), .. } => {
                    (if *read { eventtype::FD_READ } else { eventtype::FD_WRITE }, *e, *nb, *fl)
                }
                SubKind::Fd { .. } => continue,
                SubKind::Stdin if self.stdin_ready() => {
                    let hup = if self.stdin.is_empty() && self.stdin_eof { EVENT_FD_READWRITE_HANGUP } else { 0 };
                    (eventtype::FD_READ, 0, self.stdin.len() as u64, hup)
                }
                SubKind::Stdin => continue,
                SubKind::Sock { .. } => continue,
            };
            let e = out + n * 32;
            let mut b = [0u8; 32];
            b[0..8].copy_from_slice(&s.userdata.to_le_bytes());
            b[8..10].copy_from_slice(&err.to_le_bytes());
            b[10] = ty;
            b[16..24].copy_from_slice(&nbytes.to_le_bytes());
            b[24..26].copy_from_slice(&flags.to_le_bytes());
            m.write(e, &b)?;
            n += 1;
        }
        m.put_u32(nevents, n)?;
        Ok(n)
    }

    // ---- sockets ----

    pub fn sock_accept(&mut self, mem: &mut [u8], fd: u32, flags: u16, out: u32) -> R {
        tri!(Mem(mem).slice(out, 4));
        if flags & !fdflags::NONBLOCK != 0 {
            return Ok(errno::INVAL);
        }
        let f = tri!(self.fd(fd));
        match f.kind {
            Kind::Listener(_) => tri!(f.need(rights::SOCK_ACCEPT)),
            Kind::Socket(_) => return Ok(errno::INVAL),
            _ => return Ok(errno::NOTSOCK),
        }
        self.sock_now(mem, fd, SockOp::Accept { flags, out })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn sock_recv(
        &mut self,
        mem: &mut [u8],
        fd: u32,
        ri: u32,
        ri_len: u32,
        flags: u16,
        ro_len: u32,
        ro_flags: u32,
    ) -> R {
        let m = Mem(mem);
        let iovs = tri!(m.iovecs(ri, ri_len));
        tri!(m.slice(ro_len, 4));
        tri!(m.slice(ro_flags, 2));
        let f = tri!(self.fd(fd));
        if !matches!(f.kind, Kind::Socket(_) | Kind::Listener(_)) {
            return Ok(errno::NOTSOCK);
        }
        // RECV_PEEK and RECV_WAITALL are not supported.
        if flags != 0 {
            return Ok(errno::NOTSUP);
        }
        tri!(f.need(rights::FD_READ));
        self.sock_now(mem, fd, SockOp::Recv { iovs, nread_ptr: ro_len, flags_ptr: Some(ro_flags) })
    }

    pub fn sock_send(&mut self, mem: &mut [u8], fd: u32, si: u32, si_len: u32, _flags: u16, so_len: u32) -> R {
        let m = Mem(mem);
        let iovs = tri!(m.iovecs(si, si_len));
        tri!(m.slice(so_len, 4));
        let f = tri!(self.fd(fd));
        if !matches!(f.kind, Kind::Socket(_) | Kind::Listener(_)) {
            return Ok(errno::NOTSOCK);
        }
        tri!(f.need(rights::FD_WRITE));
        self.sock_now(mem, fd, SockOp::Send { iovs, nwritten_ptr: so_len })
    }

    pub fn sock_shutdown(&mut self, fd: u32, how: u8) -> R {
        let f = tri!(self.fd(fd));
        let Kind::Socket(h) = f.kind else {
            return Ok(if matches!(f.kind, Kind::Listener(_)) { errno::NOTCONN } else { errno::NOTSOCK });
        };
        // SDFLAGS_RD = 1, SDFLAGS_WR = 2.
        if how == 0 || how & !3 != 0 {
            return Ok(errno::INVAL);
        }
        tri!(f.need(rights::SOCK_SHUTDOWN));
        if how & 2 != 0 {
            let Some(net) = self.sockets.as_mut() else { return Ok(errno::NOTSOCK) };
            tri!(net.shutdown_write(h));
        }
        Ok(errno::SUCCESS)
    }
}
