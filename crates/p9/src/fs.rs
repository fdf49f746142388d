//! A VFS filesystem over a 9P2000.L client.
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use keel_vfs::{DirEntry, Error, FileSystem, FileType, FsInfo, Ino, NewNode, Result, Stat};
use spin::Mutex;

use crate::proto::{errno_to_vfs, Client, P9Error, Transport};

const O_RDONLY: u32 = 0;
const O_WRONLY: u32 = 1;
const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;
const O_DIRECTORY: u32 = 0o200000;
const AT_REMOVEDIR: u32 = 0x200;
const ROOT_FID: u32 = 0;

struct Inner<T: Transport> {
    client: Client<T>,
    /// A walked (not opened) fid for every inode we have seen.
    fids: BTreeMap<Ino, u32>,
    next_fid: u32,
    root: Ino,
}

/// A host folder served over 9P.
pub struct P9Fs<T: Transport> {
    inner: Mutex<Inner<T>>,
    readonly: bool,
}

fn kind_of_mode(mode: u32) -> FileType {
    match mode & 0o170000 {
        0o040000 => FileType::Dir,
        0o120000 => FileType::Symlink,
        0o020000 => FileType::CharDevice,
        _ => FileType::File,
    }
}

fn kind_of_dirent(t: u8) -> FileType {
    match t {
        4 => FileType::Dir,
        10 => FileType::Symlink,
        2 => FileType::CharDevice,
        _ => FileType::File,
    }
}

fn e(err: P9Error) -> Error {
    errno_to_vfs(err)
}

impl<T: Transport> Inner<T> {
    fn new_fid(&mut self) -> u32 {
        let f = self.next_fid;
        self.next_fid = self.next_fid.wrapping_add(1).max(1);
        f
    }

    fn fid(&self, ino: Ino) -> Result<u32> {
        self.fids.get(&ino).copied().ok_or(Error::Stale)
    }

    /// A fresh clone of `ino`'s fid (to open it); the caller clunks it.
    fn clone_fid(&mut self, ino: Ino) -> Result<u32> {
        let fid = self.fid(ino)?;
        let new = self.new_fid();
        self.client.walk(fid, new, &[]).map_err(e)?;
        Ok(new)
    }

    /// Keeps the newest fid for an inode: host inode numbers are reused after a file is removed,
    /// so an older fid with the same number may refer to a file that no longer exists.
    fn remember(&mut self, ino: Ino, fid: u32) {
        if ino == self.root {
            let _ = self.client.clunk(fid);
            return;
        }
        if let Some(old) = self.fids.insert(ino, fid) {
            let _ = self.client.clunk(old);
        }
    }

    /// Walks `name` from `dir` and remembers the result.
    fn walk_name(&mut self, dir: Ino, name: &str) -> Result<Ino> {
        let dfid = self.fid(dir)?;
        let new = self.new_fid();
        let qids = self.client.walk(dfid, new, &[name]).map_err(e)?;
        let ino = qids.first().ok_or(Error::Io)?.path;
        self.remember(ino, new);
        Ok(ino)
    }

    /// Opens `ino`, moves up to `len` bytes with `step` (which returns how many it moved), and
    /// closes it again. `on_zero` decides what a step that moved nothing means.
    fn transfer(
        &mut self,
        ino: Ino,
        flags: u32,
        len: usize,
        mut step: impl FnMut(&mut Client<T>, u32, usize) -> core::result::Result<usize, P9Error>,
        on_zero: impl Fn(usize) -> Result<usize>,
    ) -> Result<usize> {
        let fid = self.open(ino, flags)?;
        let mut done = 0;
        let result = loop {
            if done >= len {
                break Ok(done);
            }
            match step(&mut self.client, fid, done) {
                Ok(0) => break on_zero(done),
                Ok(n) => done += n,
                Err(err) => break Err(e(err)),
            }
        };
        let _ = self.client.clunk(fid);
        result
    }

    fn open(&mut self, ino: Ino, flags: u32) -> Result<u32> {
        let fid = self.clone_fid(ino)?;
        if let Err(err) = self.client.lopen(fid, flags) {
            let _ = self.client.clunk(fid);
            return Err(e(err));
        }
        Ok(fid)
    }
}

impl<T: Transport> P9Fs<T> {
    /// Attaches to the server's root.
    pub fn new(transport: T, readonly: bool) -> core::result::Result<P9Fs<T>, P9Error> {
        let mut client = Client::new(transport)?;
        let qid = client.attach(ROOT_FID, "")?;
        let mut fids = BTreeMap::new();
        fids.insert(qid.path, ROOT_FID);
        Ok(P9Fs { inner: Mutex::new(Inner { client, fids, next_fid: 1, root: qid.path }), readonly })
    }

    fn writable(&self) -> Result<()> {
        if self.readonly {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }
}

impl<T: Transport + Send> FileSystem for P9Fs<T> {
    fn root(&self) -> Ino {
        self.inner.lock().root
    }

    fn lookup(&self, dir: Ino, name: &str) -> Result<Ino> {
        if name == "." || name == ".." || name.contains('/') {
            return Err(Error::InvalidPath);
        }
        self.inner.lock().walk_name(dir, name)
    }

    fn stat(&self, ino: Ino) -> Result<Stat> {
        let mut g = self.inner.lock();
        let fid = g.fid(ino)?;
        let a = g.client.getattr(fid).map_err(e)?;
        let ns = |t: (u64, u64)| t.0.saturating_mul(1_000_000_000).saturating_add(t.1);
        Ok(Stat {
            dev: 0,
            ino,
            kind: kind_of_mode(a.mode),
            size: a.size,
            nlink: a.nlink,
            atime: ns(a.atime),
            mtime: ns(a.mtime),
            ctime: ns(a.ctime),
        })
    }

    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let len = buf.len();
        // A zero-length read is the end of the file.
        self.inner.lock().transfer(
            ino,
            O_RDONLY,
            len,
            |c, fid, done| c.read(fid, offset + done as u64, &mut buf[done..]),
            Ok,
        )
    }

    fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize> {
        self.writable()?;
        // A zero-length write means the host took nothing more: its disk is full.
        self.inner.lock().transfer(
            ino,
            O_WRONLY,
            data.len(),
            |c, fid, done| c.write(fid, offset + done as u64, &data[done..]),
            |_| Err(Error::NoSpace),
        )
    }

    fn set_size(&self, ino: Ino, size: u64) -> Result<()> {
        self.writable()?;
        let mut g = self.inner.lock();
        let fid = g.fid(ino)?;
        g.client.setattr(fid, 0x8, size, (0, 0), (0, 0)).map_err(e)
    }

    fn readdir(&self, dir: Ino) -> Result<Vec<DirEntry>> {
        let mut g = self.inner.lock();
        let fid = g.open(dir, O_RDONLY | O_DIRECTORY)?;
        let mut out = Vec::new();
        let mut offset = 0;
        let result = loop {
            match g.client.readdir(fid, offset) {
                Ok(batch) if batch.is_empty() => break Ok(()),
                Ok(batch) => {
                    for d in batch {
                        offset = d.offset;
                        if d.name != "." && d.name != ".." {
                            out.push(DirEntry { name: d.name, ino: d.qid.path, kind: kind_of_dirent(d.kind) });
                        }
                    }
                }
                Err(err) => break Err(e(err)),
            }
        };
        let _ = g.client.clunk(fid);
        result?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn create(&self, dir: Ino, name: &str, node: NewNode) -> Result<Ino> {
        self.writable()?;
        keel_vfs::path::check_name(name)?;
        let mut g = self.inner.lock();
        let dfid = g.fid(dir)?;
        match node {
            NewNode::File => {
                let fid = g.clone_fid(dir)?;
                let r = g.client.lcreate(fid, name, O_CREAT | O_EXCL | O_WRONLY, 0o644);
                let _ = g.client.clunk(fid);
                if let Err(err) = r {
                    return Err(if err == P9Error::Protocol { Error::InvalidArgument } else { e(err) });
                }
            }
            NewNode::Dir => {
                g.client.mkdir(dfid, name, 0o755).map_err(e)?;
            }
            NewNode::Symlink(target) => {
                g.client.symlink(dfid, name, &target).map_err(e)?;
            }
        }
        g.walk_name(dir, name)
    }

    fn link(&self, ino: Ino, dir: Ino, name: &str) -> Result<()> {
        self.writable()?;
        let mut g = self.inner.lock();
        let (fid, dfid) = (g.fid(ino)?, g.fid(dir)?);
        g.client.link(dfid, fid, name).map_err(e)
    }

    fn unlink(&self, dir: Ino, name: &str) -> Result<()> {
        self.writable()?;
        let mut g = self.inner.lock();
        let dfid = g.fid(dir)?;
        g.client.unlinkat(dfid, name, 0).map_err(e)
    }

    fn rmdir(&self, dir: Ino, name: &str) -> Result<()> {
        self.writable()?;
        let mut g = self.inner.lock();
        let dfid = g.fid(dir)?;
        g.client.unlinkat(dfid, name, AT_REMOVEDIR).map_err(e)
    }

    fn rename(&self, from_dir: Ino, from: &str, to_dir: Ino, to: &str) -> Result<()> {
        self.writable()?;
        let mut g = self.inner.lock();
        let (a, b) = (g.fid(from_dir)?, g.fid(to_dir)?);
        g.client.renameat(a, from, b, to).map_err(e)
    }

    fn readlink(&self, ino: Ino) -> Result<String> {
        let mut g = self.inner.lock();
        let fid = g.fid(ino)?;
        g.client.readlink(fid).map_err(e)
    }

    fn set_times(&self, ino: Ino, atime: Option<u64>, mtime: Option<u64>) -> Result<()> {
        self.writable()?;
        let mut g = self.inner.lock();
        let fid = g.fid(ino)?;
        let split = |t: u64| (t / 1_000_000_000, t % 1_000_000_000);
        let mut valid = 0;
        if atime.is_some() {
            valid |= 0x10 | 0x80;
        }
        if mtime.is_some() {
            valid |= 0x20 | 0x100;
        }
        g.client.setattr(fid, valid, 0, split(atime.unwrap_or(0)), split(mtime.unwrap_or(0))).map_err(e)
    }

    fn readonly(&self) -> bool {
        self.readonly
    }

    fn info(&self) -> FsInfo {
        let mut g = self.inner.lock();
        let s = g.client.statfs(ROOT_FID).unwrap_or_default();
        let bs = u64::from(s.bsize);
        FsInfo {
            kind: "9p",
            total_bytes: s.blocks * bs,
            used_bytes: s.blocks.saturating_sub(s.bfree) * bs,
            readonly: self.readonly,
        }
    }
}
