//! Physical page allocator for Keel.
//!
//! Free memory is kept as a sorted table of disjoint page ranges. Freeing a range merges it with
//! *both* neighbours when they touch it, so free memory never stays split into adjacent pieces.
//! The table lives in a fixed-size array, so the allocator never allocates heap memory itself: the
//! kernel heap can grow by asking it for pages while holding the heap lock.
//!
//! Everything is counted in pages (frame numbers); the kernel converts to and from addresses.
#![no_std]
#![forbid(unsafe_code)]

use core::fmt;

/// Size of one page in bytes.
pub const PAGE_SIZE: u64 = 4096;

/// A run of consecutive free pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Range {
    /// First page number.
    pub start: u64,
    /// Number of pages (never zero in the table).
    pub count: u64,
}

impl Range {
    /// One past the last page.
    pub fn end(&self) -> u64 {
        self.start + self.count
    }
}

/// What can go wrong when allocating or freeing pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No free run is large enough (with the requested alignment).
    OutOfMemory,
    /// A request for zero pages.
    ZeroCount,
    /// The alignment is zero or not a power of two.
    BadAlignment,
    /// The range overflows the page-number space.
    Overflow,
    /// Part of the freed range is already free (double free).
    AlreadyFree,
    /// Part of the range to reserve is not free.
    NotFree,
    /// The range table is full (memory is too fragmented to track one more run).
    TableFull,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::OutOfMemory => "out of physical memory",
            Error::ZeroCount => "zero pages requested",
            Error::BadAlignment => "alignment is not a power of two",
            Error::Overflow => "page range overflows",
            Error::AlreadyFree => "range is already (partly) free",
            Error::NotFree => "range is not (entirely) free",
            Error::TableFull => "free-range table is full",
        };
        f.write_str(s)
    }
}

/// A page allocator tracking at most `N` disjoint free ranges.
#[derive(Clone, Debug)]
pub struct PageAllocator<const N: usize> {
    ranges: [Range; N],
    len: usize,
    free: u64,
    managed: u64,
}

impl<const N: usize> Default for PageAllocator<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> PageAllocator<N> {
    /// An allocator that manages no memory yet.
    pub const fn new() -> Self {
        Self { ranges: [Range { start: 0, count: 0 }; N], len: 0, free: 0, managed: 0 }
    }

    /// Hands a region of usable memory to the allocator (at boot). It counts towards the total.
    pub fn add_region(&mut self, start: u64, count: u64) -> Result<(), Error> {
        self.insert(start, count)?;
        self.managed += count;
        Ok(())
    }

    /// Takes a specific free range out of the pool for good (e.g. the kernel image or the
    /// ramdisk found inside a usable region). It stops counting towards the total.
    pub fn reserve(&mut self, start: u64, count: u64) -> Result<(), Error> {
        self.take(start, count)?;
        self.managed -= count;
        Ok(())
    }

    /// Allocates `count` consecutive pages whose first page number is a multiple of `align`.
    /// First fit, lowest address first.
    pub fn allocate(&mut self, count: u64, align: u64) -> Result<u64, Error> {
        if count == 0 {
            return Err(Error::ZeroCount);
        }
        if align == 0 || !align.is_power_of_two() {
            return Err(Error::BadAlignment);
        }
        let mut found = None;
        for r in &self.ranges[..self.len] {
            let Some(start) = r.start.checked_add(align - 1).map(|v| v & !(align - 1)) else {
                continue;
            };
            if start.checked_add(count).is_some_and(|e| e <= r.end()) {
                found = Some(start);
                break;
            }
        }
        let start = found.ok_or(Error::OutOfMemory)?;
        self.take(start, count)?;
        Ok(start)
    }

    /// Returns `count` pages starting at `start` to the pool, merging with both neighbours.
    pub fn free(&mut self, start: u64, count: u64) -> Result<(), Error> {
        self.insert(start, count)
    }

    /// Pages currently free.
    pub fn free_pages(&self) -> u64 {
        self.free
    }

    /// Pages managed in all (free plus allocated).
    pub fn total_pages(&self) -> u64 {
        self.managed
    }

    /// The free ranges, sorted by address.
    pub fn ranges(&self) -> &[Range] {
        &self.ranges[..self.len]
    }

    /// Index of the first range whose start is greater than `page`.
    fn upper_bound(&self, page: u64) -> usize {
        self.ranges[..self.len].partition_point(|r| r.start <= page)
    }

    fn insert(&mut self, start: u64, count: u64) -> Result<(), Error> {
        if count == 0 {
            return Err(Error::ZeroCount);
        }
        let end = start.checked_add(count).ok_or(Error::Overflow)?;
        let i = self.upper_bound(start);
        let prev = i.checked_sub(1);
        if let Some(p) = prev {
            if self.ranges[p].end() > start {
                return Err(Error::AlreadyFree);
            }
        }
        if i < self.len && self.ranges[i].start < end {
            return Err(Error::AlreadyFree);
        }
        let merge_prev = prev.is_some_and(|p| self.ranges[p].end() == start);
        let merge_next = i < self.len && self.ranges[i].start == end;
        match (merge_prev, merge_next, prev) {
            (true, true, Some(p)) => {
                self.ranges[p].count += count + self.ranges[i].count;
                self.remove_at(i);
            }
            (true, false, Some(p)) => self.ranges[p].count += count,
            (false, true, _) => {
                self.ranges[i].start = start;
                self.ranges[i].count += count;
            }
            _ => {
                if self.len == N {
                    return Err(Error::TableFull);
                }
                self.ranges.copy_within(i..self.len, i + 1);
                self.ranges[i] = Range { start, count };
                self.len += 1;
            }
        }
        self.free += count;
        Ok(())
    }

    /// Removes `[start, start+count)` from the free table; it must lie inside one free range.
    fn take(&mut self, start: u64, count: u64) -> Result<(), Error> {
        if count == 0 {
            return Err(Error::ZeroCount);
        }
        let end = start.checked_add(count).ok_or(Error::Overflow)?;
        let i = self.upper_bound(start).checked_sub(1).ok_or(Error::NotFree)?;
        let r = self.ranges[i];
        if r.end() < end || r.start > start {
            return Err(Error::NotFree);
        }
        let before = Range { start: r.start, count: start - r.start };
        let after = Range { start: end, count: r.end() - end };
        match (before.count > 0, after.count > 0) {
            (false, false) => self.remove_at(i),
            (true, false) => self.ranges[i] = before,
            (false, true) => self.ranges[i] = after,
            (true, true) => {
                if self.len == N {
                    return Err(Error::TableFull);
                }
                self.ranges.copy_within(i + 1..self.len, i + 2);
                self.ranges[i] = before;
                self.ranges[i + 1] = after;
                self.len += 1;
            }
        }
        self.free -= count;
        Ok(())
    }

    fn remove_at(&mut self, i: usize) {
        self.ranges.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc() -> PageAllocator<64> {
        let mut a = PageAllocator::new();
        a.add_region(100, 1000).unwrap();
        a
    }

    #[test]
    fn allocates_first_fit_and_counts() {
        let mut a = alloc();
        assert_eq!(a.allocate(10, 1), Ok(100));
        assert_eq!(a.allocate(10, 1), Ok(110));
        assert_eq!(a.free_pages(), 980);
        assert_eq!(a.total_pages(), 1000);
    }

    #[test]
    fn honours_alignment() {
        let mut a = alloc();
        let p = a.allocate(3, 64).unwrap();
        assert_eq!(p % 64, 0);
        assert_eq!(p, 128);
        // The skipped pages before it stay free.
        assert_eq!(a.ranges()[0], Range { start: 100, count: 28 });
        assert_eq!(a.allocate(1, 3), Err(Error::BadAlignment));
        assert_eq!(a.allocate(1, 0), Err(Error::BadAlignment));
    }

    #[test]
    fn free_merges_with_both_neighbours() {
        let mut a = alloc();
        let x = a.allocate(10, 1).unwrap();
        let y = a.allocate(10, 1).unwrap();
        let z = a.allocate(10, 1).unwrap();
        a.free(x, 10).unwrap();
        a.free(z, 10).unwrap();
        // z merged with the tail; x stands alone.
        assert_eq!(a.ranges().len(), 2);
        a.free(y, 10).unwrap();
        assert_eq!(a.ranges(), &[Range { start: 100, count: 1000 }]);
    }

    #[test]
    fn detects_double_free_and_overlap() {
        let mut a = alloc();
        let x = a.allocate(10, 1).unwrap();
        a.free(x, 10).unwrap();
        assert_eq!(a.free(x, 10), Err(Error::AlreadyFree));
        assert_eq!(a.free(x + 5, 1), Err(Error::AlreadyFree));
        assert_eq!(a.free(95, 10), Err(Error::AlreadyFree));
        assert_eq!(a.free(0, 0), Err(Error::ZeroCount));
        assert_eq!(a.free(u64::MAX, 2), Err(Error::Overflow));
    }

    #[test]
    fn out_of_memory_is_an_error() {
        let mut a = alloc();
        assert_eq!(a.allocate(1001, 1), Err(Error::OutOfMemory));
        assert_eq!(a.allocate(1000, 1), Ok(100));
        assert_eq!(a.allocate(1, 1), Err(Error::OutOfMemory));
        assert_eq!(a.allocate(0, 1), Err(Error::ZeroCount));
    }

    #[test]
    fn reserve_splits_a_range() {
        let mut a = alloc();
        a.reserve(200, 50).unwrap();
        assert_eq!(a.ranges(), &[Range { start: 100, count: 100 }, Range { start: 250, count: 850 }]);
        assert_eq!(a.total_pages(), 950);
        assert_eq!(a.reserve(220, 1), Err(Error::NotFree));
    }

    #[test]
    fn full_table_is_reported() {
        let mut a: PageAllocator<2> = PageAllocator::new();
        a.add_region(0, 10).unwrap();
        a.add_region(20, 10).unwrap();
        assert_eq!(a.add_region(40, 10), Err(Error::TableFull));
        // Adjacent regions merge, so they still fit.
        a.add_region(10, 5).unwrap();
        assert_eq!(a.ranges()[0], Range { start: 0, count: 15 });
    }
}
