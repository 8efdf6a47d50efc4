//! Replica sizes and disk use the brokers report with their heartbeats:
//! reassignment progress shows bytes copied while a replica is still
//! moving, and the balancer's disk goals read them
//! ([`ReplicaSizes::usage_report`]). Soft state, kept in memory on every
//! controller that answers heartbeats: after a failover the next heartbeats
//! (every `broker.heartbeat.interval.ms`) report them again.

use std::collections::HashMap;
use std::sync::Mutex;

use strom_metadata::balancer::{BalancerGoal, DiskUsage, UsageReport};
use uuid::Uuid;

/// One broker's report: size in bytes by (topic id, partition).
type Report = HashMap<(Uuid, i32), i64>;

/// Partitions the balancer started moving (or, for the leader goal, gave a
/// new leader), per goal, since this controller started.
#[derive(Debug, Default)]
pub(crate) struct BalancerStats {
    started: [std::sync::atomic::AtomicU64; 5],
}

impl BalancerStats {
    fn index(goal: BalancerGoal) -> usize {
        BalancerGoal::ALL
            .iter()
            .position(|g| *g == goal)
            .expect("ALL lists every goal")
    }

    /// Counts `n` partitions changed by `goal`.
    pub(crate) fn record(&self, goal: BalancerGoal, n: usize) {
        self.started[Self::index(goal)].fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every goal with its count.
    pub(crate) fn counts(&self) -> Vec<(BalancerGoal, u64)> {
        BalancerGoal::ALL
            .iter()
            .map(|g| {
                (
                    *g,
                    self.started[Self::index(*g)].load(std::sync::atomic::Ordering::Relaxed),
                )
            })
            .collect()
    }
}

/// The last reported size of each (broker, topic id, partition) replica.
#[derive(Debug, Default)]
pub(crate) struct ReplicaSizes {
    sizes: Mutex<HashMap<i32, Report>>,
    /// Bytes of every hosted replica together, per broker.
    totals: Mutex<HashMap<i32, i64>>,
    /// The data directory's file system, per broker.
    disks: Mutex<HashMap<i32, DiskUsage>>,
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

    /// Records the use of `broker`'s data directory file system (a size of
    /// 0 or less, or a negative use: not measured).
    pub(crate) fn report_disk(&self, broker: i32, used: i64, total: i64) {
        let mut disks = self.disks.lock().unwrap_or_else(|e| e.into_inner());
        match (u64::try_from(used), u64::try_from(total)) {
            (Ok(used_bytes), Ok(total_bytes)) if total_bytes > 0 => {
                disks.insert(
                    broker,
                    DiskUsage {
                        used_bytes: used_bytes.min(total_bytes),
                        total_bytes,
                    },
                );
            }
            _ => {
                disks.remove(&broker);
            }
        }
    }

    /// The use of `broker`'s data directory file system it last reported.
    pub(crate) fn disk(&self, broker: i32) -> Option<DiskUsage> {
        self.disks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&broker)
            .copied()
    }

    /// What the balancer's disk goals read: every broker's disk use, and
    /// each partition's size as the largest of its replicas' reports.
    pub(crate) fn usage_report(&self) -> UsageReport {
        let disks = self
            .disks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(b, d)| (*b, *d))
            .collect();
        let mut partition_bytes: std::collections::BTreeMap<(Uuid, i32), u64> =
            std::collections::BTreeMap::new();
        let mut replica_bytes = std::collections::BTreeMap::new();
        for (broker, report) in self.sizes.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let mut held = std::collections::BTreeMap::new();
            for (key, size) in report {
                let size = u64::try_from(*size).unwrap_or(0);
                let e = partition_bytes.entry(*key).or_default();
                *e = (*e).max(size);
                held.insert(*key, size);
            }
            replica_bytes.insert(*broker, held);
        }
        UsageReport {
            disks,
            partition_bytes,
            replica_bytes,
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

    #[test]
    fn balancer_stats_count_per_goal() {
        let s = BalancerStats::default();
        s.record(BalancerGoal::Leaders, 3);
        s.record(BalancerGoal::Leaders, 2);
        s.record(BalancerGoal::DiskUsage, 1);
        let counts = s.counts();
        assert_eq!(counts.len(), 5);
        assert!(counts.contains(&(BalancerGoal::Leaders, 5)));
        assert!(counts.contains(&(BalancerGoal::DiskUsage, 1)));
        assert!(counts.contains(&(BalancerGoal::Unavailable, 0)));
    }

    #[test]
    fn usage_report_takes_the_largest_replica_and_measured_disks() {
        let s = ReplicaSizes::default();
        let t = Uuid::from_u128(7);
        s.report(1, [(t, 0, 10), (t, 1, 20)]);
        s.report(2, [(t, 0, 30), (t, 1, -1)]);
        s.report_disk(1, 50, 100);
        s.report_disk(2, 0, 0);
        s.report_disk(3, 150, 100);
        let u = s.usage_report();
        assert_eq!(u.bytes(t, 0), 30);
        assert_eq!(u.bytes(t, 1), 20);
        assert_eq!(u.bytes(t, 2), 0);
        // What each broker holds, as it reported it.
        assert_eq!(
            u.replica_bytes
                .get(&2)
                .map(|h| h.iter().map(|(k, b)| (k.1, *b)).collect()),
            Some(vec![(0, 30), (1, 0)])
        );
        assert_eq!(u.replica_bytes.get(&1).map(|h| h.len()), Some(2));
        assert_eq!(u.replica_bytes.get(&3), None);
        assert_eq!(
            u.disks.get(&1),
            Some(&DiskUsage {
                used_bytes: 50,
                total_bytes: 100
            })
        );
        assert_eq!(u.disks.get(&2), None, "not measured");
        assert_eq!(
            s.disk(3).map(|d| d.used_bytes),
            Some(100),
            "capped at the size"
        );
        s.report_disk(1, 0, -1);
        assert_eq!(s.disk(1), None);
    }
}
