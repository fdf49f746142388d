//! How the filesystem was chosen: littlefs (keel-disk) against FAT (the `fatfs` crate) under
//! the same simulated power cuts. Each run writes new versions of six files the safe way each
//! filesystem allows (littlefs: write a temporary file, sync, rename over; FAT: the same, but
//! FAT cannot rename over a file, so the old one is removed first) and cuts the power after a
//! given number of sector writes. Afterwards the disk must mount and every file must be wholly
//! its old or its new version. `cargo run --release -p keel-disk --example choose`
use std::io::{self, Read, Seek, SeekFrom, Write};

use keel_disk::{format, MountOptions, RamDisk, Volume};
use keel_vfs::NewNode;

const CUTS: u64 = 400;
const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

fn content(i: usize, version: u8) -> Vec<u8> {
    let len = 3000 + i * 4100 + usize::from(version) * 700;
    (0..len).map(|j| (j as u8).wrapping_mul(31).wrapping_add(version).wrapping_add(i as u8)).collect()
}

/// A disk in memory for fatfs: sector writes after the budget is spent are dropped.
struct CutDisk {
    data: Vec<u8>,
    pos: u64,
    budget: Option<u64>,
}

impl Read for CutDisk {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let at = self.pos as usize;
        let n = buf.len().min(self.data.len().saturating_sub(at));
        buf[..n].copy_from_slice(&self.data[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for CutDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let at = self.pos as usize;
        let n = buf.len().min(self.data.len().saturating_sub(at));
        let sectors = n.div_ceil(512) as u64;
        let keep = match self.budget.as_mut() {
            Some(b) if *b < sectors => {
                let k = *b;
                *b = 0;
                k as usize * 512
            }
            Some(b) => {
                *b -= sectors;
                n
            }
            None => n,
        };
        let keep = keep.min(n);
        self.data[at..at + keep].copy_from_slice(&buf[..keep]);
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for CutDisk {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => (self.data.len() as i64 + d) as u64,
            SeekFrom::Current(d) => (self.pos as i64 + d) as u64,
        };
        Ok(self.pos)
    }
}

fn fat_run(cut: u64) -> Result<u64, String> {
    let mut disk = CutDisk { data: vec![0; 1 << 20], pos: 0, budget: None };
    fatfs::format_volume(&mut disk, fatfs::FormatVolumeOptions::new()).map_err(|e| e.to_string())?;
    {
        let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new()).map_err(|e| e.to_string())?;
        for (i, n) in NAMES.iter().enumerate() {
            let mut f = fs.root_dir().create_file(n).map_err(|e| e.to_string())?;
            f.truncate().map_err(|e| e.to_string())?;
            f.write_all(&content(i, 0)).map_err(|e| e.to_string())?;
        }
    }
    disk.budget = Some(cut);
    disk.pos = 0;
    match fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new()) {
        Err(e) => eprintln!("fat mount: {e}"),
        Ok(fs) => {
            let root = fs.root_dir();
            for (i, n) in NAMES.iter().enumerate() {
                let tmp = format!("{n}.tmp");
                let step = || -> io::Result<()> {
                    let mut f = root.create_file(&tmp)?;
                    f.truncate()?;
                    f.write_all(&content(i, 1))?;
                    f.flush()?;
                    drop(f);
                    root.remove(n)?;
                    root.rename(&tmp, &root, n)
                };
                if let Err(e) = step() {
                    let _ = e;
                    break;
                }
            }
        }
    }
    let used = cut - disk.budget.unwrap_or(0);
    disk.budget = None;
    disk.pos = 0;
    let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new()).map_err(|e| format!("mount: {e}"))?;
    for (i, n) in NAMES.iter().enumerate() {
        let mut f = fs.root_dir().open_file(n).map_err(|e| format!("{n}: {e}"))?;
        let mut got = Vec::new();
        f.read_to_end(&mut got).map_err(|e| format!("{n}: {e}"))?;
        if got != content(i, 0) && got != content(i, 1) {
            let (old, new) = (content(i, 0).len(), content(i, 1).len());
            return Err(format!("{n}: neither version ({} bytes; old {old}, new {new})", got.len()));
        }
    }
    Ok(used)
}

fn lfs_run(cut: u64) -> Result<u64, String> {
    let dev = format(RamDisk::new(1 << 20)).map_err(|f| f.error.to_string())?;
    let mut v = Volume::mount(dev, MountOptions::default()).map_err(|f| f.error.to_string())?;
    let root = v.root();
    for (i, n) in NAMES.iter().enumerate() {
        let ino = v.create(root, n, NewNode::File).map_err(|e| e.to_string())?;
        v.write(ino, 0, &content(i, 0)).map_err(|e| e.to_string())?;
    }
    let mut dev = v.unmount().map_err(|e| e.to_string())?;
    dev.cut_after(cut);
    let mut v = Volume::mount(dev, MountOptions::default()).map_err(|f| f.error.to_string())?;
    for (i, n) in NAMES.iter().enumerate() {
        let tmp = format!("{n}.tmp");
        let step = |v: &mut Volume<RamDisk>| -> keel_vfs::Result<()> {
            let ino = v.create(root, &tmp, NewNode::File)?;
            v.write(ino, 0, &content(i, 1))?;
            v.sync()?;
            v.rename(root, &tmp, root, n)
        };
        if step(&mut v).is_err() {
            break;
        }
    }
    let dev = v.unmount().map_err(|e| e.to_string())?;
    let used = cut - dev.writes_left().unwrap_or(0);
    let mut v = Volume::mount(RamDisk::from_bytes(dev.data), MountOptions::default())
        .map_err(|f| format!("mount: {}", f.error))?;
    for (i, n) in NAMES.iter().enumerate() {
        let ino = v.lookup(root, n).map_err(|e| format!("{n}: {e}"))?;
        let mut got = vec![0u8; 64 * 1024];
        let len = v.read(ino, 0, &mut got).map_err(|e| format!("{n}: {e}"))?;
        got.truncate(len);
        if got != content(i, 0) && got != content(i, 1) {
            return Err(format!("{n}: neither version"));
        }
    }
    Ok(used)
}

fn main() {
    type Run = fn(u64) -> Result<u64, String>;
    for (name, run) in [("littlefs (keel-disk)", lfs_run as Run), ("FAT (fatfs)", fat_run as Run)] {
        // The workload's length in sector writes, then cuts spread evenly over it.
        let total = match run(1 << 40) {
            Ok(t) => t,
            Err(e) => {
                println!("{name}: the workload fails without a cut: {e}");
                continue;
            }
        };
        println!("{name}: workload of {total} sector writes");
        let mut damaged = 0;
        let mut first = None;
        for i in 0..CUTS {
            let cut = total * i / CUTS;
            if let Err(e) = run(cut) {
                damaged += 1;
                first.get_or_insert(format!("cut after {cut} of {total} sector writes: {e}"));
            }
        }
        let first = first.map(|f| format!(" (first: {f})")).unwrap_or_default();
        println!("{name}: {damaged} of {CUTS} power cuts left damage{first}");
    }
}
