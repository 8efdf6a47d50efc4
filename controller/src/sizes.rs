//! Replica sizes the brokers report with their heartbeats (only replicas of
//! partitions being reassigned), so reassignment progress shows bytes
//! copied while a replica is still moving. Kept in memory on the active
//! controller: after a failover the next heartbeats report them again.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

/// One broker's report: size in bytes by (topic id, partition).
type Report = HashMap<(Uuid, i32), i64>;

/// The last reported size of each (broker, topic id, partition) replica.
#[derive(Debug, Default)]
pub(crate) struct ReplicaSizes {
    sizes: Mutex<HashMap<i32, Report>>,
    /// Bytes of every hosted replica together, per broker.
    totals: Mutex<HashMap<i32, i64>>,
}

impl ReplicaSizes {
    /// Replaces what `broker` reported before with `sizes`.
    pub(crate) fn report(&self, broker: i32, sizes: impl IntoIterator<Item = (Uuid, i32, i64)>) {
        let map: HashMap<(Uuid, i32), i64> =
            sizes.into_iter().map(|(t, p, s)| ((t, p), s)).collect();
        let mut all = self.sizes.lock().unwrap_or_else(|e| e.into_inner());
        if map.is_empty() {
            all.remove(&broker);
        } else {
            all.insert(broker, map);
        }
    }

    /// Records the total size of `broker`'s replicas (-1: not measured).
    pub(crate) fn report_total(&self, broker: i32, bytes: i64) {
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        if bytes < 0 {
            totals.remove(&broker);
        } else {
            totals.insert(broker, bytes);
        }
    }

    /// The total size of `broker`'s replicas it last reported.
    pub(crate) fn total(&self, broker: i32) -> Option<i64> {
        self.totals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&broker)
            .copied()
    }

    /// The last size `broker` reported for its replica of `topic`-`partition`.
    pub(crate) fn get(&self, broker: i32, topic: Uuid, partition: i32) -> Option<i64> {
        self.sizes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&broker)?
            .get(&(topic, partition))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_replaces_the_previous_one() {
        let s = ReplicaSizes::default();
        let t = Uuid::from_u128(7);
        s.report(1, [(t, 0, 10), (t, 1, 20)]);
        assert_eq!(s.get(1, t, 1), Some(20));
        s.report(1, [(t, 0, 15)]);
        assert_eq!((s.get(1, t, 0), s.get(1, t, 1)), (Some(15), None));
        s.report(1, []);
        assert_eq!(s.get(1, t, 0), None);
        s.report_total(1, 500);
        assert_eq!(s.total(1), Some(500));
        s.report_total(1, -1);
        assert_eq!(s.total(1), None);
        assert_eq!(s.get(2, t, 0), None);
    }
}
