//! Times sequential writes and reads through the volume on a disk in memory (host CPU cost).
use keel_disk::{format, MountOptions, RamDisk, Volume};
use keel_vfs::NewNode;
use std::time::Instant;

fn main() {
    let dev = format(RamDisk::new(128 << 20)).ok().expect("format");
    let mut v = Volume::mount(dev, MountOptions::default()).ok().expect("mount");
    let root = v.root();
    let ino = v.create(root, "f", NewNode::File).expect("create");
    let chunk = vec![0x5au8; 64 * 1024];
    let t = Instant::now();
    for i in 0..512u64 {
        v.write(ino, i * 65536, &chunk).expect("write");
    }
    v.sync().expect("sync");
    let w = t.elapsed();
    println!("after writing: {:?}", v.cache_stats());
    let mut buf = vec![0u8; 64 * 1024];
    let t = Instant::now();
    for i in 0..512u64 {
        v.read(ino, i * 65536, &mut buf).expect("read");
    }
    println!("32 MiB: write {w:?}, read {:?}; {:?}", t.elapsed(), v.cache_stats());
}
