//! P9Fs against a small in-memory 9P2000.L server, through Keel's VFS.
use std::collections::BTreeMap;
use std::sync::Arc;

use keel_9p::{P9Error, P9Fs, Transport};
use keel_vfs::{Error, FileType, Lookup, OpenOptions, Vfs};

#[derive(Clone)]
enum Node {
    File(Vec<u8>),
    Dir(BTreeMap<String, u64>),
    Link(String),
}

/// The server: inodes by number, fids to inodes. Inode numbers are reused after deletion, as
/// on real hosts.
struct Server {
    nodes: BTreeMap<u64, Node>,
    /// fid -> (inode, generation): a fid keeps referring to the file it was walked to, even if
    /// that file is deleted and its number reused.
    fids: BTreeMap<u32, (u64, u64)>,
    gens: BTreeMap<u64, u64>,
    free: Vec<u64>,
    next: u64,
}

struct W(Vec<u8>);

impl W {
    fn new(kind: u8) -> W {
        W(vec![0, 0, 0, 0, kind, 1, 0])
    }
    fn u8(mut self, v: u8) -> W {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> W {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> W {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> W {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn s(mut self, s: &str) -> W {
        self = self.u16(s.len() as u16);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn qid(self, s: &Server, ino: u64) -> W {
        let kind = match s.nodes.get(&ino) {
            Some(Node::Dir(_)) => 0x80,
            Some(Node::Link(_)) => 0x02,
            _ => 0,
        };
        self.u8(kind).u32(0).u64(ino)
    }
    fn done(mut self) -> Vec<u8> {
        let n = self.0.len() as u32;
        self.0[..4].copy_from_slice(&n.to_le_bytes());
        self.0
    }
}

struct R<'a>(&'a [u8], usize);

impl R<'_> {
    fn u16(&mut self) -> u16 {
        let v = u16::from_le_bytes([self.0[self.1], self.0[self.1 + 1]]);
        self.1 += 2;
        v
    }
    fn u32(&mut self) -> u32 {
        let v = u32::from_le_bytes(self.0[self.1..self.1 + 4].try_into().unwrap());
        self.1 += 4;
        v
    }
    fn u64(&mut self) -> u64 {
        let v = u64::from_le_bytes(self.0[self.1..self.1 + 8].try_into().unwrap());
        self.1 += 8;
        v
    }
    fn s(&mut self) -> String {
        let n = self.u16() as usize;
        let v = String::from_utf8(self.0[self.1..self.1 + n].to_vec()).unwrap();
        self.1 += n;
        v
    }
}

impl Server {
    fn new() -> Server {
        let mut nodes = BTreeMap::new();
        nodes.insert(1, Node::Dir(BTreeMap::new()));
        Server { nodes, fids: BTreeMap::new(), gens: BTreeMap::new(), free: Vec::new(), next: 2 }
    }

    fn alloc(&mut self, n: Node) -> u64 {
        let ino = self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next
        });
        self.nodes.insert(ino, n);
        *self.gens.entry(ino).or_insert(0) += 1;
        ino
    }

    fn bind(&mut self, fid: u32, ino: u64) {
        let g = self.gens.get(&ino).copied().unwrap_or(0);
        self.fids.insert(fid, (ino, g));
    }

    fn dir(&mut self, ino: u64) -> Result<&mut BTreeMap<String, u64>, u32> {
        match self.nodes.get_mut(&ino) {
            Some(Node::Dir(d)) => Ok(d),
            Some(_) => Err(20),
            None => Err(2),
        }
    }

    fn handle(&mut self, req: &[u8]) -> Result<Vec<u8>, u32> {
        let kind = req[4];
        let mut r = R(req, 7);
        let fid_ino = |s: &Server, fid: u32| -> Result<u64, u32> {
            let (ino, g) = s.fids.get(&fid).copied().ok_or(9u32)?;
            // A fid to a deleted file is stale.
            if s.gens.get(&ino).copied().unwrap_or(0) != g || !s.nodes.contains_key(&ino) {
                return Err(116);
            }
            Ok(ino)
        };
        Ok(match kind {
            100 => W::new(101).u32(r.u32()).s("9P2000.L").done(),
            104 => {
                let fid = r.u32();
                self.bind(fid, 1);
                W::new(105).qid(self, 1).done()
            }
            110 => {
                let (fid, newfid, n) = (r.u32(), r.u32(), r.u16());
                let mut ino = fid_ino(self, fid)?;
                let mut qids = Vec::new();
                for _ in 0..n {
                    let name = r.s();
                    ino = *self.dir(ino)?.get(&name).ok_or(2u32)?;
                    qids.push(ino);
                }
                self.bind(newfid, ino);
                let mut w = W::new(111).u16(qids.len() as u16);
                for q in qids {
                    w = w.qid(self, q);
                }
                w.done()
            }
            12 => {
                let ino = fid_ino(self, r.u32())?;
                W::new(13).qid(self, ino).u32(0).done()
            }
            14 => {
                let fid = r.u32();
                let name = r.s();
                let dir = fid_ino(self, fid)?;
                if self.dir(dir)?.contains_key(&name) {
                    return Err(17);
                }
                let ino = self.alloc(Node::File(Vec::new()));
                self.dir(dir)?.insert(name, ino);
                self.bind(fid, ino);
                W::new(15).qid(self, ino).u32(0).done()
            }
            72 | 16 => {
                let dir = fid_ino(self, r.u32())?;
                let name = r.s();
                let node = if kind == 72 { Node::Dir(BTreeMap::new()) } else { Node::Link(r.s()) };
                if self.dir(dir)?.contains_key(&name) {
                    return Err(17);
                }
                let ino = self.alloc(node);
                self.dir(dir)?.insert(name, ino);
                W::new(kind + 1).qid(self, ino).done()
            }
            22 => match self.nodes.get(&fid_ino(self, r.u32())?) {
                Some(Node::Link(t)) => W::new(23).s(&t.clone()).done(),
                _ => return Err(22),
            },
            24 => {
                let ino = fid_ino(self, r.u32())?;
                let (mode, size) = match self.nodes.get(&ino).ok_or(2u32)? {
                    Node::File(d) => (0o100644, d.len() as u64),
                    Node::Dir(d) => (0o040755, d.len() as u64),
                    Node::Link(t) => (0o120777, t.len() as u64),
                };
                let mut w = W::new(25).u64(0x3fff).qid(self, ino).u32(mode).u32(0).u32(0).u64(1).u64(0).u64(size);
                for _ in 0..12 {
                    w = w.u64(0);
                }
                w.done()
            }
            26 => {
                let ino = fid_ino(self, r.u32())?;
                let valid = r.u32();
                let (_m, _u, _g) = (r.u32(), r.u32(), r.u32());
                let size = r.u64();
                if valid & 8 != 0 {
                    match self.nodes.get_mut(&ino) {
                        Some(Node::File(d)) => d.resize(size as usize, 0),
                        _ => return Err(21),
                    }
                }
                W::new(27).done()
            }
            116 => {
                let ino = fid_ino(self, r.u32())?;
                let (off, count) = (r.u64() as usize, r.u32() as usize);
                let Some(Node::File(d)) = self.nodes.get(&ino) else { return Err(21) };
                let part = d.get(off.min(d.len())..(off + count).min(d.len())).unwrap_or(&[]).to_vec();
                let mut w = W::new(117).u32(part.len() as u32);
                w.0.extend_from_slice(&part);
                w.done()
            }
            118 => {
                let ino = fid_ino(self, r.u32())?;
                let (off, count) = (r.u64() as usize, r.u32() as usize);
                let data = req[r.1..r.1 + count].to_vec();
                let Some(Node::File(d)) = self.nodes.get_mut(&ino) else { return Err(21) };
                if d.len() < off + count {
                    d.resize(off + count, 0);
                }
                d[off..off + count].copy_from_slice(&data);
                W::new(119).u32(count as u32).done()
            }
            120 => {
                self.fids.remove(&r.u32());
                W::new(121).done()
            }
            40 => {
                let ino = fid_ino(self, r.u32())?;
                let off = r.u64() as usize;
                let entries: Vec<(String, u64)> = self.dir(ino)?.iter().map(|(k, v)| (k.clone(), *v)).collect();
                let mut body = W(Vec::new());
                for (i, (name, e)) in entries.iter().enumerate().skip(off) {
                    let t = match self.nodes.get(e) {
                        Some(Node::Dir(_)) => 4,
                        Some(Node::Link(_)) => 10,
                        _ => 8,
                    };
                    body = body.qid(self, *e).u64(i as u64 + 1).u8(t).s(name);
                }
                let mut w = W::new(41).u32(body.0.len() as u32);
                w.0.extend_from_slice(&body.0);
                w.done()
            }
            76 => {
                let dir = fid_ino(self, r.u32())?;
                let name = r.s();
                let ino = *self.dir(dir)?.get(&name).ok_or(2u32)?;
                if let Some(Node::Dir(d)) = self.nodes.get(&ino) {
                    if !d.is_empty() {
                        return Err(39);
                    }
                }
                self.dir(dir)?.remove(&name);
                self.nodes.remove(&ino);
                self.free.push(ino);
                W::new(77).done()
            }
            74 => {
                let od = fid_ino(self, r.u32())?;
                let on = r.s();
                let nd = fid_ino(self, r.u32())?;
                let nn = r.s();
                let ino = self.dir(od)?.remove(&on).ok_or(2u32)?;
                self.dir(nd)?.insert(nn, ino);
                W::new(75).done()
            }
            8 => W::new(9).u32(0).u32(4096).u64(1000).u64(900).u64(900).u64(0).u64(0).u64(0).u32(255).done(),
            _ => return Err(95),
        })
    }
}

struct Fake(Arc<std::sync::Mutex<Server>>);

impl Transport for Fake {
    fn rpc(&mut self, req: &[u8], resp: &mut [u8]) -> Result<usize, P9Error> {
        let mut s = self.0.lock().unwrap();
        let out = match s.handle(req) {
            Ok(v) => v,
            Err(e) => W::new(7).u32(e).done(),
        };
        resp[..out.len()].copy_from_slice(&out);
        Ok(out.len())
    }
}

fn mounted(readonly: bool) -> Vfs {
    let server = Arc::new(std::sync::Mutex::new(Server::new()));
    let fs = P9Fs::new(Fake(server), readonly).unwrap();
    let vfs = Vfs::new(Arc::new(keel_vfs::MemFs::new(1 << 20, || 0)));
    vfs.mount("/host", Arc::new(fs)).unwrap();
    vfs
}

fn write(vfs: &Vfs, path: &str, data: &[u8]) -> Result<(), Error> {
    let mut h = vfs.open("/", path, OpenOptions::write_new(), false)?;
    h.write(data).map(|_| ())
}

fn read(vfs: &Vfs, path: &str) -> Vec<u8> {
    let mut h = vfs.open("/", path, OpenOptions::read(), false).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 3];
    loop {
        let n = h.read(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn files_and_directories_round_trip() {
    let vfs = mounted(false);
    vfs.mkdir("/", "/host/d", false).unwrap();
    write(&vfs, "/host/d/a.txt", b"hello over 9p").unwrap();
    assert_eq!(read(&vfs, "/host/d/a.txt"), b"hello over 9p");
    let mut h = vfs.open("/", "/host/d/a.txt", OpenOptions::append(), false).unwrap();
    h.write(b"!").unwrap();
    drop(h);
    assert_eq!(vfs.stat("/", "/host/d/a.txt", Lookup::FOLLOW).unwrap().size, 14);
    let names: Vec<String> = vfs.readdir("/", "/host/d", false).unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["a.txt"]);
    vfs.rename("/", "/host/d/a.txt", "/", "/host/b.txt", false).unwrap();
    assert_eq!(vfs.stat("/", "/host/d/a.txt", Lookup::FOLLOW).err(), Some(Error::NotFound));
    assert_eq!(vfs.rmdir("/", "/host", false).err(), Some(Error::Busy));
    vfs.rmdir("/", "/host/d", false).unwrap();
    assert_eq!(vfs.readdir("/", "/host", false).unwrap().len(), 1);
}

#[test]
fn reused_inode_numbers_do_not_confuse_it() {
    let vfs = mounted(false);
    write(&vfs, "/host/old", b"old").unwrap();
    assert_eq!(read(&vfs, "/host/old"), b"old");
    vfs.unlink("/", "/host/old", false).unwrap();
    // The server hands the freed inode number to the next file.
    vfs.mkdir("/", "/host/newdir", false).unwrap();
    write(&vfs, "/host/newdir/f", b"new").unwrap();
    assert_eq!(read(&vfs, "/host/newdir/f"), b"new");
    assert_eq!(vfs.stat("/", "/host/newdir", Lookup::FOLLOW).unwrap().kind, FileType::Dir);
}

#[test]
fn symlinks_are_resolved_by_keel_and_stay_inside() {
    let vfs = mounted(false);
    write(&vfs, "/host/t", b"target").unwrap();
    vfs.symlink("t", "/", "/host/rel", false).unwrap();
    vfs.symlink("/etc/passwd", "/", "/host/abs", false).unwrap();
    assert_eq!(read(&vfs, "/host/rel"), b"target");
    assert_eq!(vfs.stat("/", "/host/abs", Lookup::FOLLOW).err(), Some(Error::NotFound));
    assert_eq!(vfs.readlink("/", "/host/abs", false).unwrap(), "/etc/passwd");
    let c = Lookup { follow: true, confine: true };
    assert_eq!(vfs.resolve("/host", "../tmp", c).err(), Some(Error::Escape));
}

#[test]
fn host_errors_map_and_read_only_holds() {
    let vfs = mounted(false);
    assert_eq!(vfs.stat("/", "/host/missing", Lookup::FOLLOW).err(), Some(Error::NotFound));
    vfs.mkdir("/", "/host/full", false).unwrap();
    write(&vfs, "/host/full/x", b"1").unwrap();
    assert_eq!(vfs.rmdir("/", "/host/full", false).err(), Some(Error::NotEmpty));
    let ro = mounted(true);
    assert_eq!(write(&ro, "/host/y", b"no").err(), Some(Error::ReadOnly));
    assert_eq!(ro.mkdir("/", "/host/z", false).err(), Some(Error::ReadOnly));
    let info = ro.mounts().into_iter().find(|m| m.0 == "/host").unwrap().1;
    assert!(info.readonly);
    assert_eq!(info.kind, "9p");
}
