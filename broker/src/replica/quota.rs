//! Replication quotas (Kafka's `ReplicationQuotaManager`): one byte rate
//! per side of this broker — `leader.replication.throttled.rate` for what
//! it serves to throttled followers, `follower.replication.throttled.rate`
//! for what it fetches as a throttled follower — shared by every throttled
//! partition of that side.
//!
//! Which replicas are throttled is decided by
//! `strom_metadata::throttle` (only replicas being added and out of the
//! ISR); this module only meters bytes. Each side is a token bucket filled
//! at the rate and holding at most [`WINDOW`] of it: a throttled read first
//! takes a grant (at most what the bucket holds, and not less than
//! [`MIN_GRANT`] of the rate, so a slow bucket does not trickle tiny
//! fetches), reads at most that, then settles with the bytes it actually
//! returned (the rest goes back; a read past its grant — a log read
//! returns at least one whole batch — leaves the bucket in debt, paid off
//! before the next grant). Over any period longer than the window the
//! bytes moved stay within the rate plus one window.
//!
//! No I/O, no clock: `now` is passed in (tokio's clock, so a simulation
//! with paused time meters the same way). Tests: `quota_test.rs`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How much of the rate the bucket holds: the longest burst after an idle
/// period (Kafka measures its rate over 11 one-second samples).
pub const WINDOW: Duration = Duration::from_secs(1);

/// The smallest grant, as a share of a second of the rate (10 ms worth).
pub const MIN_GRANT: Duration = Duration::from_millis(10);

/// What a throttled read may take now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// No rate is set: read as usual and settle nothing.
    Unlimited,
    /// Read at most this many bytes, then [`settle`](TokenBucket::settle).
    Bytes(u64),
    /// Nothing now; ask again after this long.
    Wait(Duration),
}

/// A token bucket over a window: the metering core of a quota.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Bytes per second; `None`: unthrottled.
    rate: Option<u64>,
    /// Bytes that may be read now (negative: debt).
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// An unthrottled bucket.
    pub fn new(now: Instant) -> Self {
        Self {
            rate: None,
            tokens: 0.0,
            last: now,
        }
    }

    /// The rate in force.
    pub fn rate(&self) -> Option<u64> {
        self.rate
    }

    fn capacity(rate: u64) -> f64 {
        rate as f64 * WINDOW.as_secs_f64()
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        if let Some(rate) = self.rate {
            self.tokens = (self.tokens + rate as f64 * elapsed).min(Self::capacity(rate));
        }
    }

    /// Sets the rate (`None`: unthrottled). A new throttle starts with an
    /// empty bucket, so it never begins with a burst; a changed rate keeps
    /// what the bucket holds, within the new capacity.
    pub fn set_rate(&mut self, rate: Option<u64>, now: Instant) {
        self.refill(now);
        let rate = rate.filter(|r| *r > 0);
        if rate == self.rate {
            return;
        }
        match (self.rate, rate) {
            (None, Some(_)) | (_, None) => self.tokens = 0.0,
            (Some(_), Some(r)) => self.tokens = self.tokens.min(Self::capacity(r)),
        }
        self.rate = rate;
    }

    /// Takes up to `want` bytes (at least 1 is asked for).
    pub fn take(&mut self, want: u64, now: Instant) -> Grant {
        let Some(rate) = self.rate else {
            return Grant::Unlimited;
        };
        self.refill(now);
        let want = want.max(1);
        let min = ((rate as f64 * MIN_GRANT.as_secs_f64()).max(1.0)).min(want as f64);
        if self.tokens < min {
            let secs = (min - self.tokens) / rate as f64;
            return Grant::Wait(Duration::from_secs_f64(secs).max(Duration::from_millis(1)));
        }
        let granted = (self.tokens.floor() as u64).min(want);
        self.tokens -= granted as f64;
        Grant::Bytes(granted)
    }

    /// Settles a grant of `granted` bytes of which `used` were read:
    /// returns the rest, or charges what went past it.
    pub fn settle(&mut self, granted: u64, used: u64, now: Instant) {
        self.refill(now);
        self.tokens += granted as f64 - used as f64;
        if let Some(rate) = self.rate {
            self.tokens = self.tokens.min(Self::capacity(rate));
        }
    }
}

/// One side's quota, shared by the tasks of that side.
#[derive(Debug)]
pub struct ReplicationQuota {
    bucket: Mutex<TokenBucket>,
    /// Bytes of throttled replicas' traffic, ever.
    throttled_bytes: AtomicU64,
}

impl ReplicationQuota {
    fn new() -> Self {
        Self {
            bucket: Mutex::new(TokenBucket::new(Instant::now())),
            throttled_bytes: AtomicU64::new(0),
        }
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, TokenBucket> {
        self.bucket.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the rate in bytes/s (`None`: unthrottled).
    pub fn set_rate(&self, rate: Option<u64>) {
        self.bucket().set_rate(rate, Instant::now());
    }

    /// The rate in force, bytes/s.
    pub fn rate(&self) -> Option<u64> {
        self.bucket().rate()
    }

    /// Takes up to `want` bytes for a throttled read.
    pub fn take(&self, want: u64) -> Grant {
        self.bucket().take(want, Instant::now())
    }

    /// Settles a grant: `used` bytes were read (counted in
    /// [`throttled_bytes`](Self::throttled_bytes) whatever the grant).
    pub fn settle(&self, granted: Grant, used: u64) {
        self.throttled_bytes.fetch_add(used, Ordering::Relaxed);
        if let Grant::Bytes(g) = granted {
            self.bucket().settle(g, used, Instant::now());
        }
    }

    /// Bytes of throttled replicas' traffic on this side so far.
    pub fn throttled_bytes(&self) -> u64 {
        self.throttled_bytes.load(Ordering::Relaxed)
    }
}

/// This broker's two replication quotas.
#[derive(Debug)]
pub struct ReplicationQuotas {
    /// `leader.replication.throttled.rate`: what this broker serves to
    /// throttled followers.
    pub leader: ReplicationQuota,
    /// `follower.replication.throttled.rate`: what this broker fetches for
    /// its throttled replicas.
    pub follower: ReplicationQuota,
}

impl Default for ReplicationQuotas {
    fn default() -> Self {
        Self {
            leader: ReplicationQuota::new(),
            follower: ReplicationQuota::new(),
        }
    }
}

#[cfg(test)]
#[path = "quota_test.rs"]
mod tests;
