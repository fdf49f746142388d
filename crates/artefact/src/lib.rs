//! Artefacts: native code for one WASM module, made by Keel's build on the host and run by the
//! kernel in ring 0. The kernel runs only artefacts its own build made: each is sealed with a
//! MAC under a key generated for the build and baked into the kernel image, and names the module
//! it was compiled from by length and fingerprint.
//!
//! The seal is Poly1305 under a one-time key derived for each artefact: HMAC-SHA-256(build key,
//! nonce), the nonce random per artefact (the construction of NaCl's secretbox, with HMAC as the
//! key derivation). Poly1305 is a one-time MAC: forging needs the one-time key, which needs the
//! build key; and the build never seals two artefacts under one nonce. It is chosen over
//! HMAC-SHA-256 of the whole artefact for speed: Keel checks every byte before it runs any, and
//! under emulation SHA-256 took ~190 ms per 8 MiB, Poly1305 a fifth of that.
//!
//! The module fingerprint (XXH3-128) only tells a stale artefact from a current one: it is not
//! what makes an artefact trusted (the seal is), so it need not resist a chosen collision — an
//! artefact that matches the wrong module is still code this build compiled, in the WASM sandbox.
//!
//! Layout (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `KEELAOT2` |
//! | 16 | nonce |
//! | 8 | length of the WASM module |
//! | 16 | XXH3-128 of the WASM module |
//! | 8 | length of the code |
//! | 16 | Poly1305 tag over everything above (but itself) and the code |
//! | n | the code (wasmtime's serialized module) |
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use hmac::{Hmac, Mac};
use poly1305::universal_hash::{KeyInit, UniversalHash};
use poly1305::Poly1305;
use sha2::Sha256;

/// The first bytes of every artefact.
pub const MAGIC: [u8; 8] = *b"KEELAOT2";
/// Bytes of the build's key.
pub const KEY_LEN: usize = 32;
/// Bytes of an artefact's nonce.
pub const NONCE_LEN: usize = 16;
/// Bytes before the code.
pub const HEADER_LEN: usize = 8 + NONCE_LEN + 8 + 16 + 8 + 16;
/// The file name extension of artefacts (as wasmtime's own precompiled modules).
pub const EXTENSION: &str = "cwasm";

/// Where a module's artefact lives, beside it: `prog.wasm` -> `prog.cwasm`, and any other name
/// gets `.cwasm` added (`prog` -> `prog.cwasm`). The build writes and Keel looks for this name.
pub fn artefact_path(module: &str) -> String {
    let stem = module.strip_suffix(".wasm").unwrap_or(module);
    alloc::format!("{stem}.{EXTENSION}")
}

const NONCE_AT: usize = 8;
const WASM_LEN_AT: usize = NONCE_AT + NONCE_LEN;
const PRINT_AT: usize = WASM_LEN_AT + 8;
const CODE_LEN_AT: usize = PRINT_AT + 16;
const TAG_AT: usize = CODE_LEN_AT + 8;

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

/// The one-time Poly1305 key of the artefact with this nonce.
fn one_time_mac(key: &[u8; KEY_LEN], nonce: &[u8]) -> Poly1305 {
    // An HMAC takes keys of any length: this cannot fail.
    let Ok(mut kdf) = <Hmac<Sha256> as Mac>::new_from_slice(key) else { unreachable!("HMAC accepts every key length") };
    kdf.update(b"keel artefact seal");
    kdf.update(nonce);
    let okm = kdf.finalize().into_bytes();
    Poly1305::new(&okm)
}

/// The module fingerprint: XXH3-128.
pub fn fingerprint(wasm: &[u8]) -> [u8; 16] {
    xxhash_rust::xxh3::xxh3_128(wasm).to_le_bytes()
}

/// Poly1305 over `header` (tag excluded) and `code`, each padded to whole blocks.
fn tag(mac: Poly1305, header: &[u8], code: &[u8]) -> poly1305::Block {
    let mut mac = mac;
    mac.update_padded(header);
    mac.update_padded(code);
    mac.finalize()
}

/// Seals `code`, compiled from `wasm`, with `key` and a `nonce` the build never used before (16
/// random bytes).
pub fn seal(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], wasm: &[u8], code: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + code.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&(wasm.len() as u64).to_le_bytes());
    out.extend_from_slice(&fingerprint(wasm));
    out.extend_from_slice(&(code.len() as u64).to_le_bytes());
    let t = tag(one_time_mac(key, nonce), &out, code);
    out.extend_from_slice(&t);
    out.extend_from_slice(code);
    out
}

/// A sealed artefact whose seal was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    /// Length of the module it was compiled from.
    pub wasm_len: u64,
    /// Fingerprint of that module.
    pub wasm_fingerprint: [u8; 16],
    /// The native code.
    pub code: &'a [u8],
}

impl Opened<'_> {
    /// Whether `wasm` is the module this was compiled from.
    pub fn is_for(&self, wasm: &[u8]) -> bool {
        wasm.len() as u64 == self.wasm_len && fingerprint(wasm) == self.wasm_fingerprint
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
    let code_len = u64_at(artefact, CODE_LEN_AT);
    let code = &artefact[HEADER_LEN..];
    if (code.len() as u64) < code_len {
        return Err(Refused::Truncated);
    }
    if code.len() as u64 != code_len {
        return Err(Refused::Forged);
    }
    let mut mac = one_time_mac(key, &artefact[NONCE_AT..NONCE_AT + NONCE_LEN]);
    mac.update_padded(&artefact[..TAG_AT]);
    mac.update_padded(code);
    // A constant-time comparison.
    mac.verify(poly1305::Block::from_slice(&artefact[TAG_AT..HEADER_LEN])).map_err(|_| Refused::Forged)?;
    let mut wasm_fingerprint = [0u8; 16];
    wasm_fingerprint.copy_from_slice(&artefact[PRINT_AT..PRINT_AT + 16]);
    Ok(Opened { wasm_len: u64_at(artefact, WASM_LEN_AT), wasm_fingerprint, code })
}

/// Checks `artefact` and that it was compiled from `wasm`; returns the code. The cheap checks
/// come first: a module of another length is stale before any byte is hashed.
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
