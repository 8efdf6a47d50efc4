//! Broker decommissioning: move every replica off a broker, its
//! leaderships first, a few partitions at a time, rack aware; and
//! recommissioning, which stops a pending decommission.
//!
//! [`decommission_broker`] only marks the broker (a
//! `BrokerDecommissionRecord` in the metadata log, so the decommission
//! survives failovers and restarts); the active controller then runs
//! [`decommission_moves`] periodically. Each round, for every
//! decommissioning broker:
//!
//! 1. partitions it leads get another alive ISR member as leader (in
//!    replica order), so producers and consumers leave it first;
//! 2. while fewer than `max_moves` reassignments involve it, a partition
//!    it is a replica of (and that is not moving) is reassigned to the
//!    same replicas with the broker replaced: by an alive broker that is
//!    not decommissioning nor already a replica, on the rack the fewest
//!    of the partition's other replicas use, then holding the fewest
//!    replicas (counting moves in flight), then the lowest id. The
//!    replacement takes the broker's position in the replica list.
//!
//! The moves are ordinary reassignments (see [`crate::reassignment`]): they
//! complete when the new replicas caught up, and never shrink an ISR below
//! `min.insync.replicas`. New topics and partitions are not placed on a
//! decommissioning broker.

use std::collections::BTreeMap;

use crate::election::{Liveness, Target, change_record as leader_change};
use crate::error::{Result, bail};
use crate::image::{ClusterImage, MIN_INSYNC_REPLICAS};
use crate::pb;
use crate::pb::metadata_record::Record;
use crate::reassignment::{ReassignmentSpec, alter_reassignments, change_record, completed, start};
use crate::records::record;

/// Decides decommissioning `broker_id`: a `BrokerDecommissionRecord`, or
/// nothing when it is already decommissioning. Fails with
/// `BROKER_ID_NOT_REGISTERED` for an unknown broker, and with
/// `INVALID_REPLICATION_FACTOR`, naming the topics, when a topic with a
/// replica on the broker has a replication factor larger than the alive
/// brokers that would remain (not decommissioning, not this one).
pub fn decommission_broker(
    image: &ClusterImage,
    broker_id: i32,
) -> Result<Vec<pb::MetadataRecord>> {
    if image.broker(broker_id).is_none() {
        bail!(
            BrokerIdNotRegistered,
            "broker {broker_id} is not registered"
        );
    }
    if image.is_decommissioning(broker_id) {
        return Ok(Vec::new());
    }
    let remaining = image
        .brokers()
        .filter(|b| b.id != broker_id && b.is_alive() && !image.is_decommissioning(b.id))
        .count();
    let mut short: Vec<String> = Vec::new();
    for (tid, p) in image.partitions_of_broker(broker_id) {
        let Some(topic) = image.topic_by_id(&tid) else {
            continue;
        };
        let rf = topic.partition(p).map_or(0, |s| s.target_replicas().len());
        if rf > remaining && !short.contains(&topic.name) {
            short.push(topic.name.clone());
        }
    }
    if !short.is_empty() {
        short.sort();
        bail!(
            InvalidReplicationFactor,
            "decommissioning broker {broker_id} would leave fewer live brokers ({remaining}) than the replication factor of topics {}",
            short.join(", ")
        );
    }
    Ok(vec![decommission_record(broker_id, true)])
}

/// Decides recommissioning `broker_id`: stops a pending decommission and
/// cancels (KIP-455: back to the original replicas) the moves it started
/// that have not finished — the reassignments whose only removed replica
/// is `broker_id`, the shape of every decommission move (an operator's
/// move of that shape is cancelled too). A move that cannot be cancelled
/// because none of its original replicas is in the ISR is left to finish.
/// Nothing when the broker is not decommissioning.
pub fn recommission_broker(
    image: &ClusterImage,
    broker_id: i32,
    default_min_isr: usize,
) -> Result<Vec<pb::MetadataRecord>> {
    if image.broker(broker_id).is_none() && !image.is_decommissioning(broker_id) {
        bail!(
            BrokerIdNotRegistered,
            "broker {broker_id} is not registered"
        );
    }
    if !image.is_decommissioning(broker_id) {
        return Ok(Vec::new());
    }
    let mut records = vec![decommission_record(broker_id, false)];
    records.extend(
        image
            .all_partitions()
            .filter(|(_, _, s)| s.is_reassigning() && s.removing == [broker_id])
            .flat_map(|(topic, p, _)| {
                let cancel = ReassignmentSpec {
                    topic: topic.name.clone(),
                    partition: p,
                    replicas: None,
                };
                alter_reassignments(image, &[cancel], default_min_isr)
                    .map(|(records, _)| records)
                    .unwrap_or_default()
            }),
    );
    Ok(records)
}

/// Decides unregistering `broker_id` (Kafka's KIP-631 UnregisterBroker,
/// with Strom's safety rules): an `UnregisterBrokerRecord`, and the end of
/// its decommission if one is pending. Refused, changing nothing, with
/// `BROKER_ID_NOT_REGISTERED` for an unknown broker, and with
/// `INVALID_REQUEST` naming why while the broker is alive (unfenced: stop
/// it first) or still hosts replicas (naming up to five of them:
/// decommission it and wait until it holds none).
pub fn unregister_drained_broker(
    image: &ClusterImage,
    broker_id: i32,
) -> Result<Vec<pb::MetadataRecord>> {
    let Some(b) = image.broker(broker_id) else {
        bail!(
            BrokerIdNotRegistered,
            "broker {broker_id} is not registered"
        );
    };
    if !b.fenced {
        bail!(
            InvalidRequest,
            "broker {broker_id} is alive (unfenced): stop it before unregistering it"
        );
    }
    let hosted: Vec<String> = image
        .all_partitions()
        .filter(|(_, _, s)| s.replicas.contains(&broker_id))
        .map(|(t, p, _)| format!("{}-{p}", t.name))
        .collect();
    if !hosted.is_empty() {
        let more = if hosted.len() > 5 { ", ..." } else { "" };
        bail!(
            InvalidRequest,
            "broker {broker_id} still hosts {} replicas ({}{more}): decommission it and wait until it holds none",
            hosted.len(),
            hosted[..hosted.len().min(5)].join(", ")
        );
    }
    let mut records = Vec::new();
    if image.is_decommissioning(broker_id) {
        records.push(decommission_record(broker_id, false));
    }
    records.push(record(Record::UnregisterBroker(
        pb::UnregisterBrokerRecord {
            broker_id,
            broker_epoch: b.epoch,
        },
    )));
    Ok(records)
}

fn decommission_record(broker_id: i32, decommissioning: bool) -> pb::MetadataRecord {
    record(Record::BrokerDecommission(pb::BrokerDecommissionRecord {
        broker_id,
        decommissioning,
    }))
}

/// One round of decommissioning (see the module doc): leadership moves and
/// at most `max_moves` reassignments in flight per decommissioning broker.
/// `default_min_isr` is `min.insync.replicas` for topics without the config.
pub fn decommission_moves(
    image: &ClusterImage,
    max_moves: usize,
    default_min_isr: usize,
) -> Vec<pb::MetadataRecord> {
    let draining: Vec<i32> = image.decommissioning().collect();
    if draining.is_empty() {
        return Vec::new();
    }
    let live = Liveness::of(image);
    let mut records = Vec::new();
    // Replicas per broker, counting moves in flight, kept up to date as
    // moves are planned.
    let mut load: BTreeMap<i32, usize> = BTreeMap::new();
    for (_, _, s) in image.all_partitions() {
        for r in &s.replicas {
            *load.entry(*r).or_default() += 1;
        }
    }
    let mut touched = std::collections::BTreeSet::new();
    for &broker in &draining {
        let mut in_flight = 0;
        let mut candidates = Vec::new();
        for (tid, p) in image.partitions_of_broker(broker) {
            let Some(topic) = image.topic_by_id(&tid) else {
                continue;
            };
            let Some(cur) = topic.partition(p) else {
                continue;
            };
            if cur.is_reassigning() {
                if cur.removing.contains(&broker) {
                    in_flight += 1;
                }
                continue;
            }
            if cur.leader == broker && !touched.contains(&(tid, p)) {
                let next = cur
                    .replicas
                    .iter()
                    .copied()
                    .find(|r| *r != broker && cur.isr.contains(r) && live.is_alive(*r));
                if let Some(leader) = next {
                    records.extend(leader_change(
                        tid,
                        p,
                        cur,
                        &Target::leader_only(cur, leader),
                    ));
                    touched.insert((tid, p));
                    continue;
                }
                // Nobody to hand over to: the move's completion elects a
                // new replica.
            }
            candidates.push((topic, p, cur));
        }
        for (topic, p, cur) in candidates {
            if in_flight >= max_moves {
                break;
            }
            if touched.contains(&(topic.id, p)) {
                continue;
            }
            let Some(replacement) = replacement(image, broker, &cur.replicas, &load, &draining)
            else {
                continue;
            };
            let target: Vec<i32> = cur
                .replicas
                .iter()
                .map(|r| if *r == broker { replacement } else { *r })
                .collect();
            let Ok(next) = start(&topic.name, p, cur, &target, &live) else {
                continue;
            };
            let min_isr = topic
                .configs
                .get(MIN_INSYNC_REPLICAS)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(default_min_isr);
            let next = completed(&next, &live, min_isr).unwrap_or(next);
            records.extend(change_record(topic.id, p, cur, &next));
            touched.insert((topic.id, p));
            *load.entry(replacement).or_default() += 1;
            in_flight += 1;
        }
    }
    records
}

/// The broker to take `broker`'s place among `replicas` (see the module
/// doc), if any qualifies.
fn replacement(
    image: &ClusterImage,
    broker: i32,
    replicas: &[i32],
    load: &BTreeMap<i32, usize>,
    draining: &[i32],
) -> Option<i32> {
    let rack = |id: i32| image.broker(id).and_then(|b| b.rack.clone());
    let others: Vec<Option<String>> = replicas
        .iter()
        .filter(|r| **r != broker)
        .map(|r| rack(*r))
        .collect();
    image
        .brokers()
        .filter(|b| b.is_alive() && !draining.contains(&b.id) && !replicas.contains(&b.id))
        .min_by_key(|b| {
            // Rackless brokers are racks of their own: they share none.
            let shared = b.rack.as_ref().map_or(0, |r| {
                others.iter().filter(|o| o.as_ref() == Some(r)).count()
            });
            (shared, load.get(&b.id).copied().unwrap_or(0), b.id)
        })
        .map(|b| b.id)
}

/// Progress of a decommission: replicas and leaderships still on the broker.
pub fn decommission_progress(image: &ClusterImage, broker_id: i32) -> (usize, usize) {
    let replicas = image.partitions_of_broker(broker_id).count();
    (replicas, image.leader_count(broker_id))
}

#[cfg(test)]
#[path = "decommission_test.rs"]
mod tests;
