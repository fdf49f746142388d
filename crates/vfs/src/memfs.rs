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

/// A file's bytes in chunks of [`CHUNK`] (the last one only as long as needed): a large file
/// never needs one large contiguous block, and growing it never copies what it holds.
#[derive(Default)]
struct Chunks {
    chunks: Vec<Vec<u8>>,
    len: usize,
}

/// Bytes per chunk of file data.
const CHUNK: usize = 256 * 1024;

impl Chunks {
    fn len(&self) -> usize {
        self.len
    }

    /// Copies bytes from `off` into `buf`; returns how many.
    fn read(&self, off: usize, buf: &mut [u8]) -> usize {
        if off >= self.len {
            return 0;
        }
        let k = buf.len().min(self.len - off);
        let mut done = 0;
        while done < k {
            let pos = off + done;
            let (c, at) = (pos / CHUNK, pos % CHUNK);
            let n = (k - done).min(CHUNK - at);
            buf[done..done + n].copy_from_slice(&self.chunks[c][at..at + n]);
            done += n;
        }
        k
    }

    /// Copies `data` in at `off` (the file must already be that long).
    fn write(&mut self, off: usize, data: &[u8]) {
        let mut done = 0;
        while done < data.len() {
            let pos = off + done;
            let (c, at) = (pos / CHUNK, pos % CHUNK);
            let n = (data.len() - done).min(CHUNK - at);
            self.chunks[c][at..at + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
    }

    /// Grows (with zeros) or cuts the file to `new` bytes; NoSpace if memory runs out.
    fn resize(&mut self, new: usize) -> Result<()> {
        let want = new.div_ceil(CHUNK);
        if new > self.len {
            self.chunks.try_reserve(want.saturating_sub(self.chunks.len())).map_err(|_| Error::NoSpace)?;
        }
        self.chunks.truncate(want);
        while self.chunks.len() < want {
            self.chunks.push(Vec::new());
        }
        // Chunks before the shorter length's last one are full and stay so.
        let first = self.len.min(new) / CHUNK;
        for (i, c) in self.chunks.iter_mut().enumerate().skip(first) {
            let len = if i + 1 == want { new - i * CHUNK } else { CHUNK };
            if c.len() != len {
                if len > c.capacity() {
                    // Doubling up to a whole chunk: appends in small writes copy each chunk a
                    // few times, not once per write.
                    let cap = len.max(c.capacity().saturating_mul(2)).min(CHUNK);
                    c.try_reserve_exact(cap - c.len()).map_err(|_| Error::NoSpace)?;
                }
                c.resize(len, 0);
                if len < c.capacity() / 2 {
                    c.shrink_to_fit();
                }
            }
        }
        if want < self.chunks.capacity() / 2 {
            self.chunks.shrink_to_fit();
        }
        self.len = new;
        Ok(())
    }
}

enum Data {
    File(Chunks),
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
    fn resize(&mut self, ino: Ino, new: u64, capacity: u64) -> Result<&mut Chunks> {
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
        v.resize(new_us)?;
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
        Ok(v.read(off, buf))
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
        v.write(off, data);
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
            NewNode::File => (Data::File(Chunks::default()), 1),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks against a plain Vec: random writes, reads and resizes across chunk borders.
    #[test]
    fn chunks_behave_like_one_buffer() {
        let mut c = Chunks::default();
        let mut v: Vec<u8> = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % m as u64) as usize
        };
        for step in 0..2000 {
            match next(4) {
                0 => {
                    let new = next(5 * CHUNK);
                    c.resize(new).unwrap();
                    v.resize(new, 0);
                }
                1 | 2 => {
                    let off = next(4 * CHUNK);
                    let len = next(2 * CHUNK);
                    let data: Vec<u8> = (0..len).map(|i| (i + step) as u8).collect();
                    let end = off + len;
                    if end > c.len() {
                        c.resize(end).unwrap();
                        v.resize(end, 0);
                    }
                    c.write(off, &data);
                    v[off..end].copy_from_slice(&data);
                }
                _ => {
                    let off = next(5 * CHUNK);
                    let mut a = alloc::vec![0u8; next(3 * CHUNK)];
                    let n = c.read(off, &mut a);
                    let want = if off >= v.len() { &[][..] } else { &v[off..(off + a.len()).min(v.len())] };
                    assert_eq!(&a[..n], want, "step {step}");
                }
            }
            assert_eq!(c.len(), v.len());
            assert_eq!(c.chunks.len(), v.len().div_ceil(CHUNK));
            assert!(c.chunks.iter().rev().skip(1).all(|k| k.len() == CHUNK));
            assert!(c.chunks.iter().all(|k| k.capacity() <= CHUNK), "no chunk holds more than CHUNK");
        }
    }
}
