//! Partition reassignment, as Kafka's KIP-455: start, replace and cancel
//! reassignments (`AlterPartitionReassignments`), and complete them once
//! the new replicas caught up.
//!
//! While a partition is reassigned its `replicas` hold the target replicas
//! first (in the requested order, so the first is the preferred leader),
//! then the replicas being removed; `adding` and `removing` say which is
//! which. New replicas are ordinary followers: they fetch from the leader
//! and the leader adds them to the ISR once caught up. The controller
//! completes the move ([`complete_reassignments`]) when every adding
//! replica is in the ISR and the ISR without the removed replicas keeps
//! `min.insync.replicas` members (or as many as it had): the replica list
//! becomes the target, the ISR loses the removed replicas, and a target
//! replica takes the leadership if the leader is being removed — all in one
//! record. A replica that is in both the old and the new set but out of
//! the ISR (dead, say) does not hold the completion back (unlike Kafka's
//! KAFKA-19975): only the adding replicas must have caught up.
//!
//! Cancelling restores the original replicas: the adding ones leave, the
//! removing ones stay. Everything is in the metadata log, so a reassignment
//! survives controller failover and restarts of any node.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::apply::first_duplicate;
use crate::election::Liveness;
use crate::error::{MetadataError, Result, bail, err};
use crate::image::{ClusterImage, MIN_INSYNC_REPLICAS, NO_LEADER, PartitionState, TopicImage};
use crate::pb;
use crate::pb::metadata_record::Record;
use crate::records::record;

/// One partition of an `AlterPartitionReassignments` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentSpec {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The target replicas (the first is the preferred leader); `None`
    /// cancels the partition's reassignment.
    pub replicas: Option<Vec<i32>>,
}

/// The outcome for one partition of an `AlterPartitionReassignments` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentOutcome {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// `NO_REASSIGNMENT_IN_PROGRESS` for a cancel of a partition that is not
    /// being reassigned; `None` otherwise.
    pub error: Option<MetadataError>,
}

/// Decides an `AlterPartitionReassignments` request.
///
/// The request is checked as a whole first, and any of these refuses all
/// of it (nothing changes): a partition listed twice (`INVALID_REQUEST`);
/// an unknown topic or partition (`UNKNOWN_TOPIC_OR_PARTITION`); an empty
/// replica list, a replica listed twice, a negative or unregistered broker
/// id, or a new replica on a fenced broker or one shutting down
/// (`INVALID_REPLICA_ASSIGNMENT`). Then, per partition:
///
/// * a target equal to the current replicas (in order) changes nothing;
/// * the same set in another order reorders the replicas at once;
/// * otherwise the reassignment starts (or replaces the one in progress,
///   whose original replicas stay the original ones) and completes at once
///   when nothing needs to catch up (a replication factor decrease);
/// * a cancel restores the original replicas, or answers
///   `NO_REASSIGNMENT_IN_PROGRESS` when none is in progress.
///
/// `default_min_isr` is `min.insync.replicas` for topics without the config.
pub fn alter_reassignments(
    image: &ClusterImage,
    specs: &[ReassignmentSpec],
    default_min_isr: usize,
) -> Result<(Vec<pb::MetadataRecord>, Vec<ReassignmentOutcome>)> {
    let mut seen = BTreeSet::new();
    let mut found = Vec::with_capacity(specs.len());
    for spec in specs {
        let name = &spec.topic;
        let p = spec.partition;
        if !seen.insert((name.as_str(), p)) {
            bail!(InvalidRequest, "partition {name}-{p} is listed twice");
        }
        let Some((topic, cur)) = image
            .topic_by_name(name)
            .and_then(|t| Some((t, t.partition(p)?)))
        else {
            bail!(
                UnknownTopicOrPartition,
                "partition {name}-{p} does not exist"
            );
        };
        if let Some(target) = &spec.replicas {
            check_target(image, name, p, cur, target)?;
        }
        found.push((topic, cur));
    }
    let live = Liveness::of(image);
    let mut records = Vec::new();
    let mut outcomes = Vec::with_capacity(specs.len());
    for (spec, (topic, cur)) in specs.iter().zip(found) {
        let name = &spec.topic;
        let p = spec.partition;
        let min_isr = min_isr_of(topic, default_min_isr);
        let mut error = None;
        let next = match &spec.replicas {
            Some(target) => Some(start(name, p, cur, target, &live)?),
            None if !cur.is_reassigning() => {
                error = Some(err!(
                    NoReassignmentInProgress,
                    "partition {name}-{p} is not being reassigned"
                ));
                None
            }
            None => Some(revert(name, p, cur, &live)?),
        };
        if let Some(next) = next {
            let next = completed(&next, &live, min_isr).unwrap_or(next);
            records.extend(change_record(topic.id, p, cur, &next));
        }
        outcomes.push(ReassignmentOutcome {
            topic: name.clone(),
            partition: p,
            error,
        });
    }
    Ok((records, outcomes))
}

/// Completes every reassignment that can complete now (see the module
/// doc): one `PartitionChangeRecord` each. The active controller runs it
/// periodically, so a move completes after failovers and restarts too.
pub fn complete_reassignments(
    image: &ClusterImage,
    default_min_isr: usize,
) -> Vec<pb::MetadataRecord> {
    let live = Liveness::of(image);
    image
        .all_partitions()
        .filter(|(_, _, s)| s.is_reassigning())
        .filter_map(|(topic, p, cur)| {
            let next = completed(cur, &live, min_isr_of(topic, default_min_isr))?;
            change_record(topic.id, p, cur, &next)
        })
        .collect()
}

/// The partitions being reassigned, as (topic, partition, state), topics
/// by name; only those among `filter` when given.
pub fn reassignments<'a>(
    image: &'a ClusterImage,
    filter: Option<&'a [(String, i32)]>,
) -> impl Iterator<Item = (&'a TopicImage, i32, &'a PartitionState)> + 'a {
    image
        .all_partitions()
        .filter(|(_, _, s)| s.is_reassigning())
        .filter(move |(t, p, _)| {
            filter.is_none_or(|f| f.iter().any(|(n, q)| *n == t.name && q == p))
        })
}

/// `min.insync.replicas` of `topic` as a number, before clamping.
fn min_isr_of(topic: &TopicImage, default: usize) -> usize {
    topic
        .configs
        .get(MIN_INSYNC_REPLICAS)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default)
}

fn check_target(
    image: &ClusterImage,
    name: &str,
    p: i32,
    cur: &PartitionState,
    target: &[i32],
) -> Result<()> {
    if target.is_empty() {
        bail!(
            InvalidReplicaAssignment,
            "the replica list of {name}-{p} is empty"
        );
    }
    if let Some(d) = first_duplicate(target) {
        bail!(
            InvalidReplicaAssignment,
            "the replica list of {name}-{p} lists broker {d} twice"
        );
    }
    for r in target {
        let Some(b) = image.broker(*r) else {
            bail!(
                InvalidReplicaAssignment,
                "broker {r} in the replica list of {name}-{p} is not registered"
            );
        };
        if !cur.replicas.contains(r) && !b.is_alive() {
            bail!(
                InvalidReplicaAssignment,
                "broker {r} in the replica list of {name}-{p} is fenced or shutting down"
            );
        }
    }
    Ok(())
}

/// The state of `cur` reassigned to `target` (checked), before completion.
pub(crate) fn start(
    name: &str,
    p: i32,
    cur: &PartitionState,
    target: &[i32],
    live: &Liveness<'_>,
) -> Result<PartitionState> {
    let original = cur.original_replicas();
    let same_set = target.len() == original.len() && target.iter().all(|r| original.contains(r));
    let mut next = if same_set && cur.is_reassigning() {
        revert(name, p, cur, live)?
    } else {
        cur.clone()
    };
    if same_set {
        next.replicas = target.to_vec();
        return Ok(next);
    }
    next.adding = target
        .iter()
        .copied()
        .filter(|r| !original.contains(r))
        .collect();
    next.removing = original
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    next.replicas = target.to_vec();
    next.replicas.extend(next.removing.iter().copied());
    restrict(name, p, cur, next, live)
}

/// The state of `cur` with its reassignment cancelled.
fn revert(name: &str, p: i32, cur: &PartitionState, live: &Liveness<'_>) -> Result<PartitionState> {
    let mut next = cur.clone();
    next.replicas = cur.original_replicas();
    next.adding.clear();
    next.removing.clear();
    restrict(name, p, cur, next, live)
}

/// `next` (with new replicas) with its ISR and eligible replicas limited
/// to them, and a new leader if the old one left the ISR.
fn restrict(
    name: &str,
    p: i32,
    cur: &PartitionState,
    mut next: PartitionState,
    live: &Liveness<'_>,
) -> Result<PartitionState> {
    next.isr.retain(|r| next.replicas.contains(r));
    next.elr.retain(|r| next.replicas.contains(r));
    if next.isr.is_empty() {
        bail!(
            ReassignmentInProgress,
            "no in-sync replica of {name}-{p} would remain (isr {:?})",
            cur.isr
        );
    }
    if !next.isr.contains(&next.leader) {
        next.leader = next
            .replicas
            .iter()
            .copied()
            .find(|r| next.isr.contains(r) && live.is_alive(*r))
            .unwrap_or(NO_LEADER);
    }
    Ok(next)
}

/// `cur` with its reassignment completed, when it can complete now: every
/// adding replica is in the ISR, the ISR restricted to the target keeps
/// `min.insync.replicas` members (at most the target's size) or as many as
/// it has now, and some target replica in it is alive to lead.
pub(crate) fn completed(
    cur: &PartitionState,
    live: &Liveness<'_>,
    min_isr: usize,
) -> Option<PartitionState> {
    if !cur.is_reassigning() || cur.adding.iter().any(|r| !cur.isr.contains(r)) {
        return None;
    }
    let target = cur.target_replicas();
    let min_isr = min_isr.clamp(1, target.len());
    let isr: Vec<i32> = cur
        .isr
        .iter()
        .copied()
        .filter(|r| target.contains(r))
        .collect();
    if isr.is_empty() || isr.len() < min_isr.min(cur.isr.len()) {
        return None;
    }
    let leader = if isr.contains(&cur.leader) && live.is_alive(cur.leader) {
        cur.leader
    } else {
        target
            .iter()
            .copied()
            .find(|r| isr.contains(r) && live.is_alive(*r))?
    };
    let elr = if isr.len() >= min_isr {
        Vec::new()
    } else {
        cur.elr
            .iter()
            .copied()
            .filter(|r| target.contains(r) && !isr.contains(r))
            .collect()
    };
    Some(PartitionState {
        replicas: target,
        isr,
        leader,
        leader_epoch: cur.leader_epoch,
        partition_epoch: cur.partition_epoch,
        elr,
        adding: Vec::new(),
        removing: Vec::new(),
    })
}

/// A `PartitionChangeRecord` moving `cur` to `next`, carrying only what
/// changes; `None` when nothing does.
pub(crate) fn change_record(
    topic_id: Uuid,
    partition: i32,
    cur: &PartitionState,
    next: &PartitionState,
) -> Option<pb::MetadataRecord> {
    let list = |a: &Vec<i32>, b: &Vec<i32>| (a != b).then(|| pb::ReplicaList::of(b.clone()));
    let change = pb::PartitionChangeRecord {
        topic_id: topic_id.as_bytes().to_vec(),
        partition,
        expected_partition_epoch: cur.partition_epoch,
        leader: (next.leader != cur.leader).then_some(next.leader),
        isr: list(&cur.isr, &next.isr),
        replicas: list(&cur.replicas, &next.replicas),
        elr: list(&cur.elr, &next.elr),
        adding_replicas: list(&cur.adding, &next.adding),
        removing_replicas: list(&cur.removing, &next.removing),
    };
    let unchanged = change.leader.is_none()
        && change.isr.is_none()
        && change.replicas.is_none()
        && change.elr.is_none()
        && change.adding_replicas.is_none()
        && change.removing_replicas.is_none();
    (!unchanged).then(|| record(Record::PartitionChange(change)))
}

#[cfg(test)]
#[path = "reassignment_test.rs"]
mod tests;
