//! Every WASI function by name, for engines that link host functions from a table (the compiled
//! tier): [`SIGNATURES`] gives each function's parameter types, [`call`] runs it on raw
//! arguments. Arguments arrive as the engine's values widened to `u64` (an `i32` zero-extended).
//! Out-of-range narrow arguments (flags that are `u16`, `whence` that is `u8`) give `EINVAL`,
//! as they do when linked one by one.

use crate::{errno, Abort, Errno, WasiCtx};

/// A function's parameters: `i` is an `i32`, `I` an `i64`. Every function returns an `i32`
/// errno, but `proc_exit`, which returns nothing.
pub const SIGNATURES: [(&str, &str); 46] = [
    ("args_get", "ii"),
    ("args_sizes_get", "ii"),
    ("environ_get", "ii"),
    ("environ_sizes_get", "ii"),
    ("clock_res_get", "ii"),
    ("clock_time_get", "iIi"),
    ("fd_advise", "iIIi"),
    ("fd_allocate", "iII"),
    ("fd_close", "i"),
    ("fd_datasync", "i"),
    ("fd_fdstat_get", "ii"),
    ("fd_fdstat_set_flags", "ii"),
    ("fd_fdstat_set_rights", "iII"),
    ("fd_filestat_get", "ii"),
    ("fd_filestat_set_size", "iI"),
    ("fd_filestat_set_times", "iIIi"),
    ("fd_pread", "iiiIi"),
    ("fd_prestat_get", "ii"),
    ("fd_prestat_dir_name", "iii"),
    ("fd_pwrite", "iiiIi"),
    ("fd_read", "iiii"),
    ("fd_readdir", "iiiIi"),
    ("fd_renumber", "ii"),
    ("fd_seek", "iIii"),
    ("fd_sync", "i"),
    ("fd_tell", "ii"),
    ("fd_write", "iiii"),
    ("path_create_directory", "iii"),
    ("path_filestat_get", "iiiii"),
    ("path_filestat_set_times", "iiiiIIi"),
    ("path_link", "iiiiiii"),
    ("path_open", "iiiiiIIii"),
    ("path_readlink", "iiiiii"),
    ("path_remove_directory", "iii"),
    ("path_rename", "iiiiii"),
    ("path_symlink", "iiiii"),
    ("path_unlink_file", "iii"),
    ("poll_oneoff", "iiii"),
    ("proc_exit", "i"),
    ("proc_raise", "i"),
    ("sched_yield", ""),
    ("random_get", "ii"),
    ("sock_accept", "iii"),
    ("sock_recv", "iiiiii"),
    ("sock_send", "iiiii"),
    ("sock_shutdown", "ii"),
];

/// The largest number of parameters of any WASI function.
pub const MAX_PARAMS: usize = 9;

/// Why [`call`] did not run a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// No WASI function has this name.
    Unknown,
    /// Fewer arguments than the function takes.
    Arity,
}

fn narrow<T: TryFrom<u32>>(v: u64) -> Result<T, Errno> {
    T::try_from(v as u32).map_err(|_| errno::INVAL)
}

/// Runs the WASI function `name` with arguments `a` (see [`SIGNATURES`]).
pub fn call(w: &mut WasiCtx, mem: &mut [u8], name: &str, a: &[u64]) -> Result<Result<Errno, Abort>, CallError> {
    let want = SIGNATURES.iter().find(|(n, _)| *n == name).map(|(_, s)| s.len()).ok_or(CallError::Unknown)?;
    if a.len() < want {
        return Err(CallError::Arity);
    }
    // The i32 parameters as WASI's u32.
    let u = |i: usize| a[i] as u32;
    let r = match name {
        "args_get" => w.args_get(mem, u(0), u(1)),
        "args_sizes_get" => w.args_sizes_get(mem, u(0), u(1)),
        "environ_get" => w.environ_get(mem, u(0), u(1)),
        "environ_sizes_get" => w.environ_sizes_get(mem, u(0), u(1)),
        "clock_res_get" => w.clock_res_get(mem, u(0), u(1)),
        "clock_time_get" => w.clock_time_get(mem, u(0), a[1], u(2)),
        "fd_advise" => w.fd_advise(u(0), a[1], a[2], u(3)),
        "fd_allocate" => w.fd_allocate(u(0), a[1], a[2]),
        "fd_close" => w.fd_close(u(0)),
        "fd_datasync" => w.fd_datasync(u(0)),
        "fd_fdstat_get" => w.fd_fdstat_get(mem, u(0), u(1)),
        "fd_fdstat_set_flags" => match narrow(a[1]) {
            Ok(fl) => w.fd_fdstat_set_flags(u(0), fl),
            Err(e) => Ok(e),
        },
        "fd_fdstat_set_rights" => w.fd_fdstat_set_rights(u(0), a[1], a[2]),
        "fd_filestat_get" => w.fd_filestat_get(mem, u(0), u(1)),
        "fd_filestat_set_size" => w.fd_filestat_set_size(u(0), a[1]),
        "fd_filestat_set_times" => match narrow(a[3]) {
            Ok(fl) => w.fd_filestat_set_times(u(0), a[1], a[2], fl),
            Err(e) => Ok(e),
        },
        "fd_pread" => w.fd_pread(mem, u(0), u(1), u(2), a[3], u(4)),
        "fd_prestat_get" => w.fd_prestat_get(mem, u(0), u(1)),
        "fd_prestat_dir_name" => w.fd_prestat_dir_name(mem, u(0), u(1), u(2)),
        "fd_pwrite" => w.fd_pwrite(mem, u(0), u(1), u(2), a[3], u(4)),
        "fd_read" => w.fd_read(mem, u(0), u(1), u(2), u(3)),
        "fd_readdir" => w.fd_readdir(mem, u(0), u(1), u(2), a[3], u(4)),
        "fd_renumber" => w.fd_renumber(u(0), u(1)),
        "fd_seek" => match narrow(a[2]) {
            Ok(wh) => w.fd_seek(mem, u(0), a[1] as i64, wh, u(3)),
            Err(e) => Ok(e),
        },
        "fd_sync" => w.fd_sync(u(0)),
        "fd_tell" => w.fd_tell(mem, u(0), u(1)),
        "fd_write" => w.fd_write(mem, u(0), u(1), u(2), u(3)),
        "path_create_directory" => w.path_create_directory(mem, u(0), u(1), u(2)),
        "path_filestat_get" => w.path_filestat_get(mem, u(0), u(1), u(2), u(3), u(4)),
        "path_filestat_set_times" => match narrow(a[6]) {
            Ok(fl) => w.path_filestat_set_times(mem, u(0), u(1), u(2), u(3), a[4], a[5], fl),
            Err(e) => Ok(e),
        },
        "path_link" => w.path_link(mem, u(0), u(1), u(2), u(3), u(4), u(5), u(6)),
        "path_open" => match (narrow(a[4]), narrow(a[7])) {
            (Ok(of), Ok(ff)) => w.path_open(mem, u(0), u(1), u(2), u(3), of, a[5], a[6], ff, u(8)),
            _ => Ok(errno::INVAL),
        },
        "path_readlink" => w.path_readlink(mem, u(0), u(1), u(2), u(3), u(4), u(5)),
        "path_remove_directory" => w.path_remove_directory(mem, u(0), u(1), u(2)),
        "path_rename" => w.path_rename(mem, u(0), u(1), u(2), u(3), u(4), u(5)),
        "path_symlink" => w.path_symlink(mem, u(0), u(1), u(2), u(3), u(4)),
        "path_unlink_file" => w.path_unlink_file(mem, u(0), u(1), u(2)),
        "poll_oneoff" => w.poll_oneoff(mem, u(0), u(1), u(2), u(3)),
        "proc_exit" => w.proc_exit(u(0)),
        "proc_raise" => w.proc_raise(u(0)),
        "sched_yield" => w.sched_yield(),
        "random_get" => w.random_get(mem, u(0), u(1)),
        "sock_accept" => match narrow(a[1]) {
            Ok(fl) => w.sock_accept(mem, u(0), fl, u(2)),
            Err(e) => Ok(e),
        },
        "sock_recv" => match narrow(a[3]) {
            Ok(fl) => w.sock_recv(mem, u(0), u(1), u(2), fl, u(4), u(5)),
            Err(e) => Ok(e),
        },
        "sock_send" => match narrow(a[3]) {
            Ok(fl) => w.sock_send(mem, u(0), u(1), u(2), fl, u(4)),
            Err(e) => Ok(e),
        },
        "sock_shutdown" => match narrow(a[1]) {
            Ok(how) => w.sock_shutdown(u(0), how),
            Err(e) => Ok(e),
        },
        _ => return Err(CallError::Unknown),
    };
    Ok(r)
}
