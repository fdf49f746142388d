//! Filesystem errors, worded like a Unix shell's.
use core::fmt;

/// Everything a filesystem operation can fail with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    NotFound,
    NotADirectory,
    IsADirectory,
    AlreadyExists,
    ReadOnly,
    NotEmpty,
    InvalidPath,
    NameTooLong,
    NoSpace,
    CrossDevice,
    Loop,
    InvalidArgument,
    NotSupported,
    Busy,
    /// A confined lookup tried to leave its base directory (`..`, absolute symlink).
    Escape,
    /// The handle was not opened for this kind of access.
    BadHandle,
    PermissionDenied,
    FileTooLarge,
    /// The file was removed underneath an open handle of a filesystem that cannot keep it.
    Stale,
    Io,
}

/// Result of filesystem operations.
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::NotFound => "no such file or directory",
            Error::NotADirectory => "not a directory",
            Error::IsADirectory => "is a directory",
            Error::AlreadyExists => "file exists",
            Error::ReadOnly => "read-only file system",
            Error::NotEmpty => "directory not empty",
            Error::InvalidPath => "invalid path",
            Error::NameTooLong => "file name too long",
            Error::NoSpace => "no space left on device",
            Error::CrossDevice => "cross-device link",
            Error::Loop => "too many levels of symbolic links",
            Error::InvalidArgument => "invalid argument",
            Error::NotSupported => "operation not supported",
            Error::Busy => "device or resource busy",
            Error::Escape => "path escapes its directory",
            Error::BadHandle => "bad file descriptor",
            Error::PermissionDenied => "permission denied",
            Error::FileTooLarge => "file too large",
            Error::Stale => "stale file handle",
            Error::Io => "input/output error",
        })
    }
}
