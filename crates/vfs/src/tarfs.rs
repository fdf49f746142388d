//! A read-only filesystem serving a tar archive in place: file contents are slices of the
//! archive (the ramdisk), never copied.
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use keel_archive::{Entry, Kind};

use crate::error::{Error, Result};
use crate::fs::{DirEntry, FileSystem, FileType, FsInfo, Ino, Stat};

enum Node {
    File { range: Range<usize>, mtime: u64 },
    Dir { children: BTreeMap<String, Ino>, mtime: u64 },
    Symlink { target: String, mtime: u64 },
}

/// The archive filesystem.
pub struct TarFs {
    data: &'static [u8],
    /// Index = inode number - 1.
    nodes: Vec<Node>,
}

const ROOT: Ino = 1;

impl TarFs {
    /// Indexes an archive. Fails (without panicking) on any malformed or hostile archive.
    pub fn new(data: &'static [u8]) -> core::result::Result<TarFs, keel_archive::Error> {
        let entries: Vec<Entry> = keel_archive::parse(data)?;
        let mut nodes = alloc::vec![Node::Dir { children: BTreeMap::new(), mtime: 0 }];
        let mut by_path: BTreeMap<String, Ino> = BTreeMap::new();
        // Entries come sorted by path, so parents precede children.
        for e in entries {
            let ino = nodes.len() as Ino + 1;
            let mtime = e.mtime.saturating_mul(1_000_000_000);
            nodes.push(match e.kind {
                Kind::File(range) => Node::File { range, mtime },
                Kind::Dir => Node::Dir { children: BTreeMap::new(), mtime },
                Kind::Symlink(target) => Node::Symlink { target, mtime },
            });
            let (parent, name) = match e.path.rsplit_once('/') {
                Some((p, n)) => (by_path.get(p).copied().unwrap_or(ROOT), n),
                None => (ROOT, e.path.as_str()),
            };
            if let Some(Node::Dir { children, .. }) = nodes.get_mut((parent - 1) as usize) {
                children.insert(String::from(name), ino);
            }
            by_path.insert(e.path, ino);
        }
        Ok(TarFs { data, nodes })
    }

    fn node(&self, ino: Ino) -> Result<&Node> {
        ino.checked_sub(1).and_then(|i| self.nodes.get(i as usize)).ok_or(Error::Stale)
    }

    fn kind(n: &Node) -> FileType {
        match n {
            Node::File { .. } => FileType::File,
            Node::Dir { .. } => FileType::Dir,
            Node::Symlink { .. } => FileType::Symlink,
        }
    }

    /// Number of files and directories (for the boot log).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

impl FileSystem for TarFs {
    fn immutable_contents(&self, ino: Ino) -> Option<&'static [u8]> {
        match self.node(ino).ok()? {
            Node::File { range, .. } => self.data.get(range.clone()),
            _ => None,
        }
    }

    fn root(&self) -> Ino {
        ROOT
    }

    fn lookup(&self, dir: Ino, name: &str) -> Result<Ino> {
        match self.node(dir)? {
            Node::Dir { children, .. } => children.get(name).copied().ok_or(Error::NotFound),
            _ => Err(Error::NotADirectory),
        }
    }

    fn stat(&self, ino: Ino) -> Result<Stat> {
        let n = self.node(ino)?;
        let (size, mtime, nlink) = match n {
            Node::File { range, mtime } => (range.len() as u64, *mtime, 1),
            Node::Dir { children, mtime } => (children.len() as u64, *mtime, 2),
            Node::Symlink { target, mtime } => (target.len() as u64, *mtime, 1),
        };
        Ok(Stat { dev: 0, ino, kind: Self::kind(n), size, nlink, atime: mtime, mtime, ctime: mtime })
    }

    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize> {
        match self.node(ino)? {
            Node::File { range, .. } => {
                let file = self.data.get(range.clone()).ok_or(Error::Io)?;
                let Ok(off) = usize::try_from(offset) else {
                    return Ok(0);
                };
                if off >= file.len() {
                    return Ok(0);
                }
                let k = buf.len().min(file.len() - off);
                buf[..k].copy_from_slice(&file[off..off + k]);
                Ok(k)
            }
            Node::Dir { .. } => Err(Error::IsADirectory),
            Node::Symlink { .. } => Err(Error::InvalidArgument),
        }
    }

    fn readdir(&self, dir: Ino) -> Result<Vec<DirEntry>> {
        match self.node(dir)? {
            Node::Dir { children, .. } => Ok(children
                .iter()
                .map(|(name, &ino)| DirEntry {
                    name: name.clone(),
                    ino,
                    kind: self.node(ino).map(Self::kind).unwrap_or(FileType::File),
                })
                .collect()),
            _ => Err(Error::NotADirectory),
        }
    }

    fn readlink(&self, ino: Ino) -> Result<String> {
        match self.node(ino)? {
            Node::Symlink { target, .. } => Ok(target.clone()),
            _ => Err(Error::InvalidArgument),
        }
    }

    fn set_times(&self, _: Ino, _: Option<u64>, _: Option<u64>) -> Result<()> {
        Err(Error::ReadOnly)
    }

    fn readonly(&self) -> bool {
        true
    }

    fn info(&self) -> FsInfo {
        FsInfo {
            kind: "tarfs",
            total_bytes: self.data.len() as u64,
            used_bytes: self.data.len() as u64,
            readonly: true,
        }
    }
}
