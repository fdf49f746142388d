//! The block cache against a plain byte array: any mix of reads, writes and flushes, with a
//! cache far smaller than the disk (eviction, read-ahead, early write-out), reads back what was
//! written, and after a flush the device holds it all.
use keel_disk::{BlockCache, RamDisk, BLOCK};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Write { at: u64, len: usize, seed: u8 },
    Read { at: u64, len: usize },
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    let disk = 256 * BLOCK as u64;
    prop_oneof![
        4 => (0..disk - 70_000, 1usize..70_000, any::<u8>()).prop_map(|(at, len, seed)| Op::Write { at, len, seed }),
        4 => (0..disk - 70_000, 1usize..70_000).prop_map(|(at, len)| Op::Read { at, len }),
        1 => Just(Op::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn cache_matches_a_flat_model(ops in prop::collection::vec(op(), 1..60)) {
        let size = 256 * BLOCK;
        let mut model = vec![0u8; size];
        let mut cache = BlockCache::new(RamDisk::new(size), 64);
        for op in &ops {
            match *op {
                Op::Write { at, len, seed } => {
                    let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect();
                    cache.write(at, &data).expect("write");
                    model[at as usize..at as usize + len].copy_from_slice(&data);
                }
                Op::Read { at, len } => {
                    let mut buf = vec![0u8; len];
                    cache.read(at, &mut buf).expect("read");
                    prop_assert_eq!(&buf[..], &model[at as usize..at as usize + len]);
                }
                Op::Flush => cache.flush().expect("flush"),
            }
            let s = cache.stats();
            prop_assert!(s.cached <= 64 + 16, "cache grew to {} blocks", s.cached);
        }
        cache.flush().expect("flush");
        let dev = cache.into_device();
        prop_assert!(dev.data == model, "the device differs from the model after a flush");
    }
}

#[test]
fn sequential_misses_read_ahead() {
    let mut cache = BlockCache::new(RamDisk::new(64 * BLOCK), 64);
    let mut buf = vec![0u8; 32 * BLOCK];
    cache.read(0, &mut buf).expect("read");
    let s = cache.stats();
    assert_eq!(s.device_reads, 2, "{s:?}");
    assert!(cache.read(100 * BLOCK as u64, &mut [0u8; 1]).is_err(), "reads past the end fail");
}
