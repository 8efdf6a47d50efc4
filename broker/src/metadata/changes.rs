//! Partition change counters — ISR shrinks and expands, leader elections —
//! observed while replaying the metadata log, for the `/metrics` endpoint.
//!
//! Each change is attributed to the partition's leader *after* the change
//! (the broker whose ISR it is, or the newly elected leader), so every node
//! reports the changes of the partitions it leads and the sum over all
//! brokers is the cluster's total, as with Kafka's per-broker
//! `IsrShrinksPerSec`. Changes that leave a partition offline count for
//! nobody. Only replayed deltas count: a broker that catches up from a
//! snapshot does not see the changes the snapshot folded in.

use std::collections::BTreeMap;
use std::sync::Mutex;

use strom_metadata::PartitionState;

/// Counts of one broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeCounts {
    /// ISR changes that removed at least one replica.
    pub isr_shrinks: u64,
    /// ISR changes that added at least one replica.
    pub isr_expands: u64,
    /// Leader changes to this broker.
    pub leader_elections: u64,
}

/// What one partition change means, and for whom (pure).
///
/// An ISR that both lost and gained members counts as a shrink and an
/// expand; a leader election is a change to a different, live leader.
pub fn classify(before: &PartitionState, after: &PartitionState) -> Option<(i32, ChangeCounts)> {
    if after.leader < 0 {
        return None;
    }
    let counts = ChangeCounts {
        isr_shrinks: u64::from(before.isr.iter().any(|r| !after.isr.contains(r))),
        isr_expands: u64::from(after.isr.iter().any(|r| !before.isr.contains(r))),
        leader_elections: u64::from(after.leader != before.leader),
    };
    (counts != ChangeCounts::default()).then_some((after.leader, counts))
}

/// Counters per broker id (bounded by the number of brokers).
#[derive(Debug, Default)]
pub struct ChangeCounters {
    by_broker: Mutex<BTreeMap<i32, ChangeCounts>>,
}

impl ChangeCounters {
    /// Counts the change from `before` to `after`.
    pub fn observe(&self, before: &PartitionState, after: &PartitionState) {
        if let Some((broker, c)) = classify(before, after) {
            let mut map = self.by_broker.lock().unwrap_or_else(|e| e.into_inner());
            let e = map.entry(broker).or_default();
            e.isr_shrinks += c.isr_shrinks;
            e.isr_expands += c.isr_expands;
            e.leader_elections += c.leader_elections;
        }
    }

    /// The counts attributed to `broker` so far.
    pub fn of(&self, broker: i32) -> ChangeCounts {
        self.by_broker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&broker)
            .copied()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(leader: i32, isr: &[i32]) -> PartitionState {
        PartitionState {
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            elr: Vec::new(),
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    fn counts(shrinks: u64, expands: u64, elections: u64) -> ChangeCounts {
        ChangeCounts {
            isr_shrinks: shrinks,
            isr_expands: expands,
            leader_elections: elections,
        }
    }

    #[test]
    fn changes_are_attributed_to_the_leader_after_the_change() {
        let cases = [
            (
                "shrink",
                state(1, &[1, 2, 3]),
                state(1, &[1, 2]),
                Some((1, counts(1, 0, 0))),
            ),
            (
                "expand",
                state(1, &[1, 2]),
                state(1, &[1, 2, 3]),
                Some((1, counts(0, 1, 0))),
            ),
            (
                "swap",
                state(1, &[1, 2]),
                state(1, &[1, 3]),
                Some((1, counts(1, 1, 0))),
            ),
            (
                "failover",
                state(1, &[1, 2, 3]),
                state(2, &[2, 3]),
                Some((2, counts(1, 0, 1))),
            ),
            (
                "back online",
                state(-1, &[1]),
                state(1, &[1]),
                Some((1, counts(0, 0, 1))),
            ),
            ("offline", state(1, &[1]), state(-1, &[1]), None),
            ("epoch only", state(1, &[1, 2]), state(1, &[2, 1]), None),
        ];
        for (name, before, after, want) in cases {
            assert_eq!(classify(&before, &after), want, "{name}");
        }
    }

    #[test]
    fn counters_add_up_per_broker() {
        let c = ChangeCounters::default();
        c.observe(&state(1, &[1, 2, 3]), &state(1, &[1, 2]));
        c.observe(&state(1, &[1, 2]), &state(2, &[2]));
        c.observe(&state(2, &[2]), &state(2, &[2, 1]));
        assert_eq!(c.of(1), counts(1, 0, 0));
        assert_eq!(c.of(2), counts(1, 1, 1));
        assert_eq!(c.of(3), ChangeCounts::default());
    }
}
