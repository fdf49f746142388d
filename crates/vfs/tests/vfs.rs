//! Behaviour of the namespace, the memory filesystem, the archive filesystem and devices.
use std::io::Cursor;
use std::sync::Arc;

use keel_vfs::{DevFs, Error, FileType, Lookup, MemFs, OpenOptions, SeekFrom, TarFs, Vfs};

fn clock() -> u64 {
    1_700_000_000_000_000_000
}

fn rand(buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = i as u8 ^ 0x5a;
    }
}

fn archive() -> &'static [u8] {
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, Cursor::new(data)).unwrap();
    };
    add("hello.txt", b"hello from the archive\n");
    add("wasm/calc.wasm", b"\0asm fake");
    add("nested/a/b/c.txt", b"deep");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    b.append_data(&mut h, "empty/", Cursor::new(&[][..])).unwrap();
    Box::leak(b.into_inner().unwrap().into_boxed_slice())
}

fn setup() -> Vfs {
    let vfs = Vfs::new(Arc::new(MemFs::new(1 << 20, clock)));
    vfs.mount("/tmp", Arc::new(MemFs::new(64 * 1024, clock))).unwrap();
    vfs.mount("/extra_files", Arc::new(TarFs::new(archive()).unwrap())).unwrap();
    vfs.mount("/dev", Arc::new(DevFs::new(rand, clock()))).unwrap();
    vfs
}

fn write_file(vfs: &Vfs, path: &str, data: &[u8]) {
    let mut h = vfs.open("/", path, OpenOptions::write_new(), false).unwrap();
    assert_eq!(h.write(data).unwrap(), data.len());
}

fn read_file(vfs: &Vfs, path: &str) -> Vec<u8> {
    let mut h = vfs.open("/", path, OpenOptions::read(), false).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = h.read(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn names(vfs: &Vfs, path: &str) -> Vec<String> {
    vfs.readdir("/", path, false).unwrap().into_iter().map(|e| e.name).collect()
}

#[test]
fn mounts_appear_as_directories() {
    let vfs = setup();
    assert_eq!(names(&vfs, "/"), ["dev", "extra_files", "tmp"]);
    assert_eq!(names(&vfs, "/extra_files"), ["empty", "hello.txt", "nested", "wasm"]);
    assert_eq!(names(&vfs, "/extra_files/empty"), Vec::<String>::new());
    assert_eq!(read_file(&vfs, "/extra_files/nested/a/b/c.txt"), b"deep");
    let mounts: Vec<String> = vfs.mounts().into_iter().map(|m| m.0).collect();
    assert_eq!(mounts, ["/", "/dev", "/extra_files", "/tmp"]);
    assert_eq!(vfs.mount("/tmp", Arc::new(MemFs::new(1, clock))).err(), Some(Error::Busy));
}

#[test]
fn archive_is_read_only() {
    let vfs = setup();
    let ro = Some(Error::ReadOnly);
    assert_eq!(vfs.open("/", "/extra_files/x", OpenOptions::write_new(), false).err(), ro);
    assert_eq!(vfs.open("/", "/extra_files/hello.txt", OpenOptions::append(), false).err(), ro);
    assert_eq!(vfs.mkdir("/", "/extra_files/d", false).err(), ro);
    assert_eq!(vfs.unlink("/", "/extra_files/hello.txt", false).err(), ro);
    assert_eq!(vfs.rmdir("/", "/extra_files/empty", false).err(), ro);
    assert_eq!(vfs.rename("/", "/extra_files/hello.txt", "/", "/extra_files/h2", false).err(), ro);
    assert_eq!(vfs.set_times("/", "/extra_files/hello.txt", Lookup::FOLLOW, Some(1), None).err(), ro);
    assert_eq!(vfs.rmdir("/", "/extra_files", false).err(), Some(Error::Busy));
    let st = vfs.stat("/", "/extra_files/hello.txt", Lookup::FOLLOW).unwrap();
    assert_eq!(st.size, 23);
    assert_eq!(st.kind, FileType::File);
}

#[test]
fn tmp_behaves_like_unix_tmp() {
    let vfs = setup();
    write_file(&vfs, "/tmp/a.txt", b"one\n");
    let mut h = vfs.open("/", "/tmp/a.txt", OpenOptions::append(), false).unwrap();
    h.write(b"two\n").unwrap();
    drop(h);
    assert_eq!(read_file(&vfs, "/tmp/a.txt"), b"one\ntwo\n");
    vfs.mkdir("/", "/tmp/d", false).unwrap();
    assert_eq!(vfs.mkdir("/", "/tmp/d", false).err(), Some(Error::AlreadyExists));
    vfs.rename("/", "/tmp/a.txt", "/", "/tmp/d/b.txt", false).unwrap();
    assert_eq!(names(&vfs, "/tmp/d"), ["b.txt"]);
    assert_eq!(vfs.rmdir("/", "/tmp/d", false).err(), Some(Error::NotEmpty));
    assert_eq!(vfs.unlink("/", "/tmp/d", false).err(), Some(Error::IsADirectory));
    vfs.unlink("/", "/tmp/d/b.txt", false).unwrap();
    vfs.rmdir("/", "/tmp/d", false).unwrap();
    assert_eq!(names(&vfs, "/tmp"), Vec::<String>::new());
    assert_eq!(vfs.stat("/", "/tmp/nope", Lookup::FOLLOW).err(), Some(Error::NotFound));
    assert_eq!(vfs.open("/", "/tmp/nope/x", OpenOptions::write_new(), false).err(), Some(Error::NotFound));
}

#[test]
fn handles_seek_truncate_and_positional_io() {
    let vfs = setup();
    write_file(&vfs, "/tmp/f", b"0123456789");
    let mut h = vfs.open("/", "/tmp/f", OpenOptions { read: true, write: true, ..Default::default() }, false).unwrap();
    assert_eq!(h.seek(SeekFrom::End(-3)).unwrap(), 7);
    let mut b = [0u8; 8];
    assert_eq!(h.read(&mut b).unwrap(), 3);
    assert_eq!(&b[..3], b"789");
    assert_eq!(h.seek(SeekFrom::Current(-20)).err(), Some(Error::InvalidArgument));
    assert_eq!(h.pread(&mut b[..2], 1).unwrap(), 2);
    assert_eq!(&b[..2], b"12");
    h.pwrite(b"XY", 12).unwrap();
    assert_eq!(read_file(&vfs, "/tmp/f"), b"0123456789\0\0XY");
    h.set_size(4).unwrap();
    assert_eq!(read_file(&vfs, "/tmp/f"), b"0123");
    let ro = vfs.open("/", "/tmp/f", OpenOptions::read(), false).unwrap();
    assert_eq!(ro.set_size(0).err(), Some(Error::BadHandle));
    assert_eq!(ro.pwrite(b"x", 0).err(), Some(Error::BadHandle));
}

#[test]
fn capacity_is_enforced() {
    let vfs = setup();
    let mut h = vfs.open("/", "/tmp/big", OpenOptions::write_new(), false).unwrap();
    assert_eq!(h.write(&vec![1u8; 100 * 1024]).err(), Some(Error::NoSpace));
    h.write(&vec![1u8; 32 * 1024]).unwrap();
    assert_eq!(h.set_size(1 << 40).err(), Some(Error::NoSpace));
    drop(h);
    vfs.unlink("/", "/tmp/big", false).unwrap();
    // The space came back.
    write_file(&vfs, "/tmp/big2", &vec![2u8; 60 * 1024]);
}

#[test]
fn unlinked_open_file_stays_readable() {
    let vfs = setup();
    write_file(&vfs, "/tmp/t", b"still here");
    let mut h = vfs.open("/", "/tmp/t", OpenOptions::read(), false).unwrap();
    vfs.unlink("/", "/tmp/t", false).unwrap();
    let mut b = [0u8; 32];
    assert_eq!(h.read(&mut b).unwrap(), 10);
    drop(h);
    assert_eq!(vfs.stat("/", "/tmp/t", Lookup::FOLLOW).err(), Some(Error::NotFound));
}

#[test]
fn symlinks_and_hard_links() {
    let vfs = setup();
    vfs.symlink("/extra_files/hello.txt", "/", "/tmp/abs", false).unwrap();
    vfs.symlink("../extra_files/wasm", "/", "/tmp/rel", false).unwrap();
    assert_eq!(read_file(&vfs, "/tmp/abs"), b"hello from the archive\n");
    assert_eq!(names(&vfs, "/tmp/rel"), ["calc.wasm"]);
    assert_eq!(vfs.readlink("/", "/tmp/rel", false).unwrap(), "../extra_files/wasm");
    assert_eq!(vfs.stat("/", "/tmp/rel", Lookup::NOFOLLOW).unwrap().kind, FileType::Symlink);
    // `..` after a symlink goes to the real parent of the target.
    assert_eq!(vfs.resolve("/", "/tmp/rel/..", Lookup::FOLLOW).unwrap().path, "/extra_files");
    vfs.symlink("loop2", "/", "/tmp/loop1", false).unwrap();
    vfs.symlink("loop1", "/", "/tmp/loop2", false).unwrap();
    assert_eq!(vfs.stat("/", "/tmp/loop1", Lookup::FOLLOW).err(), Some(Error::Loop));
    write_file(&vfs, "/tmp/orig", b"x");
    vfs.link("/", "/tmp/orig", true, "/", "/tmp/hard", false).unwrap();
    assert_eq!(vfs.stat("/", "/tmp/hard", Lookup::FOLLOW).unwrap().nlink, 2);
    vfs.unlink("/", "/tmp/orig", false).unwrap();
    assert_eq!(read_file(&vfs, "/tmp/hard"), b"x");
    assert_eq!(vfs.link("/", "/extra_files/hello.txt", true, "/", "/tmp/h", false).err(), Some(Error::CrossDevice));
    assert_eq!(vfs.rename("/", "/tmp/hard", "/", "/moved", false).err(), Some(Error::CrossDevice));
}

#[test]
fn confined_lookups_never_escape() {
    let vfs = setup();
    vfs.mkdir_all("/", "/tmp/sandbox/sub").unwrap();
    write_file(&vfs, "/tmp/sandbox/in.txt", b"inside");
    write_file(&vfs, "/tmp/secret", b"outside");
    vfs.symlink("/tmp/secret", "/", "/tmp/sandbox/abs", false).unwrap();
    vfs.symlink("../secret", "/", "/tmp/sandbox/rel", false).unwrap();
    vfs.symlink("sub/..", "/", "/tmp/sandbox/ok", false).unwrap();
    let c = Lookup { follow: true, confine: true };
    let base = "/tmp/sandbox";
    assert_eq!(vfs.resolve(base, "in.txt", c).unwrap().path, "/tmp/sandbox/in.txt");
    assert_eq!(vfs.resolve(base, "sub/../in.txt", c).unwrap().path, "/tmp/sandbox/in.txt");
    assert_eq!(vfs.resolve(base, "ok/in.txt", c).unwrap().path, "/tmp/sandbox/in.txt");
    for bad in ["..", "../secret", "sub/../../secret", "/tmp/secret", "abs", "rel", "sub/../.."] {
        assert_eq!(vfs.resolve(base, bad, c).err(), Some(Error::Escape), "{bad}");
    }
    assert_eq!(vfs.open(base, "../x", OpenOptions::write_new(), true).err(), Some(Error::Escape));
    assert_eq!(vfs.mkdir(base, "../x", true).err(), Some(Error::Escape));
    assert_eq!(vfs.rename(base, "in.txt", base, "../stolen", true).err(), Some(Error::Escape));
    // Not following the final symlink: the link itself is inside.
    assert!(vfs.resolve(base, "abs", Lookup { follow: false, confine: true }).is_ok());
}

#[test]
fn bad_paths_are_errors() {
    let vfs = setup();
    assert_eq!(vfs.mkdir("/", "/", false).err(), Some(Error::Busy));
    assert_eq!(vfs.mkdir("/", "/tmp/..", false).err(), Some(Error::InvalidPath));
    assert_eq!(vfs.open("/", "/tmp/a\0b", OpenOptions::write_new(), false).err(), Some(Error::InvalidPath));
    assert_eq!(vfs.mkdir("/", &format!("/tmp/{}", "n".repeat(300)), false).err(), Some(Error::NameTooLong));
    assert_eq!(vfs.stat("/", &"/x".repeat(5000), Lookup::FOLLOW).err(), Some(Error::NameTooLong));
    assert_eq!(vfs.stat("/", "/extra_files/hello.txt/", Lookup::FOLLOW).err(), Some(Error::NotADirectory));
    assert_eq!(vfs.stat("/", "/extra_files/hello.txt/x", Lookup::FOLLOW).err(), Some(Error::NotADirectory));
    assert_eq!(vfs.rename("/", "/tmp", "/", "/tmp2", false).err(), Some(Error::Busy));
    vfs.mkdir("/", "/tmp/d", false).unwrap();
    assert_eq!(vfs.rename("/", "/tmp/d", "/", "/tmp/d/inner", false).err(), Some(Error::InvalidArgument));
    let mut h = vfs.open("/", "/tmp/d", OpenOptions::read(), false).unwrap();
    assert_eq!(h.read(&mut [0; 4]).err(), Some(Error::IsADirectory));
    assert_eq!(vfs.open("/", "/tmp/d", OpenOptions::write_new(), false).err(), Some(Error::IsADirectory));
    assert_eq!(
        vfs.open(
            "/",
            "/extra_files/hello.txt",
            OpenOptions { read: true, directory: true, ..Default::default() },
            false
        )
        .err(),
        Some(Error::NotADirectory)
    );
    write_file(&vfs, "/tmp/e", b"");
    assert_eq!(
        vfs.open(
            "/",
            "/tmp/e",
            OpenOptions { write: true, create: true, exclusive: true, ..Default::default() },
            false
        )
        .err(),
        Some(Error::AlreadyExists)
    );
}

#[test]
fn absolute_paths_work_from_a_removed_directory() {
    let vfs = setup();
    vfs.mkdir_all("/", "/tmp/gone").unwrap();
    vfs.rmdir("/", "/tmp/gone", false).unwrap();
    assert_eq!(names(&vfs, "/tmp"), Vec::<String>::new());
    assert!(vfs.readdir("/tmp/gone", "/tmp", false).is_ok());
    assert_eq!(vfs.readdir("/tmp/gone", ".", false).err(), Some(Error::NotFound));
}

#[test]
fn devices() {
    let vfs = setup();
    assert_eq!(names(&vfs, "/dev"), ["null", "random", "urandom", "zero"]);
    let mut z = vfs.open("/", "/dev/zero", OpenOptions::read(), false).unwrap();
    let mut b = [7u8; 16];
    assert_eq!(z.read(&mut b).unwrap(), 16);
    assert_eq!(b, [0; 16]);
    let mut n =
        vfs.open("/", "/dev/null", OpenOptions { read: true, write: true, ..Default::default() }, false).unwrap();
    assert_eq!(n.read(&mut b).unwrap(), 0);
    assert_eq!(n.write(b"gone").unwrap(), 4);
    let mut r = vfs.open("/", "/dev/random", OpenOptions::read(), false).unwrap();
    r.read(&mut b).unwrap();
    assert_eq!(b[1], 1 ^ 0x5a);
    assert_eq!(vfs.stat("/", "/dev/null", Lookup::FOLLOW).unwrap().kind, FileType::CharDevice);
}

#[test]
fn hostile_archive_is_a_clear_error() {
    let mut junk = vec![0u8; 1024];
    junk[..4].copy_from_slice(b"evil");
    let leaked: &'static [u8] = Box::leak(junk.into_boxed_slice());
    let e = TarFs::new(leaked).err().unwrap();
    assert_eq!(e.to_string(), "bad header checksum at byte 0");
}

#[test]
fn archive_files_are_immutable_and_borrowed_in_place() {
    let vfs = setup();
    let node = vfs.resolve("/", "/extra_files/wasm/calc.wasm", keel_vfs::Lookup::FOLLOW).unwrap();
    let a = node.fs.immutable_contents(node.ino).unwrap();
    assert_eq!(a, b"\0asm fake");
    // The same bytes each time: the archive itself, not a copy.
    let b = node.fs.immutable_contents(node.ino).unwrap();
    assert_eq!(a.as_ptr(), b.as_ptr());
    let dir = vfs.resolve("/", "/extra_files/nested", keel_vfs::Lookup::FOLLOW).unwrap();
    assert!(dir.fs.immutable_contents(dir.ino).is_none(), "a directory has no contents");
    // Writable filesystems never promise immutability.
    write_file(&vfs, "/tmp/x", b"data");
    let tmp = vfs.resolve("/", "/tmp/x", keel_vfs::Lookup::FOLLOW).unwrap();
    assert!(tmp.fs.immutable_contents(tmp.ino).is_none());
}

#[test]
fn unmount_refuses_the_root_and_parents_of_mounts_and_sync_reaches_every_filesystem() {
    let vfs = setup();
    vfs.mount("/tmp/inner", Arc::new(MemFs::new(64 * 1024, clock))).unwrap();
    assert_eq!(vfs.unmount("/").err(), Some(Error::Busy));
    assert_eq!(vfs.unmount("/tmp").err(), Some(Error::Busy), "something is mounted below /tmp");
    assert_eq!(vfs.unmount("/nowhere").err(), Some(Error::InvalidArgument));
    vfs.unmount("/tmp/inner/").unwrap();
    assert!(vfs.unmount("/tmp").is_ok());
    assert!(vfs.mounts().iter().all(|(p, _)| p != "/tmp"));
    // Memory filesystems have nothing to sync; every mount answers.
    assert!(vfs.sync_all().is_empty());
    let h = vfs.open("/", "/f", OpenOptions::write_new(), false).unwrap();
    assert_eq!(h.sync(), Ok(()));
}
