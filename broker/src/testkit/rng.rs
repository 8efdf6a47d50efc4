//! [`SimRng`]: a small seeded generator (SplitMix64). Hand-rolled so that a
//! seed means the same run whatever version of a random-number crate is
//! in the lock file.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A seeded pseudo-random generator.
#[derive(Debug, Clone)]
pub struct SimRng {
    state: u64,
}

/// One generator shared by every component of a simulation.
pub type SharedRng = Arc<Mutex<SimRng>>;

impl SimRng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Shared between components.
    pub fn shared(seed: u64) -> SharedRng {
        Arc::new(Mutex::new(Self::new(seed)))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        // 53 random bits as a fraction in [0, 1).
        let x = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }

    /// A duration uniform in `0..=max`, in whole milliseconds.
    pub fn delay(&mut self, max: Duration) -> Duration {
        let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.below(ms.saturating_add(1)))
    }

    /// One of `items`, if any.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        let n = u64::try_from(items.len()).ok()?;
        items.get(usize::try_from(self.below(n)).ok()?)
    }
}

/// Locks the shared generator (a panicked holder leaves it usable).
pub(crate) fn with<T>(rng: &SharedRng, f: impl FnOnce(&mut SimRng) -> T) -> T {
    f(&mut rng.lock().unwrap_or_else(|e| e.into_inner()))
}
