//! Tasks and the scheduler: kernel threads with their own guarded stacks, on every CPU. Each CPU
//! has a run queue (policy in `keel-sched`: where a task that becomes ready waits, what an idle
//! CPU steals); the timer preempts (10 ms slices), tasks block on [`WaitQueue`]s, sleep or yield.
//! An idle CPU halts in its idle task until an interrupt, or the IPI a waker sends when it gives
//! that CPU a task. The FPU/SSE state is saved and restored per task.
//!
//! One lock (`SCHED`, always taken with interrupts off) guards every task's state and the
//! queues. It is held *across* the switch: the CPU that switches away from a task releases it
//! only on the next task's stack, so no other CPU can pick up a task whose registers are still
//! being saved. Lock order (see `sched/README.md`): a wait queue's lock, then `SCHED`; the
//! shootdown lock and the page-frame lock may be taken under `SCHED`, never the reverse.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::sched::lock::{self, Ordered, Rank};
use keel_sched::RunQueues;
use x86_64::instructions::interrupts;

use crate::arch::{smp, time};
use crate::mm::memory::{self, KernelStack};

/// A task identifier (what `ps` shows as PID).
pub type Pid = u64;

/// Pages of every task's stack (256 KiB).
const STACK_PAGES: u64 = 64;
/// Timer ticks in one time slice (10 ms at 100 Hz).
pub const SLICE_TICKS: u64 = 1;

/// What a task is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Wants a CPU (or was woken while still on one, before it switched away).
    Ready,
    Running,
    /// Sleeping until this monotonic time (ns).
    Sleeping(u64),
    Dead,
}

/// 512-byte FXSAVE area.
#[repr(C, align(16))]
struct FxArea([u8; 512]);

/// A task's body, moved once into its task and run there (on whichever CPU runs the task).
struct Job(Box<dyn FnOnce() -> i32>);

// SAFETY: the closure is moved once into its task and only run there, on whichever CPU. What
// it captures is shared with the spawner only through objects that count atomically and lock
// (the shell's output sinks are `Arc<Mutex>`, pipes, files, the VFS).
unsafe impl Send for Job {}

struct Task {
    pid: Pid,
    name: String,
    state: State,
    rsp: u64,
    fx: Box<FxArea>,
    stack: Option<KernelStack>,
    entry: Option<Job>,
    cpu_ns: u64,
    /// Set by `kill`: the task should end at its next check.
    kill: AtomicBool,
    /// Memory the task reports using (e.g. a WASM program's linear memory).
    mem_bytes: AtomicU64,
    /// Which engine runs the task's WASM program ("" when none), for `ps`.
    engine: &'static str,
    exit_status: Option<i32>,
    /// Events that end the task's sleep early ([`EVENT_INPUT`], [`EVENT_NET`]).
    waits_for: u8,
    /// The CPU it runs on, or last ran on.
    cpu: usize,
    /// Runs only on this CPU (idle tasks; `wasm --cpu N`).
    pinned: Option<usize>,
    /// A CPU runs it now: its registers are live there, not saved in `rsp`/`fx`.
    on_cpu: bool,
}

impl Task {
    fn new(pid: Pid, name: &str, state: State, cpu: usize) -> Box<Task> {
        Box::new(Task {
            pid,
            name: String::from(name),
            state,
            rsp: 0,
            fx: Box::new(FxArea([0; 512])),
            stack: None,
            entry: None,
            cpu_ns: 0,
            kill: AtomicBool::new(false),
            mem_bytes: AtomicU64::new(0),
            engine: "",
            exit_status: None,
            waits_for: 0,
            cpu,
            pinned: None,
            on_cpu: false,
        })
    }
}

/// Keyboard or serial input arrived.
pub const EVENT_INPUT: u8 = 1;
/// The network interface interrupted (packets in, buffers free).
pub const EVENT_NET: u8 = 2;
/// A disk completed a request.
pub const EVENT_DISK: u8 = 4;

/// Events raised since a sleeper last looked: a task about to sleep for one of them does not
/// (it happened between its last check and its sleep). Read and cleared under `SCHED`.
static RAISED: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// What one CPU is doing.
#[derive(Clone, Copy)]
struct Cpu {
    current: Pid,
    idle: Pid,
    /// When the running slice began (uptime ns).
    slice_start: u64,
    /// Ticks into the slice.
    ticks: u64,
    /// Time spent running tasks other than the idle task (ns).
    busy_ns: u64,
}

struct Scheduler {
    tasks: BTreeMap<Pid, Box<Task>>,
    queues: RunQueues<Pid>,
    cpus: Vec<Cpu>,
    next_pid: Pid,
    /// Dead tasks whose stacks can be freed once no CPU runs on them.
    reap: Vec<Pid>,
}

static SCHED: Ordered<Option<Scheduler>> = Ordered::new(Rank::Sched, None);
static STARTED: AtomicBool = AtomicBool::new(false);

global_asm!(
    r#"
    .section .text.keel_switch, "ax"
    .global keel_switch
    // keel_switch(save_rsp: *mut u64 [rdi], load_rsp: u64 [rsi])
keel_switch:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov [rdi], rsp
    mov rsp, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

    .global keel_task_trampoline
keel_task_trampoline:
    xor ebp, ebp
    and rsp, -16
    call {start}
    ud2
    "#,
    start = sym task_start,
);

extern "C" {
    fn keel_switch(save_rsp: *mut u64, load_rsp: u64);
    fn keel_task_trampoline();
}

fn with_sched<R>(f: impl FnOnce(&mut Scheduler) -> R) -> Option<R> {
    interrupts::without_interrupts(|| SCHED.lock().as_mut().map(f))
}

impl Cpu {
    /// A CPU running `current`, its idle task `idle`, from now.
    fn new(current: Pid, idle: Pid) -> Cpu {
        Cpu { current, idle, slice_start: time::uptime_ns(), ticks: 0, busy_ns: 0 }
    }
}

impl Scheduler {
    fn cpu(&self, cpu: usize) -> &Cpu {
        &self.cpus[cpu.min(self.cpus.len() - 1)]
    }

    fn current(&self) -> Pid {
        self.cpu(smp::cpu()).current
    }

    /// Makes a sleeping task ready and queues it where the policy says, waking that CPU if it
    /// idles. A task still on its CPU (woken between deciding to sleep and switching away) is
    /// only marked: its CPU sees it is ready and keeps it.
    fn wake(&mut self, pid: Pid) {
        let Some(t) = self.tasks.get_mut(&pid) else { return };
        if !matches!(t.state, State::Sleeping(_)) {
            return;
        }
        t.state = State::Ready;
        t.waits_for = 0;
        if t.on_cpu {
            return;
        }
        let (last, pinned) = (t.cpu, t.pinned);
        self.enqueue(pid, last, pinned);
    }

    /// Queues a ready task that no CPU runs.
    fn enqueue(&mut self, pid: Pid, last: usize, pinned: Option<usize>) {
        let target = self.queues.place(last, pinned);
        self.queues.push(target, pid);
        if let Some(c) = self.cpus.get(target) {
            if c.current == c.idle {
                smp::kick(target);
            }
        }
    }
}

/// Turns the running boot code into task 1 and starts the boot CPU's idle task; the timer then
/// preempts.
pub fn init(name: &str) {
    let mut me = Task::new(1, name, State::Running, 0);
    me.on_cpu = true;
    let mut tasks = BTreeMap::new();
    tasks.insert(1, me);
    interrupts::without_interrupts(|| {
        let mut queues = RunQueues::new(1);
        queues.set_busy(0, true);
        *SCHED.lock() =
            Some(Scheduler { tasks, queues, cpus: alloc::vec![Cpu::new(1, 0)], next_pid: 2, reap: Vec::new() });
    });
    let Some(idle) = spawn_on("idle", Box::new(|| idle_loop()), Some(0), false) else {
        panic!("cannot start the idle task");
    };
    with_sched(|s| s.cpus[0].idle = idle);
    STARTED.store(true, Ordering::SeqCst);
}

/// Makes the code running on a newly started CPU its idle task (called by the CPU itself, with
/// interrupts off, before it takes part).
pub fn init_ap(cpu: usize) {
    with_sched(|s| {
        let pid = s.next_pid;
        s.next_pid += 1;
        let mut t = Task::new(pid, "idle", State::Running, cpu);
        t.pinned = Some(cpu);
        t.on_cpu = true;
        s.tasks.insert(pid, t);
        let me = Cpu::new(pid, pid);
        if s.cpus.len() <= cpu {
            s.cpus.resize(cpu + 1, me);
        }
        s.cpus[cpu] = me;
        s.queues.set_cpus(s.cpus.len());
        s.queues.set_busy(cpu, false);
    });
}

/// The idle task: halts until an interrupt, then lets others run.
pub fn idle_loop() -> ! {
    loop {
        interrupts::enable_and_hlt();
        yield_now();
    }
}

/// Starts a task running `f`; the task ends with the status `f` returns (everything `f` owns is
/// dropped first). Returns its pid, or None when memory for its stack is missing.
pub fn spawn(name: &str, f: Box<dyn FnOnce() -> i32>) -> Option<Pid> {
    spawn_on(name, f, None, true)
}

fn spawn_on(name: &str, f: Box<dyn FnOnce() -> i32>, pinned: Option<usize>, queue: bool) -> Option<Pid> {
    let stack = memory::alloc_stack(STACK_PAGES, "a task")?;
    // Initial frame for keel_switch: six callee-saved registers, then the return address.
    let top = stack.top;
    let frame = top - 8 * 8;
    // SAFETY: the stack is freshly mapped and ours; we write the 7 words keel_switch pops
    // (r15, r14, r13, r12, rbx, rbp, return address) below a 16-byte aligned top.
    unsafe {
        let p = frame as *mut u64;
        for i in 0..6 {
            p.add(i).write(0);
        }
        p.add(6).write(keel_task_trampoline as *const () as usize as u64);
        p.add(7).write(0);
    }
    with_sched(|s| {
        let pid = s.next_pid;
        s.next_pid += 1;
        let here = smp::cpu();
        let mut t = Task::new(pid, name, State::Ready, pinned.unwrap_or(here));
        t.rsp = frame;
        t.stack = Some(stack);
        t.entry = Some(Job(f));
        t.pinned = pinned;
        s.tasks.insert(pid, t);
        if queue {
            s.enqueue(pid, here, pinned);
        }
        pid
    })
}

extern "C" fn task_start() -> ! {
    // The CPU that switched here still holds the scheduler's lock (see `schedule`).
    // A new task holds no lock but the scheduler's, which it lets go now.
    lock::restore(0);
    // SAFETY: this task was started by `schedule`, which leaves SCHED locked across the switch
    // for the task it switches to; nothing else holds it.
    unsafe { SCHED.force_unlock() };
    // A new task starts with clean FPU state and interrupts on.
    // SAFETY: fninit resets x87 state; ldmxcsr loads the default SSE control word.
    unsafe {
        let mxcsr: u32 = 0x1f80;
        core::arch::asm!("fninit", "ldmxcsr [{0}]", in(reg) &mxcsr, options(nostack));
    }
    // No wasmtime activation yet (the globals still hold the previous task's).
    crate::proc::aot::tls_restore([core::ptr::null_mut(); 2]);
    // Nor an address space of its own.
    crate::arch::user::start_task();
    let job = with_sched(|s| {
        let cur = s.current();
        s.tasks.get_mut(&cur).and_then(|t| t.entry.take())
    })
    .flatten();
    interrupts::enable();
    // `f` returns (rather than calling `exit`), so its captures are dropped before the task ends.
    let status = match job {
        Some(Job(f)) => f(),
        None => 0,
    };
    exit(status)
}

/// Ends the current task with `status`.
pub fn exit(status: i32) -> ! {
    interrupts::disable();
    with_sched(|s| {
        let cur = s.current();
        if let Some(t) = s.tasks.get_mut(&cur) {
            t.state = State::Dead;
            t.exit_status = Some(status);
        }
        s.reap.push(cur);
    });
    EXITS.wake_all();
    schedule();
    // Not reached: a dead task is never picked again. Should the switch not happen, keep the
    // CPU's interrupts served and try again rather than halt it for good.
    log::warn!("task {}: still running after its exit", current_pid());
    loop {
        interrupts::enable_and_hlt();
        interrupts::disable();
        schedule();
    }
}

/// True once the scheduler runs (tasks can sleep).
pub fn started() -> bool {
    STARTED.load(Ordering::Relaxed)
}

/// Gives the CPU to the next ready task (if any).
pub fn yield_now() {
    interrupts::without_interrupts(schedule);
}

/// Sleeps until the monotonic time `until` (ns).
pub fn sleep_until(until: u64) {
    interrupts::without_interrupts(|| {
        with_sched(|s| {
            let cur = s.current();
            if let Some(t) = s.tasks.get_mut(&cur) {
                t.state = State::Sleeping(until);
            }
        });
        schedule();
    });
}

/// Sleeps until `until` or until keyboard input arrives, whichever is first.
pub fn sleep_for_input(until: u64) {
    sleep_for(EVENT_INPUT, until)
}

/// Sleeps until `until` or until one of `events` happens, whichever is first.
pub fn sleep_for(events: u8, until: u64) {
    interrupts::without_interrupts(|| {
        // Under the lock: an event raised after this look finds the task asleep and wakes it.
        let sleeps = with_sched(|s| {
            if RAISED.fetch_and(!events, Ordering::SeqCst) & events != 0 {
                return false;
            }
            let cur = s.current();
            if let Some(t) = s.tasks.get_mut(&cur) {
                t.state = State::Sleeping(until);
                t.waits_for = events;
            }
            true
        });
        if sleeps == Some(true) {
            schedule();
        }
    });
}

/// Tasks waiting for one thing (a pipe's data or room, a task's end). A waiter sleeps until a
/// waker makes exactly the queued tasks ready, until its deadline, until it is killed, or (as it
/// also waits for input) until a key such as Ctrl-C arrives. The queue's lock is held from the
/// check of the condition until the task is marked asleep and queued, so a waker on another
/// CPU (which changes the condition, then calls [`WaitQueue::wake_all`]) cannot slip between.
pub struct WaitQueue {
    waiters: Ordered<Vec<Pid>>,
}

impl WaitQueue {
    pub const fn new() -> WaitQueue {
        WaitQueue { waiters: Ordered::new(Rank::WaitQueue, Vec::new()) }
    }

    /// Returns at once if `ready()`; else sleeps until woken, `until` (uptime ns), a kill or
    /// input. Callers loop: being woken does not mean the condition holds. `ready` runs with
    /// interrupts off: it must not spin on a lock a preempted task may hold (use try_lock).
    pub fn wait(&self, ready: impl Fn() -> bool, until: u64) {
        interrupts::without_interrupts(|| {
            let mut waiters = self.waiters.lock();
            if ready() {
                return;
            }
            let Some(cur) = with_sched(|s| {
                let cur = s.current();
                let t = s.tasks.get_mut(&cur)?;
                if t.kill.load(Ordering::SeqCst) {
                    return None;
                }
                t.state = State::Sleeping(until);
                t.waits_for = EVENT_INPUT;
                Some(cur)
            })
            .flatten() else {
                return;
            };
            waiters.push(cur);
            drop(waiters);
            schedule();
            self.waiters.lock().retain(|p| *p != cur);
        })
    }

    /// Makes every waiting task ready.
    pub fn wake_all(&self) {
        let pids: Vec<Pid> = interrupts::without_interrupts(|| core::mem::take(&mut *self.waiters.lock()));
        if pids.is_empty() {
            return;
        }
        with_sched(|s| {
            for p in pids {
                s.wake(p);
            }
        });
    }
}

/// Woken whenever a task ends (the shell waiting for its jobs).
pub static EXITS: WaitQueue = WaitQueue::new();

/// True once `pid` has ended (or never existed).
pub fn exited(pid: Pid) -> bool {
    with_sched(|s| s.tasks.get(&pid).is_none_or(|t| t.state == State::Dead)).unwrap_or(true)
}

/// Called by the input interrupts: makes tasks waiting for input ready to run.
pub fn wake_input_waiters() {
    wake_waiters(EVENT_INPUT)
}

/// Makes the tasks sleeping for any of `events` ready to run (callable from interrupts: every
/// holder of the scheduler's lock has interrupts off, so it is never held by the code this
/// interrupt stopped).
pub fn wake_waiters(events: u8) {
    interrupts::without_interrupts(|| {
        let mut guard = SCHED.lock();
        RAISED.fetch_or(events, Ordering::SeqCst);
        let Some(s) = guard.as_mut() else { return };
        let woke: Vec<Pid> = s.tasks.values().filter(|t| t.waits_for & events != 0).map(|t| t.pid).collect();
        for p in woke {
            if let Some(t) = s.tasks.get_mut(&p) {
                t.waits_for = 0;
            }
            s.wake(p);
        }
    })
}

/// Sleeps for `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    sleep_until(time::uptime_ns() + ms * 1_000_000);
}

/// Called by the timer interrupt on each CPU (after end-of-interrupt): wakes sleepers whose
/// time came, and every slice switches to another ready task of this CPU.
pub fn on_tick() {
    if !STARTED.load(Ordering::Relaxed) {
        return;
    }
    let now = time::uptime_ns();
    let slice_over = {
        let mut guard = SCHED.lock();
        let Some(s) = guard.as_mut() else { return };
        let due: Vec<Pid> =
            s.tasks.values().filter(|t| matches!(t.state, State::Sleeping(u) if now >= u)).map(|t| t.pid).collect();
        for p in due {
            s.wake(p);
        }
        let cpu = smp::cpu();
        match s.cpus.get_mut(cpu) {
            Some(c) => {
                c.ticks += 1;
                if c.ticks >= SLICE_TICKS {
                    c.ticks = 0;
                    true
                } else {
                    false
                }
            }
            None => false,
        }
    };
    if slice_over {
        schedule();
    }
}

/// Called by the reschedule IPI: an idle CPU was given a task.
pub fn on_reschedule() {
    let idle = with_sched(|s| {
        let c = s.cpu(smp::cpu());
        c.current == c.idle
    });
    if idle == Some(true) {
        schedule();
    }
}

/// Picks the next task for this CPU and switches to it. Interrupts must be off.
fn schedule() {
    let now = time::uptime_ns();
    let cpu = smp::cpu();
    let mut guard = SCHED.lock();
    let Some(s) = guard.as_mut() else { return };
    if cpu >= s.cpus.len() {
        return;
    }
    // Free the stacks of dead tasks no CPU runs on.
    let dead: Vec<Pid> = s.reap.iter().copied().filter(|p| s.tasks.get(p).is_none_or(|t| !t.on_cpu)).collect();
    s.reap.retain(|p| !dead.contains(p));
    for p in dead {
        if let Some(t) = s.tasks.get_mut(&p) {
            t.stack = None;
        }
    }
    let Cpu { current: cur, idle, slice_start, .. } = s.cpus[cpu];
    let elapsed = now.saturating_sub(slice_start);
    s.cpus[cpu].slice_start = now;
    if cur != idle {
        s.cpus[cpu].busy_ns += elapsed;
    }
    let cur_state = s.tasks.get(&cur).map(|t| t.state);
    if let Some(t) = s.tasks.get_mut(&cur) {
        t.cpu_ns += elapsed;
    }
    // The current task can go on unless it sleeps or ended (woken early: Ready), or was pinned
    // to another CPU (it then waits in that CPU's queue).
    let runnable = matches!(cur_state, Some(State::Running | State::Ready)) && cur != idle;
    let moves_to = s.tasks.get(&cur).and_then(|t| t.pinned).filter(|c| *c != cpu && runnable);
    let next = if runnable && moves_to.is_none() {
        s.queues.pick_own(cpu)
    } else {
        let tasks = &s.tasks;
        s.queues
            .pick_or_steal(cpu, |p| tasks.get(&p).is_some_and(|t| t.pinned.is_none_or(|c| c == cpu)))
            .map(|(p, _)| p)
    };
    let next = match next {
        Some(n) => n,
        None if (runnable && moves_to.is_none()) || cur == idle => {
            // Nobody else wants this CPU: keep going.
            if let Some(t) = s.tasks.get_mut(&cur) {
                t.state = State::Running;
            }
            return;
        }
        None => idle,
    };
    if !s.tasks.contains_key(&next) {
        // Not expected (queues hold live tasks only): keep running what runs.
        log::warn!("scheduler: cpu {cpu} picked task {next}, which does not exist");
        return;
    }
    if runnable {
        if let Some(t) = s.tasks.get_mut(&cur) {
            t.state = State::Ready;
        }
        match moves_to {
            Some(other) => {
                s.queues.push(other, cur);
                if s.cpus.get(other).is_some_and(|c| c.current == c.idle) {
                    smp::kick(other);
                }
            }
            None => s.queues.push(cpu, cur),
        }
    }
    if let Some(t) = s.tasks.get_mut(&cur) {
        t.on_cpu = false;
        if cur == idle {
            t.state = State::Ready;
        }
    }
    if let Some(t) = s.tasks.get_mut(&next) {
        t.state = State::Running;
        t.on_cpu = true;
        t.cpu = cpu;
    }
    s.cpus[cpu].current = next;
    s.cpus[cpu].ticks = 0;
    s.queues.set_busy(cpu, next != idle);
    let save = s.tasks.get_mut(&cur).map(|t| (&mut t.rsp as *mut u64, &mut *t.fx as *mut FxArea));
    let load = s.tasks.get(&next).map(|t| t.rsp);
    let (Some((save_rsp, save_fx)), Some(load_rsp)) = (save, load) else {
        log::warn!("scheduler: cpu {cpu} cannot switch from task {cur} to {next}");
        return;
    };
    // wasmtime's thread-local words belong to this task: kept on its stack while others run.
    let tls = crate::proc::aot::tls_save();
    // So do its address space, user-mode kernel stack and thread pointer (native programs).
    let user = crate::arch::user::save();
    // And so does the set of ordered locks it holds (the scheduler's among them).
    let held = lock::save();
    // The lock stays held across the switch: released on the next task's stack, once this
    // task's registers are saved (another CPU may pick it up from the queue right after).
    core::mem::forget(guard);
    // SAFETY: both tasks live in boxes owned by the scheduler that are not freed while either
    // can run (dead tasks keep their box; only their stack is freed once no CPU is on it).
    // fxsave/fxrstor use the 16-byte aligned 512-byte areas of those tasks. Interrupts are off.
    unsafe {
        core::arch::asm!("fxsave64 [{0}]", in(reg) save_fx, options(nostack));
        keel_switch(save_rsp, load_rsp);
        // Back on this task (maybe on another CPU): the CPU that switched here holds SCHED.
        lock::restore(held);
        SCHED.force_unlock();
        core::arch::asm!("fxrstor64 [{0}]", in(reg) save_fx, options(nostack));
    }
    crate::arch::user::restore(user);
    crate::proc::aot::tls_restore(tls);
}

/// One line of `ps`.
pub struct TaskInfo {
    pub pid: Pid,
    pub name: String,
    pub state: State,
    pub cpu_ns: u64,
    pub mem_bytes: u64,
    pub engine: &'static str,
    /// The CPU it runs on or last ran on.
    pub cpu: usize,
    pub pinned: Option<usize>,
}

/// Every live task.
pub fn list() -> Vec<TaskInfo> {
    with_sched(|s| {
        s.tasks
            .values()
            .filter(|t| t.state != State::Dead)
            .map(|t| TaskInfo {
                pid: t.pid,
                name: t.name.clone(),
                state: t.state,
                cpu_ns: t.cpu_ns,
                mem_bytes: t.mem_bytes.load(Ordering::Relaxed),
                engine: t.engine,
                cpu: t.cpu,
                pinned: t.pinned,
            })
            .collect()
    })
    .unwrap_or_default()
}

/// One CPU's figures: the time it spent running tasks (not idling) and how many wait for it.
pub struct CpuInfo {
    pub busy_ns: u64,
    pub queued: usize,
    pub running: Pid,
}

/// Every CPU's figures.
pub fn cpus() -> Vec<CpuInfo> {
    let now = time::uptime_ns();
    with_sched(|s| {
        s.cpus
            .iter()
            .enumerate()
            .map(|(i, c)| CpuInfo {
                busy_ns: c.busy_ns + if c.current != c.idle { now.saturating_sub(c.slice_start) } else { 0 },
                queued: s.queues.queued(i),
                running: if c.current == c.idle { 0 } else { c.current },
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Pins the current task to `cpu` (None: any CPU) and moves it there now. False if there is
/// no such CPU.
pub fn pin_current(cpu: Option<usize>) -> bool {
    if cpu.is_some_and(|c| c >= smp::online()) {
        return false;
    }
    with_sched(|s| {
        let cur = s.current();
        if let Some(t) = s.tasks.get_mut(&cur) {
            t.pinned = cpu;
        }
    });
    // `schedule` moves a task pinned elsewhere to its CPU's queue.
    if let Some(c) = cpu {
        while smp::cpu() != c {
            yield_now();
        }
    }
    true
}

/// Asks a task to end. Returns false if there is no such (live) task.
pub fn kill(pid: Pid) -> bool {
    with_sched(|s| {
        // Neither the first task (the shell) nor an idle task.
        let alive = s.tasks.get(&pid).is_some_and(|t| t.state != State::Dead && !s.cpus.iter().any(|c| c.idle == pid));
        if !alive || pid == 1 {
            return false;
        }
        if let Some(t) = s.tasks.get(&pid) {
            t.kill.store(true, Ordering::SeqCst);
        }
        // Wake it so it notices.
        s.wake(pid);
        true
    })
    .unwrap_or(false)
}

/// The running task's pid.
pub fn current_pid() -> Pid {
    with_sched(|s| s.current()).unwrap_or(1)
}

/// CPU time the current task has used, including its running slice.
pub fn cpu_ns() -> u64 {
    with_sched(|s| {
        let c = s.cpu(smp::cpu());
        let run = time::uptime_ns().saturating_sub(c.slice_start);
        s.tasks.get(&c.current).map_or(0, |t| t.cpu_ns + run)
    })
    .unwrap_or(0)
}

/// True when the current task was asked to end.
pub fn killed() -> bool {
    with_sched(|s| s.tasks.get(&s.current()).is_some_and(|t| t.kill.load(Ordering::SeqCst))).unwrap_or(false)
}

/// Records which engine runs the current task's WASM program ("" when it ends), for `ps`.
pub fn set_engine(engine: &'static str) {
    with_sched(|s| {
        let cur = s.current();
        if let Some(t) = s.tasks.get_mut(&cur) {
            t.engine = engine;
        }
    });
}

/// Records how much memory the current task uses (for `ps`).
pub fn set_mem(bytes: u64) {
    with_sched(|s| {
        if let Some(t) = s.tasks.get(&s.current()) {
            t.mem_bytes.store(bytes, Ordering::Relaxed);
        }
    });
}

/// The exit status of a finished task (and forgets it); None while it runs.
pub fn try_reap(pid: Pid) -> Option<Option<i32>> {
    with_sched(|s| match s.tasks.get(&pid) {
        None => Some(None),
        // A dead task's stack can go as soon as no CPU runs on it (the scheduler frees it at
        // the next switch otherwise): the waiter reaps it at once.
        Some(t) if t.state == State::Dead && !t.on_cpu => {
            let st = t.exit_status;
            s.reap.retain(|p| *p != pid);
            s.tasks.remove(&pid);
            Some(st)
        }
        _ => None,
    })
    .flatten()
}
