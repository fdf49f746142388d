//! Artefacts: native code for one WASM module, made by Keel's build on the host and run by the
//! kernel in ring 0. The kernel runs only artefacts its own build made: each is sealed with an
//! HMAC-SHA-256 under a key generated for the build and baked into the kernel image, and names
//! the module it was compiled from by length and SHA-256.
//!
//! Layout (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `KEELAOT1` |
//! | 8 | length of the WASM module |
//! | 32 | SHA-256 of the WASM module |
//! | 8 | length of the code |
//! | 32 | HMAC-SHA-256 over everything above (but itself) and the code |
//! | n | the code (wasmtime's serialized module) |
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The first bytes of every artefact.
pub const MAGIC: [u8; 8] = *b"KEELAOT1";
/// Bytes of the key.
pub const KEY_LEN: usize = 32;
/// Bytes before the code.
pub const HEADER_LEN: usize = 8 + 8 + 32 + 8 + 32;
/// The file name extension of artefacts (as wasmtime's own precompiled modules).
pub const EXTENSION: &str = "cwasm";

const MAC_AT: usize = 8 + 8 + 32 + 8;

/// Why an artefact is not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No key in this kernel (built without one): nothing can be checked.
    NoKey,
    /// Not a Keel artefact at all (another format, e.g. wasmtime's own `.cwasm`).
    Foreign,
    /// Shorter than its header says.
    Truncated,
    /// The seal does not match: changed after it was made, or made by another build.
    Forged,
    /// Sealed by this build, but for another module (the module changed since).
    Stale,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refused::NoKey => "this kernel was built without an artefact key",
            Refused::Foreign => "not a Keel artefact",
            Refused::Truncated => "truncated",
            Refused::Forged => "not made by this build of Keel (changed since, or sealed with another build's key)",
            Refused::Stale => "made from another version of the module (rebuild or recompile it)",
        })
    }
}

fn mac(key: &[u8; KEY_LEN]) -> Hmac<Sha256> {
    // An HMAC takes keys of any length: this cannot fail.
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts every key length"),
    }
}

/// The SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Seals `code`, compiled from `wasm`, with `key`.
pub fn seal(key: &[u8; KEY_LEN], wasm: &[u8], code: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + code.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(wasm.len() as u64).to_le_bytes());
    out.extend_from_slice(&sha256(wasm));
    out.extend_from_slice(&(code.len() as u64).to_le_bytes());
    let mut m = mac(key);
    m.update(&out);
    m.update(code);
    out.extend_from_slice(&m.finalize().into_bytes());
    out.extend_from_slice(code);
    out
}

/// A sealed artefact whose seal was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    /// Length of the module it was compiled from.
    pub wasm_len: u64,
    /// SHA-256 of that module.
    pub wasm_sha256: [u8; 32],
    /// The native code.
    pub code: &'a [u8],
}

impl Opened<'_> {
    /// Whether `wasm` is the module this was compiled from.
    pub fn is_for(&self, wasm: &[u8]) -> bool {
        wasm.len() as u64 == self.wasm_len && sha256(wasm) == self.wasm_sha256
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Checks the seal of `artefact` with `key` (None: the kernel has none) and returns its code.
/// Exactly the bytes [`seal`] wrote, with the same key, pass: a trailing byte is refused too.
pub fn open<'a>(key: Option<&[u8; KEY_LEN]>, artefact: &'a [u8]) -> Result<Opened<'a>, Refused> {
    let key = key.ok_or(Refused::NoKey)?;
    if artefact.len() < MAGIC.len() || artefact[..MAGIC.len()] != MAGIC {
        return Err(if MAGIC.starts_with(artefact) { Refused::Truncated } else { Refused::Foreign });
    }
    if artefact.len() < HEADER_LEN {
        return Err(Refused::Truncated);
    }
    let code_len = u64_at(artefact, MAC_AT - 8);
    let code = &artefact[HEADER_LEN..];
    if (code.len() as u64) < code_len {
        return Err(Refused::Truncated);
    }
    if code.len() as u64 != code_len {
        return Err(Refused::Forged);
    }
    let mut m = mac(key);
    m.update(&artefact[..MAC_AT]);
    m.update(code);
    m.verify_slice(&artefact[MAC_AT..HEADER_LEN]).map_err(|_| Refused::Forged)?;
    let mut wasm_sha256 = [0u8; 32];
    wasm_sha256.copy_from_slice(&artefact[16..48]);
    Ok(Opened { wasm_len: u64_at(artefact, 8), wasm_sha256, code })
}

/// Checks `artefact` and that it was compiled from `wasm`; returns the code.
pub fn open_for<'a>(key: Option<&[u8; KEY_LEN]>, artefact: &'a [u8], wasm: &[u8]) -> Result<&'a [u8], Refused> {
    let opened = open(key, artefact)?;
    if opened.is_for(wasm) {
        Ok(opened.code)
    } else {
        Err(Refused::Stale)
    }
}

/// Parses a key written as 64 hex digits (what the build passes to the kernel).
pub fn parse_key(hex: &str) -> Option<[u8; KEY_LEN]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != KEY_LEN * 2 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    let mut key = [0u8; KEY_LEN];
    for (i, k) in key.iter_mut().enumerate() {
        *k = (digit(hex[2 * i])? * 16 + digit(hex[2 * i + 1])?) as u8;
    }
    Some(key)
}
