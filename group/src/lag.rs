//! Consumer lag: how far each group's committed offsets are behind the
//! partitions' log end offsets. Pure: the host gathers the committed
//! offsets from its shards ([`Shard::committed_offsets`]) and the end
//! offsets from the partition leaders ([`end_offset_requests`] says which
//! leader to ask for what, one request per leader), then [`lag`] sums them
//! per group and topic, the metric's bounded label set.
//!
//! [`Shard::committed_offsets`]: crate::Shard::committed_offsets

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A group's committed offset of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The group.
    pub group_id: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset the group consumes.
    pub offset: i64,
}

/// The lag of a group on a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicLag {
    /// Records between the committed offsets and the end offsets, summed
    /// over the partitions with both (a commit ahead of a known end counts
    /// 0: the end offset was read before the commit).
    pub lag: i64,
    /// The largest lag of one partition.
    pub max_partition_lag: i64,
    /// Partitions counted.
    pub partitions: i64,
    /// Committed partitions whose end offset is unknown (no leader, the
    /// leader did not answer): not in `lag`.
    pub unknown: i64,
}

/// Which partitions to ask each leader for: leader id → topic →
/// partitions (sorted, each once). Partitions without a leader
/// (`leader_of` answers `None`) are left out; their lag is unknown.
pub fn end_offset_requests<'a>(
    committed: impl IntoIterator<Item = &'a CommittedOffset>,
    leader_of: impl Fn(&str, i32) -> Option<i32>,
) -> BTreeMap<i32, BTreeMap<String, BTreeSet<i32>>> {
    let mut out: BTreeMap<i32, BTreeMap<String, BTreeSet<i32>>> = BTreeMap::new();
    for c in committed {
        if let Some(leader) = leader_of(&c.topic, c.partition) {
            out.entry(leader)
                .or_default()
                .entry(c.topic.clone())
                .or_default()
                .insert(c.partition);
        }
    }
    out
}

/// Lag per (group, topic) from the committed offsets and the partitions'
/// end offsets (`ends`: (topic, partition) → log end offset, the high
/// watermark).
pub fn lag<'a>(
    committed: impl IntoIterator<Item = &'a CommittedOffset>,
    ends: &HashMap<(String, i32), i64>,
) -> BTreeMap<(String, String), TopicLag> {
    let mut out: BTreeMap<(String, String), TopicLag> = BTreeMap::new();
    for c in committed {
        let entry = out
            .entry((c.group_id.clone(), c.topic.clone()))
            .or_default();
        match ends.get(&(c.topic.clone(), c.partition)) {
            Some(end) => {
                let lag = end.saturating_sub(c.offset).max(0);
                entry.lag = entry.lag.saturating_add(lag);
                entry.max_partition_lag = entry.max_partition_lag.max(lag);
                entry.partitions += 1;
            }
            None => entry.unknown += 1,
        }
    }
    out
}

#[cfg(test)]
#[path = "lag_test.rs"]
mod tests;
