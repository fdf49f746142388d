//! Paths of any depth cost time linear in their length: one name lookup per component, counted
//! through a filesystem that forwards to a memory filesystem.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use keel_vfs::{DirEntry, Error, FileSystem, FileType, FsInfo, Ino, Lookup, MemFs, NewNode, Result, Stat, Vfs};

struct Counting {
    inner: MemFs,
    lookups: AtomicUsize,
    creates: AtomicUsize,
}

impl FileSystem for Counting {
    fn root(&self) -> Ino {
        self.inner.root()
    }
    fn lookup(&self, dir: Ino, name: &str) -> Result<Ino> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        self.inner.lookup(dir, name)
    }
    fn stat(&self, ino: Ino) -> Result<Stat> {
        self.inner.stat(ino)
    }
    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.inner.read(ino, offset, buf)
    }
    fn readdir(&self, dir: Ino) -> Result<Vec<DirEntry>> {
        self.inner.readdir(dir)
    }
    fn create(&self, dir: Ino, name: &str, node: NewNode) -> Result<Ino> {
        self.creates.fetch_add(1, Ordering::Relaxed);
        self.inner.create(dir, name, node)
    }
    fn readlink(&self, ino: Ino) -> Result<String> {
        self.inner.readlink(ino)
    }
    fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize> {
        self.inner.write(ino, offset, data)
    }
    fn set_size(&self, ino: Ino, size: u64) -> Result<()> {
        self.inner.set_size(ino, size)
    }
    fn readonly(&self) -> bool {
        self.inner.readonly()
    }
    fn retain(&self, ino: Ino) {
        self.inner.retain(ino)
    }
    fn release(&self, ino: Ino) {
        self.inner.release(ino)
    }
    fn info(&self) -> FsInfo {
        self.inner.info()
    }
}

fn setup() -> (Vfs, Arc<Counting>) {
    let fs = Arc::new(Counting { inner: MemFs::new(1 << 30, || 0), lookups: 0.into(), creates: 0.into() });
    (Vfs::new(fs.clone()), fs)
}

fn counts(fs: &Counting) -> (usize, usize) {
    (fs.lookups.swap(0, Ordering::Relaxed), fs.creates.swap(0, Ordering::Relaxed))
}

/// A 4 KB path of 2000 components (as in the issue: `/tmp/d/d/...`).
fn deep(n: usize) -> String {
    format!("/t{}", "/d".repeat(n - 1))
}

#[test]
fn deep_paths_take_one_lookup_per_component() {
    let (vfs, fs) = setup();
    let p = deep(2000);
    assert!(p.len() < 4096);
    vfs.mkdir_all("/", &p).unwrap();
    assert_eq!(counts(&fs), (2000, 2000), "mkdir -p: one lookup and one create per component");
    vfs.mkdir_all("/", &p).unwrap();
    assert_eq!(counts(&fs), (2000, 0), "mkdir -p of an existing path creates nothing");
    assert_eq!(vfs.stat("/", &p, Lookup::FOLLOW).unwrap().kind, FileType::Dir);
    assert_eq!(counts(&fs).0, 2000);
    // Doubled slashes and dots change nothing.
    let messy = p.replacen('/', "//", 40).replacen("/d/", "/./d/", 3);
    assert!(vfs.resolve("/", &messy, Lookup::FOLLOW).unwrap().path == p, "the same real path");
    assert_eq!(counts(&fs).0, 2000);
    // Relative to a deep directory: the base's walk plus the path's.
    let n = vfs.resolve(&p, "../../d", Lookup::FOLLOW).unwrap();
    assert!(n.path == p[..p.len() - 2], "one level up from {} components", 2000);
    assert_eq!(counts(&fs).0, 2000 + 1);
}

#[test]
fn symlinks_in_deep_paths_keep_real_paths() {
    let (vfs, _) = setup();
    vfs.mkdir_all("/", "/a/b/c").unwrap();
    vfs.symlink("/a/b", "/", "/up", false).unwrap();
    vfs.symlink("../b/c", "/", "/a/b/rel", false).unwrap();
    assert_eq!(vfs.resolve("/", "/up/c", Lookup::FOLLOW).unwrap().path, "/a/b/c");
    assert_eq!(vfs.resolve("/", "/up/rel/../c", Lookup::FOLLOW).unwrap().path, "/a/b/c");
    assert_eq!(vfs.resolve("/a", "b/rel", Lookup::FOLLOW).unwrap().path, "/a/b/c");
    assert_eq!(vfs.resolve("/", "/up", Lookup::NOFOLLOW).unwrap().path, "/up");
    // mkdir -p through a link creates inside its target.
    vfs.mkdir_all("/", "/up/new/deeper").unwrap();
    assert_eq!(vfs.stat("/", "/a/b/new/deeper", Lookup::FOLLOW).unwrap().kind, FileType::Dir);
}

#[test]
fn limits_match_linux() {
    let (vfs, _) = setup();
    let long = format!("/{}", "x/".repeat(2048));
    assert!(long.len() > 4096);
    assert_eq!(vfs.mkdir_all("/", &long).unwrap_err(), Error::NameTooLong);
    assert_eq!(vfs.stat("/", &long, Lookup::FOLLOW).unwrap_err(), Error::NameTooLong);
    // A chain of 40 links resolves; 41 is a loop.
    vfs.mkdir("/", "/end", false).unwrap();
    vfs.symlink("/end", "/", "/l0", false).unwrap();
    for i in 1..=40 {
        vfs.symlink(&format!("/l{}", i - 1), "/", &format!("/l{i}"), false).unwrap();
    }
    assert_eq!(vfs.resolve("/", "/l39", Lookup::FOLLOW).unwrap().path, "/end");
    assert_eq!(vfs.resolve("/", "/l40", Lookup::FOLLOW).err(), Some(Error::Loop));
    // A file in the way of mkdir -p.
    vfs.open("/", "/end/file", keel_vfs::OpenOptions::write_new(), false).unwrap();
    assert_eq!(vfs.mkdir_all("/", "/end/file/x").unwrap_err(), Error::NotADirectory);
    assert_eq!(vfs.mkdir_all("/", "/end/file").unwrap_err(), Error::NotADirectory);
}
