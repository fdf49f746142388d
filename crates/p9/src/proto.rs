//! 9P2000.L messages and the client.
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use keel_vfs::Error as VfsError;

/// Largest message negotiated.
pub const MSIZE: u32 = 64 * 1024 + 64;
/// "no fid".
pub const NOFID: u32 = u32::MAX;

/// Rlerror (9P2000.L error reply).
const RLERROR: u8 = 7;
const TSTATFS: u8 = 8;
const TLOPEN: u8 = 12;
const TLCREATE: u8 = 14;
const TSYMLINK: u8 = 16;
const TREADLINK: u8 = 22;
const TGETATTR: u8 = 24;
const TSETATTR: u8 = 26;
const TREADDIR: u8 = 40;
const TLINK: u8 = 70;
const TMKDIR: u8 = 72;
const TRENAMEAT: u8 = 74;
const TUNLINKAT: u8 = 76;
const TVERSION: u8 = 100;
const TATTACH: u8 = 104;
const TWALK: u8 = 110;
const TREAD: u8 = 116;
const TWRITE: u8 = 118;
const TCLUNK: u8 = 120;

/// Sends a request and receives the response (the virtio queue in the kernel).
pub trait Transport {
    /// Returns the response length.
    fn rpc(&mut self, request: &[u8], response: &mut [u8]) -> Result<usize, P9Error>;
}

/// What a 9P operation can fail with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum P9Error {
    /// The server answered Rlerror with this Linux errno.
    Errno(u32),
    /// The transport failed (device gone).
    Transport,
    /// The answer did not parse.
    Protocol,
}

/// Maps a Linux errno from the host to a VFS error.
pub fn errno_to_vfs(e: P9Error) -> VfsError {
    match e {
        P9Error::Errno(n) => match n {
            1 | 13 => VfsError::PermissionDenied,
            2 => VfsError::NotFound,
            17 => VfsError::AlreadyExists,
            18 => VfsError::CrossDevice,
            20 => VfsError::NotADirectory,
            21 => VfsError::IsADirectory,
            22 => VfsError::InvalidArgument,
            27 => VfsError::FileTooLarge,
            28 | 122 => VfsError::NoSpace,
            30 => VfsError::ReadOnly,
            36 => VfsError::NameTooLong,
            39 => VfsError::NotEmpty,
            40 => VfsError::Loop,
            95 => VfsError::NotSupported,
            116 => VfsError::Stale,
            16 => VfsError::Busy,
            _ => VfsError::Io,
        },
        _ => VfsError::Io,
    }
}

/// A 9P qid: the server's identity of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Qid {
    pub kind: u8,
    pub version: u32,
    pub path: u64,
}

/// File attributes from Rgetattr.
#[derive(Clone, Copy, Debug, Default)]
pub struct Attr {
    pub qid: Qid,
    pub mode: u32,
    pub nlink: u64,
    pub size: u64,
    pub atime: (u64, u64),
    pub mtime: (u64, u64),
    pub ctime: (u64, u64),
}

/// One Rreaddir entry.
#[derive(Clone, Debug)]
pub struct Dirent {
    pub qid: Qid,
    pub offset: u64,
    pub kind: u8,
    pub name: String,
}

/// Filesystem figures from Rstatfs.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatFs {
    pub bsize: u32,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
}

struct Msg(Vec<u8>);

impl Msg {
    fn new(kind: u8) -> Msg {
        let mut v = vec![0, 0, 0, 0, kind];
        v.extend_from_slice(&1u16.to_le_bytes());
        Msg(v)
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn str(mut self, s: &str) -> Self {
        let b = s.as_bytes();
        let n = b.len().min(u16::MAX as usize);
        self.0.extend_from_slice(&(n as u16).to_le_bytes());
        self.0.extend_from_slice(&b[..n]);
        self
    }
    fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn finish(mut self) -> Vec<u8> {
        let n = self.0.len() as u32;
        self.0[..4].copy_from_slice(&n.to_le_bytes());
        self.0
    }
}

/// Reads fields of a response.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], P9Error> {
        let end = self.pos.checked_add(n).ok_or(P9Error::Protocol)?;
        let s = self.b.get(self.pos..end).ok_or(P9Error::Protocol)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, P9Error> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, P9Error> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, P9Error> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, P9Error> {
        let s = self.take(8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(s);
        Ok(u64::from_le_bytes(b))
    }
    fn str(&mut self) -> Result<String, P9Error> {
        let n = self.u16()? as usize;
        let s = self.take(n)?;
        Ok(String::from(core::str::from_utf8(s).map_err(|_| P9Error::Protocol)?))
    }
    fn qid(&mut self) -> Result<Qid, P9Error> {
        Ok(Qid { kind: self.u8()?, version: self.u32()?, path: self.u64()? })
    }
}

/// A 9P2000.L client.
pub struct Client<T: Transport> {
    t: T,
    buf: Vec<u8>,
    msize: u32,
}

impl<T: Transport> Client<T> {
    /// Negotiates the version and message size.
    pub fn new(t: T) -> Result<Client<T>, P9Error> {
        let mut c = Client { t, buf: vec![0; MSIZE as usize], msize: MSIZE };
        let req = Msg::new(TVERSION).u32(MSIZE).str("9P2000.L").finish();
        let mut r = c.call(&req, TVERSION + 1)?;
        let msize = r.u32()?;
        let version = r.str()?;
        if version != "9P2000.L" {
            return Err(P9Error::Protocol);
        }
        c.msize = msize.min(MSIZE);
        Ok(c)
    }

    /// Bytes of payload one read or write may carry.
    pub fn iounit(&self) -> u32 {
        self.msize - 64
    }

    fn call(&mut self, req: &[u8], want: u8) -> Result<Reader<'_>, P9Error> {
        let n = self.t.rpc(req, &mut self.buf)?;
        let b = self.buf.get(..n).ok_or(P9Error::Protocol)?;
        if b.len() < 7 {
            return Err(P9Error::Protocol);
        }
        let size = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let b = b.get(..size.min(b.len())).ok_or(P9Error::Protocol)?;
        let mut r = Reader { b, pos: 7 };
        match b[4] {
            RLERROR => Err(P9Error::Errno(r.u32()?)),
            k if k == want => Ok(r),
            _ => Err(P9Error::Protocol),
        }
    }

    pub fn attach(&mut self, fid: u32, aname: &str) -> Result<Qid, P9Error> {
        let req = Msg::new(TATTACH).u32(fid).u32(NOFID).str("root").str(aname).u32(0).finish();
        self.call(&req, TATTACH + 1)?.qid()
    }

    /// Walks `names` (zero names clones the fid).
    pub fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Result<Vec<Qid>, P9Error> {
        let mut m = Msg::new(TWALK).u32(fid).u32(newfid).u16(names.len() as u16);
        for n in names {
            m = m.str(n);
        }
        let req = m.finish();
        let mut r = self.call(&req, TWALK + 1)?;
        let n = r.u16()?;
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(r.qid()?);
        }
        if v.len() != names.len() {
            // A partial walk leaves newfid unused; report the missing name.
            return Err(P9Error::Errno(2));
        }
        Ok(v)
    }

    pub fn lopen(&mut self, fid: u32, flags: u32) -> Result<Qid, P9Error> {
        let req = Msg::new(TLOPEN).u32(fid).u32(flags).finish();
        self.call(&req, TLOPEN + 1)?.qid()
    }

    pub fn lcreate(&mut self, fid: u32, name: &str, flags: u32, mode: u32) -> Result<Qid, P9Error> {
        let req = Msg::new(TLCREATE).u32(fid).str(name).u32(flags).u32(mode).u32(0).finish();
        self.call(&req, TLCREATE + 1)?.qid()
    }

    pub fn mkdir(&mut self, dfid: u32, name: &str, mode: u32) -> Result<Qid, P9Error> {
        let req = Msg::new(TMKDIR).u32(dfid).str(name).u32(mode).u32(0).finish();
        self.call(&req, TMKDIR + 1)?.qid()
    }

    pub fn symlink(&mut self, dfid: u32, name: &str, target: &str) -> Result<Qid, P9Error> {
        let req = Msg::new(TSYMLINK).u32(dfid).str(name).str(target).u32(0).finish();
        self.call(&req, TSYMLINK + 1)?.qid()
    }

    pub fn link(&mut self, dfid: u32, fid: u32, name: &str) -> Result<(), P9Error> {
        let req = Msg::new(TLINK).u32(dfid).u32(fid).str(name).finish();
        self.call(&req, TLINK + 1).map(|_| ())
    }

    pub fn readlink(&mut self, fid: u32) -> Result<String, P9Error> {
        let req = Msg::new(TREADLINK).u32(fid).finish();
        self.call(&req, TREADLINK + 1)?.str()
    }

    pub fn read(&mut self, fid: u32, offset: u64, out: &mut [u8]) -> Result<usize, P9Error> {
        let count = (out.len() as u32).min(self.iounit());
        let req = Msg::new(TREAD).u32(fid).u64(offset).u32(count).finish();
        let mut r = self.call(&req, TREAD + 1)?;
        let n = r.u32()? as usize;
        let data = r.take(n)?;
        let n = n.min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    pub fn write(&mut self, fid: u32, offset: u64, data: &[u8]) -> Result<usize, P9Error> {
        let n = data.len().min(self.iounit() as usize);
        let req = Msg::new(TWRITE).u32(fid).u64(offset).u32(n as u32).bytes(&data[..n]).finish();
        Ok(self.call(&req, TWRITE + 1)?.u32()? as usize)
    }

    pub fn clunk(&mut self, fid: u32) -> Result<(), P9Error> {
        let req = Msg::new(TCLUNK).u32(fid).finish();
        self.call(&req, TCLUNK + 1).map(|_| ())
    }

    pub fn getattr(&mut self, fid: u32) -> Result<Attr, P9Error> {
        let req = Msg::new(TGETATTR).u32(fid).u64(0x3fff).finish();
        let mut r = self.call(&req, TGETATTR + 1)?;
        let _valid = r.u64()?;
        let qid = r.qid()?;
        let mode = r.u32()?;
        let _uid = r.u32()?;
        let _gid = r.u32()?;
        let nlink = r.u64()?;
        let _rdev = r.u64()?;
        let size = r.u64()?;
        let _blksize = r.u64()?;
        let _blocks = r.u64()?;
        let atime = (r.u64()?, r.u64()?);
        let mtime = (r.u64()?, r.u64()?);
        let ctime = (r.u64()?, r.u64()?);
        Ok(Attr { qid, mode, nlink, size, atime, mtime, ctime })
    }

    /// Sets attributes: `valid` is the Tsetattr mask (size 0x8, atime 0x10, mtime 0x20,
    /// atime_set 0x80, mtime_set 0x100).
    pub fn setattr(
        &mut self,
        fid: u32,
        valid: u32,
        size: u64,
        atime: (u64, u64),
        mtime: (u64, u64),
    ) -> Result<(), P9Error> {
        let req = Msg::new(TSETATTR)
            .u32(fid)
            .u32(valid)
            .u32(0)
            .u32(0)
            .u32(0)
            .u64(size)
            .u64(atime.0)
            .u64(atime.1)
            .u64(mtime.0)
            .u64(mtime.1)
            .finish();
        self.call(&req, TSETATTR + 1).map(|_| ())
    }

    pub fn readdir(&mut self, fid: u32, offset: u64) -> Result<Vec<Dirent>, P9Error> {
        let req = Msg::new(TREADDIR).u32(fid).u64(offset).u32(self.iounit()).finish();
        let mut r = self.call(&req, TREADDIR + 1)?;
        let n = r.u32()? as usize;
        let data = r.take(n)?;
        let mut d = Reader { b: data, pos: 0 };
        let mut out = Vec::new();
        while d.pos < data.len() {
            let qid = d.qid()?;
            let offset = d.u64()?;
            let kind = d.u8()?;
            let name = d.str()?;
            out.push(Dirent { qid, offset, kind, name });
        }
        Ok(out)
    }

    pub fn renameat(&mut self, olddir: u32, old: &str, newdir: u32, new: &str) -> Result<(), P9Error> {
        let req = Msg::new(TRENAMEAT).u32(olddir).str(old).u32(newdir).str(new).finish();
        self.call(&req, TRENAMEAT + 1).map(|_| ())
    }

    pub fn unlinkat(&mut self, dfid: u32, name: &str, flags: u32) -> Result<(), P9Error> {
        let req = Msg::new(TUNLINKAT).u32(dfid).str(name).u32(flags).finish();
        self.call(&req, TUNLINKAT + 1).map(|_| ())
    }

    pub fn statfs(&mut self, fid: u32) -> Result<StatFs, P9Error> {
        let req = Msg::new(TSTATFS).u32(fid).finish();
        let mut r = self.call(&req, TSTATFS + 1)?;
        let _type = r.u32()?;
        let bsize = r.u32()?;
        let blocks = r.u64()?;
        let bfree = r.u64()?;
        let bavail = r.u64()?;
        Ok(StatFs { bsize, blocks, bfree, bavail })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers from a script: checks each request's type, replies with canned bytes.
    struct Script(Vec<(u8, Vec<u8>)>);

    impl Transport for Script {
        fn rpc(&mut self, req: &[u8], resp: &mut [u8]) -> Result<usize, P9Error> {
            let size = u32::from_le_bytes([req[0], req[1], req[2], req[3]]) as usize;
            assert_eq!(size, req.len(), "size field");
            let (want, body) = self.0.remove(0);
            assert_eq!(req[4], want, "request type");
            let mut m = vec![0, 0, 0, 0, body[0], 1, 0];
            m.extend_from_slice(&body[1..]);
            let n = m.len() as u32;
            m[..4].copy_from_slice(&n.to_le_bytes());
            resp[..m.len()].copy_from_slice(&m);
            Ok(m.len())
        }
    }

    fn rversion() -> (u8, Vec<u8>) {
        let mut b = vec![TVERSION + 1];
        b.extend_from_slice(&8192u32.to_le_bytes());
        b.extend_from_slice(&8u16.to_le_bytes());
        b.extend_from_slice(b"9P2000.L");
        (TVERSION, b)
    }

    fn qid(path: u64) -> Vec<u8> {
        let mut b = vec![0x80];
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&path.to_le_bytes());
        b
    }

    #[test]
    fn version_attach_walk_read_and_errors() {
        let mut rattach = vec![TATTACH + 1];
        rattach.extend(qid(1));
        let mut rwalk = vec![TWALK + 1];
        rwalk.extend_from_slice(&1u16.to_le_bytes());
        rwalk.extend(qid(42));
        let mut rread = vec![TREAD + 1];
        rread.extend_from_slice(&5u32.to_le_bytes());
        rread.extend_from_slice(b"hello");
        let mut rerr = vec![RLERROR];
        rerr.extend_from_slice(&2u32.to_le_bytes());
        let script = Script(vec![rversion(), (TATTACH, rattach), (TWALK, rwalk), (TREAD, rread), (TWALK, rerr)]);
        let mut c = Client::new(script).unwrap();
        assert_eq!(c.iounit(), 8192 - 64);
        assert_eq!(c.attach(0, "").unwrap().path, 1);
        assert_eq!(c.walk(0, 1, &["a.txt"]).unwrap()[0].path, 42);
        let mut buf = [0u8; 16];
        assert_eq!(c.read(1, 0, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(c.walk(0, 2, &["nope"]), Err(P9Error::Errno(2)));
        assert_eq!(errno_to_vfs(P9Error::Errno(2)), VfsError::NotFound);
        assert_eq!(errno_to_vfs(P9Error::Errno(28)), VfsError::NoSpace);
        assert_eq!(errno_to_vfs(P9Error::Errno(13)), VfsError::PermissionDenied);
    }

    #[test]
    fn garbage_answers_are_protocol_errors() {
        struct Bad;
        impl Transport for Bad {
            fn rpc(&mut self, _: &[u8], resp: &mut [u8]) -> Result<usize, P9Error> {
                resp[..9].copy_from_slice(&[200, 0, 0, 0, TVERSION + 1, 1, 0, 0xff, 0xff]);
                Ok(9)
            }
        }
        assert!(matches!(Client::new(Bad), Err(P9Error::Protocol)));
    }
}
