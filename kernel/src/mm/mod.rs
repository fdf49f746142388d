//! Memory: physical pages, paging, the kernel heap, stacks, the compiled tier's reservations.

pub(crate) mod memory;
