//! Time: a 100 Hz tick, from the PIT where there is one and from the local APIC's timer where
//! there is not (`-M q35,pit=off`, machines without legacy timers); the TSC, calibrated at boot
//! against the PIT, the HPET or the ACPI PM timer (whichever exists, in that order), gives a
//! monotonic nanosecond clock; the CMOS RTC gives the wall-clock date at boot.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use keel_time::{from_bcd, DateTime};
use x86_64::instructions::port::Port;

/// Timer interrupts per second. 100 Hz: under emulation every interrupt is expensive (1 kHz cost
/// 20-30 % of WASM speed); time itself comes from the TSC at nanosecond resolution.
pub const TICK_HZ: u64 = 100;
const PIT_HZ: u64 = 1_193_182;

static TICKS: AtomicU64 = AtomicU64::new(0);
static TSC_BOOT: AtomicU64 = AtomicU64::new(0);
/// TSC ticks per second (0 until calibrated: then the tick counter is used).
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// Unix time in nanoseconds at monotonic time zero.
static EPOCH_OFFSET_NS: AtomicU64 = AtomicU64::new(0);

fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects and is available on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Called by the timer interrupt.
pub fn on_tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Timer ticks since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// True when the tick comes from the local APIC timer (no PIT).
static LAPIC_TICK: AtomicBool = AtomicBool::new(false);
/// What the TSC was calibrated against, for the boot report.
static REFERENCE: spin::Once<&'static str> = spin::Once::new();

/// Records the boot TSC and starts the PIT as the tick if the machine has one.
pub fn init_timer() {
    TSC_BOOT.store(rdtsc(), Ordering::Relaxed);
    init_pit();
    if !pit_counts() {
        LAPIC_TICK.store(true, Ordering::Relaxed);
    }
}

/// True if PIT channel 0 counts (a missing PIT reads as a constant 0xffff).
fn pit_counts() -> bool {
    let first = pit_count();
    let start = rdtsc();
    // A few microseconds at any plausible TSC speed; the PIT counts every 838 ns.
    while rdtsc() - start < 200_000 {
        if pit_count() != first {
            return true;
        }
    }
    false
}

/// Starts the local APIC timer as the tick when there is no PIT (the TSC is calibrated by now).
pub fn start_tick() {
    if LAPIC_TICK.load(Ordering::Relaxed) {
        crate::arch::cpu::start_lapic_timer(TICK_HZ);
    }
}

/// Busy-waits `ns` nanoseconds on the TSC clock (works with interrupts off; calibrated first).
pub fn spin_ns(ns: u64) {
    let end = uptime_ns() + ns;
    while uptime_ns() < end {
        core::hint::spin_loop();
    }
}

/// Where the tick and the TSC calibration came from: ("PIT" | "local APIC", reference).
pub fn sources() -> (&'static str, &'static str) {
    let tick = if LAPIC_TICK.load(Ordering::Relaxed) { "local APIC" } else { "PIT" };
    (tick, REFERENCE.get().copied().unwrap_or("timer ticks"))
}

/// Programs PIT channel 0 as a rate generator at [`TICK_HZ`].
fn init_pit() {
    let divisor = (PIT_HZ / TICK_HZ) as u16;
    let mut cmd: Port<u8> = Port::new(0x43);
    let mut ch0: Port<u8> = Port::new(0x40);
    // SAFETY: standard PIT programming: channel 0, lobyte/hibyte, mode 2 (rate generator).
    unsafe {
        cmd.write(0x34);
        ch0.write((divisor & 0xff) as u8);
        ch0.write((divisor >> 8) as u8);
    }
}

/// PIT channel 0's current count (it counts down from the divisor to 1, then reloads).
fn pit_count() -> u16 {
    let mut cmd: Port<u8> = Port::new(0x43);
    let mut ch0: Port<u8> = Port::new(0x40);
    // SAFETY: the counter-latch command for channel 0, then the latched count's two bytes; the
    // channel keeps counting and interrupting as programmed.
    unsafe {
        cmd.write(0x00);
        let lo = ch0.read();
        let hi = ch0.read();
        u16::from_le_bytes([lo, hi])
    }
}

/// Measures the TSC frequency against the PIT's 1.19 MHz count, read directly (no waiting for
/// tick edges, which took 10-20 ms at 100 Hz: a third of the boot): the median of three windows
/// of `ms / 3`, so that one window stretched by the host (under emulation) does not count.
/// Falls back to counting ticks if the count does not move.
pub fn calibrate_tsc(ms: u64) {
    if LAPIC_TICK.load(Ordering::Relaxed) {
        return calibrate_without_pit(ms);
    }
    let window = (PIT_HZ * ms / 3000).max(1000);
    let mut hz = [0u64; 3];
    for h in &mut hz {
        match tsc_hz_over(window) {
            Some(v) => *h = v,
            None => {
                REFERENCE.call_once(|| "timer ticks");
                return calibrate_with_ticks(ms);
            }
        }
    }
    hz.sort_unstable();
    REFERENCE.call_once(|| "PIT");
    set_tsc_hz(hz[1]);
}

/// A free-running counter to calibrate against: reads it, and its frequency in Hz.
struct Counter {
    read: fn() -> u64,
    hz: u64,
    /// Counter width in bits (it wraps).
    bits: u32,
}

/// The HPET's main counter, enabled, or None.
fn hpet_counter() -> Option<Counter> {
    let base = crate::arch::acpi::get()?.hpet?;
    HPET_BASE.store(base, Ordering::Relaxed);
    // SAFETY: the ACPI HPET table names this MMIO block (identity-mapped below 4 GiB); offset 0
    // is the capabilities register, 0x10 the configuration (bit 0 starts the counter).
    let caps = unsafe { core::ptr::read_volatile(base as *const u64) };
    let period_fs = caps >> 32;
    if period_fs == 0 || period_fs > 100_000_000 {
        return None;
    }
    // SAFETY: as above.
    unsafe {
        let cfg = core::ptr::read_volatile((base + 0x10) as *const u64);
        core::ptr::write_volatile((base + 0x10) as *mut u64, cfg | 1);
    }
    fn read() -> u64 {
        // SAFETY: the main counter register (0xf0) of the HPET found above.
        unsafe { core::ptr::read_volatile((HPET_BASE.load(Ordering::Relaxed) + 0xf0) as *const u64) }
    }
    let bits = if caps & (1 << 13) != 0 { 64 } else { 32 };
    Some(Counter { read, hz: 1_000_000_000_000_000 / period_fs, bits })
}

static HPET_BASE: AtomicU64 = AtomicU64::new(0);
static PM_TIMER_PORT: AtomicU64 = AtomicU64::new(0);

/// The ACPI PM timer (3.579545 MHz, I/O port), or None.
fn pm_timer_counter() -> Option<Counter> {
    let (reg, wide) = crate::arch::acpi::get()?.pm_timer?;
    if reg.space != keel_boot::acpi::Space::Io || reg.addr > 0xffff {
        return None;
    }
    PM_TIMER_PORT.store(reg.addr, Ordering::Relaxed);
    fn read() -> u64 {
        let mut port: Port<u32> = Port::new(PM_TIMER_PORT.load(Ordering::Relaxed) as u16);
        // SAFETY: the FADT's PM timer port: reading it has no side effects.
        u64::from(unsafe { port.read() })
    }
    Some(Counter { read, hz: 3_579_545, bits: if wide { 32 } else { 24 } })
}

/// Calibrates the TSC against the HPET or the PM timer (machines without a PIT): the median of
/// three windows, as with the PIT.
fn calibrate_without_pit(ms: u64) {
    let (name, counter) = match (hpet_counter(), pm_timer_counter()) {
        (Some(c), _) => ("HPET", c),
        (None, Some(c)) => ("ACPI PM timer", c),
        (None, None) => return calibrate_with_rtc(),
    };
    let mask = if counter.bits == 64 { u64::MAX } else { (1u64 << counter.bits) - 1 };
    let window = (counter.hz * ms / 3000).max(1000);
    let mut hz = [0u64; 3];
    for h in &mut hz {
        let c0 = (counter.read)();
        let t0 = rdtsc();
        loop {
            let t = rdtsc();
            let elapsed = (counter.read)().wrapping_sub(c0) & mask;
            if elapsed >= window {
                *h = (u128::from(t - t0) * u128::from(counter.hz) / u128::from(elapsed)) as u64;
                break;
            }
        }
    }
    hz.sort_unstable();
    REFERENCE.call_once(|| name);
    set_tsc_hz(hz[1]);
}

/// TSC ticks per second over `counts` PIT counts; None if the PIT does not count.
fn tsc_hz_over(counts: u64) -> Option<u64> {
    let divisor = PIT_HZ / TICK_HZ;
    // Each TSC reading is taken just before its latch, the same way at both ends.
    let t0 = rdtsc();
    let mut prev = u64::from(pit_count());
    let mut elapsed = 0;
    let mut reads = 0u32;
    loop {
        let t = rdtsc();
        let c = u64::from(pit_count());
        elapsed += if c <= prev { prev - c } else { prev + divisor - c };
        prev = c;
        if elapsed >= counts {
            return Some((t - t0) * PIT_HZ / elapsed);
        }
        reads += 1;
        if reads > 1_000_000 && elapsed == 0 {
            return None;
        }
    }
}

/// The last resort without PIT, HPET or PM timer (microvm with `pit=off`): the TSC over one
/// second of the CMOS clock, between two changes of its seconds (up to two seconds of boot).
fn calibrate_with_rtc() {
    let second = || rtc_snapshot()[0];
    let wait_change = |from: u8| {
        let start = rdtsc();
        // Give up after ~10 s at 4 GHz: the RTC is missing too.
        while second() == from {
            if rdtsc() - start > 40_000_000_000 {
                return None;
            }
        }
        Some(rdtsc())
    };
    let first = second();
    let measured = wait_change(first).and_then(|t0| wait_change(second()).map(|t1| t1 - t0));
    match measured {
        Some(hz) => {
            REFERENCE.call_once(|| "the CMOS clock");
            set_tsc_hz(hz);
        }
        None => {
            log::warn!("no PIT, HPET, ACPI PM timer or RTC: the clock assumes a 2 GHz TSC");
            REFERENCE.call_once(|| "nothing (2 GHz assumed)");
            set_tsc_hz(2_000_000_000);
        }
    }
}

/// Measures the TSC frequency over whole timer ticks (interrupts on).
fn calibrate_with_ticks(ms: u64) {
    let ticks_wanted = (ms * TICK_HZ / 1000).max(1);
    let start_tick = ticks();
    while ticks() == start_tick {
        core::hint::spin_loop();
    }
    let t0 = rdtsc();
    let k0 = ticks();
    while ticks() < k0 + ticks_wanted {
        x86_64::instructions::hlt();
    }
    let t1 = rdtsc();
    set_tsc_hz((t1 - t0) * TICK_HZ / ticks_wanted);
}

/// Switches the clock to the TSC at frequency `hz`. Time still counts from the PIT's start
/// (`TSC_BOOT`): the ticks counted only whole periods since, so the clock never goes back.
fn set_tsc_hz(hz: u64) {
    if hz > 0 {
        TSC_HZ.store(hz, Ordering::Relaxed);
    }
}

/// The calibrated TSC frequency in Hz (0 if uncalibrated).
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Monotonic nanoseconds since boot.
pub fn uptime_ns() -> u64 {
    let hz = TSC_HZ.load(Ordering::Relaxed);
    if hz == 0 {
        return ticks() * (1_000_000_000 / TICK_HZ);
    }
    let delta = rdtsc().saturating_sub(TSC_BOOT.load(Ordering::Relaxed));
    (u128::from(delta) * 1_000_000_000 / u128::from(hz)) as u64
}

/// Wall-clock nanoseconds since the Unix epoch.
pub fn realtime_ns() -> u64 {
    EPOCH_OFFSET_NS.load(Ordering::Relaxed) + uptime_ns()
}

fn cmos_read(reg: u8) -> u8 {
    let mut index: Port<u8> = Port::new(0x70);
    let mut data: Port<u8> = Port::new(0x71);
    // SAFETY: standard CMOS index/data ports; bit 7 of the index keeps NMIs disabled state as is
    // (we leave it clear).
    unsafe {
        index.write(reg);
        data.read()
    }
}

fn rtc_snapshot() -> [u8; 7] {
    // Wait until no update is in progress.
    let mut spins = 0;
    while cmos_read(0x0a) & 0x80 != 0 && spins < 100_000 {
        spins += 1;
        core::hint::spin_loop();
    }
    [
        cmos_read(0x00),
        cmos_read(0x02),
        cmos_read(0x04),
        cmos_read(0x07),
        cmos_read(0x08),
        cmos_read(0x09),
        cmos_read(0x32),
    ]
}

/// Reads the RTC (twice, until two reads agree) and sets the wall clock.
pub fn init_rtc() -> Option<DateTime> {
    let mut a = rtc_snapshot();
    for _ in 0..5 {
        let b = rtc_snapshot();
        if a == b {
            break;
        }
        a = b;
    }
    let status_b = cmos_read(0x0b);
    let binary = status_b & 0x04 != 0;
    let h24 = status_b & 0x02 != 0;
    let conv = |v: u8| if binary { v } else { from_bcd(v) };
    let [sec, min, hour_raw, day, month, year, century] = a;
    let pm = hour_raw & 0x80 != 0;
    let mut hour = conv(hour_raw & 0x7f);
    if !h24 {
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    let century = match conv(century) {
        c @ 19..=30 => i64::from(c),
        _ => 20,
    };
    let dt = DateTime {
        year: century * 100 + i64::from(conv(year)),
        month: conv(month),
        day: conv(day),
        hour,
        minute: conv(min),
        second: conv(sec),
    };
    let unix = dt.to_unix().ok()?;
    let unix_ns = u64::try_from(unix).ok()? * 1_000_000_000;
    EPOCH_OFFSET_NS.store(unix_ns.saturating_sub(uptime_ns()), Ordering::Relaxed);
    Some(dt)
}
