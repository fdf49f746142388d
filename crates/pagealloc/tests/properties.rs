//! Property test: random allocate/free sequences keep the allocator's invariants.
use keel_pagealloc::{Error, PageAllocator};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Alloc { count: u64, align_log2: u32 },
    Free { pick: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u64..40, 0u32..6).prop_map(|(count, align_log2)| Op::Alloc { count, align_log2 }),
        any::<usize>().prop_map(|pick| Op::Free { pick }),
    ]
}

fn check_invariants(a: &PageAllocator<256>, live: &[(u64, u64)], regions: &[(u64, u64)]) {
    let ranges = a.ranges();
    for w in ranges.windows(2) {
        // Sorted, disjoint, and never two adjacent free ranges (merging with both neighbours).
        assert!(w[0].end() < w[1].start, "free ranges {:?} and {:?} touch or overlap", w[0], w[1]);
    }
    let free: u64 = ranges.iter().map(|r| r.count).sum();
    assert_eq!(free, a.free_pages());
    let used: u64 = live.iter().map(|l| l.1).sum();
    // Total pages are conserved.
    assert_eq!(free + used, a.total_pages());
    // Allocated blocks overlap neither each other nor free memory, and lie in managed regions.
    let mut all: Vec<(u64, u64)> = live.to_vec();
    all.extend(ranges.iter().map(|r| (r.start, r.count)));
    all.sort();
    for w in all.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "{:?} overlaps {:?}", w[0], w[1]);
    }
    for &(s, c) in &all {
        assert!(regions.iter().any(|&(rs, rc)| s >= rs && s + c <= rs + rc));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn random_sequences_keep_invariants(ops in proptest::collection::vec(op(), 1..300)) {
        let regions = [(16u64, 500u64), (1000, 300), (4096, 777)];
        let mut a: PageAllocator<256> = PageAllocator::new();
        for &(s, c) in &regions {
            a.add_region(s, c).unwrap();
        }
        let mut live: Vec<(u64, u64)> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc { count, align_log2 } => {
                    let align = 1u64 << align_log2;
                    match a.allocate(count, align) {
                        Ok(p) => {
                            prop_assert_eq!(p % align, 0);
                            live.push((p, count));
                        }
                        Err(e) => prop_assert_eq!(e, Error::OutOfMemory),
                    }
                }
                Op::Free { pick } => {
                    if !live.is_empty() {
                        let (p, c) = live.swap_remove(pick % live.len());
                        a.free(p, c).unwrap();
                        // Freeing it again is always refused.
                        prop_assert_eq!(a.free(p, c), Err(Error::AlreadyFree));
                    }
                }
            }
            check_invariants(&a, &live, &regions);
        }
        for (p, c) in live.drain(..) {
            a.free(p, c).unwrap();
        }
        // Everything returned: exactly the original regions again.
        prop_assert_eq!(a.ranges().len(), regions.len());
        prop_assert_eq!(a.free_pages(), a.total_pages());
    }
}
