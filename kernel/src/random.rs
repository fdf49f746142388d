//! Randomness: a ChaCha20 CSPRNG seeded from RDRAND (when the CPU has it) mixed with TSC jitter.

use core::arch::x86_64::{__cpuid, _rdrand64_step};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use spin::Mutex;
use x86_64::instructions::interrupts;

static RNG: Mutex<Option<ChaCha20Rng>> = Mutex::new(None);
static HARDWARE: spin::Once<bool> = spin::Once::new();

fn has_rdrand() -> bool {
    let ecx = __cpuid(1).ecx;
    ecx & (1 << 30) != 0
}

#[target_feature(enable = "rdrand")]
fn rdrand() -> Option<u64> {
    let mut v = 0u64;
    for _ in 0..10 {
        if _rdrand64_step(&mut v) == 1 {
            return Some(v);
        }
    }
    None
}

fn tsc() -> u64 {
    // SAFETY: RDTSC has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Seeds the generator. Call once at boot, after the clocks are up.
pub fn init() {
    let hw = has_rdrand();
    HARDWARE.call_once(|| hw);
    let mut seed = [0u8; 32];
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        let mut v = tsc().rotate_left(i as u32 * 13) ^ crate::arch::time::realtime_ns();
        if hw {
            // SAFETY: RDRAND support was checked above.
            if let Some(r) = unsafe { rdrand() } {
                v ^= r;
            }
        }
        // Jitter between TSC reads around a port access adds a little entropy without RDRAND.
        let t0 = tsc();
        core::hint::black_box(crate::arch::time::uptime_ns());
        v ^= (tsc() - t0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    *RNG.lock() = Some(ChaCha20Rng::from_seed(seed));
}

/// True when the seed came from the CPU's hardware generator.
pub fn hardware() -> bool {
    HARDWARE.get().copied().unwrap_or(false)
}

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) {
    interrupts::without_interrupts(|| {
        let mut g = RNG.lock();
        match g.as_mut() {
            Some(rng) => rng.fill_bytes(buf),
            None => {
                // Before init: still never hand out zeros.
                let mut rng = ChaCha20Rng::seed_from_u64(tsc());
                rng.fill_bytes(buf);
            }
        }
    });
}

/// getrandom's source in Keel (TLS key material for rustls' RustCrypto provider).
fn getrandom_source(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    fill(buf);
    Ok(())
}

getrandom::register_custom_getrandom!(getrandom_source);
