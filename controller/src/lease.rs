//! Broker leases, kept by the active controller only (heartbeats are not
//! written to the metadata log, as in KRaft).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone)]
struct Lease {
    incarnation: String,
    deadline: Instant,
    /// Metadata offset of the broker's last heartbeat (-1: none yet).
    metadata_offset: i64,
}

/// Lease table: broker id → (incarnation, deadline).
#[derive(Debug)]
pub(crate) struct Leases {
    timeout: Duration,
    map: Mutex<HashMap<i32, Lease>>,
}

impl Leases {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Lease>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Extends the lease of a broker process by one session timeout.
    pub(crate) fn renew(&self, broker: i32, incarnation: &str) {
        self.renew_at(broker, incarnation, -1);
    }

    /// Renews the lease and records the metadata offset the broker reported.
    pub(crate) fn renew_at(&self, broker: i32, incarnation: &str, metadata_offset: i64) {
        let deadline = Instant::now() + self.timeout;
        self.map().insert(
            broker,
            Lease {
                incarnation: incarnation.to_owned(),
                deadline,
                metadata_offset,
            },
        );
    }

    /// `(broker, metadata offset of its last heartbeat)` for every broker
    /// that heartbeated since this controller took the lead, sorted by id.
    pub(crate) fn reported_offsets(&self) -> Vec<(i32, i64)> {
        let mut v: Vec<(i32, i64)> = self
            .map()
            .iter()
            .filter(|(_, l)| l.metadata_offset >= 0)
            .map(|(id, l)| (*id, l.metadata_offset))
            .collect();
        v.sort_unstable();
        v
    }

    /// Whether a *different* process than `incarnation` holds a live lease.
    pub(crate) fn held_by_other(&self, broker: i32, incarnation: &str) -> bool {
        self.map()
            .get(&broker)
            .is_some_and(|l| l.incarnation != incarnation && l.deadline > Instant::now())
    }

    /// Starts a fresh grace period for every registered broker: after a
    /// controller failover no broker is fenced merely because the new leader
    /// never heard from it.
    pub(crate) fn rearm(&self, brokers: impl IntoIterator<Item = (i32, String)>) {
        let deadline = Instant::now() + self.timeout;
        let mut map = self.map();
        map.clear();
        for (id, incarnation) in brokers {
            map.insert(
                id,
                Lease {
                    incarnation,
                    deadline,
                    metadata_offset: -1,
                },
            );
        }
    }

    /// Brokers among `candidates` whose lease has run out (or who have none).
    pub(crate) fn expired(&self, candidates: impl IntoIterator<Item = i32>) -> Vec<i32> {
        let now = Instant::now();
        let map = self.map();
        candidates
            .into_iter()
            .filter(|id| map.get(id).is_none_or(|l| l.deadline <= now))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn leases_expire_after_the_session_timeout() {
        let leases = Leases::new(Duration::from_secs(9));
        leases.renew(1, "a");
        leases.rearm([(1, "a".to_owned()), (2, "b".to_owned())]);
        tokio::time::advance(Duration::from_secs(5)).await;
        leases.renew(2, "b");
        assert!(leases.expired([1, 2, 3]) == vec![3]);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(leases.expired([1, 2, 3]), vec![1, 3]);
        assert!(leases.held_by_other(2, "c"));
        assert!(!leases.held_by_other(2, "b"));
        assert!(!leases.held_by_other(1, "z"), "expired lease holds nothing");
        leases.renew_at(2, "b", 42);
        assert_eq!(leases.reported_offsets(), vec![(2, 42)]);
    }
}
