//! The kernel's lock order: every lock that takes part has a [`Rank`], and a task may only take
//! a lock ranked after every lock it already holds. [`Held`] is the set a task holds; the kernel
//! keeps one per CPU, saved and restored with the task at each switch, and (built with the
//! `lock-order` feature) checks every acquisition against it. The full table, with which
//! locks are taken with interrupts off, is in `kernel/src/sched/README.md`.

/// Lock classes, outermost first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Rank {
    /// The shell's background jobs.
    Jobs,
    /// A kernel pipe's buffer.
    Pipe,
    /// A wait queue's list of sleepers.
    WaitQueue,
    /// The scheduler: every task and the run queues (held across a switch).
    Sched,
    /// One TLB shootdown at a time.
    Shootdown,
    /// The kernel's page tables.
    PageTables,
    /// The compiled tier's address-space allocator.
    VmSpace,
    /// The table of live kernel stacks (fault reports).
    Stacks,
    /// Address-space slots of freed kernel stacks.
    FreeSlots,
    /// The kernel heap (talc's own lock): it takes `Frames` to grow, so nothing allocates or
    /// frees heap memory under `Frames`.
    Heap,
    /// The physical page allocator.
    Frames,
}

impl Rank {
    fn bit(self) -> u32 {
        1 << (self as u8)
    }

    const ALL: [Rank; 11] = [
        Rank::Jobs,
        Rank::Pipe,
        Rank::WaitQueue,
        Rank::Sched,
        Rank::Shootdown,
        Rank::PageTables,
        Rank::VmSpace,
        Rank::Stacks,
        Rank::FreeSlots,
        Rank::Heap,
        Rank::Frames,
    ];
}

/// A lock taken out of order: the one wanted and the highest-ranked one already held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    pub wanted: Rank,
    pub held: Rank,
}

/// The locks one task holds (a set of ranks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held(pub u32);

impl Held {
    /// The highest-ranked lock held, if any.
    pub fn highest(self) -> Option<Rank> {
        Rank::ALL.iter().rev().copied().find(|r| self.0 & r.bit() != 0)
    }

    /// Records that `rank` is about to be waited for: an error if a lock of the same or a later
    /// rank is held already (two tasks doing the same in the other order would deadlock).
    pub fn acquire(&mut self, rank: Rank) -> Result<(), Violation> {
        if let Some(held) = self.highest().filter(|h| *h >= rank) {
            return Err(Violation { wanted: rank, held });
        }
        self.0 |= rank.bit();
        Ok(())
    }

    /// Records a lock taken without waiting (`try_lock`): never a deadlock, so not checked, but
    /// later acquisitions are checked against it.
    pub fn took_without_waiting(&mut self, rank: Rank) {
        self.0 |= rank.bit();
    }

    /// Records that `rank` was let go.
    pub fn release(&mut self, rank: Rank) {
        self.0 &= !rank.bit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_is_fine_and_release_forgets() {
        let mut h = Held::default();
        h.acquire(Rank::WaitQueue).unwrap();
        h.acquire(Rank::Sched).unwrap();
        h.acquire(Rank::Frames).unwrap();
        assert_eq!(h.highest(), Some(Rank::Frames));
        h.release(Rank::Frames);
        h.release(Rank::Sched);
        h.acquire(Rank::PageTables).unwrap();
        h.release(Rank::PageTables);
        h.release(Rank::WaitQueue);
        assert_eq!(h, Held::default());
    }

    #[test]
    fn out_of_order_and_twice_are_caught() {
        let mut h = Held::default();
        h.acquire(Rank::Sched).unwrap();
        assert_eq!(h.acquire(Rank::WaitQueue), Err(Violation { wanted: Rank::WaitQueue, held: Rank::Sched }));
        assert_eq!(h.acquire(Rank::Sched), Err(Violation { wanted: Rank::Sched, held: Rank::Sched }));
        // The failed acquisitions recorded nothing.
        assert_eq!(h.highest(), Some(Rank::Sched));
    }

    #[test]
    fn freeing_heap_memory_under_the_page_allocator_is_caught() {
        // The deadlock seen on 2 CPUs: one CPU grew the heap (Heap, then Frames) while the
        // other dropped a Vec while holding Frames (Frames, then Heap).
        let mut grow = Held::default();
        grow.acquire(Rank::Heap).unwrap();
        grow.acquire(Rank::Frames).unwrap();
        let mut free = Held::default();
        free.acquire(Rank::Frames).unwrap();
        assert_eq!(free.acquire(Rank::Heap), Err(Violation { wanted: Rank::Heap, held: Rank::Frames }));
    }

    #[test]
    fn a_try_lock_is_not_checked_but_counts_afterwards() {
        let mut h = Held::default();
        h.acquire(Rank::WaitQueue).unwrap();
        h.took_without_waiting(Rank::Pipe);
        assert!(h.acquire(Rank::Sched).is_ok());
        h.release(Rank::Sched);
        h.took_without_waiting(Rank::Frames);
        assert!(h.acquire(Rank::Sched).is_err());
    }
}
