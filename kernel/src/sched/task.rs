//! Tasks and the scheduler: kernel threads with their own guarded stacks, switched round-robin by
//! the timer (preemptive, 10 ms slices) or when they block, sleep or yield. The FPU/SSE state is
//! saved and restored per task. When nothing is ready the idle task halts the CPU.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spin::Mutex;
use x86_64::instructions::interrupts;

use crate::arch::time;
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
    Ready,
    Running,
    /// Sleeping until this monotonic time (ns).
    Sleeping(u64),
    Dead,
}

/// 512-byte FXSAVE area.
#[repr(C, align(16))]
struct FxArea([u8; 512]);

/// A task that may be moved to the scheduler. Keel runs on one CPU and a task's closure only ever
/// runs on that task, so `Send` is not needed between tasks.
struct Job(Box<dyn FnOnce() -> i32>);

// SAFETY: single CPU; the closure is moved once into its task and only run there.
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
}

/// Keyboard or serial input arrived.
pub const EVENT_INPUT: u8 = 1;
/// The network interface interrupted (packets in, buffers free).
pub const EVENT_NET: u8 = 2;
/// A disk completed a request.
pub const EVENT_DISK: u8 = 4;

/// Events raised while the scheduler's lock was taken (so the waiters could not be woken then):
/// the next timer tick wakes them.
static PENDING_EVENTS: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);
/// Events raised since a sleeper last looked: a task about to sleep for one of them does not
/// (it happened between its last check and its sleep).
static RAISED: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

struct Scheduler {
    tasks: BTreeMap<Pid, Box<Task>>,
    ready: VecDeque<Pid>,
    current: Pid,
    next_pid: Pid,
    slice_start_tsc_ns: u64,
    /// Dead tasks whose stacks can be freed once we are off them.
    reap: Vec<Pid>,
}

static SCHED: Mutex<Option<Scheduler>> = Mutex::new(None);
static SLICE_TICK: AtomicU64 = AtomicU64::new(0);
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

/// Turns the running boot code into task 1 and starts the idle task; the timer then preempts.
pub fn init(name: &str) {
    let me = Box::new(Task {
        pid: 1,
        name: String::from(name),
        state: State::Running,
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
    });
    let mut tasks = BTreeMap::new();
    tasks.insert(1, me);
    interrupts::without_interrupts(|| {
        *SCHED.lock() = Some(Scheduler {
            tasks,
            ready: VecDeque::new(),
            current: 1,
            next_pid: 2,
            slice_start_tsc_ns: time::uptime_ns(),
            reap: Vec::new(),
        });
    });
    if spawn("idle", Box::new(idle_loop)).is_none() {
        panic!("cannot start the idle task");
    }
    STARTED.store(true, Ordering::SeqCst);
}

/// The idle task: halts until an interrupt, then lets others run.
fn idle_loop() -> i32 {
    loop {
        interrupts::enable_and_hlt();
        yield_now();
    }
}

/// Starts a task running `f`; the task ends with the status `f` returns (everything `f` owns is
/// dropped first). Returns its pid, or None when memory for its stack is missing.
pub fn spawn(name: &str, f: Box<dyn FnOnce() -> i32>) -> Option<Pid> {
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
        s.tasks.insert(
            pid,
            Box::new(Task {
                pid,
                name: String::from(name),
                state: State::Ready,
                rsp: frame,
                fx: Box::new(FxArea([0; 512])),
                stack: Some(stack),
                entry: Some(Job(f)),
                cpu_ns: 0,
                kill: AtomicBool::new(false),
                mem_bytes: AtomicU64::new(0),
                engine: "",
                exit_status: None,
                waits_for: 0,
            }),
        );
        s.ready.push_back(pid);
        pid
    })
}

extern "C" fn task_start() -> ! {
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
        let cur = s.current;
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
        let cur = s.current;
        if let Some(t) = s.tasks.get_mut(&cur) {
            t.state = State::Dead;
            t.exit_status = Some(status);
        }
        s.reap.push(cur);
    });
    EXITS.wake_all();
    schedule();
    unreachable_halt()
}

fn unreachable_halt() -> ! {
    loop {
        x86_64::instructions::hlt();
    }
}

/// Gives the CPU to the next ready task (if any).
/// True once the scheduler runs (tasks can sleep).
pub fn started() -> bool {
    STARTED.load(Ordering::Relaxed)
}

pub fn yield_now() {
    interrupts::without_interrupts(schedule);
}

/// Sleeps until the monotonic time `until` (ns).
pub fn sleep_until(until: u64) {
    interrupts::without_interrupts(|| {
        with_sched(|s| {
            let cur = s.current;
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
        if RAISED.fetch_and(!events, Ordering::Relaxed) & events != 0 {
            return;
        }
        with_sched(|s| {
            let cur = s.current;
            if let Some(t) = s.tasks.get_mut(&cur) {
                t.state = State::Sleeping(until);
                t.waits_for = events;
            }
        });
        schedule();
    });
}

/// Tasks waiting for one thing (a pipe's data or room, a task's end). A waiter sleeps until a
/// waker makes exactly the queued tasks ready, until its deadline, until it is killed, or (as it
/// also waits for input) until a key such as Ctrl-C arrives. The condition is checked and the
/// task put to sleep with interrupts off, so on one CPU no wake can fall between the two; with
/// more CPUs the queue's lock will have to be held across both.
pub struct WaitQueue {
    waiters: Mutex<Vec<Pid>>,
}

impl WaitQueue {
    pub const fn new() -> WaitQueue {
        WaitQueue { waiters: Mutex::new(Vec::new()) }
    }

    /// Returns at once if `ready()`; else sleeps until woken, `until` (uptime ns), a kill or
    /// input. Callers loop: being woken does not mean the condition holds. `ready` runs with
    /// interrupts off: it must not spin on a lock a preempted task may hold (use try_lock).
    pub fn wait(&self, ready: impl Fn() -> bool, until: u64) {
        interrupts::without_interrupts(|| {
            if ready() {
                return;
            }
            let Some(cur) = with_sched(|s| {
                let cur = s.current;
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
            self.waiters.lock().push(cur);
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
                if let Some(t) = s.tasks.get_mut(&p) {
                    if let State::Sleeping(_) = t.state {
                        t.state = State::Ready;
                        t.waits_for = 0;
                        s.ready.push_back(p);
                    }
                }
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

/// Makes the tasks sleeping for any of `events` ready to run (callable from interrupts; if the
/// scheduler is busy, the next tick does it).
pub fn wake_waiters(events: u8) {
    RAISED.fetch_or(events, Ordering::Relaxed);
    let Some(mut guard) = SCHED.try_lock() else {
        PENDING_EVENTS.fetch_or(events, Ordering::Relaxed);
        return;
    };
    let Some(s) = guard.as_mut() else { return };
    wake_in(s, events);
}

fn wake_in(s: &mut Scheduler, events: u8) {
    let mut woke = Vec::new();
    for t in s.tasks.values_mut() {
        if t.waits_for & events != 0 {
            t.waits_for = 0;
            if let State::Sleeping(_) = t.state {
                t.state = State::Ready;
                woke.push(t.pid);
            }
        }
    }
    s.ready.extend(woke);
}

/// Sleeps for `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    sleep_until(time::uptime_ns() + ms * 1_000_000);
}

/// Called by the timer interrupt (after end-of-interrupt): wakes sleepers, and every slice
/// switches to another ready task.
pub fn on_tick() {
    if !STARTED.load(Ordering::Relaxed) {
        return;
    }
    let now = time::uptime_ns();
    let Some(mut guard) = SCHED.try_lock() else { return };
    let Some(s) = guard.as_mut() else { return };
    let pending = PENDING_EVENTS.swap(0, Ordering::Relaxed);
    if pending != 0 {
        wake_in(s, pending);
    }
    let mut woke = Vec::new();
    for t in s.tasks.values_mut() {
        if let State::Sleeping(until) = t.state {
            if now >= until {
                t.state = State::Ready;
                t.waits_for = 0;
                woke.push(t.pid);
            }
        }
    }
    s.ready.extend(woke);
    drop(guard);
    if SLICE_TICK.fetch_add(1, Ordering::Relaxed) + 1 >= SLICE_TICKS {
        SLICE_TICK.store(0, Ordering::Relaxed);
        schedule();
    }
}

/// Picks the next task and switches to it. Interrupts must be off.
fn schedule() {
    let now = time::uptime_ns();
    let switch = {
        let mut guard = SCHED.lock();
        let Some(s) = guard.as_mut() else { return };
        let cur = s.current;
        // Free the stacks of dead tasks we are not running on.
        let dead: Vec<Pid> = s.reap.iter().copied().filter(|p| *p != cur).collect();
        s.reap.retain(|p| *p == cur);
        for p in dead {
            if let Some(t) = s.tasks.get_mut(&p) {
                t.stack = None;
            }
        }
        let elapsed = now.saturating_sub(s.slice_start_tsc_ns);
        s.slice_start_tsc_ns = now;
        let cur_state = s.tasks.get(&cur).map(|t| t.state);
        if let Some(t) = s.tasks.get_mut(&cur) {
            t.cpu_ns += elapsed;
            if t.state == State::Running {
                t.state = State::Ready;
            }
        }
        // Round robin; the idle task (pid 2) only when nobody else can run.
        let mut next = None;
        let mut saw_idle = false;
        for _ in 0..s.ready.len() {
            let Some(p) = s.ready.pop_front() else { break };
            if s.tasks.get(&p).map(|t| t.state) != Some(State::Ready) {
                continue;
            }
            if p == 2 {
                saw_idle = true;
                continue;
            }
            next = Some(p);
            break;
        }
        if saw_idle {
            s.ready.push_back(2);
        }
        let next = match next {
            Some(n) => n,
            None if cur_state == Some(State::Running) => {
                // Nobody else wants the CPU: keep going.
                if let Some(t) = s.tasks.get_mut(&cur) {
                    t.state = State::Running;
                }
                return;
            }
            None => 2,
        };
        if next == cur {
            if let Some(t) = s.tasks.get_mut(&cur) {
                t.state = State::Running;
            }
            return;
        }
        if cur_state == Some(State::Running) {
            s.ready.push_back(cur);
        }
        s.ready.retain(|p| *p != next);
        if let Some(t) = s.tasks.get_mut(&next) {
            t.state = State::Running;
        }
        s.current = next;
        let save = s.tasks.get_mut(&cur).map(|t| (&mut t.rsp as *mut u64, &mut *t.fx as *mut FxArea));
        let load = s.tasks.get(&next).map(|t| t.rsp);
        match (save, load) {
            (Some(save), Some(load)) => Some((save, load)),
            _ => None,
        }
    };
    let Some(((save_rsp, save_fx), load_rsp)) = switch else { return };
    // wasmtime's thread-local words belong to this task: kept on its stack while others run.
    let tls = crate::proc::aot::tls_save();
    // So do its address space, user-mode kernel stack and thread pointer (native programs).
    let user = crate::arch::user::save();
    // SAFETY: both tasks live in boxes owned by the scheduler that are not freed while either
    // can run (dead tasks keep their box; only their stack is freed once we are off it).
    // fxsave/fxrstor use the 16-byte aligned 512-byte areas of those tasks. Interrupts are off.
    unsafe {
        core::arch::asm!("fxsave64 [{0}]", in(reg) save_fx, options(nostack));
        keel_switch(save_rsp, load_rsp);
        // Back on this task: restore its FPU/SSE state.
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
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Asks a task to end. Returns false if there is no such (live) task.
pub fn kill(pid: Pid) -> bool {
    with_sched(|s| match s.tasks.get(&pid) {
        Some(t) if t.state != State::Dead && pid > 2 => {
            t.kill.store(true, Ordering::SeqCst);
            if let State::Sleeping(_) = t.state {
                // Wake it so it notices.
                if let Some(t) = s.tasks.get_mut(&pid) {
                    t.state = State::Ready;
                }
                s.ready.push_back(pid);
            }
            true
        }
        _ => false,
    })
    .unwrap_or(false)
}

/// Like [`killed`], from an interrupt handler: false if the scheduler is busy right now.
pub fn killed_now() -> bool {
    let Some(guard) = SCHED.try_lock() else { return false };
    guard.as_ref().and_then(|s| s.tasks.get(&s.current)).is_some_and(|t| t.kill.load(Ordering::SeqCst))
}

/// The running task's pid.
pub fn current_pid() -> Pid {
    with_sched(|s| s.current).unwrap_or(1)
}

/// CPU time the current task has used, including its running slice.
pub fn cpu_ns() -> u64 {
    with_sched(|s| {
        let run = time::uptime_ns().saturating_sub(s.slice_start_tsc_ns);
        s.tasks.get(&s.current).map_or(0, |t| t.cpu_ns + run)
    })
    .unwrap_or(0)
}

/// True when the current task was asked to end.
pub fn killed() -> bool {
    with_sched(|s| s.tasks.get(&s.current).is_some_and(|t| t.kill.load(Ordering::SeqCst))).unwrap_or(false)
}

/// Records which engine runs the current task's WASM program ("" when it ends), for `ps`.
pub fn set_engine(engine: &'static str) {
    with_sched(|s| {
        let cur = s.current;
        if let Some(t) = s.tasks.get_mut(&cur) {
            t.engine = engine;
        }
    });
}

/// Records how much memory the current task uses (for `ps`).
pub fn set_mem(bytes: u64) {
    with_sched(|s| {
        if let Some(t) = s.tasks.get(&s.current) {
            t.mem_bytes.store(bytes, Ordering::Relaxed);
        }
    });
}

/// The exit status of a finished task (and forgets it); None while it runs.
pub fn try_reap(pid: Pid) -> Option<Option<i32>> {
    with_sched(|s| match s.tasks.get(&pid) {
        None => Some(None),
        // A dead task's stack can go as soon as we are not running on it (the scheduler frees
        // it at the next switch otherwise): the waiter reaps it at once.
        Some(t) if t.state == State::Dead && pid != s.current => {
            let st = t.exit_status;
            s.reap.retain(|p| *p != pid);
            s.tasks.remove(&pid);
            Some(st)
        }
        _ => None,
    })
    .flatten()
}
