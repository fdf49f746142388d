//! The Linux x86_64 ABI as musl sees it: errno values, system call numbers and names, flags,
//! and the byte layouts of the structures the calls fill in.

use alloc::vec::Vec;

/// Error numbers (returned negated from a system call).
pub mod errno {
    pub const EPERM: i64 = 1;
    pub const ENOENT: i64 = 2;
    pub const ESRCH: i64 = 3;
    pub const EINTR: i64 = 4;
    pub const EIO: i64 = 5;
    pub const E2BIG: i64 = 7;
    pub const ENOEXEC: i64 = 8;
    pub const EBADF: i64 = 9;
    pub const ECHILD: i64 = 10;
    pub const EAGAIN: i64 = 11;
    pub const ENOMEM: i64 = 12;
    pub const EACCES: i64 = 13;
    pub const EFAULT: i64 = 14;
    pub const EBUSY: i64 = 16;
    pub const EEXIST: i64 = 17;
    pub const EXDEV: i64 = 18;
    pub const ENODEV: i64 = 19;
    pub const ENOTDIR: i64 = 20;
    pub const EISDIR: i64 = 21;
    pub const EINVAL: i64 = 22;
    pub const EMFILE: i64 = 24;
    pub const ENOTTY: i64 = 25;
    pub const EFBIG: i64 = 27;
    pub const ENOSPC: i64 = 28;
    pub const ESPIPE: i64 = 29;
    pub const EROFS: i64 = 30;
    pub const EMLINK: i64 = 31;
    pub const EPIPE: i64 = 32;
    pub const ERANGE: i64 = 34;
    pub const ENAMETOOLONG: i64 = 36;
    pub const ENOSYS: i64 = 38;
    pub const ENOTEMPTY: i64 = 39;
    pub const ELOOP: i64 = 40;
    pub const EOPNOTSUPP: i64 = 95;
    pub const ESTALE: i64 = 116;
}

/// The name of an error number, for `trace`.
pub fn errno_name(e: i64) -> &'static str {
    use errno::*;
    match e {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        EINTR => "EINTR",
        EIO => "EIO",
        E2BIG => "E2BIG",
        ENOEXEC => "ENOEXEC",
        EBADF => "EBADF",
        ECHILD => "ECHILD",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        EXDEV => "EXDEV",
        ENODEV => "ENODEV",
        ENOTDIR => "ENOTDIR",
        EISDIR => "EISDIR",
        EINVAL => "EINVAL",
        EMFILE => "EMFILE",
        ENOTTY => "ENOTTY",
        EFBIG => "EFBIG",
        ENOSPC => "ENOSPC",
        ESPIPE => "ESPIPE",
        EROFS => "EROFS",
        EMLINK => "EMLINK",
        EPIPE => "EPIPE",
        ERANGE => "ERANGE",
        ENAMETOOLONG => "ENAMETOOLONG",
        ENOSYS => "ENOSYS",
        ENOTEMPTY => "ENOTEMPTY",
        ELOOP => "ELOOP",
        EOPNOTSUPP => "EOPNOTSUPP",
        ESTALE => "ESTALE",
        _ => "E?",
    }
}

/// The Linux error for a VFS error.
pub fn vfs_errno(e: keel_vfs::Error) -> i64 {
    use errno::*;
    use keel_vfs::Error as E;
    match e {
        E::NotFound => ENOENT,
        E::NotADirectory => ENOTDIR,
        E::IsADirectory => EISDIR,
        E::AlreadyExists => EEXIST,
        E::ReadOnly => EROFS,
        E::NotEmpty => ENOTEMPTY,
        E::InvalidPath => ENOENT,
        E::NameTooLong => ENAMETOOLONG,
        E::NoSpace => ENOSPC,
        E::CrossDevice => EXDEV,
        E::Loop => ELOOP,
        E::InvalidArgument => EINVAL,
        E::NotSupported => EOPNOTSUPP,
        E::Busy => EBUSY,
        E::Escape => EACCES,
        E::BadHandle => EBADF,
        E::PermissionDenied => EACCES,
        E::FileTooLarge => EFBIG,
        E::Stale => ESTALE,
        E::Io => EIO,
    }
}

/// System call numbers (x86_64).
pub mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const OPEN: u64 = 2;
    pub const CLOSE: u64 = 3;
    pub const STAT: u64 = 4;
    pub const FSTAT: u64 = 5;
    pub const LSTAT: u64 = 6;
    pub const POLL: u64 = 7;
    pub const LSEEK: u64 = 8;
    pub const MMAP: u64 = 9;
    pub const MPROTECT: u64 = 10;
    pub const MUNMAP: u64 = 11;
    pub const BRK: u64 = 12;
    pub const RT_SIGACTION: u64 = 13;
    pub const RT_SIGPROCMASK: u64 = 14;
    pub const IOCTL: u64 = 16;
    pub const PREAD64: u64 = 17;
    pub const PWRITE64: u64 = 18;
    pub const READV: u64 = 19;
    pub const WRITEV: u64 = 20;
    pub const ACCESS: u64 = 21;
    pub const PIPE: u64 = 22;
    pub const SCHED_YIELD: u64 = 24;
    pub const MREMAP: u64 = 25;
    pub const MADVISE: u64 = 28;
    pub const DUP: u64 = 32;
    pub const DUP2: u64 = 33;
    pub const NANOSLEEP: u64 = 35;
    pub const GETPID: u64 = 39;
    pub const EXIT: u64 = 60;
    pub const KILL: u64 = 62;
    pub const UNAME: u64 = 63;
    pub const FCNTL: u64 = 72;
    pub const FSYNC: u64 = 74;
    pub const FDATASYNC: u64 = 75;
    pub const TRUNCATE: u64 = 76;
    pub const FTRUNCATE: u64 = 77;
    pub const GETCWD: u64 = 79;
    pub const CHDIR: u64 = 80;
    pub const RENAME: u64 = 82;
    pub const MKDIR: u64 = 83;
    pub const RMDIR: u64 = 84;
    pub const UNLINK: u64 = 87;
    pub const READLINK: u64 = 89;
    pub const CHMOD: u64 = 90;
    pub const UMASK: u64 = 95;
    pub const GETTIMEOFDAY: u64 = 96;
    pub const GETRLIMIT: u64 = 97;
    pub const GETUID: u64 = 102;
    pub const GETGID: u64 = 104;
    pub const GETEUID: u64 = 107;
    pub const GETEGID: u64 = 108;
    pub const GETPPID: u64 = 110;
    pub const GETPGRP: u64 = 111;
    pub const SIGALTSTACK: u64 = 131;
    pub const ARCH_PRCTL: u64 = 158;
    pub const GETTID: u64 = 186;
    pub const TIME: u64 = 201;
    pub const FUTEX: u64 = 202;
    pub const GETDENTS64: u64 = 217;
    pub const SET_TID_ADDRESS: u64 = 218;
    pub const CLOCK_GETTIME: u64 = 228;
    pub const CLOCK_GETRES: u64 = 229;
    pub const CLOCK_NANOSLEEP: u64 = 230;
    pub const EXIT_GROUP: u64 = 231;
    pub const TGKILL: u64 = 234;
    pub const OPENAT: u64 = 257;
    pub const MKDIRAT: u64 = 258;
    pub const NEWFSTATAT: u64 = 262;
    pub const UNLINKAT: u64 = 263;
    pub const RENAMEAT: u64 = 264;
    pub const READLINKAT: u64 = 267;
    pub const FACCESSAT: u64 = 269;
    pub const PPOLL: u64 = 271;
    pub const SET_ROBUST_LIST: u64 = 273;
    pub const UTIMENSAT: u64 = 280;
    pub const DUP3: u64 = 292;
    pub const PIPE2: u64 = 293;
    pub const PRLIMIT64: u64 = 302;
    pub const RENAMEAT2: u64 = 316;
    pub const GETRANDOM: u64 = 318;
    pub const STATX: u64 = 332;
    pub const RSEQ: u64 = 334;
    pub const FACCESSAT2: u64 = 439;
    pub const SELECT: u64 = 23;
    pub const MSYNC: u64 = 26;
    pub const WAIT4: u64 = 61;
    pub const FLOCK: u64 = 73;
    pub const FCHDIR: u64 = 81;
    pub const LINK: u64 = 86;
    pub const SYMLINK: u64 = 88;
    pub const FCHMOD: u64 = 91;
    pub const CHOWN: u64 = 92;
    pub const FCHOWN: u64 = 93;
    pub const LCHOWN: u64 = 94;
    pub const GETRUSAGE: u64 = 98;
    pub const TIMES: u64 = 100;
    pub const SETPGID: u64 = 109;
    pub const SETSID: u64 = 112;
    pub const GETPGID: u64 = 121;
    pub const GETSID: u64 = 124;
    pub const SCHED_GETAFFINITY: u64 = 204;
    pub const FADVISE64: u64 = 221;
    pub const LINKAT: u64 = 265;
    pub const SYMLINKAT: u64 = 266;
    pub const FCHMODAT: u64 = 268;
    pub const FCHOWNAT: u64 = 260;
    pub const PSELECT6: u64 = 270;
}

/// System calls Keel can name: (number, name, how many arguments it takes).
const NAMES: &[(u64, &str, usize)] = &[
    (0, "read", 3),
    (1, "write", 3),
    (2, "open", 3),
    (3, "close", 1),
    (4, "stat", 2),
    (5, "fstat", 2),
    (6, "lstat", 2),
    (7, "poll", 3),
    (8, "lseek", 3),
    (9, "mmap", 6),
    (10, "mprotect", 3),
    (11, "munmap", 2),
    (12, "brk", 1),
    (13, "rt_sigaction", 4),
    (14, "rt_sigprocmask", 4),
    (15, "rt_sigreturn", 0),
    (16, "ioctl", 3),
    (17, "pread64", 4),
    (18, "pwrite64", 4),
    (19, "readv", 3),
    (20, "writev", 3),
    (21, "access", 2),
    (22, "pipe", 1),
    (23, "select", 5),
    (24, "sched_yield", 0),
    (25, "mremap", 5),
    (26, "msync", 3),
    (27, "mincore", 3),
    (28, "madvise", 3),
    (32, "dup", 1),
    (33, "dup2", 2),
    (35, "nanosleep", 2),
    (39, "getpid", 0),
    (41, "socket", 3),
    (42, "connect", 3),
    (56, "clone", 5),
    (57, "fork", 0),
    (58, "vfork", 0),
    (59, "execve", 3),
    (60, "exit", 1),
    (61, "wait4", 4),
    (62, "kill", 2),
    (63, "uname", 1),
    (72, "fcntl", 3),
    (73, "flock", 2),
    (74, "fsync", 1),
    (75, "fdatasync", 1),
    (76, "truncate", 2),
    (77, "ftruncate", 2),
    (78, "getdents", 3),
    (79, "getcwd", 2),
    (80, "chdir", 1),
    (81, "fchdir", 1),
    (82, "rename", 2),
    (83, "mkdir", 2),
    (84, "rmdir", 1),
    (85, "creat", 2),
    (86, "link", 2),
    (87, "unlink", 1),
    (88, "symlink", 2),
    (89, "readlink", 3),
    (90, "chmod", 2),
    (91, "fchmod", 2),
    (92, "chown", 3),
    (95, "umask", 1),
    (96, "gettimeofday", 2),
    (97, "getrlimit", 2),
    (98, "getrusage", 2),
    (99, "sysinfo", 1),
    (100, "times", 1),
    (102, "getuid", 0),
    (104, "getgid", 0),
    (107, "geteuid", 0),
    (108, "getegid", 0),
    (110, "getppid", 0),
    (111, "getpgrp", 0),
    (131, "sigaltstack", 2),
    (158, "arch_prctl", 2),
    (186, "gettid", 0),
    (201, "time", 1),
    (202, "futex", 6),
    (217, "getdents64", 3),
    (218, "set_tid_address", 1),
    (228, "clock_gettime", 2),
    (229, "clock_getres", 2),
    (230, "clock_nanosleep", 4),
    (231, "exit_group", 1),
    (234, "tgkill", 3),
    (257, "openat", 4),
    (258, "mkdirat", 3),
    (262, "newfstatat", 4),
    (263, "unlinkat", 3),
    (264, "renameat", 4),
    (267, "readlinkat", 4),
    (269, "faccessat", 3),
    (271, "ppoll", 4),
    (273, "set_robust_list", 2),
    (280, "utimensat", 4),
    (292, "dup3", 3),
    (293, "pipe2", 2),
    (302, "prlimit64", 4),
    (316, "renameat2", 5),
    (318, "getrandom", 3),
    (332, "statx", 5),
    (334, "rseq", 4),
    (435, "clone3", 2),
    (439, "faccessat2", 4),
];

/// The name of a system call (the common ones; others print as `syscall_N`).
pub fn syscall_name(n: u64) -> Option<&'static str> {
    NAMES.iter().find(|(k, _, _)| *k == n).map(|(_, v, _)| *v)
}

/// How many arguments a system call takes (6 when unknown).
pub fn syscall_args(n: u64) -> usize {
    NAMES.iter().find(|(k, _, _)| *k == n).map_or(6, |(_, _, c)| *c)
}

/// `open` flags.
pub mod o {
    pub const ACCMODE: u64 = 3;
    pub const RDONLY: u64 = 0;
    pub const WRONLY: u64 = 1;
    pub const RDWR: u64 = 2;
    pub const CREAT: u64 = 0o100;
    pub const EXCL: u64 = 0o200;
    pub const NOCTTY: u64 = 0o400;
    pub const TRUNC: u64 = 0o1000;
    pub const APPEND: u64 = 0o2000;
    pub const NONBLOCK: u64 = 0o4000;
    pub const DIRECTORY: u64 = 0o200000;
    pub const NOFOLLOW: u64 = 0o400000;
    pub const CLOEXEC: u64 = 0o2000000;
    pub const PATH: u64 = 0o10000000;
}

/// `*at` arguments.
pub const AT_FDCWD: i64 = -100;
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
pub const AT_REMOVEDIR: u64 = 0x200;
pub const AT_EMPTY_PATH: u64 = 0x1000;

/// `mmap` protections and flags.
pub const PROT_READ: u64 = 1;
pub const PROT_WRITE: u64 = 2;
pub const PROT_EXEC: u64 = 4;
pub const MAP_SHARED: u64 = 1;
pub const MAP_PRIVATE: u64 = 2;
pub const MAP_FIXED: u64 = 0x10;
pub const MAP_ANONYMOUS: u64 = 0x20;
pub const MAP_FIXED_NOREPLACE: u64 = 0x100000;
pub const MREMAP_MAYMOVE: u64 = 1;
pub const MREMAP_FIXED: u64 = 2;

/// `fcntl` commands.
pub const F_DUPFD: u64 = 0;
pub const F_GETFD: u64 = 1;
pub const F_SETFD: u64 = 2;
pub const F_GETFL: u64 = 3;
pub const F_SETFL: u64 = 4;
pub const F_DUPFD_CLOEXEC: u64 = 1030;
pub const FD_CLOEXEC: u64 = 1;

/// `ioctl` requests.
pub const TCGETS: u64 = 0x5401;
pub const TIOCGWINSZ: u64 = 0x5413;
pub const FIONREAD: u64 = 0x541b;

/// `arch_prctl` codes.
pub const ARCH_SET_FS: u64 = 0x1002;
pub const ARCH_GET_FS: u64 = 0x1003;

/// Clocks.
pub const CLOCK_REALTIME: u64 = 0;
pub const CLOCK_MONOTONIC: u64 = 1;
pub const CLOCK_PROCESS_CPUTIME_ID: u64 = 2;
pub const CLOCK_THREAD_CPUTIME_ID: u64 = 3;
pub const CLOCK_MONOTONIC_RAW: u64 = 4;
pub const CLOCK_REALTIME_COARSE: u64 = 5;
pub const CLOCK_MONOTONIC_COARSE: u64 = 6;
pub const CLOCK_BOOTTIME: u64 = 7;

/// File mode bits of `st_mode`.
pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

/// `d_type` values of `getdents64`.
pub const DT_FIFO: u8 = 1;
pub const DT_CHR: u8 = 2;
pub const DT_DIR: u8 = 4;
pub const DT_REG: u8 = 8;
pub const DT_LNK: u8 = 10;

/// Signals Keel names in reports.
pub const SIGINT: i32 = 2;
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGABRT: i32 = 6;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGSEGV: i32 = 11;
pub const SIGPIPE: i32 = 13;
pub const SIGTERM: i32 = 15;

/// A signal's name.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGILL => "SIGILL",
        SIGTRAP => "SIGTRAP",
        SIGABRT => "SIGABRT",
        SIGBUS => "SIGBUS",
        SIGFPE => "SIGFPE",
        SIGKILL => "SIGKILL",
        SIGSEGV => "SIGSEGV",
        SIGPIPE => "SIGPIPE",
        SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

/// What the kernel knows about a file for `stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FileInfo {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub size: u64,
    pub atime_ns: u64,
    pub mtime_ns: u64,
    pub ctime_ns: u64,
    pub rdev: u64,
}

impl FileInfo {
    /// From VFS metadata (permissions: what the shell user has, as no users exist).
    pub fn from_vfs(s: &keel_vfs::Stat) -> FileInfo {
        let mode = match s.kind {
            keel_vfs::FileType::File => S_IFREG | 0o644,
            keel_vfs::FileType::Dir => S_IFDIR | 0o755,
            keel_vfs::FileType::Symlink => S_IFLNK | 0o777,
            keel_vfs::FileType::CharDevice => S_IFCHR | 0o666,
        };
        FileInfo {
            dev: s.dev,
            ino: s.ino,
            mode,
            nlink: s.nlink.max(1),
            size: s.size,
            atime_ns: s.atime,
            mtime_ns: s.mtime,
            ctime_ns: s.ctime,
            rdev: 0,
        }
    }

    /// `struct stat` (144 bytes).
    pub fn to_stat(&self) -> [u8; 144] {
        let mut b = [0u8; 144];
        put(&mut b, 0, self.dev);
        put(&mut b, 8, self.ino);
        put(&mut b, 16, self.nlink);
        b[24..28].copy_from_slice(&self.mode.to_le_bytes());
        // uid, gid 0; pad
        put(&mut b, 40, self.rdev);
        put(&mut b, 48, self.size);
        put(&mut b, 56, 4096); // st_blksize
        put(&mut b, 64, self.size.div_ceil(512)); // st_blocks
        let ts = |b: &mut [u8], off: usize, ns: u64| {
            put(b, off, ns / 1_000_000_000);
            put(b, off + 8, ns % 1_000_000_000);
        };
        ts(&mut b, 72, self.atime_ns);
        ts(&mut b, 88, self.mtime_ns);
        ts(&mut b, 104, self.ctime_ns);
        b
    }

    /// `struct statx` (256 bytes), every basic field present.
    pub fn to_statx(&self) -> [u8; 256] {
        let mut b = [0u8; 256];
        b[0..4].copy_from_slice(&0x7ffu32.to_le_bytes()); // STATX_BASIC_STATS
        b[4..8].copy_from_slice(&4096u32.to_le_bytes()); // stx_blksize
        b[16..20].copy_from_slice(&(self.nlink as u32).to_le_bytes());
        b[28..30].copy_from_slice(&(self.mode as u16).to_le_bytes());
        put(&mut b, 32, self.ino);
        put(&mut b, 40, self.size);
        put(&mut b, 48, self.size.div_ceil(512));
        let ts = |b: &mut [u8], off: usize, ns: u64| {
            put(b, off, ns / 1_000_000_000);
            b[off + 8..off + 12].copy_from_slice(&((ns % 1_000_000_000) as u32).to_le_bytes());
        };
        ts(&mut b, 64, self.atime_ns); // atime
        ts(&mut b, 80, self.ctime_ns); // btime
        ts(&mut b, 96, self.ctime_ns); // ctime
        ts(&mut b, 112, self.mtime_ns); // mtime
        b[128..132].copy_from_slice(&((self.rdev >> 8) as u32).to_le_bytes());
        b[136..140].copy_from_slice(&((self.dev >> 8) as u32).to_le_bytes());
        b[140..144].copy_from_slice(&((self.dev & 0xff) as u32).to_le_bytes());
        b
    }
}

/// Writes a little-endian u64 at `off`.
pub fn put(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Reads a little-endian u64 at `off` (0 past the end).
pub fn get(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).and_then(|s| s.try_into().ok()).map_or(0, u64::from_le_bytes)
}

/// A `struct timespec`.
pub fn timespec(ns: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    put(&mut b, 0, ns / 1_000_000_000);
    put(&mut b, 8, ns % 1_000_000_000);
    b
}

/// Reads a `struct timespec` into nanoseconds; None if the fields are out of range.
pub fn read_timespec(b: &[u8; 16]) -> Option<u64> {
    let secs = get(b, 0) as i64;
    let nsec = get(b, 8) as i64;
    if secs < 0 || !(0..1_000_000_000).contains(&nsec) {
        return None;
    }
    Some((secs as u64).saturating_mul(1_000_000_000).saturating_add(nsec as u64))
}

/// One `struct linux_dirent64` record (8-byte aligned).
pub fn dirent64(ino: u64, next_off: u64, dtype: u8, name: &str) -> Vec<u8> {
    let len = (19 + name.len() + 1).next_multiple_of(8);
    let mut b = alloc::vec![0u8; len];
    put(&mut b, 0, ino);
    put(&mut b, 8, next_off);
    b[16..18].copy_from_slice(&(len as u16).to_le_bytes());
    b[18] = dtype;
    b[19..19 + name.len()].copy_from_slice(name.as_bytes());
    b
}

/// `struct utsname`: six fields of 65 bytes.
pub fn utsname(fields: [&str; 6]) -> [u8; 390] {
    let mut b = [0u8; 390];
    for (i, f) in fields.iter().enumerate() {
        let n = f.len().min(64);
        b[i * 65..i * 65 + n].copy_from_slice(&f.as_bytes()[..n]);
    }
    b
}

/// `struct termios` (60 bytes) for a terminal in cooked mode with echo.
pub fn termios() -> [u8; 60] {
    let mut b = [0u8; 60];
    b[0..4].copy_from_slice(&0x500u32.to_le_bytes()); // ICRNL | IXON
    b[4..8].copy_from_slice(&0x5u32.to_le_bytes()); // OPOST | ONLCR
    b[8..12].copy_from_slice(&0xbfu32.to_le_bytes()); // CS8 | CREAD | B38400
    b[12..16].copy_from_slice(&0x8a3bu32.to_le_bytes()); // ISIG | ICANON | ECHO...
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_layout_matches_glibc_and_musl() {
        let f = FileInfo {
            dev: 1,
            ino: 2,
            mode: S_IFREG | 0o644,
            nlink: 1,
            size: 1000,
            mtime_ns: 5_000_000_007,
            ..Default::default()
        };
        let b = f.to_stat();
        assert_eq!(get(&b, 8), 2);
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), S_IFREG | 0o644);
        assert_eq!(get(&b, 48), 1000);
        assert_eq!(get(&b, 64), 2);
        assert_eq!(get(&b, 88), 5);
        assert_eq!(get(&b, 96), 7);
    }

    #[test]
    fn dirents_are_aligned_and_sized() {
        for name in ["a", "abcd", "abcdefghijkl", "x.txt"] {
            let d = dirent64(3, 1, DT_REG, name);
            assert_eq!(d.len() % 8, 0);
            assert_eq!(u16::from_le_bytes([d[16], d[17]]) as usize, d.len());
            assert_eq!(&d[19..19 + name.len()], name.as_bytes());
            assert_eq!(d[19 + name.len()], 0);
        }
    }

    #[test]
    fn timespecs_round_trip_and_reject_bad_fields() {
        assert_eq!(read_timespec(&timespec(3_000_000_123)), Some(3_000_000_123));
        let mut bad = timespec(0);
        put(&mut bad, 8, 1_000_000_000);
        assert_eq!(read_timespec(&bad), None);
        let mut neg = timespec(0);
        put(&mut neg, 0, u64::MAX);
        assert_eq!(read_timespec(&neg), None);
    }
}
