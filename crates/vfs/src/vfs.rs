//! The namespace: a mount table over filesystems, path walking (symlinks, mount points, and a
//! confined mode for sandboxes), and open-file handles.
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

use crate::error::{Error, Result};
use crate::fs::{DirEntry, FileSystem, FileType, FsInfo, Ino, NewNode, Stat};
use crate::path::{check_name, MAX_PATH};

/// Symlinks followed in one lookup before giving up.
pub const MAX_SYMLINKS: usize = 40;

/// A resolved node: which filesystem, which inode, and its real (symlink-free) absolute path.
#[derive(Clone)]
pub struct Node {
    pub fs: Arc<dyn FileSystem>,
    pub ino: Ino,
    pub dev: u64,
    pub path: String,
}

impl Node {
    /// Metadata, with the device number filled in.
    pub fn stat(&self) -> Result<Stat> {
        let mut s = self.fs.stat(self.ino)?;
        s.dev = self.dev;
        Ok(s)
    }
}

struct Mount {
    path: String,
    fs: Arc<dyn FileSystem>,
    dev: u64,
}

/// How to resolve a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// Follow a symlink in the last component.
    pub follow: bool,
    /// Stay below the base directory: `..` past it or an absolute path/symlink is [`Error::Escape`].
    pub confine: bool,
}

impl Lookup {
    /// Follow symlinks, not confined (the shell).
    pub const FOLLOW: Lookup = Lookup { follow: true, confine: false };
    /// Do not follow a final symlink, not confined.
    pub const NOFOLLOW: Lookup = Lookup { follow: false, confine: false };
}

/// How to open a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    pub read: bool,
    pub write: bool,
    pub append: bool,
    pub create: bool,
    pub exclusive: bool,
    pub truncate: bool,
    /// Fail unless the node is a directory.
    pub directory: bool,
    /// Do not follow a final symlink.
    pub nofollow: bool,
}

impl OpenOptions {
    /// Read only.
    pub fn read() -> Self {
        OpenOptions { read: true, ..Default::default() }
    }
    /// Write, create, truncate (`>`).
    pub fn write_new() -> Self {
        OpenOptions { write: true, create: true, truncate: true, ..Default::default() }
    }
    /// Write, create, append (`>>`).
    pub fn append() -> Self {
        OpenOptions { write: true, create: true, append: true, ..Default::default() }
    }
}

/// Where `seek` counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeekFrom {
    Start(u64),
    Current(i64),
    End(i64),
}

/// The mount table and everything path-based.
pub struct Vfs {
    mounts: Mutex<Vec<Mount>>,
}

fn join(dir: &str, name: &str) -> String {
    let mut s = String::from(dir);
    if !s.ends_with('/') {
        s.push('/');
    }
    s.push_str(name);
    s
}

/// A walk in progress: the directories entered (each with the length its path has in `path`)
/// and the real path of the last one, grown and cut in place.
struct Walk {
    stack: Vec<Step>,
    path: String,
}

struct Step {
    fs: Arc<dyn FileSystem>,
    ino: Ino,
    dev: u64,
    path_len: usize,
}

impl Walk {
    fn pop(&mut self) {
        self.stack.pop();
        let len = self.stack.last().map_or(1, |s| s.path_len);
        self.path.truncate(len);
    }
}

fn components(path: &str) -> VecDeque<String> {
    path.split('/').filter(|c| !c.is_empty()).map(String::from).collect()
}

impl Vfs {
    /// A namespace with `root` mounted at `/`.
    pub fn new(root: Arc<dyn FileSystem>) -> Vfs {
        Vfs { mounts: Mutex::new(alloc::vec![Mount { path: String::from("/"), fs: root, dev: 1 }]) }
    }

    /// Mounts `fs` at the absolute `path`, creating the directory in the parent filesystem if it
    /// does not exist (a read-only parent needs it to exist already).
    pub fn mount(&self, path: &str, fs: Arc<dyn FileSystem>) -> Result<()> {
        let path = crate::path::normalize(path)?;
        if self.mounts.lock().iter().any(|m| m.path == path) {
            return Err(Error::Busy);
        }
        match self.resolve("/", &path, Lookup::FOLLOW) {
            Ok(n) if n.stat()?.kind == FileType::Dir => {}
            Ok(_) => return Err(Error::NotADirectory),
            Err(Error::NotFound) => self.mkdir_all("/", &path)?,
            Err(e) => return Err(e),
        }
        let mut mounts = self.mounts.lock();
        let dev = mounts.iter().map(|m| m.dev).max().unwrap_or(0) + 1;
        mounts.push(Mount { path, fs, dev });
        Ok(())
    }

    /// The mounted filesystems: (mount point, usage), sorted by path.
    pub fn mounts(&self) -> Vec<(String, FsInfo)> {
        let mut v: Vec<(String, FsInfo)> = self.mounts.lock().iter().map(|m| (m.path.clone(), m.fs.info())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Unmounts the filesystem mounted at `path` and hands it back: refused (`Busy`) for `/`,
    /// while something is mounted below it, or while it has open handles.
    pub fn unmount(&self, path: &str) -> Result<Arc<dyn FileSystem>> {
        let path = crate::path::normalize(path)?;
        let mut mounts = self.mounts.lock();
        let i = mounts.iter().position(|m| m.path == path).ok_or(Error::InvalidArgument)?;
        let below = alloc::format!("{}/", path.trim_end_matches('/'));
        if i == 0 || mounts.iter().any(|m| m.path.starts_with(&below)) || mounts[i].fs.busy() {
            return Err(Error::Busy);
        }
        Ok(mounts.remove(i).fs)
    }

    /// Syncs every mounted filesystem; returns the mount points that failed, with why.
    pub fn sync_all(&self) -> Vec<(String, Error)> {
        let all: Vec<(String, Arc<dyn FileSystem>)> =
            self.mounts.lock().iter().map(|m| (m.path.clone(), m.fs.clone())).collect();
        all.into_iter().filter_map(|(p, fs)| fs.sync(None).err().map(|e| (p, e))).collect()
    }

    fn mount_at(&self, path: &str) -> Option<(Arc<dyn FileSystem>, u64)> {
        self.mounts.lock().iter().find(|m| m.path == path).map(|m| (m.fs.clone(), m.dev))
    }

    fn is_mount_point(&self, path: &str) -> bool {
        self.mounts.lock().iter().any(|m| m.path == path)
    }

    fn root_step(&self) -> Step {
        let m = self.mounts.lock();
        let r = &m[0];
        Step { fs: r.fs.clone(), ino: r.fs.root(), dev: r.dev, path_len: 1 }
    }

    /// Walks `path` (relative to the real absolute directory `base`, or absolute).
    pub fn resolve(&self, base: &str, path: &str, how: Lookup) -> Result<Node> {
        self.resolve_or_create(base, path, how, false)
    }

    /// [`Vfs::resolve`], creating missing directories on the way when `create_dirs` is set.
    /// Linear in the length of the path: one name lookup per component, one growing path buffer.
    fn resolve_or_create(&self, base: &str, path: &str, how: Lookup, create_dirs: bool) -> Result<Node> {
        if path.len() > MAX_PATH || base.len() > MAX_PATH {
            return Err(Error::NameTooLong);
        }
        if path.contains('\0') {
            return Err(Error::InvalidPath);
        }
        if path.starts_with('/') && how.confine {
            return Err(Error::Escape);
        }
        let mut w = Walk { stack: alloc::vec![self.root_step()], path: String::from("/") };
        // The base directory's own chain of nodes (its path is real: no symlinks to follow).
        // An absolute path does not need it (the base may even be gone).
        if !path.starts_with('/') {
            let mut pending = components(base);
            self.walk(&mut w, &mut pending, 1, Lookup::FOLLOW, &mut 0, false)?;
        }
        let floor = if how.confine { w.stack.len() } else { 1 };
        let mut pending = components(path);
        let mut links = 0;
        self.walk(&mut w, &mut pending, floor, how, &mut links, create_dirs)?;
        let top = w.stack.pop().ok_or(Error::Io)?;
        let node = Node { fs: top.fs, ino: top.ino, dev: top.dev, path: w.path };
        if path.ends_with('/') && node.stat()?.kind != FileType::Dir {
            return Err(Error::NotADirectory);
        }
        Ok(node)
    }

    fn walk(
        &self,
        w: &mut Walk,
        pending: &mut VecDeque<String>,
        floor: usize,
        how: Lookup,
        links: &mut usize,
        create_dirs: bool,
    ) -> Result<()> {
        while let Some(comp) = pending.pop_front() {
            match comp.as_str() {
                "." => continue,
                ".." => {
                    if w.stack.len() > floor {
                        w.pop();
                    } else if how.confine {
                        return Err(Error::Escape);
                    }
                    continue;
                }
                _ => {}
            }
            let top = w.stack.last().ok_or(Error::Io)?;
            let (top_fs, top_ino, top_dev) = (top.fs.clone(), top.ino, top.dev);
            let parent_len = w.path.len();
            if !w.path.ends_with('/') {
                w.path.push('/');
            }
            w.path.push_str(&comp);
            let child = match self.mount_at(&w.path) {
                Some((fs, dev)) => {
                    // The mount point must be reachable as a directory of the parent too.
                    if top_fs.stat(top_ino)?.kind != FileType::Dir {
                        return Err(Error::NotADirectory);
                    }
                    Step { ino: fs.root(), fs, dev, path_len: w.path.len() }
                }
                None => {
                    let ino = match top_fs.lookup(top_ino, &comp) {
                        Err(Error::NotFound) if create_dirs => {
                            if top_fs.readonly() {
                                return Err(Error::ReadOnly);
                            }
                            check_name(&comp)?;
                            top_fs.create(top_ino, &comp, NewNode::Dir)?
                        }
                        r => r?,
                    };
                    Step { fs: top_fs, ino, dev: top_dev, path_len: w.path.len() }
                }
            };
            let last = pending.is_empty();
            if (!last || how.follow) && child.fs.stat(child.ino)?.kind == FileType::Symlink {
                *links += 1;
                if *links > MAX_SYMLINKS {
                    return Err(Error::Loop);
                }
                let target = child.fs.readlink(child.ino)?;
                if target.is_empty() {
                    return Err(Error::NotFound);
                }
                // The link itself is not part of the real path.
                w.path.truncate(parent_len);
                if target.starts_with('/') {
                    if how.confine {
                        return Err(Error::Escape);
                    }
                    w.stack.truncate(1);
                    w.path.truncate(1);
                }
                for c in components(&target).into_iter().rev() {
                    pending.push_front(c);
                }
                continue;
            }
            w.stack.push(child);
        }
        Ok(())
    }

    /// Resolves the directory that holds the last component of `path`, and that name.
    pub fn resolve_parent(&self, base: &str, path: &str, how: Lookup) -> Result<(Node, String)> {
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(if path.starts_with('/') { Error::Busy } else { Error::InvalidPath });
        }
        let (dir, name) = match trimmed.rsplit_once('/') {
            Some(("", n)) => ("/", n),
            Some((d, n)) => (d, n),
            None => (".", trimmed),
        };
        if name == "." || name == ".." {
            return Err(Error::InvalidPath);
        }
        check_name(name)?;
        let dir_node = self.resolve(base, dir, Lookup { follow: true, confine: how.confine })?;
        if dir_node.stat()?.kind != FileType::Dir {
            return Err(Error::NotADirectory);
        }
        Ok((dir_node, String::from(name)))
    }

    fn writable(node: &Node) -> Result<()> {
        if node.fs.readonly() {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// Opens (and with `create`, creates) a file or directory.
    pub fn open(&self, base: &str, path: &str, opts: OpenOptions, confine: bool) -> Result<Handle> {
        let how = Lookup { follow: !opts.nofollow, confine };
        let node = if opts.create {
            let (dir, name) = self.resolve_parent(base, path, how)?;
            match self.resolve(&dir.path, &name, Lookup { follow: !opts.nofollow, confine: false }) {
                Ok(_) if opts.exclusive => return Err(Error::AlreadyExists),
                Ok(n) => n,
                Err(Error::NotFound) => {
                    Self::writable(&dir)?;
                    let ino = dir.fs.create(dir.ino, &name, NewNode::File)?;
                    Node { fs: dir.fs.clone(), ino, dev: dir.dev, path: join(&dir.path, &name) }
                }
                Err(e) => return Err(e),
            }
        } else {
            self.resolve(base, path, how)?
        };
        let kind = node.stat()?.kind;
        if kind == FileType::Symlink && opts.nofollow && (opts.read || opts.write) {
            return Err(Error::Loop);
        }
        if opts.directory && kind != FileType::Dir {
            return Err(Error::NotADirectory);
        }
        let write = opts.write || opts.append;
        if write {
            if kind == FileType::Dir {
                return Err(Error::IsADirectory);
            }
            Self::writable(&node)?;
        }
        if opts.truncate {
            if !write {
                return Err(Error::InvalidArgument);
            }
            node.fs.set_size(node.ino, 0)?;
        }
        node.fs.retain(node.ino);
        Ok(Handle { node, pos: 0, read: opts.read, write, append: opts.append })
    }

    /// Metadata of a path.
    pub fn stat(&self, base: &str, path: &str, how: Lookup) -> Result<Stat> {
        self.resolve(base, path, how)?.stat()
    }

    /// Creates a directory.
    pub fn mkdir(&self, base: &str, path: &str, confine: bool) -> Result<()> {
        let (dir, name) = self.resolve_parent(base, path, Lookup { follow: true, confine })?;
        if self.is_mount_point(&join(&dir.path, &name)) {
            return Err(Error::AlreadyExists);
        }
        Self::writable(&dir)?;
        dir.fs.create(dir.ino, &name, NewNode::Dir).map(|_| ())
    }

    /// Creates a directory and its missing parents (`mkdir -p`), in one walk.
    pub fn mkdir_all(&self, base: &str, path: &str) -> Result<()> {
        let abs = crate::path::normalize(&crate::path::join(base, path))?;
        let node = self.resolve_or_create("/", &abs, Lookup::FOLLOW, true)?;
        if node.stat()?.kind != FileType::Dir {
            return Err(Error::NotADirectory);
        }
        Ok(())
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, base: &str, path: &str, confine: bool) -> Result<()> {
        let (dir, name) = self.resolve_parent(base, path, Lookup { follow: true, confine })?;
        let target = join(&dir.path, &name);
        if self.is_mount_point(&target) {
            return Err(Error::Busy);
        }
        let node = self.resolve(&dir.path, &name, Lookup::NOFOLLOW)?;
        if node.stat()?.kind != FileType::Dir {
            return Err(Error::NotADirectory);
        }
        Self::writable(&dir)?;
        dir.fs.rmdir(dir.ino, &name)
    }

    /// Removes a file or symlink.
    pub fn unlink(&self, base: &str, path: &str, confine: bool) -> Result<()> {
        let (dir, name) = self.resolve_parent(base, path, Lookup { follow: true, confine })?;
        if self.is_mount_point(&join(&dir.path, &name)) {
            return Err(Error::IsADirectory);
        }
        let node = self.resolve(&dir.path, &name, Lookup::NOFOLLOW)?;
        if node.stat()?.kind == FileType::Dir {
            return Err(Error::IsADirectory);
        }
        Self::writable(&dir)?;
        dir.fs.unlink(dir.ino, &name)
    }

    /// Moves `from` to `to` (both relative to their bases).
    pub fn rename(&self, from_base: &str, from: &str, to_base: &str, to: &str, confine: bool) -> Result<()> {
        let how = Lookup { follow: true, confine };
        let (fdir, fname) = self.resolve_parent(from_base, from, how)?;
        let (tdir, tname) = self.resolve_parent(to_base, to, how)?;
        let src_path = join(&fdir.path, &fname);
        let dst_path = join(&tdir.path, &tname);
        if self.is_mount_point(&src_path) || self.is_mount_point(&dst_path) {
            return Err(Error::Busy);
        }
        let src = self.resolve(&fdir.path, &fname, Lookup::NOFOLLOW)?;
        if fdir.dev != tdir.dev {
            return Err(Error::CrossDevice);
        }
        if src.stat()?.kind == FileType::Dir && dst_path.starts_with(&join(&src_path, "")) {
            return Err(Error::InvalidArgument);
        }
        Self::writable(&fdir)?;
        fdir.fs.rename(fdir.ino, &fname, tdir.ino, &tname)
    }

    /// Creates a symlink at `path` pointing to `target` (stored as given).
    pub fn symlink(&self, target: &str, base: &str, path: &str, confine: bool) -> Result<()> {
        if target.is_empty() || target.contains('\0') || target.len() > MAX_PATH {
            return Err(Error::InvalidPath);
        }
        let (dir, name) = self.resolve_parent(base, path, Lookup { follow: true, confine })?;
        if confine && !Self::target_stays_inside(base, &dir.path, target) {
            // A sandboxed program may not plant a link that points outside its directory (on a
            // shared host folder the host would follow it): as wasmtime, refuse it.
            return Err(Error::PermissionDenied);
        }
        Self::writable(&dir)?;
        dir.fs.create(dir.ino, &name, NewNode::Symlink(String::from(target))).map(|_| ())
    }

    /// True when `target`, read from the directory `link_dir` (a real path at or below `base`),
    /// is relative and never climbs above `base`.
    fn target_stays_inside(base: &str, link_dir: &str, target: &str) -> bool {
        if target.starts_with('/') {
            return false;
        }
        let names = |p: &str| p.split('/').filter(|c| !c.is_empty()).count();
        let below = if link_dir.starts_with(base) { names(link_dir).saturating_sub(names(base)) } else { 0 };
        let mut depth = below as isize;
        for c in target.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    depth -= 1;
                    if depth < 0 {
                        return false;
                    }
                }
                _ => depth += 1,
            }
        }
        true
    }

    /// Creates a hard link `new` to the existing `old`.
    pub fn link(
        &self,
        old_base: &str,
        old: &str,
        follow: bool,
        new_base: &str,
        new: &str,
        confine: bool,
    ) -> Result<()> {
        let src = self.resolve(old_base, old, Lookup { follow, confine })?;
        let (dir, name) = self.resolve_parent(new_base, new, Lookup { follow: true, confine })?;
        if src.dev != dir.dev {
            return Err(Error::CrossDevice);
        }
        Self::writable(&dir)?;
        dir.fs.link(src.ino, dir.ino, &name)
    }

    /// The target of a symlink.
    pub fn readlink(&self, base: &str, path: &str, confine: bool) -> Result<String> {
        let n = self.resolve(base, path, Lookup { follow: false, confine })?;
        n.fs.readlink(n.ino)
    }

    /// The entries of a directory.
    pub fn readdir(&self, base: &str, path: &str, confine: bool) -> Result<Vec<DirEntry>> {
        let n = self.resolve(base, path, Lookup { follow: true, confine })?;
        n.fs.readdir(n.ino)
    }

    /// The entry `name` (one name) of the directory `dir`, not following a final symlink. Costs
    /// one lookup, where a walk from `/` costs the directory's depth: tree walks (`rm -r`, `cp -r`)
    /// go from node to node. A mount point gives the mounted filesystem's root.
    pub fn child(&self, dir: &Node, name: &str) -> Result<Node> {
        check_name(name)?;
        let path = join(&dir.path, name);
        if path.len() > MAX_PATH {
            return Err(Error::NameTooLong);
        }
        if let Some((fs, dev)) = self.mount_at(&path) {
            return Ok(Node { ino: fs.root(), fs, dev, path });
        }
        let ino = dir.fs.lookup(dir.ino, name)?;
        Ok(Node { fs: dir.fs.clone(), ino, dev: dir.dev, path })
    }

    /// Removes the entry `name` of `dir`: a file, a link or an empty directory.
    pub fn remove_child(&self, dir: &Node, name: &str) -> Result<()> {
        let node = self.child(dir, name)?;
        if self.is_mount_point(&node.path) {
            return Err(Error::Busy);
        }
        Self::writable(dir)?;
        if node.stat()?.kind == FileType::Dir {
            dir.fs.rmdir(dir.ino, name)
        } else {
            dir.fs.unlink(dir.ino, name)
        }
    }

    /// Makes the directory `name` in `dir`, or finds it there.
    pub fn mkdir_child(&self, dir: &Node, name: &str) -> Result<Node> {
        match self.child(dir, name) {
            Ok(n) if n.stat()?.kind == FileType::Dir => Ok(n),
            Ok(_) => Err(Error::AlreadyExists),
            Err(Error::NotFound) => {
                Self::writable(dir)?;
                let ino = dir.fs.create(dir.ino, name, NewNode::Dir)?;
                Ok(Node { fs: dir.fs.clone(), ino, dev: dir.dev, path: join(&dir.path, name) })
            }
            Err(e) => Err(e),
        }
    }

    /// Sets times (None leaves one unchanged).
    pub fn set_times(&self, base: &str, path: &str, how: Lookup, atime: Option<u64>, mtime: Option<u64>) -> Result<()> {
        let n = self.resolve(base, path, how)?;
        Self::writable(&n)?;
        n.fs.set_times(n.ino, atime, mtime)
    }
}

/// An open file or directory with its own position.
pub struct Handle {
    node: Node,
    pos: u64,
    read: bool,
    write: bool,
    append: bool,
}

impl Clone for Handle {
    fn clone(&self) -> Self {
        self.node.fs.retain(self.node.ino);
        Handle { node: self.node.clone(), pos: self.pos, read: self.read, write: self.write, append: self.append }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.node.fs.release(self.node.ino);
    }
}

impl Handle {
    /// The node this handle refers to.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Opened for reading.
    pub fn readable(&self) -> bool {
        self.read
    }

    /// Opened for writing.
    pub fn writable(&self) -> bool {
        self.write
    }

    /// Opened in append mode.
    pub fn is_append(&self) -> bool {
        self.append
    }

    /// Switches append mode (WASI fd_fdstat_set_flags).
    pub fn set_append(&mut self, append: bool) {
        self.append = append;
    }

    /// Reads at the current position and advances it.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = self.pread(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }

    /// Reads at `offset` without moving the position.
    pub fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        if !self.read {
            return Err(Error::BadHandle);
        }
        self.node.fs.read(self.node.ino, offset, buf)
    }

    /// Writes at the current position (at the end in append mode) and advances it.
    pub fn write(&mut self, data: &[u8]) -> Result<usize> {
        if !self.write {
            return Err(Error::BadHandle);
        }
        if self.append {
            self.pos = self.node.fs.stat(self.node.ino)?.size;
        }
        let n = self.node.fs.write(self.node.ino, self.pos, data)?;
        self.pos += n as u64;
        Ok(n)
    }

    /// Writes at `offset` without moving the position.
    pub fn pwrite(&self, data: &[u8], offset: u64) -> Result<usize> {
        if !self.write {
            return Err(Error::BadHandle);
        }
        self.node.fs.write(self.node.ino, offset, data)
    }

    /// Moves the position; returns the new one.
    pub fn seek(&mut self, to: SeekFrom) -> Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.node.fs.stat(self.node.ino)?.size.checked_add_signed(d),
        };
        let new = new.filter(|&p| p <= i64::MAX as u64).ok_or(Error::InvalidArgument)?;
        self.pos = new;
        Ok(new)
    }

    /// The current position.
    pub fn tell(&self) -> u64 {
        self.pos
    }

    /// Metadata.
    pub fn stat(&self) -> Result<Stat> {
        self.node.stat()
    }

    /// Truncates or extends the file.
    pub fn set_size(&self, size: u64) -> Result<()> {
        if !self.write {
            return Err(Error::BadHandle);
        }
        self.node.fs.set_size(self.node.ino, size)
    }

    /// Directory entries (for a directory handle).
    pub fn readdir(&self) -> Result<Vec<DirEntry>> {
        self.node.fs.readdir(self.node.ino)
    }

    /// Sets times.
    pub fn set_times(&self, atime: Option<u64>, mtime: Option<u64>) -> Result<()> {
        self.node.fs.set_times(self.node.ino, atime, mtime)
    }

    /// Makes the file's data durable (`fsync`).
    pub fn sync(&self) -> Result<()> {
        self.node.fs.sync(Some(self.node.ino))
    }
}
