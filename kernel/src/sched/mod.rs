//! Scheduling: tasks, the context switch, wait queues (per-CPU run queues will live here).

pub(crate) mod task;
