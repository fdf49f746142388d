//! Artefacts made with the key open with it, and nothing else does.
use keel_artefact::{artefact_path, open, open_for, parse_key, seal, Refused, HEADER_LEN, KEY_LEN, NONCE_LEN};
use proptest::prelude::*;

const KEY: [u8; KEY_LEN] = [7; KEY_LEN];
const OTHER: [u8; KEY_LEN] = [8; KEY_LEN];
const NONCE: [u8; NONCE_LEN] = [3; NONCE_LEN];

#[test]
fn sealed_opens_with_its_key_and_module() {
    let a = seal(&KEY, &NONCE, b"\0asm module", b"native code");
    assert_eq!(a.len(), HEADER_LEN + 11);
    assert_eq!(open_for(Some(&KEY), &a, b"\0asm module"), Ok(&b"native code"[..]));
    let o = open(Some(&KEY), &a).unwrap();
    assert_eq!(o.wasm_len, 11);
    assert!(o.is_for(b"\0asm module") && !o.is_for(b"\0asm modulf"));
}

#[test]
fn refusals() {
    let a = seal(&KEY, &NONCE, b"wasm", b"code");
    assert_eq!(open(None, &a), Err(Refused::NoKey));
    assert_eq!(open(Some(&OTHER), &a), Err(Refused::Forged), "another build's key");
    // The same code under another nonce seals differently; both open.
    let b = seal(&KEY, &[4; NONCE_LEN], b"wasm", b"code");
    assert_ne!(a, b);
    assert_eq!(open_for(Some(&KEY), &b, b"wasm"), Ok(&b"code"[..]));
    // A tag moved from one artefact to the other does not fit.
    let mut moved = b.clone();
    moved[HEADER_LEN - 16..HEADER_LEN].copy_from_slice(&a[HEADER_LEN - 16..HEADER_LEN]);
    assert_eq!(open(Some(&KEY), &moved), Err(Refused::Forged));
    assert_eq!(open_for(Some(&KEY), &a, b"wasm2"), Err(Refused::Stale));
    assert_eq!(open(Some(&KEY), b"\x7fELF\x02\x01\x01\0 a wasmtime cwasm"), Err(Refused::Foreign));
    assert_eq!(open(Some(&KEY), b""), Err(Refused::Truncated));
    assert_eq!(open(Some(&KEY), &a[..HEADER_LEN - 1]), Err(Refused::Truncated));
    assert_eq!(open(Some(&KEY), &a[..a.len() - 1]), Err(Refused::Truncated));
    let mut longer = a.clone();
    longer.push(0);
    assert_eq!(open(Some(&KEY), &longer), Err(Refused::Forged));
    for r in [Refused::NoKey, Refused::Foreign, Refused::Truncated, Refused::Forged, Refused::Stale] {
        assert!(!r.to_string().is_empty());
    }
}

#[test]
fn keys_in_hex() {
    let hex = "00".repeat(31) + "ff";
    let mut k = [0u8; KEY_LEN];
    k[31] = 255;
    assert_eq!(parse_key(&hex), Some(k));
    assert_eq!(parse_key(&format!("{hex}\n")), Some(k));
    assert_eq!(parse_key("abc"), None);
    assert_eq!(parse_key(&"zz".repeat(32)), None);
}

proptest! {
    /// Any change to any byte is refused.
    #[test]
    fn every_changed_byte_is_refused(
        wasm in proptest::collection::vec(any::<u8>(), 0..64),
        code in proptest::collection::vec(any::<u8>(), 0..256),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let a = seal(&KEY, &NONCE, &wasm, &code);
        let mut t = a.clone();
        let i = at.index(t.len());
        t[i] ^= flip;
        prop_assert!(open_for(Some(&KEY), &t, &wasm).is_err(), "byte {} changed", i);
    }

    /// Every truncation is refused.
    #[test]
    fn every_truncation_is_refused(
        code in proptest::collection::vec(any::<u8>(), 0..256),
        cut in any::<prop::sample::Index>(),
    ) {
        let a = seal(&KEY, &NONCE, b"m", &code);
        let n = cut.index(a.len());
        prop_assert!(open(Some(&KEY), &a[..n]).is_err());
    }
}

#[test]
fn artefacts_sit_beside_their_modules() {
    assert_eq!(artefact_path("/bin/prog.wasm"), "/bin/prog.cwasm");
    assert_eq!(artefact_path("tools/prog"), "tools/prog.cwasm");
    assert_eq!(artefact_path("a.wasm.wasm"), "a.wasm.cwasm");
}
