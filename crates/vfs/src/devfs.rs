//! `/dev`: `null`, `zero`, `random` and `urandom`.
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::fs::{DirEntry, FileSystem, FileType, FsInfo, Ino, Stat};

/// Fills a buffer with random bytes (the kernel's CSPRNG).
pub type RandomSource = fn(&mut [u8]);

const ROOT: Ino = 1;
const DEVICES: [(&str, Ino); 4] = [("null", 2), ("random", 4), ("urandom", 5), ("zero", 3)];

/// The device filesystem.
pub struct DevFs {
    random: RandomSource,
    boot_time: u64,
}

impl DevFs {
    /// Devices whose times are `boot_time`, with `random` drawing from `random`.
    pub fn new(random: RandomSource, boot_time: u64) -> Self {
        DevFs { random, boot_time }
    }
}

impl FileSystem for DevFs {
    fn root(&self) -> Ino {
        ROOT
    }

    fn lookup(&self, dir: Ino, name: &str) -> Result<Ino> {
        if dir != ROOT {
            return Err(Error::NotADirectory);
        }
        DEVICES.iter().find(|d| d.0 == name).map(|d| d.1).ok_or(Error::NotFound)
    }

    fn stat(&self, ino: Ino) -> Result<Stat> {
        let kind = match ino {
            ROOT => FileType::Dir,
            2..=5 => FileType::CharDevice,
            _ => return Err(Error::Stale),
        };
        let t = self.boot_time;
        Ok(Stat { dev: 0, ino, kind, size: 0, nlink: 1, atime: t, mtime: t, ctime: t })
    }

    fn read(&self, ino: Ino, _offset: u64, buf: &mut [u8]) -> Result<usize> {
        match ino {
            ROOT => Err(Error::IsADirectory),
            2 => Ok(0),
            3 => {
                buf.fill(0);
                Ok(buf.len())
            }
            4 | 5 => {
                (self.random)(buf);
                Ok(buf.len())
            }
            _ => Err(Error::Stale),
        }
    }

    fn write(&self, ino: Ino, _offset: u64, data: &[u8]) -> Result<usize> {
        match ino {
            ROOT => Err(Error::IsADirectory),
            2..=5 => Ok(data.len()),
            _ => Err(Error::Stale),
        }
    }

    fn set_size(&self, ino: Ino, _size: u64) -> Result<()> {
        match ino {
            2..=5 => Ok(()),
            _ => Err(Error::InvalidArgument),
        }
    }

    fn readdir(&self, dir: Ino) -> Result<Vec<DirEntry>> {
        if dir != ROOT {
            return Err(Error::NotADirectory);
        }
        Ok(DEVICES.iter().map(|d| DirEntry { name: String::from(d.0), ino: d.1, kind: FileType::CharDevice }).collect())
    }

    fn info(&self) -> FsInfo {
        FsInfo { kind: "devfs", total_bytes: 0, used_bytes: 0, readonly: false }
    }
}
