//! Leader imbalance and automatic preferred-leader rebalancing, computed as
//! Kafka's controller does (`leader.imbalance.per.broker.percentage`).

use std::collections::BTreeMap;

use crate::election::{Liveness, Target, change_record};
use crate::image::ClusterImage;
use crate::pb;

/// Default `leader.imbalance.per.broker.percentage`.
pub const DEFAULT_LEADER_IMBALANCE_PERCENTAGE: f64 = 10.0;

/// Per broker: (partitions whose preferred replica is the broker but that
/// another broker, or none, leads) / (partitions whose preferred replica is
/// the broker). Brokers that are no partition's preferred replica are absent.
pub fn leader_imbalance(image: &ClusterImage) -> BTreeMap<i32, f64> {
    let mut counts: BTreeMap<i32, (u64, u64)> = BTreeMap::new();
    for (_, _, s) in image.all_partitions() {
        let preferred = s.preferred_leader();
        let c = counts.entry(preferred).or_default();
        c.1 += 1;
        if s.leader != preferred {
            c.0 += 1;
        }
    }
    counts
        .into_iter()
        .map(|(b, (off, total))| (b, off as f64 / total as f64))
        .collect()
}

/// Preferred-leader elections for every partition of each broker whose
/// imbalance ratio exceeds `imbalance_pct_threshold` percent, limited to the
/// partitions whose preferred replica is alive and in the ISR (and not
/// already leading). Brokers at or below the threshold are left alone.
pub fn rebalance_leaders(
    image: &ClusterImage,
    imbalance_pct_threshold: f64,
) -> Vec<pb::MetadataRecord> {
    let imbalance = leader_imbalance(image);
    let threshold = imbalance_pct_threshold / 100.0;
    let live = Liveness::of(image);
    let mut records = Vec::new();
    for (topic, p, s) in image.all_partitions() {
        let preferred = s.preferred_leader();
        if s.leader == preferred || imbalance.get(&preferred).is_none_or(|r| *r <= threshold) {
            continue;
        }
        if !live.is_alive(preferred) || !s.isr.contains(&preferred) {
            continue;
        }
        let target = Target::leader_only(s, preferred);
        records.extend(change_record(topic.id, p, s, &target));
    }
    records
}

#[cfg(test)]
#[path = "imbalance_test.rs"]
mod tests;
