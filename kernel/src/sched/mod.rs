//! Scheduling: tasks, the context switch, per-CPU run queues (policy in `keel-sched`), wait
//! queues, and the kernel's ordered locks. `README.md` here holds the lock order.

pub(crate) mod lock;
pub(crate) mod task;
