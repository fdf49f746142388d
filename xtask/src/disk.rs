//! Disk images on the host: `cargo xtask disk create|ls|put|get|fsck IMAGE ...`, and the
//! `--disk FILE[:SIZE][:ro]` option of `run` (created and formatted on first use). The
//! filesystem code is keel-disk, the same crate the kernel mounts `/data` with.
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use keel_disk::{BlockDevice, IoError, MountOptions, Volume};
use keel_vfs::{FileType, Ino, NewNode};

/// Size of a disk created without one.
pub const DEFAULT_SIZE: u64 = 64 << 20;

pub const USAGE: &str = "\
usage: cargo xtask disk <command> IMAGE ...
  create IMAGE [SIZE]          a new image with an empty filesystem (default 64M)
  ls IMAGE [PATH]              list a directory (default /)
  put IMAGE HOSTPATH... DEST   copy host files or folders into directory DEST of the image
  get IMAGE PATH [HOSTDEST]    copy a file or folder out (default: into the current folder)
  cat IMAGE PATH               print a file
  fsck IMAGE                   check every directory, file and block (status 1 if damaged)
SIZE: bytes, or with K, M, G (e.g. 256M).";

/// An image file as a block device.
pub struct FileDisk {
    file: File,
    sectors: u64,
    readonly: bool,
}

impl FileDisk {
    pub fn open(path: &Path, readonly: bool) -> Result<FileDisk, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(!readonly)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let len = file.metadata().map_err(|e| format!("{}: {e}", path.display()))?.len();
        Ok(FileDisk { file, sectors: len / 512, readonly })
    }
}

impl BlockDevice for FileDisk {
    fn sectors(&self) -> u64 {
        self.sectors
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.file.read_exact_at(buf, sector * 512).map_err(|_| IoError::Device)
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), IoError> {
        self.file.write_all_at(data, sector * 512).map_err(|_| IoError::Device)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.file.sync_data().map_err(|_| IoError::Device)
    }
    fn readonly(&self) -> bool {
        self.readonly
    }
}

/// Parses a size: bytes, or with a K/M/G suffix.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mul) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .filter(|&n| n >= 64 * 1024)
        .ok_or(format!("bad size '{s}' (at least 64K; e.g. 64M, 1G)"))
}

/// Parses `FILE[:SIZE][:ro]`.
pub fn parse_spec(spec: &str) -> Result<(PathBuf, Option<u64>, bool), String> {
    let mut parts: Vec<&str> = spec.split(':').collect();
    let ro = parts.len() > 1 && parts.last() == Some(&"ro");
    if ro {
        parts.pop();
    }
    let size = if parts.len() > 1 { Some(parse_size(parts.pop().unwrap_or_default())?) } else { None };
    let file = parts.join(":");
    if file.is_empty() {
        return Err(format!("--disk {spec}: missing FILE"));
    }
    Ok((PathBuf::from(file), size, ro))
}

/// Creates a formatted image of `size` bytes (refuses to replace an existing file).
pub fn create(path: &Path, size: u64) -> Result<(), String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.set_len(size / 4096 * 4096).map_err(|e| format!("{}: {e}", path.display()))?;
    drop(file);
    let dev = FileDisk::open(path, false)?;
    keel_disk::format(dev).map_err(|f| format!("{}: {}", path.display(), f.error))?;
    Ok(())
}

/// `--disk FILE[:SIZE]`: creates and formats the image on first use.
pub fn prepare(path: &Path, size: Option<u64>) -> Result<(), String> {
    if path.exists() {
        let len = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
        if let Some(s) = size.filter(|&s| s / 4096 * 4096 != len) {
            eprintln!("xtask: {} exists ({len} bytes): the size {s} is ignored", path.display());
        }
        return Ok(());
    }
    let size = size.unwrap_or(DEFAULT_SIZE);
    create(path, size)?;
    eprintln!("xtask: created {} ({} MiB, littlefs)", path.display(), size >> 20);
    Ok(())
}

fn mount(image: &Path, readonly: bool) -> Result<Volume<FileDisk>, String> {
    let dev = FileDisk::open(image, readonly)?;
    Volume::mount(dev, MountOptions { readonly, cache_blocks: 4096, clock: now_ns, ..MountOptions::default() })
        .map_err(|f| format!("{}: {}", image.display(), f.error))
}

fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Walks `path` (absolute in the image) from the root.
fn resolve(v: &mut Volume<FileDisk>, path: &str) -> Result<Ino, String> {
    let mut ino = v.root();
    for c in path.split('/').filter(|c| !c.is_empty()) {
        ino = v.lookup(ino, c).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(ino)
}

fn mkdir_p(v: &mut Volume<FileDisk>, path: &str) -> Result<Ino, String> {
    let mut ino = v.root();
    for c in path.split('/').filter(|c| !c.is_empty()) {
        ino = match v.lookup(ino, c) {
            Ok(i) => i,
            Err(keel_vfs::Error::NotFound) => v.create(ino, c, NewNode::Dir).map_err(|e| format!("{path}: {e}"))?,
            Err(e) => return Err(format!("{path}: {e}")),
        };
    }
    Ok(ino)
}

fn put(v: &mut Volume<FileDisk>, host: &Path, dir: Ino, dest: &str) -> Result<u64, String> {
    let name = host
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or(format!("{}: needs a plain file name", host.display()))?
        .to_string();
    let meta = std::fs::metadata(host).map_err(|e| format!("{}: {e}", host.display()))?;
    let target = format!("{}/{name}", dest.trim_end_matches('/'));
    if meta.is_dir() {
        let d = match v.lookup(dir, &name) {
            Ok(i) => i,
            Err(_) => v.create(dir, &name, NewNode::Dir).map_err(|e| format!("{target}: {e}"))?,
        };
        let mut n = 0;
        let mut entries: Vec<_> = std::fs::read_dir(host)
            .map_err(|e| format!("{}: {e}", host.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            n += put(v, &e, d, &target)?;
        }
        return Ok(n);
    }
    let data = std::fs::read(host).map_err(|e| format!("{}: {e}", host.display()))?;
    let ino = match v.lookup(dir, &name) {
        Ok(i) => {
            v.set_size(i, 0).map_err(|e| format!("{target}: {e}"))?;
            i
        }
        Err(_) => v.create(dir, &name, NewNode::File).map_err(|e| format!("{target}: {e}"))?,
    };
    v.retain(ino);
    let mut at = 0;
    for chunk in data.chunks(256 * 1024) {
        v.write(ino, at, chunk).map_err(|e| format!("{target}: {e}"))?;
        at += chunk.len() as u64;
    }
    v.release(ino);
    v.sync().map_err(|e| format!("{target}: {e}"))?;
    Ok(1)
}

/// The whole file at `path` in `image` (None if there is none), read with the same crate as Keel.
pub fn read_file(image: &Path, path: &str) -> Result<Option<Vec<u8>>, String> {
    let mut v = mount(image, true)?;
    let mut ino = v.root();
    for c in path.split('/').filter(|c| !c.is_empty()) {
        ino = match v.lookup(ino, c) {
            Ok(i) => i,
            Err(keel_vfs::Error::NotFound) => return Ok(None),
            Err(e) => return Err(format!("{path}: {e}")),
        };
    }
    read_all(&mut v, ino, path).map(Some)
}

fn read_all(v: &mut Volume<FileDisk>, ino: Ino, path: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = v.read(ino, out.len() as u64, &mut buf).map_err(|e| format!("{path}: {e}"))?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn get(v: &mut Volume<FileDisk>, ino: Ino, path: &str, host: &Path) -> Result<u64, String> {
    let st = v.stat(ino).map_err(|e| format!("{path}: {e}"))?;
    if st.kind == FileType::Dir {
        std::fs::create_dir_all(host).map_err(|e| format!("{}: {e}", host.display()))?;
        let mut n = 0;
        for e in v.readdir(ino).map_err(|e| format!("{path}: {e}"))? {
            let child = format!("{}/{}", path.trim_end_matches('/'), e.name);
            n += get(v, e.ino, &child, &host.join(&e.name))?;
        }
        return Ok(n);
    }
    let data = read_all(v, ino, path)?;
    std::fs::write(host, data).map_err(|e| format!("{}: {e}", host.display()))?;
    Ok(1)
}

/// `cargo xtask disk ...`
pub fn command(args: &[String]) -> Result<i32, String> {
    let (Some(cmd), Some(image)) = (args.first(), args.get(1)) else {
        println!("{USAGE}");
        return Ok(if args.is_empty() { 0 } else { 2 });
    };
    let image = Path::new(image);
    let rest = &args[2..];
    match cmd.as_str() {
        "create" => {
            let size = rest.first().map(|s| parse_size(s)).transpose()?.unwrap_or(DEFAULT_SIZE);
            create(image, size)?;
            println!("{}: {} MiB, littlefs", image.display(), size >> 20);
        }
        "ls" => {
            let path = rest.first().map_or("/", String::as_str);
            let mut v = mount(image, true)?;
            let ino = resolve(&mut v, path)?;
            for e in v.readdir(ino).map_err(|e| format!("{path}: {e}"))? {
                let st = v.stat(e.ino).map_err(|err| format!("{}: {err}", e.name))?;
                let suffix = if st.kind == FileType::Dir { "/" } else { "" };
                println!("{:>10}  {}{suffix}", st.size, e.name);
            }
        }
        "cat" => {
            let path = rest.first().ok_or("cat: which file?")?;
            let data = read_file(image, path)?.ok_or(format!("{path}: no such file or directory"))?;
            use std::io::Write;
            std::io::stdout().write_all(&data).map_err(|e| e.to_string())?;
        }
        "put" => {
            let [sources @ .., dest] = rest else { return Err("put: IMAGE HOSTPATH... DEST".into()) };
            if sources.is_empty() {
                return Err("put: IMAGE HOSTPATH... DEST".into());
            }
            let mut v = mount(image, false)?;
            let dir = mkdir_p(&mut v, dest)?;
            let mut n = 0;
            for s in sources {
                n += put(&mut v, Path::new(s), dir, dest)?;
            }
            v.unmount().map_err(|e| format!("{}: {e}", image.display()))?;
            println!("{n} files copied into {}:{dest}", image.display());
        }
        "get" => {
            let path = rest.first().ok_or("get: IMAGE PATH [HOSTDEST]")?;
            let name = path.trim_end_matches('/').rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("root");
            let host = rest.get(1).map_or_else(|| PathBuf::from(name), PathBuf::from);
            let host = if host.is_dir() { host.join(name) } else { host };
            let mut v = mount(image, true)?;
            let ino = resolve(&mut v, path)?;
            let n = get(&mut v, ino, path, &host)?;
            println!("{n} files copied to {}", host.display());
        }
        "fsck" => {
            let dev = FileDisk::open(image, true)?;
            match Volume::mount(dev, MountOptions { readonly: true, ..MountOptions::default() }) {
                Ok(mut v) => {
                    let r = v.check(true);
                    print!("{}: {r}", image.display());
                    return Ok(i32::from(!r.clean()));
                }
                Err(f) => {
                    println!("{}: {}\nDAMAGED", image.display(), f.error);
                    return Ok(1);
                }
            }
        }
        other => return Err(format!("disk: unknown command '{other}'\n{USAGE}")),
    }
    Ok(0)
}
