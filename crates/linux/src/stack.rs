//! The System V x86_64 initial process stack: from the top down, the strings (argv, envp, the
//! program's name, the platform), 16 random bytes, then 16-byte aligned: argc, argv pointers, 0,
//! envp pointers, 0, auxiliary vector pairs ending with `AT_NULL`. `rsp` points at argc.

use alloc::vec::Vec;

/// Auxiliary vector keys.
pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_EXECFN: u64 = 31;

/// The most bytes of arguments and environment accepted (like Linux's ARG_MAX share).
pub const MAX_ARGS_BYTES: usize = 128 * 1024;

/// The bytes to place at `rsp..top` and `rsp`.
pub struct InitialStack {
    pub rsp: u64,
    pub bytes: Vec<u8>,
}

/// Builds the stack that ends at `top` (16-aligned). `auxv` gets `AT_RANDOM`, `AT_EXECFN`,
/// `AT_PLATFORM` and `AT_NULL` added. None if the strings are too large.
pub fn build(top: u64, argv: &[&[u8]], envp: &[&[u8]], auxv: &[(u64, u64)], random: [u8; 16]) -> Option<InitialStack> {
    let strings: usize = argv.iter().chain(envp).map(|s| s.len() + 1).sum();
    if strings > MAX_ARGS_BYTES || argv.iter().chain(envp).any(|s| s.contains(&0)) {
        return None;
    }
    // The string area, built upwards from its own start, then placed just below `top`.
    let mut area = Vec::new();
    let mut offsets = Vec::new();
    for s in argv.iter().chain(envp) {
        offsets.push(area.len());
        area.extend_from_slice(s);
        area.push(0);
    }
    let platform_off = area.len();
    area.extend_from_slice(b"x86_64\0");
    let random_off = area.len();
    area.extend_from_slice(&random);
    let area_len = (area.len() as u64).next_multiple_of(16);
    let area_start = top.checked_sub(area_len)?;
    let execfn = if argv.is_empty() { area_start + platform_off as u64 } else { area_start + offsets[0] as u64 };
    let mut aux: Vec<(u64, u64)> = auxv.to_vec();
    aux.push((AT_RANDOM, area_start + random_off as u64));
    aux.push((AT_PLATFORM, area_start + platform_off as u64));
    aux.push((AT_EXECFN, execfn));
    aux.push((AT_NULL, 0));
    let words = 1 + argv.len() + 1 + envp.len() + 1 + 2 * aux.len();
    let mut rsp = area_start.checked_sub(words as u64 * 8)?;
    rsp &= !15;
    let mut bytes = Vec::with_capacity((top - rsp) as usize);
    let mut push = |v: u64| bytes.extend_from_slice(&v.to_le_bytes());
    push(argv.len() as u64);
    for off in &offsets[..argv.len()] {
        push(area_start + *off as u64);
    }
    push(0);
    for off in &offsets[argv.len()..] {
        push(area_start + *off as u64);
    }
    push(0);
    for (k, v) in &aux {
        push(*k);
        push(*v);
    }
    bytes.resize((area_start - rsp) as usize, 0);
    bytes.extend_from_slice(&area);
    bytes.resize((top - rsp) as usize, 0);
    Some(InitialStack { rsp, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::get;

    fn cstr(b: &[u8], off: usize) -> &[u8] {
        let end = b[off..].iter().position(|c| *c == 0).unwrap();
        &b[off..off + end]
    }

    #[test]
    fn layout_is_what_a_libc_reads() {
        let top = 0x7fff_0000u64;
        let st = build(top, &[b"prog", b"-x"], &[b"A=1"], &[(AT_PAGESZ, 4096)], [7; 16]).unwrap();
        assert_eq!(st.rsp % 16, 0);
        assert_eq!(st.rsp + st.bytes.len() as u64, top);
        let b = &st.bytes;
        let at = |addr: u64| (addr - st.rsp) as usize;
        assert_eq!(get(b, 0), 2);
        assert_eq!(cstr(b, at(get(b, 8))), b"prog");
        assert_eq!(cstr(b, at(get(b, 16))), b"-x");
        assert_eq!(get(b, 24), 0);
        assert_eq!(cstr(b, at(get(b, 32))), b"A=1");
        assert_eq!(get(b, 40), 0);
        let mut aux = alloc::collections::BTreeMap::new();
        let mut off = 48;
        loop {
            let (k, v) = (get(b, off), get(b, off + 8));
            aux.insert(k, v);
            off += 16;
            if k == AT_NULL {
                break;
            }
        }
        assert_eq!(aux[&AT_PAGESZ], 4096);
        assert_eq!(&b[at(aux[&AT_RANDOM])..at(aux[&AT_RANDOM]) + 16], &[7; 16]);
        assert_eq!(cstr(b, at(aux[&AT_PLATFORM])), b"x86_64");
        assert_eq!(cstr(b, at(aux[&AT_EXECFN])), b"prog");
    }

    #[test]
    fn refuses_huge_or_broken_strings() {
        let big = alloc::vec![b'a'; MAX_ARGS_BYTES + 1];
        assert!(build(0x10_0000, &[&big], &[], &[], [0; 16]).is_none());
        assert!(build(0x10_0000, &[b"a\0b"], &[], &[], [0; 16]).is_none());
    }

    proptest::proptest! {
        #[test]
        fn always_aligned(n in 0usize..20, len in 0usize..40, e in 0usize..10) {
            let s = alloc::vec![b'x'; len];
            let args: Vec<&[u8]> = (0..n).map(|_| &s[..]).collect();
            let env: Vec<&[u8]> = (0..e).map(|_| &s[..]).collect();
            let st = build(0x8000_0000, &args, &env, &[], [0; 16]).unwrap();
            proptest::prop_assert_eq!(st.rsp % 16, 0);
            proptest::prop_assert_eq!(get(&st.bytes, 0), n as u64);
        }
    }
}
