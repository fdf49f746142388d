//! The littlefs volume on a disk in memory: behaviour, persistence across mounts, simulated
//! power cuts at every kind of moment, and damaged images.
use keel_disk::{format, DiskError, MountOptions, RamDisk, Volume};
use keel_vfs::{Error, FileType, NewNode};
use proptest::prelude::*;

fn fresh(bytes: usize) -> Volume<RamDisk> {
    let dev = format(RamDisk::new(bytes)).ok().expect("format");
    mount(dev)
}

fn mount(dev: RamDisk) -> Volume<RamDisk> {
    match Volume::mount(dev, MountOptions::default()) {
        Ok(v) => v,
        Err(f) => panic!("mount: {}", f.error),
    }
}

fn write_file(v: &mut Volume<RamDisk>, name: &str, data: &[u8]) {
    let root = v.root();
    let ino = match v.lookup(root, name) {
        Ok(i) => {
            v.set_size(i, 0).expect("truncate");
            i
        }
        Err(_) => v.create(root, name, NewNode::File).expect("create"),
    };
    v.retain(ino);
    for (k, chunk) in data.chunks(1000).enumerate() {
        assert_eq!(v.write(ino, (k * 1000) as u64, chunk).expect("write"), chunk.len());
    }
    v.release(ino);
}

fn read_file(v: &mut Volume<RamDisk>, name: &str) -> Result<Vec<u8>, Error> {
    let root = v.root();
    let ino = v.lookup(root, name)?;
    let size = v.stat(ino)?.size as usize;
    let mut buf = vec![0; size + 10];
    let n = v.read(ino, 0, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn files_and_directories_behave_and_survive_a_remount() {
    let mut v = fresh(4 << 20);
    let root = v.root();
    let d = v.create(root, "dir", NewNode::Dir).expect("mkdir");
    let f = v.create(d, "a.txt", NewNode::File).expect("create");
    assert_eq!(v.create(d, "a.txt", NewNode::File), Err(Error::AlreadyExists));
    assert_eq!(v.write(f, 0, b"hello").expect("write"), 5);
    assert_eq!(v.write(f, 5, b", world").expect("write"), 7);
    // Gathered but not committed: stat and read still see it.
    assert_eq!(v.stat(f).expect("stat").size, 12);
    let mut buf = [0u8; 32];
    assert_eq!(v.read(f, 0, &mut buf).expect("read"), 12);
    assert_eq!(&buf[..12], b"hello, world");
    assert_eq!(v.read(f, 7, &mut buf).expect("read"), 5);
    assert_eq!(v.read(f, 100, &mut buf).expect("read past end"), 0);
    // A write past the end fills with zeros.
    v.write(f, 20, b"!").expect("sparse write");
    assert_eq!(v.read(f, 0, &mut buf).expect("read"), 21);
    assert_eq!(&buf[12..20], &[0; 8]);
    let e = v.readdir(root).expect("readdir");
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].name.as_str(), e[0].kind), ("dir", FileType::Dir));
    assert_eq!(v.rmdir(root, "dir"), Err(Error::NotEmpty));
    assert_eq!(v.unlink(root, "dir"), Err(Error::IsADirectory));
    assert_eq!(v.lookup(d, "missing"), Err(Error::NotFound));
    // Rename keeps the inode number; the old name is gone.
    v.rename(d, "a.txt", root, "b.txt").expect("rename");
    assert_eq!(v.lookup(root, "b.txt"), Ok(f));
    assert_eq!(v.lookup(d, "a.txt"), Err(Error::NotFound));
    v.rmdir(root, "dir").expect("rmdir");
    v.set_size(f, 5).expect("truncate");
    assert!(v.info().used_bytes > 0 && v.info().total_bytes == 4 << 20);
    let dev = v.unmount().expect("unmount");
    let mut v = mount(dev);
    assert_eq!(read_file(&mut v, "b.txt").expect("read back"), b"hello");
    assert_eq!(v.readdir(v.root()).expect("readdir").len(), 1);
    assert!(v.check(true).clean());
}

#[test]
fn big_files_round_trip_and_space_runs_out_cleanly() {
    let mut v = fresh(2 << 20);
    let big = pattern(7, 700_000);
    write_file(&mut v, "big", &big);
    assert_eq!(read_file(&mut v, "big").expect("read"), big);
    // A file bigger than the disk: the error is no space, and the volume stays usable.
    let root = v.root();
    let ino = v.create(root, "huge", NewNode::File).expect("create");
    let chunk = vec![1u8; 300_000];
    let mut err = None;
    for k in 0..10u64 {
        if let Err(e) = v.write(ino, k * 300_000, &chunk).and_then(|_| v.sync()) {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err, Some(Error::NoSpace));
    v.unlink(root, "huge").expect("unlink");
    assert_eq!(read_file(&mut v, "big").expect("read"), big);
    let r = v.check(true);
    assert!(r.clean(), "{:?}", r.problems);
    assert_eq!(r.files, 1);
}

#[test]
fn names_looked_up_long_ago_are_forgotten_but_open_files_keep_theirs() {
    let dev = format(RamDisk::new(4 << 20)).ok().expect("format");
    let opts = MountOptions { max_nodes: 64, ..MountOptions::default() };
    let mut v = Volume::mount(dev, opts).ok().expect("mount");
    let root = v.root();
    let first = v.create(root, "kept-open", NewNode::File).expect("create");
    v.retain(first);
    for i in 0..300 {
        v.create(root, &format!("f{i}"), NewNode::File).expect("create");
    }
    assert!(v.known_nodes() <= 64 + 1, "{} names kept", v.known_nodes());
    assert_eq!(v.lookup(root, "kept-open"), Ok(first), "an open file keeps its number");
    assert_eq!(v.write(first, 0, b"still here"), Ok(10));
    v.release(first);
    // A forgotten number is stale; the name itself is not lost.
    assert_eq!(v.stat(3).err(), Some(Error::Stale));
    let again = v.lookup(root, "f0").expect("lookup again");
    assert!(again > 300);
    assert_eq!(v.readdir(root).expect("readdir").len(), 301);
    assert_eq!(read_file(&mut v, "kept-open").expect("read"), b"still here");
}

#[test]
fn readonly_mounts_refuse_changes() {
    let dev = format(RamDisk::new(1 << 20)).ok().expect("format");
    let mut v = Volume::mount(dev, MountOptions { readonly: true, ..MountOptions::default() }).ok().expect("mount");
    let root = v.root();
    assert_eq!(v.create(root, "x", NewNode::File), Err(Error::ReadOnly));
    assert!(v.info().readonly);
}

#[test]
fn unformatted_tiny_and_damaged_disks_are_refused() {
    let f = Volume::mount(RamDisk::new(1 << 20), MountOptions::default()).err().expect("blank disk refused");
    assert!(matches!(f.error, DiskError::NotMountable(_)));
    assert!(f.device.is_some());
    assert_eq!(format(RamDisk::new(32 * 1024)).err().map(|f| f.error), Some(DiskError::TooSmall));
    // Both superblock copies overwritten.
    let mut v = fresh(1 << 20);
    write_file(&mut v, "f", b"data");
    let mut dev = v.unmount().expect("unmount");
    dev.data[..8192].fill(0x5a);
    let f = Volume::mount(dev, MountOptions::default()).err().expect("damaged disk refused");
    assert!(f.error.to_string().contains("damaged superblock"), "{}", f.error);
}

/// One step of the power-cut workload: write a new version of a file to a temporary name,
/// then rename it over the old one.
fn replace(v: &mut Volume<RamDisk>, name: &str, data: &[u8]) -> Result<(), Error> {
    let root = v.root();
    let tmp = format!("{name}.tmp");
    let ino = match v.lookup(root, &tmp) {
        Ok(i) => i,
        Err(_) => v.create(root, &tmp, NewNode::File)?,
    };
    v.set_size(ino, 0)?;
    v.retain(ino);
    for (k, chunk) in data.chunks(3000).enumerate() {
        v.write(ino, (k * 3000) as u64, chunk)?;
    }
    v.release(ino);
    v.rename(root, &tmp, root, name)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Cut the power after any number of sector writes: the volume mounts, every file synced
    /// before is intact, and each replaced file is wholly its old or its new version.
    #[test]
    fn a_power_cut_anywhere_leaves_old_or_new(cut in 0u64..400, sizes in prop::collection::vec(0usize..20_000, 1..6)) {
        let mut v = fresh(1 << 20);
        let names = ["a", "b", "c", "d", "e", "f"];
        for (i, s) in sizes.iter().enumerate() {
            write_file(&mut v, names[i], &pattern(i as u8, *s));
        }
        write_file(&mut v, "kept", &pattern(99, 5000));
        v.sync().expect("sync");
        let mut dev = v.unmount().expect("unmount");
        dev.cut_after(cut);
        let mut v = mount(dev);
        for (i, s) in sizes.iter().enumerate() {
            if replace(&mut v, names[i], &pattern(100 + i as u8, s + 1234)).is_err() {
                break;
            }
        }
        let _ = v.sync();
        let mut dev = v.unmount().expect("unmount after the cut");
        dev = RamDisk::from_bytes(dev.data);
        let mut v = mount(dev);
        prop_assert_eq!(read_file(&mut v, "kept").expect("kept"), pattern(99, 5000));
        for (i, s) in sizes.iter().enumerate() {
            let got = read_file(&mut v, names[i]).expect("file present");
            prop_assert!(got == pattern(i as u8, *s) || got == pattern(100 + i as u8, s + 1234), "{} is neither version", names[i]);
        }
        let r = v.check(true);
        prop_assert!(r.clean(), "{:?}", r.problems);
    }

    /// Random bytes over random blocks: mounting and checking report, never panic.
    #[test]
    fn damaged_images_never_panic(seed in any::<u64>(), count in 1usize..12) {
        let mut v = fresh(512 * 1024);
        for i in 0..4u8 {
            write_file(&mut v, &format!("f{i}"), &pattern(i, 6000 * i as usize + 10));
        }
        let mut dev = v.unmount().expect("unmount");
        let mut x = seed | 1;
        let mut next = || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x };
        let blocks = dev.data.len() / 4096;
        for _ in 0..count {
            let b = (next() as usize) % blocks;
            for byte in &mut dev.data[b * 4096..(b + 1) * 4096] {
                *byte = next() as u8;
            }
        }
        if let Ok(mut v) = Volume::mount(dev, MountOptions::default()) {
            let _ = v.check(true);
            let root = v.root();
            let _ = v.readdir(root);
            let _ = v.create(root, "new", NewNode::File);
        }
    }
}
