//! A read-write filesystem in memory (for `/` and `/tmp`), with an optional size limit.
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use spin::Mutex;

use crate::error::{Error, Result};
use crate::fs::{DirEntry, FileSystem, FileType, FsInfo, Ino, NewNode, Stat};
use crate::path::check_name;

/// Where the filesystem gets the time (nanoseconds since the Unix epoch).
pub type Clock = fn() -> u64;

enum Data {
    File(Vec<u8>),
    Dir(BTreeMap<String, Ino>),
    Symlink(String),
}

struct Node {
    data: Data,
    nlink: u64,
    open: u64,
    atime: u64,
    mtime: u64,
    ctime: u64,
}

impl Node {
    fn kind(&self) -> FileType {
        match self.data {
            Data::File(_) => FileType::File,
            Data::Dir(_) => FileType::Dir,
            Data::Symlink(_) => FileType::Symlink,
        }
    }

    fn size(&self) -> u64 {
        match &self.data {
            Data::File(v) => v.len() as u64,
            Data::Dir(m) => m.len() as u64,
            Data::Symlink(t) => t.len() as u64,
        }
    }

    /// Bytes charged against the capacity.
    fn cost(&self) -> u64 {
        NODE_COST
            + match &self.data {
                Data::File(v) => v.len() as u64,
                Data::Dir(_) => 0,
                Data::Symlink(t) => t.len() as u64,
            }
    }
}

struct Inner {
    nodes: BTreeMap<Ino, Node>,
    next: Ino,
    used: u64,
}

/// Bytes charged per node, so that a flood of empty files also hits the limit.
const NODE_COST: u64 = 128;

/// The memory filesystem.
pub struct MemFs {
    inner: Mutex<Inner>,
    capacity: u64,
    clock: Clock,
}

const ROOT: Ino = 1;

impl MemFs {
    /// An empty filesystem holding at most `capacity` bytes.
    pub fn new(capacity: u64, clock: Clock) -> Self {
        let now = clock();
        let mut nodes = BTreeMap::new();
        nodes.insert(
            ROOT,
            Node { data: Data::Dir(BTreeMap::new()), nlink: 2, open: 0, atime: now, mtime: now, ctime: now },
        );
        MemFs { inner: Mutex::new(Inner { nodes, next: ROOT + 1, used: NODE_COST }), capacity, clock }
    }
}

fn not_file(kind: FileType) -> Error {
    if kind == FileType::Dir {
        Error::IsADirectory
    } else {
        Error::InvalidArgument
    }
}

impl Inner {
    fn node(&self, ino: Ino) -> Result<&Node> {
        self.nodes.get(&ino).ok_or(Error::Stale)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Node> {
        self.nodes.get_mut(&ino).ok_or(Error::Stale)
    }

    fn dir(&self, ino: Ino) -> Result<&BTreeMap<String, Ino>> {
        match &self.node(ino)?.data {
            Data::Dir(m) => Ok(m),
            _ => Err(Error::NotADirectory),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut BTreeMap<String, Ino>> {
        match &mut self.node_mut(ino)?.data {
            Data::Dir(m) => Ok(m),
            _ => Err(Error::NotADirectory),
        }
    }

    /// Frees a node once it has no names and no open handles.
    fn maybe_free(&mut self, ino: Ino) {
        let dead = self.nodes.get(&ino).is_some_and(|n| n.nlink == 0 && n.open == 0);
        if dead {
            if let Some(n) = self.nodes.remove(&ino) {
                self.used = self.used.saturating_sub(n.cost());
            }
        }
    }

    fn touch_dir(&mut self, dir: Ino, now: u64) {
        if let Ok(n) = self.node_mut(dir) {
            n.mtime = now;
            n.ctime = now;
        }
    }

    /// Resizes a file's data to `new` bytes, charging the difference against `capacity`.
    fn resize(&mut self, ino: Ino, new: u64, capacity: u64) -> Result<&mut Vec<u8>> {
        let used = self.used;
        let n = self.node_mut(ino)?;
        let kind = n.kind();
        let Data::File(v) = &mut n.data else {
            return Err(not_file(kind));
        };
        let old = v.len() as u64;
        if new > old && used.saturating_add(new - old) > capacity {
            return Err(Error::NoSpace);
        }
        let new_us = usize::try_from(new).map_err(|_| Error::FileTooLarge)?;
        if new_us > v.len() {
            v.try_reserve(new_us - v.len()).map_err(|_| Error::NoSpace)?;
        }
        v.resize(new_us, 0);
        if new_us < v.capacity() / 2 {
            v.shrink_to_fit();
        }
        self.used = if new >= old { used + (new - old) } else { used - (old - new) };
        match &mut self.node_mut(ino)?.data {
            Data::File(v) => Ok(v),
            _ => Err(Error::Io),
        }
    }
}

impl FileSystem for MemFs {
    fn root(&self) -> Ino {
        ROOT
    }

    fn lookup(&self, dir: Ino, name: &str) -> Result<Ino> {
        let g = self.inner.lock();
        g.dir(dir)?.get(name).copied().ok_or(Error::NotFound)
    }

    fn stat(&self, ino: Ino) -> Result<Stat> {
        let g = self.inner.lock();
        let n = g.node(ino)?;
        Ok(Stat {
            dev: 0,
            ino,
            kind: n.kind(),
            size: n.size(),
            nlink: n.nlink,
            atime: n.atime,
            mtime: n.mtime,
            ctime: n.ctime,
        })
    }

    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let g = self.inner.lock();
        let n = g.node(ino)?;
        let Data::File(v) = &n.data else {
            return Err(not_file(n.kind()));
        };
        let Ok(off) = usize::try_from(offset) else {
            return Ok(0);
        };
        if off >= v.len() {
            return Ok(0);
        }
        let k = buf.len().min(v.len() - off);
        buf[..k].copy_from_slice(&v[off..off + k]);
        Ok(k)
    }

    fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize> {
        let now = (self.clock)();
        let mut g = self.inner.lock();
        let end = offset.checked_add(data.len() as u64).ok_or(Error::FileTooLarge)?;
        let cur = g.node(ino)?.size();
        let kind = g.node(ino)?.kind();
        if kind != FileType::File {
            return Err(not_file(kind));
        }
        let v = g.resize(ino, end.max(cur), self.capacity)?;
        let off = usize::try_from(offset).map_err(|_| Error::FileTooLarge)?;
        v[off..off + data.len()].copy_from_slice(data);
        let n = g.node_mut(ino)?;
        n.mtime = now;
        n.ctime = now;
        Ok(data.len())
    }

    fn set_size(&self, ino: Ino, size: u64) -> Result<()> {
        let now = (self.clock)();
        let mut g = self.inner.lock();
        g.resize(ino, size, self.capacity)?;
        let n = g.node_mut(ino)?;
        n.mtime = now;
        n.ctime = now;
        Ok(())
    }

    fn readdir(&self, dir: Ino) -> Result<Vec<DirEntry>> {
        let g = self.inner.lock();
        let m = g.dir(dir)?;
        let mut out = Vec::with_capacity(m.len());
        for (name, &ino) in m {
            let kind = g.node(ino).map(Node::kind).unwrap_or(FileType::File);
            out.push(DirEntry { name: name.clone(), ino, kind });
        }
        Ok(out)
    }

    fn create(&self, dir: Ino, name: &str, node: NewNode) -> Result<Ino> {
        check_name(name)?;
        let now = (self.clock)();
        let mut g = self.inner.lock();
        if g.dir(dir)?.contains_key(name) {
            return Err(Error::AlreadyExists);
        }
        let (data, nlink) = match node {
            NewNode::File => (Data::File(Vec::new()), 1),
            NewNode::Dir => (Data::Dir(BTreeMap::new()), 2),
            NewNode::Symlink(t) => (Data::Symlink(t), 1),
        };
        let node = Node { data, nlink, open: 0, atime: now, mtime: now, ctime: now };
        let cost = node.cost();
        if g.used.saturating_add(cost) > self.capacity {
            return Err(Error::NoSpace);
        }
        let ino = g.next;
        g.next += 1;
        g.nodes.insert(ino, node);
        g.used += cost;
        g.dir_mut(dir)?.insert(String::from(name), ino);
        g.touch_dir(dir, now);
        Ok(ino)
    }

    fn link(&self, ino: Ino, dir: Ino, name: &str) -> Result<()> {
        check_name(name)?;
        let now = (self.clock)();
        let mut g = self.inner.lock();
        if g.node(ino)?.kind() == FileType::Dir {
            return Err(Error::PermissionDenied);
        }
        if g.dir(dir)?.contains_key(name) {
            return Err(Error::AlreadyExists);
        }
        g.dir_mut(dir)?.insert(String::from(name), ino);
        let n = g.node_mut(ino)?;
        n.nlink += 1;
        n.ctime = now;
        g.touch_dir(dir, now);
        Ok(())
    }

    fn unlink(&self, dir: Ino, name: &str) -> Result<()> {
        let now = (self.clock)();
        let mut g = self.inner.lock();
        let ino = *g.dir(dir)?.get(name).ok_or(Error::NotFound)?;
        if g.node(ino)?.kind() == FileType::Dir {
            return Err(Error::IsADirectory);
        }
        g.dir_mut(dir)?.remove(name);
        let n = g.node_mut(ino)?;
        n.nlink = n.nlink.saturating_sub(1);
        n.ctime = now;
        g.touch_dir(dir, now);
        g.maybe_free(ino);
        Ok(())
    }

    fn rmdir(&self, dir: Ino, name: &str) -> Result<()> {
        let now = (self.clock)();
        let mut g = self.inner.lock();
        let ino = *g.dir(dir)?.get(name).ok_or(Error::NotFound)?;
        if !g.dir(ino)?.is_empty() {
            return Err(Error::NotEmpty);
        }
        g.dir_mut(dir)?.remove(name);
        g.node_mut(ino)?.nlink = 0;
        g.touch_dir(dir, now);
        g.maybe_free(ino);
        Ok(())
    }

    fn rename(&self, from_dir: Ino, from: &str, to_dir: Ino, to: &str) -> Result<()> {
        check_name(to)?;
        let now = (self.clock)();
        let mut g = self.inner.lock();
        let src = *g.dir(from_dir)?.get(from).ok_or(Error::NotFound)?;
        let src_kind = g.node(src)?.kind();
        if let Some(&dst) = g.dir(to_dir)?.get(to) {
            if dst == src {
                return Ok(());
            }
            let dst_kind = g.node(dst)?.kind();
            match (src_kind == FileType::Dir, dst_kind == FileType::Dir) {
                (true, false) => return Err(Error::NotADirectory),
                (false, true) => return Err(Error::IsADirectory),
                (true, true) if !g.dir(dst)?.is_empty() => return Err(Error::NotEmpty),
                _ => {}
            }
            g.dir_mut(to_dir)?.remove(to);
            let n = g.node_mut(dst)?;
            n.nlink = if dst_kind == FileType::Dir { 0 } else { n.nlink.saturating_sub(1) };
            g.maybe_free(dst);
        }
        g.dir_mut(from_dir)?.remove(from);
        g.dir_mut(to_dir)?.insert(String::from(to), src);
        g.node_mut(src)?.ctime = now;
        g.touch_dir(from_dir, now);
        g.touch_dir(to_dir, now);
        Ok(())
    }

    fn readlink(&self, ino: Ino) -> Result<String> {
        let g = self.inner.lock();
        match &g.node(ino)?.data {
            Data::Symlink(t) => Ok(t.clone()),
            _ => Err(Error::InvalidArgument),
        }
    }

    fn set_times(&self, ino: Ino, atime: Option<u64>, mtime: Option<u64>) -> Result<()> {
        let now = (self.clock)();
        let mut g = self.inner.lock();
        let n = g.node_mut(ino)?;
        if let Some(a) = atime {
            n.atime = a;
        }
        if let Some(m) = mtime {
            n.mtime = m;
        }
        n.ctime = now;
        Ok(())
    }

    fn info(&self) -> FsInfo {
        let g = self.inner.lock();
        FsInfo { kind: "memfs", total_bytes: self.capacity, used_bytes: g.used, readonly: false }
    }

    fn retain(&self, ino: Ino) {
        if let Some(n) = self.inner.lock().nodes.get_mut(&ino) {
            n.open += 1;
        }
    }

    fn release(&self, ino: Ino) {
        let mut g = self.inner.lock();
        if let Some(n) = g.nodes.get_mut(&ino) {
            n.open = n.open.saturating_sub(1);
        }
        g.maybe_free(ino);
    }
}
