//! Locks with a place in the kernel's lock order (`keel_sched::lockorder`, table in
//! `sched/README.md`). Built with the `lock-order` feature (`KEEL_LOCK_ORDER=1 cargo xtask
//! ...`, and the `smp::lock_order` test), every acquisition is checked against the locks the
//! running task already holds, and a lock taken out of order stops the kernel naming both. The
//! set a task holds lives in a per-CPU slot, saved and restored with the task at each switch
//! (the scheduler's lock is held across a switch and let go by the next task).

use core::ops::{Deref, DerefMut};

pub use keel_sched::lockorder::Rank;

/// A spin lock with a rank.
pub struct Ordered<T> {
    rank: Rank,
    inner: spin::Mutex<T>,
}

/// What [`Ordered::lock`] returns; lets the lock go (and forgets its rank) when dropped.
pub struct Guard<'a, T> {
    rank: Rank,
    inner: spin::MutexGuard<'a, T>,
}

impl<T> Ordered<T> {
    pub const fn new(rank: Rank, value: T) -> Ordered<T> {
        Ordered { rank, inner: spin::Mutex::new(value) }
    }

    /// Waits for the lock.
    pub fn lock(&self) -> Guard<'_, T> {
        check::acquire(self.rank);
        Guard { rank: self.rank, inner: self.inner.lock() }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<Guard<'_, T>> {
        let inner = self.inner.try_lock()?;
        check::took_without_waiting(self.rank);
        Some(Guard { rank: self.rank, inner })
    }

    /// Lets go of a lock whose guard was forgotten (the scheduler's, across a switch).
    ///
    /// # Safety
    /// The caller must own the lock: it was locked and its guard forgotten by this CPU.
    pub unsafe fn force_unlock(&self) {
        check::release(self.rank);
        // SAFETY: as the caller promised.
        unsafe { self.inner.force_unlock() };
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        check::release(self.rank);
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

/// A lock the kernel does not own as an `Ordered` (the heap's, inside talc) taking part in the
/// order: hold one of these for as long as that lock is held.
pub struct Held {
    rank: Rank,
}

impl Held {
    pub fn new(rank: Rank) -> Held {
        check::acquire(rank);
        Held { rank }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        check::release(self.rank);
    }
}

/// The set the running task holds, for the scheduler to keep with the task across a switch.
pub fn save() -> u32 {
    check::save()
}

/// Puts back what [`save`] returned (0 for a task's start).
pub fn restore(held: u32) {
    check::restore(held)
}

#[cfg(feature = "lock-order")]
mod check {
    use core::sync::atomic::{AtomicU32, Ordering};

    use keel_sched::lockorder::{Held, Rank};
    use keel_sched::MAX_CPUS;

    /// Per CPU: the ranks the running task holds. Only that CPU touches its slot (interrupt
    /// handlers add and remove their own locks in between).
    static HELD: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

    fn slot() -> &'static AtomicU32 {
        &HELD[crate::arch::smp::cpu()]
    }

    fn update(f: impl FnOnce(&mut Held)) {
        x86_64::instructions::interrupts::without_interrupts(|| {
            let s = slot();
            let mut h = Held(s.load(Ordering::Relaxed));
            f(&mut h);
            s.store(h.0, Ordering::Relaxed);
        })
    }

    pub fn acquire(rank: Rank) {
        let mut bad = None;
        update(|h| {
            if let Err(v) = h.acquire(rank) {
                bad = Some(v);
            }
        });
        if let Some(v) = bad {
            panic!("lock order: taking {:?} while holding {:?} (sched/README.md)", v.wanted, v.held);
        }
    }

    pub fn took_without_waiting(rank: Rank) {
        update(|h| h.took_without_waiting(rank));
    }

    pub fn release(rank: Rank) {
        update(|h| h.release(rank));
    }

    pub fn save() -> u32 {
        slot().load(Ordering::Relaxed)
    }

    pub fn restore(held: u32) {
        slot().store(held, Ordering::Relaxed);
    }
}

#[cfg(not(feature = "lock-order"))]
mod check {
    use keel_sched::lockorder::Rank;

    #[inline(always)]
    pub fn acquire(_: Rank) {}
    #[inline(always)]
    pub fn took_without_waiting(_: Rank) {}
    #[inline(always)]
    pub fn release(_: Rank) {}
    #[inline(always)]
    pub fn save() -> u32 {
        0
    }
    #[inline(always)]
    pub fn restore(_: u32) {}
}
