//! The one-shot run protocol between `cargo xtask wasm` on the host and Keel.
//!
//! The host boots a fresh Keel with `keel.job=PATH` on the kernel command line; PATH names a
//! [job description](encode_job) on a read-only 9P share. Keel runs that one `wasm` command and
//! powers off. The program's stdio travels over the second serial port (COM2) in
//! [frames](Frame): one byte of kind, two bytes of length (little endian), the payload. Framing
//! keeps stdout, stderr and the exit status apart on one channel, carries binary data unchanged,
//! and gives stdin an end (a serial line has no end-of-file of its own).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Largest payload of one frame.
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Host to guest: bytes for the program's stdin.
    Stdin = 0,
    /// Host to guest: stdin has ended (empty payload).
    StdinEnd = 1,
    /// Guest to host: bytes the program wrote to stdout.
    Stdout = 2,
    /// Guest to host: bytes the program (or Keel, about it) wrote to stderr.
    Stderr = 3,
    /// Guest to host: the exit status, an `i32` little endian. The last frame of a run.
    Exit = 4,
    /// Guest to host: the channel is set up; the host may send stdin from now on (bytes sent
    /// before the guest initialises its UART could be lost).
    Ready = 5,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::Stdin,
            1 => Kind::StdinEnd,
            2 => Kind::Stdout,
            3 => Kind::Stderr,
            4 => Kind::Exit,
            5 => Kind::Ready,
            _ => return None,
        })
    }
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub payload: Vec<u8>,
}

/// Appends `data` as frames of `kind` (split at [`MAX_PAYLOAD`]; an empty `data` gives one empty
/// frame).
pub fn encode(kind: Kind, data: &[u8], out: &mut Vec<u8>) {
    let mut chunks = data.chunks(MAX_PAYLOAD).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[kind as u8, 0, 0]);
        return;
    }
    for chunk in chunks {
        out.push(kind as u8);
        out.extend_from_slice(&(chunk.len() as u16).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

/// A byte that cannot start a frame: the channel is out of step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadKind(pub u8);

impl fmt::Display for BadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job channel: unknown frame kind {:#04x}", self.0)
    }
}

/// Decodes frames from a byte stream fed in pieces of any size.
#[derive(Debug, Default)]
pub struct Decoder {
    header: [u8; 3],
    have: usize,
    payload: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`, calling `frame` for each complete frame.
    pub fn feed(&mut self, bytes: &[u8], mut frame: impl FnMut(Frame)) -> Result<(), BadKind> {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.have < 3 {
                self.header[self.have] = rest[0];
                rest = &rest[1..];
                if self.have == 0 && Kind::from_byte(self.header[0]).is_none() {
                    return Err(BadKind(self.header[0]));
                }
                self.have += 1;
            } else {
                let want = self.len() - self.payload.len();
                let take = want.min(rest.len());
                self.payload.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
            }
            if self.have == 3 && self.payload.len() == self.len() {
                let kind = Kind::from_byte(self.header[0]).ok_or(BadKind(self.header[0]))?;
                frame(Frame { kind, payload: core::mem::take(&mut self.payload) });
                self.have = 0;
            }
        }
        Ok(())
    }

    fn len(&self) -> usize {
        u16::from_le_bytes([self.header[1], self.header[2]]) as usize
    }
}

/// Why a job description could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobError {
    /// The first line is not the expected magic.
    NotAJob,
    /// Line N (1-based) is not an even-length hex string.
    BadHex(usize),
    /// An argument is not UTF-8 (Keel's WASI keeps arguments as strings).
    NotUtf8(usize),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::NotAJob => f.write_str("not a Keel job description (missing 'keel-job 1')"),
            JobError::BadHex(n) => write!(f, "job description line {n}: not hex"),
            JobError::NotUtf8(n) => write!(f, "job description line {n}: argument is not UTF-8"),
        }
    }
}

const MAGIC: &str = "keel-job 1";

/// Writes a job: the arguments of one `wasm` command (options, file, program arguments), one
/// per line in hex, so that any byte (a newline in an environment value) survives.
pub fn encode_job(argv: &[String]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::from(MAGIC);
    s.push('\n');
    for a in argv {
        for b in a.bytes() {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s.push('\n');
    }
    s
}

/// Reads a job written by [`encode_job`].
pub fn decode_job(text: &str) -> Result<Vec<String>, JobError> {
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(JobError::NotAJob);
    }
    let mut argv = Vec::new();
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        let hex = line.as_bytes();
        if hex.len() % 2 != 0 {
            return Err(JobError::BadHex(n));
        }
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8).ok_or(JobError::BadHex(n));
        let mut bytes = Vec::with_capacity(hex.len() / 2);
        for pair in hex.chunks(2) {
            bytes.push(digit(pair[0])? << 4 | digit(pair[1])?);
        }
        argv.push(String::from_utf8(bytes).map_err(|_| JobError::NotUtf8(n))?);
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn decode_all(bytes: &[u8], piece: usize) -> Vec<Frame> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for chunk in bytes.chunks(piece.max(1)) {
            d.feed(chunk, |f| out.push(f)).unwrap();
        }
        out
    }

    #[test]
    fn frames_round_trip_in_pieces_of_any_size() {
        let mut wire = Vec::new();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        encode(Kind::Stdout, b"hello\r\n\0\xff", &mut wire);
        encode(Kind::Stderr, &big, &mut wire);
        encode(Kind::StdinEnd, &[], &mut wire);
        encode(Kind::Exit, &(-3i32).to_le_bytes(), &mut wire);
        for piece in [1, 2, 3, 5, 4096, wire.len()] {
            let frames = decode_all(&wire, piece);
            assert_eq!(frames[0], Frame { kind: Kind::Stdout, payload: b"hello\r\n\0\xff".to_vec() });
            let stderr: Vec<u8> =
                frames.iter().filter(|f| f.kind == Kind::Stderr).flat_map(|f| f.payload.clone()).collect();
            assert_eq!(stderr, big);
            assert_eq!(frames.iter().filter(|f| f.kind == Kind::Stderr).count(), 4);
            assert_eq!(frames[frames.len() - 2], Frame { kind: Kind::StdinEnd, payload: vec![] });
            assert_eq!(frames[frames.len() - 1].payload, (-3i32).to_le_bytes());
        }
    }

    #[test]
    fn a_stray_byte_is_an_error() {
        assert_eq!(Decoder::new().feed(b"\x09", |_| {}), Err(BadKind(9)));
    }

    #[test]
    fn jobs_keep_every_byte() {
        let argv: Vec<String> =
            ["--env", "c=new\nline", "--dir", "/job/d0::/", "a b", "", "é\t\\"].iter().map(|s| s.to_string()).collect();
        let text = encode_job(&argv);
        assert_eq!(text.lines().count(), argv.len() + 1);
        assert_eq!(decode_job(&text).unwrap(), argv);
    }

    #[test]
    fn bad_jobs_are_refused() {
        assert_eq!(decode_job("hello\n"), Err(JobError::NotAJob));
        assert_eq!(decode_job("keel-job 1\nabc\n"), Err(JobError::BadHex(2)));
        assert_eq!(decode_job("keel-job 1\n00\nzz\n"), Err(JobError::BadHex(3)));
        assert_eq!(decode_job("keel-job 1\nff\n"), Err(JobError::NotUtf8(2)));
    }
}
