//! Memory: the physical page allocator (crate `keel-pagealloc`), paging through the `x86_64`
//! crate over the identity map, the kernel heap (`talc`, growing on demand from free pages), and
//! kernel stacks with unmapped guard pages.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU64, Ordering};

use keel_pagealloc::{PageAllocator, PAGE_SIZE};
use spin::Mutex;
use talc::{OomHandler, Span, Talc, Talck};
use x86_64::instructions::interrupts;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size4KiB, Translate,
};
use x86_64::{PhysAddr, VirtAddr};

use crate::arch::boot::BootInfo;
use crate::sched::lock::{Ordered, Rank};

/// The boot stub identity-maps physical memory up to here.
pub const IDENTITY_LIMIT: u64 = 4 << 30;
/// Physical memory below this is left alone (firmware, boot structures).
const LOW_LIMIT: u64 = 1 << 20;
/// Kernel stacks live in their own virtual region, each below an unmapped guard page.
const STACK_REGION: u64 = 0xffff_c000_0000_0000;
/// The heap grows in steps of at least this many bytes.
const HEAP_GROW_MIN: usize = 2 << 20;
const INITIAL_HEAP: usize = 1 << 20;

/// Free physical pages. Never held while allocating from the heap.
pub static FRAMES: Ordered<PageAllocator<4096>> = Ordered::new(Rank::Frames, PageAllocator::new());

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// The heap grows by claiming runs of free pages when it runs out.
pub struct GrowFromFrames;

impl OomHandler for GrowFromFrames {
    fn handle_oom(talc: &mut Talc<Self>, layout: Layout) -> Result<(), ()> {
        let want = layout.size().saturating_add(layout.align()).saturating_add(64 * 1024);
        let bytes = want.max(HEAP_GROW_MIN).next_multiple_of(PAGE_SIZE as usize);
        let pages = bytes as u64 / PAGE_SIZE;
        let first = FRAMES.lock().allocate(pages, 1).map_err(|_| ())?;
        let base = (first * PAGE_SIZE) as *mut u8;
        HEAP_CLAIMED.fetch_add(bytes as u64, Ordering::Relaxed);
        // SAFETY: the pages were just taken from the page allocator, are identity-mapped and
        // belong to nobody else; the heap owns them from now on.
        let heap = unsafe { talc.claim(Span::from_base_size(base, bytes)) }?;
        // Remember the extension so that `trim` can give it back once it is empty again (no
        // allocation here: a fixed table; an extension that does not fit stays for good).
        if let Some(slot) = GROWN.lock().iter_mut().find(|g| g.is_none()) {
            *slot = Some(Grown { heap, first, pages });
        }
        Ok(())
    }
}

/// A heap extension claimed from the page allocator.
#[derive(Clone, Copy)]
struct Grown {
    /// The heap as talc established it (what `truncate` wants back).
    heap: Span,
    first: u64,
    pages: u64,
}

// SAFETY: a Span is a pair of addresses describing memory the heap owns; it is only used under
// the heap's lock.
unsafe impl Send for Grown {}

static GROWN: Mutex<[Option<Grown>; 1024]> = Mutex::new([None; 1024]);

/// Gives heap extensions that hold no allocation any more back to the page allocator (talc
/// keeps what it claims otherwise). Cheap: called after each command.
pub fn trim() {
    interrupts::without_interrupts(|| {
        let mut talc = HEAP.0.lock();
        let mut grown = GROWN.lock();
        for slot in grown.iter_mut() {
            let Some(g) = *slot else { continue };
            // SAFETY: `g.heap` is the span talc returned when the extension was claimed, and
            // the heap's lock is held, so nothing allocates in between.
            let used = unsafe { talc.get_allocated_span(g.heap) };
            if !used.is_empty() {
                continue;
            }
            // SAFETY: as above; truncating to empty is valid for a heap with no allocation.
            let left = unsafe { talc.truncate(g.heap, Span::empty()) };
            if left.is_empty() {
                *slot = None;
                HEAP_CLAIMED.fetch_sub(g.pages * PAGE_SIZE, Ordering::Relaxed);
                let _ = FRAMES.lock().free(g.first, g.pages);
            }
        }
    });
}

static HEAP_CLAIMED: AtomicU64 = AtomicU64::new(INITIAL_HEAP as u64);

#[repr(C, align(4096))]
struct Arena([u8; INITIAL_HEAP]);
static mut INITIAL_ARENA: Arena = Arena([0; INITIAL_HEAP]);

/// The kernel heap: talc behind a lock taken with interrupts disabled, so an interrupt or a task
/// switch can never find it held. talc never returns what it has claimed: heap extensions that
/// are empty again go back to the page allocator in [`trim`], and blocks of [`LARGE`] bytes or
/// more (big guest memories) are whole pages taken straight from the page allocator and given
/// back when freed. (Routing smaller blocks, down to 256 KiB, that way made an 8 MiB module start
/// 3-4x slower under emulation; the cause is not known yet.)
pub struct KernelHeap(Talck<spin::Mutex<()>, GrowFromFrames>);

/// Allocations at least this big bypass talc (see [`KernelHeap`]).
pub const LARGE: usize = 16 << 20;

/// Bytes lent to large blocks right now (for `mem`).
static LARGE_BYTES: AtomicU64 = AtomicU64::new(0);

fn large_pages(size: usize) -> u64 {
    size.div_ceil(PAGE_SIZE as usize) as u64
}

/// Takes pages for a large block; null if there are none.
fn alloc_large(layout: Layout) -> *mut u8 {
    let pages = large_pages(layout.size());
    let align = (layout.align() as u64).div_ceil(PAGE_SIZE).max(1);
    interrupts::without_interrupts(|| match FRAMES.lock().allocate(pages, align) {
        Ok(first) => {
            LARGE_BYTES.fetch_add(pages * PAGE_SIZE, Ordering::Relaxed);
            (first * PAGE_SIZE) as *mut u8
        }
        Err(_) => core::ptr::null_mut(),
    })
}

/// Gives a large block's pages back (they merge with their free neighbours).
fn free_large(ptr: *mut u8, size: usize) {
    let pages = large_pages(size);
    interrupts::without_interrupts(|| {
        if FRAMES.lock().free(ptr as u64 / PAGE_SIZE, pages).is_ok() {
            LARGE_BYTES.fetch_sub(pages * PAGE_SIZE, Ordering::Relaxed);
        }
        // On failure (the free-range table is full) the pages stay lent: lost, but safe.
    })
}

// SAFETY: small blocks go to talc, a correct allocator (its lock only taken with interrupts
// off); large ones are whole identity-mapped pages owned by the block until it is freed, which
// the size in its layout identifies (GlobalAlloc passes the same layout to dealloc).
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LARGE {
            return alloc_large(layout);
        }
        interrupts::without_interrupts(|| {
            let _heap = crate::sched::lock::Held::new(Rank::Heap);
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { self.0.alloc(layout) }
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= LARGE {
            return free_large(ptr, layout.size());
        }
        interrupts::without_interrupts(|| {
            let _heap = crate::sched::lock::Held::new(Rank::Heap);
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { self.0.dealloc(ptr, layout) }
        })
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (old_large, new_large) = (layout.size() >= LARGE, new_size >= LARGE);
        if !old_large && !new_large {
            return interrupts::without_interrupts(|| {
                let _heap = crate::sched::lock::Held::new(Rank::Heap);
                // SAFETY: forwarded with the caller's guarantees.
                unsafe { self.0.realloc(ptr, layout, new_size) }
            });
        }
        if old_large && new_large && large_pages(layout.size()) == large_pages(new_size) {
            return ptr;
        }
        // SAFETY: the caller guarantees `new_size`, rounded to `layout.align()`, fits isize.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a fresh block of the new size, as `alloc` requires a non-zero size (>= LARGE or
        // a size the caller made valid).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct, and at least this long.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` was allocated with `layout` and is not used after this.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

/// Bytes currently lent out as large blocks (whole pages).
pub fn large_bytes() -> u64 {
    LARGE_BYTES.load(Ordering::Relaxed)
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Talc::new(GrowFromFrames).lock());

/// Heap figures for `mem`.
pub struct HeapStats {
    pub claimed: u64,
    pub allocated: u64,
}

/// Current heap usage.
pub fn heap_stats() -> HeapStats {
    interrupts::without_interrupts(|| {
        let talc = HEAP.0.lock();
        let c = talc.get_counters();
        HeapStats { claimed: HEAP_CLAIMED.load(Ordering::Relaxed), allocated: c.allocated_bytes as u64 }
    })
}

fn addr_of_symbol(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// Hands usable RAM to the page allocator, minus the kernel and the ramdisk, and starts the heap.
pub fn init(info: &BootInfo) {
    // SAFETY: linker-defined symbols; only their addresses are used.
    let (kstart, kend) = unsafe { (addr_of_symbol(&__kernel_start), addr_of_symbol(&__kernel_end)) };
    let mut frames = FRAMES.lock();
    for r in info.regions().iter().filter(|r| r.kind == 1) {
        let start = r.addr.max(LOW_LIMIT).next_multiple_of(PAGE_SIZE);
        let end = (r.addr + r.size).min(IDENTITY_LIMIT) / PAGE_SIZE * PAGE_SIZE;
        if end > start {
            if let Err(e) = frames.add_region(start / PAGE_SIZE, (end - start) / PAGE_SIZE) {
                log::warn!("memory region {start:#x}..{end:#x} ignored: {e}");
            }
        }
        if r.addr + r.size > IDENTITY_LIMIT {
            log::warn!("memory above 4 GiB is not used yet");
        }
    }
    let mut reserve = |start: u64, end: u64, what: &str| {
        let s = start / PAGE_SIZE;
        let e = end.div_ceil(PAGE_SIZE);
        // Reserve page by page runs that are actually in the pool.
        let mut p = s;
        while p < e {
            let ranges = frames.ranges();
            let hit = ranges.iter().find(|r| r.end() > p && r.start < e).copied();
            match hit {
                Some(r) => {
                    let a = r.start.max(p);
                    let b = r.end().min(e);
                    if frames.reserve(a, b - a).is_err() {
                        log::warn!("could not reserve {what}");
                    }
                    p = b;
                }
                None => break,
            }
        }
    };
    reserve(kstart, kend, "kernel image");
    if let Some(m) = info.initrd {
        reserve(m.addr, m.addr + m.size, "initrd");
    }
    drop(frames);
    KERNEL_PML4.store(Cr3::read().0.start_address().as_u64(), Ordering::Relaxed);
    populate_kernel_half();
    // SAFETY: the arena is a static used only here, handed to the heap once.
    unsafe {
        let base = (&raw mut INITIAL_ARENA).cast::<u8>();
        let _ = HEAP.0.lock().claim(Span::from_base_size(base, INITIAL_HEAP));
    }
}

/// Bytes guests may still take: free memory (pages and free heap) minus the kernel's reserve
/// (1/16 of RAM, at least 8 MiB), so no guest can run the kernel out of memory.
pub fn available_for_guests() -> usize {
    let (total, free) = frame_stats();
    let h = heap_stats();
    let free_bytes = free * 4096 + h.claimed.saturating_sub(h.allocated);
    let reserve = (total * 4096 / 16).max(8 << 20);
    free_bytes.saturating_sub(reserve) as usize
}

/// Physical page figures: (total, free) in pages.
pub fn frame_stats() -> (u64, u64) {
    interrupts::without_interrupts(|| {
        let f = FRAMES.lock();
        (f.total_pages(), f.free_pages())
    })
}

struct PageTableFrames;

/// A fresh frame from the page allocator, zeroed (page tables and memory handed to programs
/// must not show what was there before): its physical address, identity-mapped.
pub fn zeroed_frame() -> Option<u64> {
    let page = interrupts::without_interrupts(|| FRAMES.lock().allocate(1, 1).ok())?;
    let addr = page * PAGE_SIZE;
    // SAFETY: the frame is identity-mapped and now ours alone.
    unsafe { core::ptr::write_bytes(addr as *mut u8, 0, PAGE_SIZE as usize) };
    Some(addr)
}

// SAFETY: returns unused, zeroed frames from the page allocator.
unsafe impl FrameAllocator<Size4KiB> for PageTableFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        PhysFrame::from_start_address(PhysAddr::new(zeroed_frame()?)).ok()
    }
}

static PAGE_TABLES: Ordered<()> = Ordered::new(Rank::PageTables, ());

/// The kernel's own PML4 (the boot stub's): kernel mappings are made there, and every process's
/// address space shares its tables outside the user half.
static KERNEL_PML4: AtomicU64 = AtomicU64::new(0);

/// The physical address of the kernel's PML4.
pub fn kernel_pml4() -> u64 {
    KERNEL_PML4.load(Ordering::Relaxed)
}

/// Gives every slot of the kernel half of the PML4 its table now, so that address spaces made
/// later (which copy these slots) see every kernel mapping made after them too.
fn populate_kernel_half() {
    let _guard = PAGE_TABLES.lock();
    let pml4 = kernel_pml4() as *mut PageTable;
    for i in 256..512 {
        // SAFETY: the kernel's PML4 is identity-mapped; the PAGE_TABLES lock is held.
        let entry = unsafe { &mut (&mut *pml4)[i] };
        if entry.is_unused() {
            if let Some(frame) = PageTableFrames.allocate_frame() {
                entry.set_frame(frame, PageTableFlags::PRESENT | PageTableFlags::WRITABLE);
            }
        }
    }
}

fn with_mapper<R>(f: impl FnOnce(&mut OffsetPageTable<'static>) -> R) -> R {
    interrupts::without_interrupts(|| {
        let _guard = PAGE_TABLES.lock();
        // SAFETY: physical memory is identity-mapped (offset 0); the kernel's PML4 is shared by
        // every address space for the kernel's addresses, and the PAGE_TABLES lock serialises
        // every change to it.
        let mut mapper = unsafe {
            let pml4 = &mut *(kernel_pml4() as *mut PageTable);
            OffsetPageTable::new(pml4, VirtAddr::new(0))
        };
        f(&mut mapper)
    })
}

/// A kernel stack with an unmapped guard page below it.
pub struct KernelStack {
    pub bottom: u64,
    pub top: u64,
    guard: u64,
    frames: u64,
    pages: u64,
    slot: u64,
}

const MAX_STACKS: usize = 256;
/// Live stacks: (guard page address, name) for fault reports.
static STACKS: Ordered<[(u64, u64, &str); MAX_STACKS]> = Ordered::new(Rank::Stacks, [(0, 0, ""); MAX_STACKS]);
static NEXT_STACK_SLOT: AtomicU64 = AtomicU64::new(0);

/// Allocates a stack of `pages` pages with a guard page, in the stack region.
pub fn alloc_stack(pages: u64, name: &'static str) -> Option<KernelStack> {
    // Reuse the address-space slot of a freed stack (its page tables are still there).
    let reused = interrupts::without_interrupts(|| FREE_SLOTS.lock().pop());
    let slot = reused.unwrap_or_else(|| NEXT_STACK_SLOT.fetch_add(1, Ordering::Relaxed));
    // Every slot gets 1 MiB of address space plus a guard page.
    const SLOT_SIZE: u64 = (1 << 20) + PAGE_SIZE;
    if pages * PAGE_SIZE > (1 << 20) {
        return None;
    }
    let guard = STACK_REGION + slot * SLOT_SIZE + ((1 << 20) - pages * PAGE_SIZE);
    let bottom = guard + PAGE_SIZE;
    let first = interrupts::without_interrupts(|| FRAMES.lock().allocate(pages, 1).ok())?;
    let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
    let ok = with_mapper(|m| {
        for i in 0..pages {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(bottom + i * PAGE_SIZE));
            let frame = PhysFrame::containing_address(PhysAddr::new((first + i) * PAGE_SIZE));
            // SAFETY: the frame is fresh from the allocator and the page lies in the unused
            // stack region; nothing else refers to either.
            match unsafe { m.map_to(page, frame, flags, &mut PageTableFrames) } {
                Ok(flush) => flush.flush(),
                Err(_) => return false,
            }
        }
        true
    });
    if !ok {
        return None;
    }
    interrupts::without_interrupts(|| {
        let mut stacks = STACKS.lock();
        if let Some(s) = stacks.iter_mut().find(|s| s.0 == 0) {
            *s = (guard, bottom + pages * PAGE_SIZE, name);
        }
    });
    Some(KernelStack { bottom, top: bottom + pages * PAGE_SIZE, guard, frames: first, pages, slot })
}

/// Address-space slots of freed stacks.
static FREE_SLOTS: Ordered<alloc::vec::Vec<u64>> = Ordered::new(Rank::FreeSlots, alloc::vec::Vec::new());

impl Drop for KernelStack {
    fn drop(&mut self) {
        with_mapper(|m| {
            for i in 0..self.pages {
                let page = Page::<Size4KiB>::containing_address(VirtAddr::new(self.bottom + i * PAGE_SIZE));
                if let Ok((_, flush)) = m.unmap(page) {
                    flush.flush();
                }
            }
        });
        // Other CPUs that ran the task may still cache the stack's pages: not before they
        // forgot them do the frames go back (and the slot to the next stack).
        crate::arch::smp::shootdown(self.bottom, self.pages * PAGE_SIZE);
        let _ = interrupts::without_interrupts(|| FRAMES.lock().free(self.frames, self.pages));
        interrupts::without_interrupts(|| {
            let mut stacks = STACKS.lock();
            if let Some(s) = stacks.iter_mut().find(|s| s.0 == self.guard) {
                *s = (0, 0, "");
            }
            drop(stacks);
            FREE_SLOTS.lock().push(self.slot);
        });
    }
}

/// The physical address of a kernel virtual address: itself in the identity map, else what
/// the page tables say (a task stack: its frames are contiguous, so a small object on it maps
/// to one contiguous physical range). None if unmapped.
pub fn virt_to_phys(addr: u64) -> Option<u64> {
    if addr < IDENTITY_LIMIT {
        return Some(addr);
    }
    with_mapper(|m| m.translate_addr(VirtAddr::new(addr)).map(|p| p.as_u64()))
}

/// If `addr` lies in the guard page of a live kernel stack, the stack's name.
pub fn guard_page_owner(addr: u64) -> Option<&'static str> {
    let stacks = STACKS.try_lock()?;
    stacks.iter().find(|s| s.0 != 0 && addr >= s.0 && addr < s.0 + PAGE_SIZE).map(|s| s.2)
}

/// True if `[addr, addr+len)` can be read without faulting (used by the backtrace walker).
pub fn is_kernel_readable(addr: u64, len: u64) -> bool {
    let Some(end) = addr.checked_add(len) else {
        return false;
    };
    if addr >= 0x1000 && end <= IDENTITY_LIMIT {
        return true;
    }
    if let Some(stacks) = STACKS.try_lock() {
        return stacks.iter().any(|s| s.0 != 0 && addr >= s.0 + PAGE_SIZE && end <= s.1);
    }
    // Fall back to the page tables (only if no one holds them).
    let Some(_guard) = PAGE_TABLES.try_lock() else {
        return false;
    };
    let (frame, _) = Cr3::read();
    // SAFETY: identity-mapped active PML4, only read.
    let mapper = unsafe {
        let pml4 = &mut *(frame.start_address().as_u64() as *mut PageTable);
        OffsetPageTable::new(pml4, VirtAddr::new(0))
    };
    mapper.translate_addr(VirtAddr::new(addr)).is_some()
}

// ---- Virtual memory for the compiled tier ----
//
// wasmtime reserves address space for each linear memory (4 GiB plus a 32 MiB guard), makes the
// part in use accessible, and lets an access past it fault: the fault is the bounds check. Keel
// gives it a region of the kernel's address space where reservations are address ranges only
// (a page allocator over virtual page numbers), and pages are backed by fresh zeroed frames
// when they are made accessible.

/// Where reservations live: 16 TiB of the kernel half, apart from everything else, so that an
/// instruction pointer in it is compiled WASM code.
pub const VM_REGION: u64 = 0xffff_9000_0000_0000;
/// Its size.
pub const VM_REGION_SIZE: u64 = 1 << 44;
/// Pages changed per pass with interrupts off (the rest of a large change waits for the next).
const VM_BATCH: u64 = 256;

/// Free address ranges of the region, in pages (set up at the first reservation).
static VM_SPACE: Ordered<Option<PageAllocator<1024>>> = Ordered::new(Rank::VmSpace, None);

/// How reserved pages may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Not mapped: any access faults.
    None,
    ReadOnly,
    ReadWrite,
    ReadExecute,
}

impl Access {
    fn flags(self) -> PageTableFlags {
        let p = PageTableFlags::PRESENT;
        match self {
            Access::None => PageTableFlags::empty(),
            Access::ReadOnly => p | PageTableFlags::NO_EXECUTE,
            Access::ReadWrite => p | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE,
            Access::ReadExecute => p,
        }
    }
}

/// Reserves `bytes` (rounded up to pages) of the region: nothing mapped yet.
pub fn vm_reserve(bytes: u64) -> Option<u64> {
    let pages = bytes.div_ceil(PAGE_SIZE).max(1);
    interrupts::without_interrupts(|| {
        let mut space = VM_SPACE.lock();
        let alloc = space.get_or_insert_with(|| {
            let mut a = PageAllocator::new();
            let _ = a.add_region(VM_REGION / PAGE_SIZE, VM_REGION_SIZE / PAGE_SIZE);
            a
        });
        alloc.allocate(pages, 1).ok().map(|p| p * PAGE_SIZE)
    })
}

/// Gives back a reservation made by [`vm_reserve`] (its pages must be unmapped first).
pub fn vm_release(addr: u64, bytes: u64) {
    let pages = bytes.div_ceil(PAGE_SIZE).max(1);
    interrupts::without_interrupts(|| {
        if let Some(a) = VM_SPACE.lock().as_mut() {
            let _ = a.free(addr / PAGE_SIZE, pages);
        }
    });
}

fn in_vm_region(addr: u64, bytes: u64) -> bool {
    addr >= VM_REGION && addr.checked_add(bytes).is_some_and(|end| end <= VM_REGION + VM_REGION_SIZE)
}

/// Whether `addr` lies in the compiled tier's region (an instruction pointer there is compiled
/// WASM code: nothing else is mapped executable in it).
pub fn is_vm_region(addr: u64) -> bool {
    in_vm_region(addr, 1)
}

/// Sets the access of the pages in `addr..addr + bytes` of the region: pages made accessible
/// for the first time get fresh zeroed frames, pages already mapped keep their contents with
/// the new access, and `Access::None` unmaps pages and frees their frames (contents lost).
/// False when frames ran out (the pages done so far stay).
pub fn vm_protect(addr: u64, bytes: u64, access: Access) -> bool {
    if !in_vm_region(addr, bytes) || !addr.is_multiple_of(PAGE_SIZE) {
        return false;
    }
    let pages = bytes.div_ceil(PAGE_SIZE);
    let mut done = 0;
    while done < pages {
        let n = (pages - done).min(VM_BATCH);
        // Frames unmapped in this batch: freed once no CPU caches them any more.
        let mut unmapped: alloc::vec::Vec<u64> = alloc::vec::Vec::with_capacity(n as usize);
        let mut narrowed = false;
        let ok = with_mapper(|m| {
            for i in done..done + n {
                let page = Page::<Size4KiB>::containing_address(VirtAddr::new(addr + i * PAGE_SIZE));
                let mapped = m.translate_page(page).ok();
                match (mapped, access) {
                    (None, Access::None) => {}
                    (Some(frame), Access::None) => {
                        if let Ok((_, flush)) = m.unmap(page) {
                            flush.flush();
                        }
                        unmapped.push(frame.start_address().as_u64() / PAGE_SIZE);
                    }
                    (Some(_), _) => {
                        narrowed = true;
                        // SAFETY: the page belongs to a reservation of the region; only its
                        // access changes, as wasmtime asked.
                        match unsafe { m.update_flags(page, access.flags()) } {
                            Ok(flush) => flush.flush(),
                            Err(_) => return false,
                        }
                    }
                    (None, _) => {
                        let Some(phys) = zeroed_frame() else { return false };
                        let frame_no = phys / PAGE_SIZE;
                        let frame = PhysFrame::containing_address(PhysAddr::new(phys));
                        // SAFETY: the page lies in a reservation of the region and is unmapped;
                        // the frame is ours alone.
                        match unsafe { m.map_to(page, frame, access.flags(), &mut PageTableFrames) } {
                            Ok(flush) => flush.flush(),
                            Err(_) => {
                                let _ = FRAMES.lock().free(frame_no, 1);
                                return false;
                            }
                        }
                    }
                }
            }
            true
        });
        if !unmapped.is_empty() || narrowed {
            crate::arch::smp::shootdown(addr + done * PAGE_SIZE, n * PAGE_SIZE);
        }
        // By reference: the list's own memory goes back to the heap after FRAMES is let go (the
        // heap takes FRAMES when it grows; freeing heap memory under FRAMES could deadlock).
        interrupts::without_interrupts(|| {
            let mut frames = FRAMES.lock();
            for f in &unmapped {
                let _ = frames.free(*f, 1);
            }
        });
        drop(unmapped);
        if !ok {
            return false;
        }
        done += n;
    }
    true
}

/// Bytes at address 0 left unmapped once the kernel has booted.
pub const NULL_GUARD: u64 = 64 << 10;

/// Unmaps the first [`NULL_GUARD`] bytes: a null pointer then faults instead of reading the
/// firmware's low memory. Compiled WASM relies on it: Cranelift's Spectre guard turns an
/// out-of-bounds table or memory index into a null address and expects that access to fault.
/// Called once the boot information (which may lie there) has been copied.
pub fn unmap_null_guard() {
    with_mapper(|m| {
        let pml4 = m.level_4_table_mut();
        let Ok(pdpt_frame) = pml4[0].frame() else { return };
        // SAFETY: identity-mapped page tables the boot stub built; the PAGE_TABLES lock is held.
        let pdpt = unsafe { &mut *(pdpt_frame.start_address().as_u64() as *mut PageTable) };
        let Ok(pd_frame) = pdpt[0].frame() else { return };
        // SAFETY: as above.
        let pd = unsafe { &mut *(pd_frame.start_address().as_u64() as *mut PageTable) };
        // The stub maps 0..2 MiB with one 2 MiB page (the kernel runs in it, from 1 MiB): build
        // the 4 KiB table for it first, then switch the directory entry in one store.
        if !pd[0].flags().contains(PageTableFlags::HUGE_PAGE) {
            return;
        }
        let Some(pt_frame) = PageTableFrames.allocate_frame() else { return };
        // SAFETY: a fresh zeroed frame, identity-mapped, ours alone.
        let pt = unsafe { &mut *(pt_frame.start_address().as_u64() as *mut PageTable) };
        let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
        for (i, entry) in pt.iter_mut().enumerate().skip((NULL_GUARD / PAGE_SIZE) as usize) {
            entry.set_addr(PhysAddr::new(i as u64 * PAGE_SIZE), flags);
        }
        pd[0].set_frame(pt_frame, flags);
        x86_64::instructions::tlb::flush_all();
    });
}

/// Makes device memory at `phys..phys + bytes` reachable at the same virtual address (the boot
/// stub maps only the first 4 GiB; UEFI firmware places 64-bit PCI BARs higher), uncached.
/// False if the range is not canonical or page tables ran out.
pub fn map_mmio(phys: u64, bytes: u64) -> bool {
    let Some(end) = phys.checked_add(bytes) else { return false };
    if end <= IDENTITY_LIMIT {
        return true;
    }
    // Identity addresses must stay in the lower half and clear of the kernel's own regions.
    if end > (1 << 46) {
        return false;
    }
    let first = phys.max(IDENTITY_LIMIT) / PAGE_SIZE;
    let last = end.div_ceil(PAGE_SIZE);
    let flags = PageTableFlags::PRESENT
        | PageTableFlags::WRITABLE
        | PageTableFlags::NO_CACHE
        | PageTableFlags::WRITE_THROUGH
        | PageTableFlags::NO_EXECUTE;
    with_mapper(|m| {
        for p in first..last {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(p * PAGE_SIZE));
            if m.translate_page(page).is_ok() {
                continue;
            }
            let frame = PhysFrame::containing_address(PhysAddr::new(p * PAGE_SIZE));
            // SAFETY: device memory (not RAM the allocator hands out) mapped at its own address,
            // in the lower half above the boot identity map where nothing else is mapped.
            match unsafe { m.map_to(page, frame, flags, &mut PageTableFrames) } {
                Ok(flush) => flush.flush(),
                Err(_) => return false,
            }
        }
        true
    })
}
