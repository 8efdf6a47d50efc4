//! The reassignment planner: a pure function from brokers (with racks) and
//! current assignments to a proposed assignment that is rack aware and
//! moves as little data as possible. `strom reassign generate` and
//! decommission use it.
//!
//! Per partition, with its replication factor kept:
//!
//! 1. Keep: every current replica on an allowed broker stays, unless it
//!    shares a rack with an earlier kept replica while enough racks exist
//!    to give each replica its own.
//! 2. Fill: each missing replica goes to an allowed broker not yet in the
//!    partition whose rack holds the fewest of the partition's replicas,
//!    then the one with the fewest replicas planned so far, then the lowest
//!    id.
//! 3. Even out: while one broker holds two replicas more than another, a
//!    replica moves from the fullest to the emptiest broker, in a partition
//!    where that keeps its replicas distinct and its rack spread no worse.
//!    A replica only moves when it narrows the spread, so a balanced
//!    assignment never changes.
//! 4. Leaders: a partition keeps its first replica (preferred leader) when
//!    it stays and that broker does not yet lead its even share of the
//!    partitions; otherwise the replica with the fewest preferred
//!    leaderships goes first. Step 3 moves follower replicas before
//!    leaders, so leadership moves as little as possible.
//!
//! Loads count only the partitions being planned, as Kafka's
//! `--generate` does.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Result, bail};

/// One partition's replicas, current or proposed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionAssignment {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Replicas; the first is the preferred leader.
    pub replicas: Vec<i32>,
}

/// Proposes replicas for `current` on `brokers` (allowed broker ids with
/// their racks), keeping each partition's replication factor. Fails with
/// `INVALID_REPLICATION_FACTOR` when a partition has more replicas than
/// there are brokers, `INVALID_REQUEST` when a broker is listed twice or
/// none is given. The result is in the order of `current` and is a pure
/// function of the arguments.
pub fn plan_assignment(
    brokers: &[(i32, Option<String>)],
    current: &[PartitionAssignment],
) -> Result<Vec<PartitionAssignment>> {
    if brokers.is_empty() {
        bail!(InvalidRequest, "no broker to place replicas on");
    }
    let mut rack_of: BTreeMap<i32, String> = BTreeMap::new();
    for (id, rack) in brokers {
        // A broker without a rack is a rack of its own.
        let rack = rack.clone().unwrap_or_else(|| format!("\u{0}broker-{id}"));
        if rack_of.insert(*id, rack).is_some() {
            bail!(InvalidRequest, "broker {id} is listed twice");
        }
    }
    let racks: BTreeSet<&String> = rack_of.values().collect();
    let rack_count = racks.len();
    let mut load: BTreeMap<i32, usize> = rack_of.keys().map(|b| (*b, 0)).collect();
    let mut out: Vec<Vec<i32>> = Vec::with_capacity(current.len());

    // 1. Keep.
    for p in current {
        let rf = p.replicas.len();
        if rf > rack_of.len() {
            bail!(
                InvalidReplicationFactor,
                "partition {}-{} has {rf} replicas but only {} brokers are given",
                p.topic,
                p.partition,
                rack_of.len()
            );
        }
        let distinct_racks = rack_count >= rf;
        let mut kept: Vec<i32> = Vec::with_capacity(rf);
        for r in &p.replicas {
            let Some(rack) = rack_of.get(r) else { continue };
            if kept.contains(r) {
                continue;
            }
            if distinct_racks && kept.iter().any(|k| rack_of[k] == *rack) {
                continue;
            }
            kept.push(*r);
        }
        for r in &kept {
            *load.get_mut(r).expect("kept replicas are allowed") += 1;
        }
        out.push(kept);
    }

    // 2. Fill.
    for (p, replicas) in current.iter().zip(out.iter_mut()) {
        while replicas.len() < p.replicas.len() {
            let best = rack_of
                .keys()
                .copied()
                .filter(|b| !replicas.contains(b))
                .min_by_key(|b| (rack_uses(replicas, &rack_of, &rack_of[b]), load[b], *b))
                .expect("more brokers than replicas");
            replicas.push(best);
            *load.get_mut(&best).expect("allowed broker") += 1;
        }
    }

    // 3. Even out.
    let mut budget = out.iter().map(Vec::len).sum::<usize>() + 1;
    while budget > 0 {
        budget -= 1;
        let (&hi, &hi_load) = load
            .iter()
            .max_by_key(|(b, l)| (**l, std::cmp::Reverse(**b)))
            .expect("brokers");
        let moved = load
            .iter()
            .filter(|(_, l)| **l + 1 < hi_load)
            .map(|(b, l)| (*l, *b))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .find_map(|(_, lo)| {
                // A follower slot first: moving a preferred leader moves
                // leadership too.
                [false, true].into_iter().find_map(|leader_slot| {
                    out.iter().enumerate().find_map(|(i, replicas)| {
                        let slot = replicas.iter().position(|r| *r == hi)?;
                        if (slot == 0) != leader_slot || replicas.contains(&lo) {
                            return None;
                        }
                        let others: Vec<i32> =
                            replicas.iter().copied().filter(|r| *r != hi).collect();
                        let before = rack_uses(&others, &rack_of, &rack_of[&hi]);
                        let after = rack_uses(&others, &rack_of, &rack_of[&lo]);
                        (after <= before).then_some((i, slot, lo))
                    })
                })
            });
        let Some((i, slot, lo)) = moved else { break };
        out[i][slot] = lo;
        *load.get_mut(&hi).expect("allowed") -= 1;
        *load.get_mut(&lo).expect("allowed") += 1;
    }

    // 4. Leaders.
    let ideal = out.len().div_ceil(rack_of.len());
    let mut leaders: BTreeMap<i32, usize> = rack_of.keys().map(|b| (*b, 0)).collect();
    let mut keep_first = vec![false; out.len()];
    for (i, (p, replicas)) in current.iter().zip(&out).enumerate() {
        if let (Some(a), Some(b)) = (p.replicas.first(), replicas.first())
            && a == b
            && leaders[a] < ideal
        {
            keep_first[i] = true;
            *leaders.get_mut(a).expect("allowed") += 1;
        }
    }
    for (i, replicas) in out.iter_mut().enumerate() {
        if keep_first[i] {
            continue;
        }
        let (pos, _) = replicas
            .iter()
            .enumerate()
            .min_by_key(|(pos, r)| (leaders[*r], *pos))
            .expect("non-empty");
        let first = replicas.remove(pos);
        replicas.insert(0, first);
        *leaders.get_mut(&first).expect("allowed") += 1;
    }

    Ok(current
        .iter()
        .zip(out)
        .map(|(p, replicas)| PartitionAssignment {
            topic: p.topic.clone(),
            partition: p.partition,
            replicas,
        })
        .collect())
}

/// How many of `replicas` are on `rack`.
fn rack_uses(replicas: &[i32], rack_of: &BTreeMap<i32, String>, rack: &str) -> usize {
    replicas
        .iter()
        .filter(|r| rack_of.get(r).is_some_and(|x| x == rack))
        .count()
}

#[cfg(test)]
#[path = "planner_test.rs"]
mod tests;
