//! Keel's scheduling policy, apart from the kernel code that switches stacks: one run queue per
//! CPU (first in, first out), where a task that becomes ready waits, and what an idle CPU takes
//! from the others (work stealing). The kernel (`kernel/src/sched/task.rs`) keeps these queues
//! under its scheduler lock and asks them at every switch, wake-up and new task.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod lockorder;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The most CPUs Keel runs on.
pub const MAX_CPUS: usize = 8;

/// The ready tasks of every CPU, and which CPUs run a task (rather than idling).
#[derive(Debug, Clone)]
pub struct RunQueues<T> {
    queues: Vec<VecDeque<T>>,
    busy: Vec<bool>,
}

impl<T: Copy + Eq> RunQueues<T> {
    /// Queues for `cpus` CPUs (at least one, at most [`MAX_CPUS`]), all idle.
    pub fn new(cpus: usize) -> RunQueues<T> {
        let mut q = RunQueues { queues: Vec::new(), busy: Vec::new() };
        q.set_cpus(cpus);
        q
    }

    /// How many CPUs take part.
    pub fn cpus(&self) -> usize {
        self.queues.len()
    }

    /// Grows to `cpus` CPUs (as they come online; never shrinks).
    pub fn set_cpus(&mut self, cpus: usize) {
        let cpus = cpus.clamp(1, MAX_CPUS);
        while self.queues.len() < cpus {
            self.queues.push(VecDeque::new());
            self.busy.push(false);
        }
    }

    fn clamp(&self, cpu: usize) -> usize {
        cpu.min(self.queues.len() - 1)
    }

    /// Records whether `cpu` runs a task (false: its idle task).
    pub fn set_busy(&mut self, cpu: usize, busy: bool) {
        let cpu = self.clamp(cpu);
        self.busy[cpu] = busy;
    }

    /// True when `cpu` runs nothing and nothing waits for it.
    pub fn is_idle(&self, cpu: usize) -> bool {
        let cpu = self.clamp(cpu);
        !self.busy[cpu] && self.queues[cpu].is_empty()
    }

    /// Tasks that want `cpu`: the one it runs and those waiting in its queue.
    pub fn load(&self, cpu: usize) -> usize {
        let cpu = self.clamp(cpu);
        self.queues[cpu].len() + usize::from(self.busy[cpu])
    }

    /// Tasks waiting in `cpu`'s queue.
    pub fn queued(&self, cpu: usize) -> usize {
        self.queues[self.clamp(cpu)].len()
    }

    /// Where a task that becomes ready (new, or woken) should wait: the CPU it is pinned to;
    /// else the one it last ran on if that is idle (its caches are warm); else any idle CPU;
    /// else the least loaded one, the last one on a tie.
    pub fn place(&self, last: usize, pinned: Option<usize>) -> usize {
        if let Some(p) = pinned {
            return self.clamp(p);
        }
        let last = self.clamp(last);
        if self.is_idle(last) {
            return last;
        }
        if let Some(idle) = (0..self.cpus()).find(|&c| self.is_idle(c)) {
            return idle;
        }
        let least = (0..self.cpus()).min_by_key(|&c| self.load(c)).unwrap_or(last);
        if self.load(least) < self.load(last) {
            least
        } else {
            last
        }
    }

    /// Queues `task` on `cpu` (at the back).
    pub fn push(&mut self, cpu: usize, task: T) {
        let cpu = self.clamp(cpu);
        self.queues[cpu].push_back(task);
    }

    /// Takes `task` out of whichever queue holds it; false if none does.
    pub fn remove(&mut self, task: T) -> bool {
        for q in &mut self.queues {
            if let Some(i) = q.iter().position(|t| *t == task) {
                q.remove(i);
                return true;
            }
        }
        false
    }

    /// True if some queue holds `task`.
    pub fn contains(&self, task: T) -> bool {
        self.queues.iter().any(|q| q.contains(&task))
    }

    /// The next task for `cpu` from its own queue.
    pub fn pick_own(&mut self, cpu: usize) -> Option<T> {
        let cpu = self.clamp(cpu);
        self.queues[cpu].pop_front()
    }

    /// A task for `cpu`, which has nothing else to run: the head of its own queue, else one
    /// stolen from the CPU with the longest queue (the first there that `movable` allows: tasks
    /// pinned to their CPU stay). Returns the task and the CPU whose queue it left.
    pub fn pick_or_steal(&mut self, cpu: usize, movable: impl Fn(T) -> bool) -> Option<(T, usize)> {
        let cpu = self.clamp(cpu);
        if let Some(t) = self.queues[cpu].pop_front() {
            return Some((t, cpu));
        }
        let mut victims: Vec<usize> = (0..self.cpus()).filter(|&c| c != cpu && !self.queues[c].is_empty()).collect();
        victims.sort_by_key(|&c| core::cmp::Reverse(self.queues[c].len()));
        for v in victims {
            if let Some(i) = self.queues[v].iter().position(|t| movable(*t)) {
                let t = self.queues[v].remove(i)?;
                return Some((t, v));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_pinned_task_goes_to_its_cpu() {
        let q: RunQueues<u32> = RunQueues::new(4);
        assert_eq!(q.place(0, Some(3)), 3);
        assert_eq!(q.place(0, Some(9)), 3, "a CPU past the last one means the last");
    }

    #[test]
    fn a_woken_task_prefers_its_idle_cpu_then_any_idle_cpu_then_the_least_loaded() {
        let mut q: RunQueues<u32> = RunQueues::new(3);
        assert_eq!(q.place(1, None), 1, "its own CPU is idle");
        q.set_busy(1, true);
        assert_eq!(q.place(1, None), 0, "the first idle CPU");
        q.set_busy(0, true);
        q.set_busy(2, true);
        q.push(1, 10);
        q.push(2, 11);
        assert_eq!(q.load(0), 1);
        assert_eq!(q.place(1, None), 0, "the least loaded when nobody idles");
        q.push(0, 12);
        assert_eq!(q.place(1, None), 1, "its own CPU on a tie");
    }

    #[test]
    fn own_queue_first_in_first_out() {
        let mut q: RunQueues<u32> = RunQueues::new(2);
        q.push(0, 1);
        q.push(0, 2);
        q.push(1, 3);
        assert_eq!(q.pick_own(0), Some(1));
        assert_eq!(q.pick_or_steal(0, |_| true), Some((2, 0)));
        assert_eq!(q.pick_own(0), None);
    }

    #[test]
    fn an_idle_cpu_steals_from_the_longest_queue_but_not_pinned_tasks() {
        let mut q: RunQueues<u32> = RunQueues::new(3);
        q.push(1, 1);
        q.push(2, 2);
        q.push(2, 3);
        q.push(2, 4);
        // Task 2 is pinned to CPU 2.
        assert_eq!(q.pick_or_steal(0, |t| t != 2), Some((3, 2)));
        assert_eq!(q.pick_or_steal(0, |t| t != 2), Some((4, 2)), "CPU 2's queue is still the longest");
        assert_eq!(q.pick_or_steal(0, |t| t != 2), Some((1, 1)));
        assert_eq!(q.pick_or_steal(0, |t| t != 2), None, "only the pinned task is left");
        assert!(q.contains(2));
    }

    #[test]
    fn remove_finds_a_task_in_any_queue() {
        let mut q: RunQueues<u32> = RunQueues::new(2);
        q.push(1, 7);
        assert!(q.remove(7));
        assert!(!q.remove(7));
        assert_eq!(q.queued(1), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// A new or woken task: its last CPU and pin.
        Ready(usize, Option<usize>),
        /// A CPU takes a task to run (`steal`: it has nothing else).
        Pick(usize, bool),
        /// A queued task is killed (the n-th queued one).
        Remove(usize),
        Busy(usize, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..6usize, proptest::option::of(0..4usize)).prop_map(|(l, p)| Op::Ready(l, p)),
            (0..4usize, any::<bool>()).prop_map(|(c, s)| Op::Pick(c, s)),
            (0..8usize).prop_map(Op::Remove),
            (0..4usize, any::<bool>()).prop_map(|(c, b)| Op::Busy(c, b)),
        ]
    }

    proptest! {
        /// Whatever happens, every ready task waits in exactly one queue until a CPU takes it,
        /// a pinned task only ever runs on its CPU, and nothing is taken twice or lost.
        #[test]
        fn no_task_is_lost_duplicated_or_run_on_the_wrong_cpu(ops in proptest::collection::vec(op(), 1..200)) {
            let mut q: RunQueues<u32> = RunQueues::new(4);
            let mut pins = alloc::collections::BTreeMap::new();
            let mut waiting: Vec<u32> = Vec::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Ready(last, pin) => {
                        let cpu = q.place(last, pin);
                        prop_assert!(cpu < 4);
                        if let Some(p) = pin {
                            prop_assert_eq!(cpu, p);
                        }
                        q.push(cpu, next);
                        pins.insert(next, pin);
                        waiting.push(next);
                        next += 1;
                    }
                    Op::Pick(cpu, steal) => {
                        let got = if steal {
                            q.pick_or_steal(cpu, |t| pins.get(&t).copied().flatten().is_none_or(|p| p == cpu))
                        } else {
                            q.pick_own(cpu).map(|t| (t, cpu))
                        };
                        if let Some((t, _)) = got {
                            prop_assert!(pins[&t].is_none_or(|p| p == cpu), "task {} pinned to {:?} ran on {}", t, pins[&t], cpu);
                            let i = waiting.iter().position(|w| *w == t);
                            prop_assert!(i.is_some(), "task {} taken twice", t);
                            waiting.remove(i.unwrap_or(0));
                        }
                    }
                    Op::Remove(n) => {
                        if !waiting.is_empty() {
                            let t = waiting.remove(n % waiting.len());
                            prop_assert!(q.remove(t));
                        }
                    }
                    Op::Busy(cpu, b) => q.set_busy(cpu, b),
                }
                let queued: usize = (0..4).map(|c| q.queued(c)).sum();
                prop_assert_eq!(queued, waiting.len());
                for t in &waiting {
                    prop_assert!(q.contains(*t));
                }
            }
        }
    }
}
