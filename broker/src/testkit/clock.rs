//! [`SimClock`]: wall-clock milliseconds that move with tokio's clock, so a
//! test with paused time drives the ISR lag rules and `segment.ms` by
//! advancing tokio's time.

use strom_log::Clock;
use tokio::time::Instant;

/// `base_ms` plus the tokio time elapsed since the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    origin: Instant,
    base_ms: i64,
}

impl SimClock {
    /// A clock reading `base_ms` now.
    pub fn new(base_ms: i64) -> Self {
        Self {
            origin: Instant::now(),
            base_ms,
        }
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.base_ms.saturating_add(elapsed)
    }
}
