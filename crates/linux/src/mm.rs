//! The map of a process's user address space: page-aligned ranges with their access. Every
//! `mmap`, `munmap`, `mprotect`, `mremap` and `brk` is decided here; the kernel then changes the
//! page tables as told. System calls check user pointers against this map (`EFAULT`), so the
//! kernel never touches an address the process does not own.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::abi::{PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::PAGE;

/// What a range is for (for `/proc`-like listings and fault reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Image,
    Heap,
    Stack,
    Anon,
    File,
}

/// One mapped range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    pub start: u64,
    pub end: u64,
    pub prot: u64,
    pub kind: Kind,
}

/// The ranges of one address space. `committed` counts mapped bytes (each backed by a frame).
#[derive(Clone, Debug, Default)]
pub struct Map {
    areas: BTreeMap<u64, Area>,
    committed: u64,
}

impl Map {
    pub fn new() -> Map {
        Map::default()
    }

    /// Bytes mapped.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Every range, in address order.
    pub fn areas(&self) -> impl Iterator<Item = &Area> {
        self.areas.values()
    }

    /// The range holding `addr`.
    pub fn find(&self, addr: u64) -> Option<&Area> {
        self.areas.range(..=addr).next_back().map(|(_, a)| a).filter(|a| addr < a.end)
    }

    /// True if nothing is mapped in `start..start + len`.
    pub fn is_free(&self, start: u64, len: u64) -> bool {
        let Some(end) = start.checked_add(len) else { return false };
        if self.find(start).is_some() {
            return false;
        }
        self.areas.range(start..end).next().is_none()
    }

    /// Adds a range (which must be free: unmap first).
    pub fn insert(&mut self, start: u64, len: u64, prot: u64, kind: Kind) {
        debug_assert!(start.is_multiple_of(PAGE) && len.is_multiple_of(PAGE) && len > 0);
        debug_assert!(self.is_free(start, len));
        self.areas.insert(start, Area { start, end: start + len, prot, kind });
        self.committed += len;
    }

    /// Removes whatever is mapped in `start..start + len` (splitting ranges that stick out) and
    /// returns the removed pieces, which the kernel unmaps.
    pub fn remove(&mut self, start: u64, len: u64) -> Vec<Area> {
        let end = start.saturating_add(len);
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.areas.range(start..end).map(|(k, _)| *k).collect();
        let mut out = Vec::new();
        for k in keys {
            if let Some(a) = self.areas.remove(&k) {
                self.committed -= a.end - a.start;
                out.push(a);
            }
        }
        out
    }

    /// Splits the range holding `at` into two at `at`.
    fn split_at(&mut self, at: u64) {
        let Some(a) = self.find(at).copied() else { return };
        if a.start == at {
            return;
        }
        self.areas.insert(a.start, Area { end: at, ..a });
        self.areas.insert(at, Area { start: at, ..a });
    }

    /// Changes the access of `start..start + len`; false (`ENOMEM`) unless all of it is mapped.
    pub fn protect(&mut self, start: u64, len: u64, prot: u64) -> bool {
        if !self.covered(start, len) {
            return false;
        }
        let end = start + len;
        self.split_at(start);
        self.split_at(end);
        for (_, a) in self.areas.range_mut(start..end) {
            a.prot = prot;
        }
        self.merge_around(start, end);
        true
    }

    /// Joins neighbours with the same access and kind (keeps the map small under mprotect churn).
    fn merge_around(&mut self, start: u64, end: u64) {
        let mut at = self.areas.range(..start).next_back().map_or(start, |(k, _)| *k);
        loop {
            let Some(a) = self.areas.get(&at).copied() else {
                match self.areas.range(at..).next() {
                    Some((k, _)) if *k <= end => {
                        at = *k;
                        continue;
                    }
                    _ => return,
                }
            };
            match self.areas.get(&a.end).copied() {
                Some(b) if b.prot == a.prot && b.kind == a.kind => {
                    self.areas.remove(&b.start);
                    if let Some(x) = self.areas.get_mut(&at) {
                        x.end = b.end;
                    }
                }
                _ if a.end > end => return,
                _ => match self.areas.range(a.end..).next() {
                    Some((k, _)) if *k <= end => at = *k,
                    _ => return,
                },
            }
        }
    }

    /// True if every byte of `start..start + len` is mapped.
    pub fn covered(&self, start: u64, len: u64) -> bool {
        self.check(start, len, 0)
    }

    /// True if every byte of `addr..addr + len` is mapped with at least the access `need`
    /// (`PROT_READ`/`PROT_WRITE` bits). Zero length is always fine.
    pub fn check(&self, addr: u64, len: u64, need: u64) -> bool {
        if len == 0 {
            return true;
        }
        let Some(end) = addr.checked_add(len) else { return false };
        let mut at = addr;
        while at < end {
            match self.find(at) {
                Some(a) if a.prot & need == need => at = a.end,
                _ => return false,
            }
        }
        true
    }

    /// The highest free range of `len` bytes between `floor` and `top` (for `mmap` without an
    /// address: top-down, as Linux).
    pub fn find_free(&self, len: u64, floor: u64, top: u64) -> Option<u64> {
        let mut hi = top;
        for (_, a) in self.areas.range(..top).rev() {
            if a.end <= hi && hi - a.end >= len {
                return Some(hi - len).filter(|s| *s >= floor);
            }
            hi = hi.min(a.start);
            if hi < floor {
                return None;
            }
        }
        hi.checked_sub(len).filter(|s| *s >= floor)
    }
}

/// The page-table access for `PROT_*` bits: (user-readable, writable, executable).
pub fn access(prot: u64) -> (bool, bool, bool) {
    (prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0, prot & PROT_WRITE != 0, prot & PROT_EXEC != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RW: u64 = PROT_READ | PROT_WRITE;

    #[test]
    fn remove_splits_and_counts() {
        let mut m = Map::new();
        m.insert(0x10000, 0x10000, RW, Kind::Anon);
        let gone = m.remove(0x14000, 0x2000);
        assert_eq!(gone.len(), 1);
        assert_eq!((gone[0].start, gone[0].end), (0x14000, 0x16000));
        assert_eq!(m.committed(), 0xe000);
        assert!(m.covered(0x10000, 0x4000));
        assert!(!m.covered(0x10000, 0x5000));
        assert!(m.covered(0x16000, 0xa000));
    }

    #[test]
    fn protect_needs_full_cover_and_merges_back() {
        let mut m = Map::new();
        m.insert(0x10000, 0x4000, RW, Kind::Anon);
        assert!(!m.protect(0x10000, 0x5000, PROT_READ));
        assert!(m.protect(0x11000, 0x1000, PROT_READ));
        assert!(!m.check(0x11000, 1, PROT_WRITE));
        assert!(m.check(0x12000, 8, PROT_WRITE));
        assert_eq!(m.areas().count(), 3);
        assert!(m.protect(0x11000, 0x1000, RW));
        assert_eq!(m.areas().count(), 1);
    }

    #[test]
    fn find_free_goes_top_down_around_holes() {
        let mut m = Map::new();
        m.insert(0x9000, 0x1000, RW, Kind::Anon);
        assert_eq!(m.find_free(0x1000, 0x1000, 0xa000), Some(0x8000));
        assert_eq!(m.find_free(0x2000, 0x1000, 0xa000), Some(0x7000));
        m.insert(0x7000, 0x2000, RW, Kind::Anon);
        assert_eq!(m.find_free(0x7000, 0x1000, 0xa000), None);
        assert_eq!(m.find_free(0x6000, 0x1000, 0xa000), Some(0x1000));
    }

    proptest! {
        /// Against a page-by-page model: inserts, removes and protects leave the same pages
        /// mapped with the same access, no two ranges overlap, and the count is right.
        #[test]
        fn agrees_with_a_page_model(ops in proptest::collection::vec((0u8..3, 0u64..64, 1u64..16, 1u64..4), 1..60)) {
            let mut m = Map::new();
            let mut model = [0u64; 80];
            for (op, page, len, prot) in ops {
                let (s, l) = (page * PAGE, len * PAGE);
                match op {
                    0 => {
                        if m.is_free(s, l) {
                            m.insert(s, l, prot, Kind::Anon);
                            for p in page..page + len { model[p as usize] = prot; }
                        } else {
                            prop_assert!((page..page + len).any(|p| model[p as usize] != 0));
                        }
                    }
                    1 => {
                        m.remove(s, l);
                        for p in page..page + len { model[p as usize] = 0; }
                    }
                    _ => {
                        let all = (page..page + len).all(|p| model[p as usize] != 0);
                        prop_assert_eq!(m.protect(s, l, prot), all);
                        if all { for p in page..page + len { model[p as usize] = prot; } }
                    }
                }
                let mut last_end = 0;
                for a in m.areas() {
                    prop_assert!(a.start >= last_end && a.start < a.end);
                    last_end = a.end;
                }
                for (p, want) in model.iter().enumerate() {
                    let got = m.find(p as u64 * PAGE).map_or(0, |a| a.prot);
                    prop_assert_eq!(got, *want);
                }
                prop_assert_eq!(m.committed(), model.iter().filter(|p| **p != 0).count() as u64 * PAGE);
            }
        }
    }
}
