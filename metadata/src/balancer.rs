//! The built-in balancer's decisions (issue #20): which reassignments the
//! active controller starts on its own, as Redpanda's partition balancer
//! and Cruise Control do for Kafka. Pure: an image in, records out; the
//! controller runs [`balancer_moves`] on a timer and writes what it
//! returns (the apply step re-checks every move as for an operator's).
//!
//! Mode `node-add` (`balancer.mode`): when the replica counts of two
//! available brokers differ by two or more (typically: a broker was just
//! added and holds nothing), the balancer re-plans every partition
//! with the reassignment planner ([`plan_assignment`]: rack aware, keeps
//! what it can, evens replica counts to within one, followers before
//! preferred leaders) over the available brokers and starts the moves
//! that change a replica set, at most `max_moves` in flight per broker
//! (`reassignment.max.concurrent.moves.per.broker`). It plans one batch at
//! a time: while any reassignment is in progress (the balancer's, an
//! operator's or a decommission's) it starts nothing, and plans again from
//! the new assignment once they are done, so it never fights a move it did
//! not start and converges on an assignment the planner leaves as it is.
//!
//! Available brokers are registered, unfenced, not shutting down and not
//! decommissioning. Partitions with a replica on another broker are left
//! alone: moving replicas off unavailable brokers is the `continuous`
//! mode's job (not implemented yet; the config refuses it).
//!
//! Tests: `balancer_test.rs`.

use std::collections::BTreeMap;

use crate::image::ClusterImage;
use crate::pb;
use crate::planner::{PartitionAssignment, plan_assignment};
use crate::reassignment::{ReassignmentSpec, alter_reassignments};

/// Broker setting `balancer.mode`.
pub const BALANCER_MODE: &str = "balancer.mode";
/// Broker setting `balancer.node.unavailable.timeout.ms`.
pub const NODE_UNAVAILABLE_TIMEOUT: &str = "balancer.node.unavailable.timeout.ms";

/// What the balancer does (`balancer.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BalancerMode {
    /// Nothing (the default).
    #[default]
    Off,
    /// Fill brokers that hold far fewer replicas than the others.
    NodeAdd,
    /// `NodeAdd`, and move the replicas of brokers unavailable for longer
    /// than `balancer.node.unavailable.timeout.ms` to available ones.
    Continuous,
}

impl BalancerMode {
    /// Parses the setting's value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "off" => Some(BalancerMode::Off),
            "node-add" => Some(BalancerMode::NodeAdd),
            "continuous" => Some(BalancerMode::Continuous),
            _ => None,
        }
    }

    /// The setting's value.
    pub fn as_str(self) -> &'static str {
        match self {
            BalancerMode::Off => "off",
            BalancerMode::NodeAdd => "node-add",
            BalancerMode::Continuous => "continuous",
        }
    }
}

/// What the balancer sees, for `strom balancer status` and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BalancerView {
    /// Replicas per available broker (moving partitions counted with every
    /// replica they have now).
    pub replicas: BTreeMap<i32, usize>,
    /// Two available brokers' replica counts differ by two or more: the
    /// balancer has work.
    pub unbalanced: bool,
    /// Reassignments in progress.
    pub moving: usize,
}

/// The brokers the balancer may place replicas on.
fn available(image: &ClusterImage) -> Vec<(i32, Option<String>)> {
    image
        .brokers()
        .filter(|b| b.is_alive() && !image.is_decommissioning(b.id))
        .map(|b| (b.id, b.rack.clone()))
        .collect()
}

/// Replica counts of the available brokers and whether two of them differ
/// by two or more.
pub fn balancer_view(image: &ClusterImage) -> BalancerView {
    let mut replicas: BTreeMap<i32, usize> = available(image)
        .into_iter()
        .map(|(id, _)| (id, 0))
        .collect();
    let mut moving = 0;
    for (_, _, s) in image.all_partitions() {
        if s.is_reassigning() {
            moving += 1;
        }
        for r in &s.replicas {
            if let Some(n) = replicas.get_mut(r) {
                *n += 1;
            }
        }
    }
    let most = replicas.values().max().copied().unwrap_or(0);
    let least = replicas.values().min().copied().unwrap_or(0);
    let unbalanced = most >= least + 2;
    BalancerView {
        replicas,
        unbalanced,
        moving,
    }
}

/// One round of the balancer (see the module doc): the records of the
/// reassignments to start now, or none. `default_min_isr` is
/// `min.insync.replicas` for topics without the config.
pub fn balancer_moves(
    image: &ClusterImage,
    mode: BalancerMode,
    max_moves: usize,
    default_min_isr: usize,
) -> Vec<pb::MetadataRecord> {
    if mode == BalancerMode::Off || max_moves == 0 {
        return Vec::new();
    }
    let view = balancer_view(image);
    if view.moving > 0 || !view.unbalanced {
        return Vec::new();
    }
    let brokers = available(image);
    let current: Vec<PartitionAssignment> = image
        .all_partitions()
        .filter(|(_, _, s)| s.replicas.iter().all(|r| view.replicas.contains_key(r)))
        .map(|(t, p, s)| PartitionAssignment {
            topic: t.name.clone(),
            partition: p,
            replicas: s.replicas.clone(),
        })
        .collect();
    let Ok(proposed) = plan_assignment(&brokers, &current) else {
        return Vec::new();
    };
    let mut in_flight: BTreeMap<i32, usize> = BTreeMap::new();
    let mut specs = Vec::new();
    for (cur, next) in current.iter().zip(proposed) {
        let changed: Vec<i32> = next
            .replicas
            .iter()
            .filter(|r| !cur.replicas.contains(r))
            .chain(cur.replicas.iter().filter(|r| !next.replicas.contains(r)))
            .copied()
            .collect();
        if changed.is_empty() {
            continue;
        }
        if changed
            .iter()
            .any(|b| in_flight.get(b).copied().unwrap_or(0) >= max_moves)
        {
            continue;
        }
        for b in changed {
            *in_flight.entry(b).or_default() += 1;
        }
        specs.push(ReassignmentSpec {
            topic: next.topic,
            partition: next.partition,
            replicas: Some(next.replicas),
        });
    }
    if specs.is_empty() {
        return Vec::new();
    }
    alter_reassignments(image, &specs, default_min_isr)
        .map(|(records, _)| records)
        .unwrap_or_default()
}

/// `continuous` mode's first goal: the replicas of `gone` (brokers
/// unavailable for longer than `balancer.node.unavailable.timeout.ms`, as
/// the active controller measured) move to available brokers, each
/// replaced in place by the available broker not yet a replica on the rack
/// the fewest of the partition's other replicas use, then holding the
/// fewest replicas (moves in flight counted), then the lowest id; at most
/// `max_moves` moves in flight per broker gaining a replica. Partitions
/// already moving are left to finish. The records of the moves to start
/// now, or none.
pub fn unavailable_moves(
    image: &ClusterImage,
    gone: &[i32],
    max_moves: usize,
    default_min_isr: usize,
) -> Vec<pb::MetadataRecord> {
    if gone.is_empty() || max_moves == 0 {
        return Vec::new();
    }
    let brokers = available(image);
    let rack = |id: i32| image.broker(id).and_then(|b| b.rack.clone());
    let mut load: BTreeMap<i32, usize> = brokers.iter().map(|(id, _)| (*id, 0)).collect();
    let mut in_flight: BTreeMap<i32, usize> = BTreeMap::new();
    for (_, _, s) in image.all_partitions() {
        for r in &s.replicas {
            if let Some(n) = load.get_mut(r) {
                *n += 1;
            }
        }
        for a in &s.adding {
            *in_flight.entry(*a).or_default() += 1;
        }
    }
    let mut specs = Vec::new();
    for (topic, p, s) in image.all_partitions() {
        if s.is_reassigning() || !s.replicas.iter().any(|r| gone.contains(r)) {
            continue;
        }
        let mut target = s.replicas.clone();
        let mut ok = true;
        for slot in 0..target.len() {
            if !gone.contains(&target[slot]) {
                continue;
            }
            let others: Vec<Option<String>> = target
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != slot)
                .map(|(_, r)| rack(*r))
                .collect();
            let pick = brokers
                .iter()
                .filter(|(id, _)| {
                    !target.contains(id) && in_flight.get(id).copied().unwrap_or(0) < max_moves
                })
                .min_by_key(|(id, r)| {
                    let shared = r.as_ref().map_or(0, |r| {
                        others.iter().filter(|o| o.as_ref() == Some(r)).count()
                    });
                    (shared, load.get(id).copied().unwrap_or(0), *id)
                })
                .map(|(id, _)| *id);
            match pick {
                Some(b) => {
                    target[slot] = b;
                    *load.entry(b).or_default() += 1;
                    *in_flight.entry(b).or_default() += 1;
                }
                None => ok = false,
            }
        }
        if ok {
            specs.push(ReassignmentSpec {
                topic: topic.name.clone(),
                partition: p,
                replicas: Some(target),
            });
        }
    }
    if specs.is_empty() {
        return Vec::new();
    }
    alter_reassignments(image, &specs, default_min_isr)
        .map(|(records, _)| records)
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "balancer_test.rs"]
mod tests;
