//! Reads the tar archive that carries `extra_files/` into Keel.
//!
//! The archive is written on the host by the `tar` crate (ustar headers, GNU `L` records for
//! long names, PAX `path`/`linkpath`/`size` records). This reader validates everything a hostile
//! or damaged archive could get wrong (checksums, octal fields, sizes past the end, `..` or
//! absolute names, duplicate entries, bad UTF-8) and reports it as an [`Error`]; it never panics
//! and never copies file contents: entries point into the archive bytes.
//!
//! (`tar-no-std` was considered; it yields neither directories nor names over 256 bytes, which
//! Keel needs for empty directories and arbitrary nesting.)
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

const BLOCK: usize = 512;
/// Longest path accepted (bytes).
pub const MAX_PATH: usize = 4096;

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file; its contents are `archive[range]`.
    File(Range<usize>),
    Dir,
    Symlink(String),
}

/// One member of the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Normalised relative path: components separated by `/`, no `.`/`..`, no leading `/`.
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: u64,
}

/// Why an archive was rejected. `offset` is the byte offset of the offending header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The archive ends in the middle of a header or of a member's data.
    Truncated { offset: usize },
    /// A header's checksum does not match.
    BadChecksum { offset: usize },
    /// A numeric field is not valid octal (or base-256).
    BadNumber { offset: usize, field: &'static str },
    /// A member name is dangerous or malformed (absolute, `..`, empty, NUL, not UTF-8, too long).
    BadPath { offset: usize, reason: &'static str },
    /// A member type Keel does not serve (devices, FIFOs, hard links, sparse files).
    Unsupported { offset: usize, typeflag: u8 },
    /// Two members with the same path, or a path below a file.
    Conflict { offset: usize },
    /// A PAX extended header is malformed.
    BadPax { offset: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { offset } => write!(f, "archive truncated (header at byte {offset})"),
            Error::BadChecksum { offset } => write!(f, "bad header checksum at byte {offset}"),
            Error::BadNumber { offset, field } => {
                write!(f, "bad {field} field in header at byte {offset}")
            }
            Error::BadPath { offset, reason } => {
                write!(f, "bad member name at byte {offset}: {reason}")
            }
            Error::Unsupported { offset, typeflag } => {
                write!(f, "unsupported member type '{}' at byte {offset}", char::from(*typeflag))
            }
            Error::Conflict { offset } => {
                write!(f, "duplicate or conflicting member at byte {offset}")
            }
            Error::BadPax { offset } => write!(f, "malformed PAX header at byte {offset}"),
        }
    }
}

/// Parses a numeric header field: NUL/space-terminated octal, or GNU base-256.
fn number(field: &[u8], offset: usize, name: &'static str) -> Result<u64, Error> {
    let err = Error::BadNumber { offset, field: name };
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // Base-256: big-endian, first byte's top bit is the marker (negative values rejected).
        if field[0] & 0x40 != 0 {
            return Err(err);
        }
        let mut v: u64 = u64::from(field[0] & 0x3f);
        for &b in &field[1..] {
            v = v.checked_mul(256).and_then(|v| v.checked_add(u64::from(b))).ok_or(err.clone())?;
        }
        return Ok(v);
    }
    let mut v: u64 = 0;
    let mut seen_digit = false;
    let mut ended = false;
    for &b in field {
        match b {
            b'0'..=b'7' if !ended => {
                seen_digit = true;
                v = v.checked_mul(8).and_then(|v| v.checked_add(u64::from(b - b'0'))).ok_or(err.clone())?;
            }
            b' ' if !seen_digit => {}
            0 | b' ' => ended = true,
            _ => return Err(err),
        }
    }
    Ok(v)
}

fn cstr(field: &[u8]) -> &[u8] {
    let n = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..n]
}

/// Normalises a member name; rejects anything that could leave the archive's root.
fn clean_path(raw: &[u8], offset: usize) -> Result<String, Error> {
    let bad = |reason| Error::BadPath { offset, reason };
    if raw.len() > MAX_PATH {
        return Err(bad("longer than 4096 bytes"));
    }
    if raw.contains(&0) {
        return Err(bad("contains NUL"));
    }
    let s = core::str::from_utf8(raw).map_err(|_| bad("not UTF-8"))?;
    if s.starts_with('/') {
        return Err(bad("absolute path"));
    }
    let mut out = String::new();
    for comp in s.split('/') {
        match comp {
            "" | "." => {}
            ".." => return Err(bad("contains '..'")),
            c => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(c);
            }
        }
    }
    Ok(out)
}

fn is_zero_block(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// Overrides from a PAX header: path, link target, size.
type PaxOverrides = (Option<Vec<u8>>, Option<Vec<u8>>, Option<u64>);

/// Parses PAX records (`LEN key=value\n`), returning (path, linkpath, size) overrides.
fn parse_pax(data: &[u8], offset: usize) -> Result<PaxOverrides, Error> {
    let err = Error::BadPax { offset };
    let (mut path, mut link, mut size) = (None, None, None);
    let mut rest = data;
    while !rest.is_empty() {
        if is_zero_block(rest) {
            break;
        }
        let sp = rest.iter().position(|&b| b == b' ').ok_or(err.clone())?;
        let len: usize = core::str::from_utf8(&rest[..sp]).ok().and_then(|s| s.parse().ok()).ok_or(err.clone())?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(err);
        }
        let record = &rest[sp + 1..len - 1];
        let eq = record.iter().position(|&b| b == b'=').ok_or(err.clone())?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => path = Some(value.to_vec()),
            b"linkpath" => link = Some(value.to_vec()),
            b"size" => {
                let s = core::str::from_utf8(value).ok().and_then(|s| s.parse::<u64>().ok()).ok_or(err.clone())?;
                size = Some(s);
            }
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok((path, link, size))
}

/// Reads every member of a tar archive. Directories implied by file paths are added, so the
/// result describes a complete tree. An empty input is an empty archive.
pub fn parse(archive: &[u8]) -> Result<Vec<Entry>, Error> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut pos = 0usize;
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax_size: Option<u64> = None;
    while pos < archive.len() {
        let offset = pos;
        let header = archive.get(pos..pos + BLOCK).ok_or(Error::Truncated { offset })?;
        if is_zero_block(header) {
            // End of archive (one or two zero blocks; anything after is padding).
            break;
        }
        // Checksum: sum of all bytes with the checksum field counted as spaces.
        let stored = number(&header[148..156], offset, "checksum")?;
        let sum: u64 =
            header.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u64::from(b) }).sum();
        if stored != sum {
            return Err(Error::BadChecksum { offset });
        }
        let typeflag = header[156];
        let mut size = number(&header[124..136], offset, "size")?;
        if let Some(s) = pax_size.take() {
            size = s;
        }
        let mode = number(&header[100..108], offset, "mode")? as u32;
        let mtime = number(&header[136..148], offset, "mtime")?;
        let data_start = pos + BLOCK;
        let size_usize = usize::try_from(size).map_err(|_| Error::Truncated { offset })?;
        let data_end = data_start.checked_add(size_usize).ok_or(Error::Truncated { offset })?;
        if data_end > archive.len() {
            return Err(Error::Truncated { offset });
        }
        let padded = size_usize.div_ceil(BLOCK).checked_mul(BLOCK).ok_or(Error::Truncated { offset })?;
        let next = data_start.checked_add(padded).ok_or(Error::Truncated { offset })?;
        let data = &archive[data_start..data_end];

        let ustar = &header[257..263] == b"ustar\0" || &header[257..263] == b"ustar ";
        let name_raw: Vec<u8> = match long_name.take() {
            Some(n) => n,
            None => {
                let name = cstr(&header[0..100]);
                let prefix = if ustar && &header[257..263] == b"ustar\0" { cstr(&header[345..500]) } else { &[] };
                if prefix.is_empty() {
                    name.to_vec()
                } else {
                    let mut v = prefix.to_vec();
                    v.push(b'/');
                    v.extend_from_slice(name);
                    v
                }
            }
        };
        let link_raw: Vec<u8> = long_link.take().unwrap_or_else(|| cstr(&header[157..257]).to_vec());
        pos = next;
        match typeflag {
            b'L' => {
                long_name = Some(cstr(data).to_vec());
                continue;
            }
            b'K' => {
                long_link = Some(cstr(data).to_vec());
                continue;
            }
            b'x' => {
                let (p, l, s) = parse_pax(data, offset)?;
                long_name = p;
                long_link = l;
                pax_size = s;
                continue;
            }
            b'g' => continue,
            _ => {}
        }
        let path = clean_path(&name_raw, offset)?;
        let kind = match typeflag {
            b'0' | 0 | b'7' => {
                if path.is_empty() || name_raw.ends_with(b"/") {
                    return Err(Error::BadPath { offset, reason: "file name ends with '/'" });
                }
                Kind::File(data_start..data_end)
            }
            b'5' => Kind::Dir,
            b'2' => {
                let target = core::str::from_utf8(&link_raw)
                    .map_err(|_| Error::BadPath { offset, reason: "link target not UTF-8" })?;
                if target.is_empty() || target.contains('\0') {
                    return Err(Error::BadPath { offset, reason: "empty link target" });
                }
                Kind::Symlink(String::from(target))
            }
            t => return Err(Error::Unsupported { offset, typeflag: t }),
        };
        if path.is_empty() {
            // "./" itself: the root directory.
            if kind == Kind::Dir {
                continue;
            }
            return Err(Error::BadPath { offset, reason: "empty name" });
        }
        entries.push(Entry { path, kind, mode: mode & 0o7777, mtime });
        let _ = offset;
    }
    complete_tree(entries)
}

/// Adds missing parent directories, and rejects duplicates and paths below files.
fn complete_tree(mut entries: Vec<Entry>) -> Result<Vec<Entry>, Error> {
    let mut extra: Vec<Entry> = Vec::new();
    for e in &entries {
        let mut p = e.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            extra.push(Entry { path: String::from(parent), kind: Kind::Dir, mode: 0o755, mtime: e.mtime });
            p = parent;
        }
    }
    // Explicit entries first so they win over implied directories.
    let explicit = entries.len();
    entries.extend(extra);
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| entries[a].path.cmp(&entries[b].path).then(a.cmp(&b)));
    let mut keep: Vec<bool> = alloc::vec![true; entries.len()];
    for w in order.windows(2) {
        let (a, b) = (&entries[w[0]], &entries[w[1]]);
        if a.path == b.path {
            let both_explicit = w[0] < explicit && w[1] < explicit;
            let b_implied_dir = w[1] >= explicit;
            if both_explicit || (b_implied_dir && a.kind != Kind::Dir) {
                return Err(Error::Conflict { offset: 0 });
            }
            keep[w[1]] = false;
        }
    }
    let mut out: Vec<Entry> = Vec::new();
    for i in order {
        if keep[i] {
            out.push(entries[i].clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::vec;
    use std::format;
    use std::io::Cursor;

    fn build(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Deterministic);
        f(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, Cursor::new(data)).unwrap();
    }

    fn dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Directory);
        b.append_data(&mut h, path, Cursor::new(&[][..])).unwrap();
    }

    #[test]
    fn reads_files_dirs_and_contents_without_copying() {
        let ar = build(|b| {
            file(b, "a.txt", b"hello");
            dir(b, "empty");
            file(b, "wasm/deep/x.bin", &[1, 2, 3]);
        });
        let es = parse(&ar).unwrap();
        let paths: Vec<&str> = es.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec!["a.txt", "empty", "wasm", "wasm/deep", "wasm/deep/x.bin"]);
        let Kind::File(r) = &es[0].kind else { panic!() };
        assert_eq!(&ar[r.clone()], b"hello");
        assert_eq!(es[1].kind, Kind::Dir);
        assert_eq!(es[2].kind, Kind::Dir);
    }

    #[test]
    fn long_and_unicode_names() {
        let long = format!("{}/{}", "d".repeat(150), "f".repeat(200));
        let ar = build(|b| {
            file(b, &long, b"x");
            file(b, "with space/ünïcödé ✓.txt", b"y");
        });
        let es = parse(&ar).unwrap();
        assert!(es.iter().any(|e| e.path == long));
        assert!(es.iter().any(|e| e.path == "with space/ünïcödé ✓.txt"));
    }

    #[test]
    fn empty_archive_and_big_file() {
        assert_eq!(parse(&[]).unwrap(), vec![]);
        assert_eq!(parse(&[0; 1024]).unwrap(), vec![]);
        let data = vec![7u8; 3 * 1024 * 1024 + 5];
        let ar = build(|b| file(b, "big", &data));
        let es = parse(&ar).unwrap();
        let Kind::File(r) = &es[0].kind else { panic!() };
        assert_eq!(r.len(), data.len());
    }

    #[test]
    fn truncated_archives_are_errors() {
        let ar = build(|b| file(b, "a", &[9; 1000]));
        for cut in [1, 100, 511, 600, 1000, 1500] {
            assert!(matches!(parse(&ar[..cut]), Err(Error::Truncated { .. })), "cut at {cut}");
        }
    }

    #[test]
    fn wrong_checksum_is_an_error() {
        let mut ar = build(|b| file(b, "a", b"x"));
        ar[0] = b'b';
        assert_eq!(parse(&ar), Err(Error::BadChecksum { offset: 0 }));
    }

    fn raw_header(name: &[u8], typeflag: u8, size: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name);
        h[100..107].copy_from_slice(b"0000644");
        h[124..124 + size.len()].copy_from_slice(size);
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 =
            h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
        let cs = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(cs.as_bytes());
        h
    }

    #[test]
    fn hostile_names_are_rejected() {
        for (name, reason) in [
            (&b"../etc/passwd"[..], "contains '..'"),
            (b"a/../../b", "contains '..'"),
            (b"/abs", "absolute path"),
            (b"bad\xff", "not UTF-8"),
        ] {
            let mut ar = raw_header(name, b'0', b"00000000000");
            ar.extend_from_slice(&[0; 1024]);
            assert_eq!(parse(&ar), Err(Error::BadPath { offset: 0, reason }), "{name:?}");
        }
    }

    #[test]
    fn absurd_sizes_and_bad_numbers() {
        let mut ar = raw_header(b"a", b'0', b"77777777777");
        ar.extend_from_slice(&[0; 1024]);
        assert_eq!(parse(&ar), Err(Error::Truncated { offset: 0 }));
        let mut ar = raw_header(b"a", b'0', b"0000000009x");
        ar.extend_from_slice(&[0; 1024]);
        assert_eq!(parse(&ar), Err(Error::BadNumber { offset: 0, field: "size" }));
        // Base-256 size of 2^62 bytes.
        let mut h = raw_header(b"a", b'0', b"");
        h[124] = 0x80;
        h[128] = 0x40;
        let sum: u32 =
            h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert_eq!(parse(&h), Err(Error::Truncated { offset: 0 }));
    }

    #[test]
    fn unsupported_types_and_conflicts() {
        let mut ar = raw_header(b"dev", b'3', b"00000000000");
        ar.extend_from_slice(&[0; 1024]);
        assert_eq!(parse(&ar), Err(Error::Unsupported { offset: 0, typeflag: b'3' }));
        let ar = build(|b| {
            file(b, "x", b"1");
            file(b, "x", b"2");
        });
        assert!(matches!(parse(&ar), Err(Error::Conflict { .. })));
        let ar = build(|b| {
            file(b, "x", b"1");
            file(b, "x/y", b"2");
        });
        assert!(matches!(parse(&ar), Err(Error::Conflict { .. })));
    }

    #[test]
    fn symlinks_are_reported() {
        let ar = build(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "link", "target/file").unwrap();
        });
        let es = parse(&ar).unwrap();
        assert_eq!(es[0].kind, Kind::Symlink("target/file".into()));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_random_bytes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000)) {
            let _ = parse(&data);
        }

        #[test]
        fn never_panics_on_mutated_archives(flips in proptest::collection::vec((0usize..3072, proptest::prelude::any::<u8>()), 1..8), cut in 0usize..3072) {
            let mut ar = build(|b| {
                file(b, "dir/a.txt", b"hello world");
                dir(b, "empty");
                file(b, &"n".repeat(120), b"long");
            });
            for (i, v) in flips {
                let n = ar.len();
                ar[i % n] = v;
            }
            ar.truncate(cut.max(1).min(ar.len()));
            let _ = parse(&ar);
        }
    }
}
