//! Broker lifecycle decisions: registration, fencing, unfencing and
//! controlled shutdown, each with the partition changes it implies.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::election::{Liveness, change_record, reelect};
use crate::error::{Result, bail};
use crate::image::{ClusterImage, NO_LEADER, effective_min_isr};
use crate::pb;
use crate::pb::metadata_record::Record;
use crate::records::record;

/// A broker's registration request, as [`register_broker`] decides it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registration {
    /// Node id.
    pub broker_id: i32,
    /// Random id of the registering process.
    pub incarnation_id: String,
    /// Where the broker can be reached.
    pub endpoints: Vec<pb::Endpoint>,
    /// Failure domain, when known.
    pub rack: Option<String>,
    /// Replicas (topic id, partition) whose local log lost records since the
    /// broker last ran (recovery cut a damaged tail, or the log ends below
    /// its checkpointed high watermark).
    pub damaged: Vec<(Uuid, i32)>,
    /// The broker's static settings (Kafka names; sensitive values empty),
    /// kept in the image for `DescribeConfigs`.
    pub static_configs: BTreeMap<String, String>,
}

/// Decides a broker registration.
///
/// Fails with `DUPLICATE_BROKER_REGISTRATION` when another incarnation holds
/// the id and its lease is still alive (`lease_alive`); the same incarnation
/// may re-register. `new_epoch` must be greater than the current epoch
/// (`STALE_BROKER_EPOCH` otherwise). A registration starts fenced, so when a
/// previous registration was unfenced its leaderships and ISR memberships are
/// handed over first, exactly as [`fence_broker`] would.
///
/// A damaged replica leaves the ISR and the eligible leader replicas of its
/// partition, so the broker cannot lead it with less than was acknowledged
/// (KIP-966's unclean-shutdown rule, narrowed to the replicas that provably
/// lost records). Where it was the last ISR member, an eligible leader
/// replica (alive ones first) takes its place; only when there is none does
/// it stay, as the best copy known. Damaged replicas of partitions the image
/// does not have (a topic deleted while the broker was down) are ignored.
/// `default_min_isr` is `min.insync.replicas` for topics without the config.
pub fn register_broker(
    image: &ClusterImage,
    registration: &Registration,
    lease_alive: bool,
    new_epoch: i64,
    default_min_isr: usize,
) -> Result<Vec<pb::MetadataRecord>> {
    let Registration {
        broker_id,
        incarnation_id,
        endpoints,
        rack,
        damaged,
        static_configs,
    } = registration;
    let broker_id = *broker_id;
    if broker_id < 0 {
        bail!(InvalidRequest, "broker id {broker_id} is negative");
    }
    if incarnation_id.is_empty() {
        bail!(InvalidRequest, "incarnation id is empty");
    }
    let mut records = Vec::new();
    if let Some(prev) = image.broker(broker_id) {
        if prev.incarnation_id != *incarnation_id && lease_alive {
            bail!(
                DuplicateBrokerRegistration,
                "broker {broker_id} is registered by incarnation {} whose lease is alive",
                prev.incarnation_id
            );
        }
        if new_epoch <= prev.epoch {
            bail!(
                StaleBrokerEpoch,
                "new epoch {new_epoch} of broker {broker_id} is not after its current epoch {}",
                prev.epoch
            );
        }
    }
    records.extend(partition_changes_for_dead(
        image,
        broker_id,
        damaged,
        default_min_isr,
    ));
    records.push(record(Record::RegisterBroker(pb::RegisterBrokerRecord {
        broker_id,
        broker_epoch: new_epoch,
        incarnation_id: incarnation_id.clone(),
        endpoints: endpoints.clone(),
        rack: rack.clone().unwrap_or_default(),
        static_configs: static_configs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })));
    Ok(records)
}

/// Decides fencing `broker_id` (lease expired): a `FenceBrokerRecord` (unless
/// already fenced) and, for every partition the broker leads or is in the ISR
/// of, a change removing it from the ISR and electing a new leader among the
/// remaining alive ISR members, else among the alive eligible leader
/// replicas. The ISR never shrinks below one member: if the broker is the
/// last one, the ISR stays and the leader becomes an eligible replica, or -1
/// (or, on topics with unclean election enabled, an alive out-of-ISR replica
/// is elected and becomes the ISR). Empty when the broker is not registered.
pub fn fence_broker(
    image: &ClusterImage,
    broker_id: i32,
    default_min_isr: usize,
) -> Vec<pb::MetadataRecord> {
    let Some(b) = image.broker(broker_id) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    if !b.fenced {
        records.push(record(Record::FenceBroker(pb::FenceBrokerRecord {
            broker_id,
            broker_epoch: b.epoch,
        })));
    }
    records.extend(partition_changes_for_dead(
        image,
        broker_id,
        &[],
        default_min_isr,
    ));
    records
}

/// Partition changes for `broker_id` going away: out of every ISR (never
/// below one member), new leaders where it led. For its `damaged` replicas
/// also out of the eligible leader replicas, and out of the ISR even as its
/// last member when an eligible replica can take that place.
fn partition_changes_for_dead(
    image: &ClusterImage,
    broker_id: i32,
    damaged: &[(Uuid, i32)],
    default_min_isr: usize,
) -> Vec<pb::MetadataRecord> {
    let live = Liveness {
        dead: Some(broker_id),
        ..Liveness::of(image)
    };
    let mut records = Vec::new();
    for (tid, p) in image.partitions_of_broker(broker_id) {
        let topic = &image.topics[&tid];
        let cur = &topic.partitions[&p];
        let lost = damaged.contains(&(tid, p));
        let in_isr = cur.isr.contains(&broker_id) || cur.leader == broker_id;
        let lost_eligibility = lost && cur.elr.contains(&broker_id);
        if !in_isr && !lost_eligibility {
            continue;
        }
        let min_isr = effective_min_isr(topic, cur, default_min_isr);
        let mut isr: Vec<i32> = cur
            .isr
            .iter()
            .copied()
            .filter(|r| *r != broker_id)
            .collect();
        if isr.is_empty() {
            let stand_in = lost
                .then(|| {
                    let elr = || cur.elr.iter().copied().filter(|r| *r != broker_id);
                    elr().find(|r| live.is_alive(*r)).or_else(|| elr().next())
                })
                .flatten();
            isr = stand_in.map_or_else(|| cur.isr.clone(), |r| vec![r]);
        }
        let mut target = reelect(cur, isr, &live, topic.unclean_leader_election(), min_isr);
        if lost {
            target.elr.retain(|r| *r != broker_id);
        }
        records.extend(change_record(tid, p, cur, &target));
    }
    records
}

/// Decides unfencing `broker_id` (caught up with the metadata log): an
/// `UnfenceBrokerRecord` and leaders for the leaderless partitions the broker
/// can now lead (it is in their ISR or eligible leader replicas, or their
/// topic allows unclean election). Empty when already unfenced. Fails when
/// the broker is not registered or is in controlled shutdown.
pub fn unfence_broker(
    image: &ClusterImage,
    broker_id: i32,
    default_min_isr: usize,
) -> Result<Vec<pb::MetadataRecord>> {
    let Some(b) = image.broker(broker_id) else {
        bail!(
            BrokerIdNotRegistered,
            "broker {broker_id} is not registered"
        );
    };
    if b.in_controlled_shutdown {
        bail!(
            InvalidRequest,
            "broker {broker_id} is in controlled shutdown and cannot be unfenced"
        );
    }
    if !b.fenced {
        return Ok(Vec::new());
    }
    let mut records = vec![record(Record::UnfenceBroker(pb::UnfenceBrokerRecord {
        broker_id,
        broker_epoch: b.epoch,
    }))];
    let live = Liveness {
        alive: Some(broker_id),
        ..Liveness::of(image)
    };
    for (tid, p) in image.partitions_of_broker(broker_id) {
        let topic = &image.topics[&tid];
        let cur = &topic.partitions[&p];
        if cur.leader != NO_LEADER {
            continue;
        }
        let unclean = topic.unclean_leader_election();
        if !cur.isr.contains(&broker_id) && !cur.elr.contains(&broker_id) && !unclean {
            continue;
        }
        let min_isr = effective_min_isr(topic, cur, default_min_isr);
        let target = reelect(cur, cur.isr.clone(), &live, unclean, min_isr);
        records.extend(change_record(tid, p, cur, &target));
    }
    Ok(records)
}

/// What a controlled shutdown decided.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlledShutdown {
    /// Records to propose (possibly empty).
    pub records: Vec<pb::MetadataRecord>,
    /// Partitions (topic, index) the broker leads and that cannot move: no
    /// other ISR member is alive. They stay led by the broker. Sorted.
    pub stuck: Vec<(String, i32)>,
}

/// Decides a controlled-shutdown step of `broker_id`: a
/// `BrokerControlledShutdownRecord` the first time, then, as KRaft, for every
/// partition whose ISR holds the broker, a change removing it from the ISR
/// (never below one member) and, where it leads, moving leadership to the
/// first alive other ISR member. Partitions it leads with no such member are
/// left unchanged and reported in [`ControlledShutdown::stuck`]. Leaving an
/// ISR below `min.insync.replicas` (`default_min_isr` for topics without the
/// config) makes the broker an eligible leader replica: it holds everything.
pub fn controlled_shutdown(
    image: &ClusterImage,
    broker_id: i32,
    default_min_isr: usize,
) -> Result<ControlledShutdown> {
    let Some(b) = image.broker(broker_id) else {
        bail!(
            BrokerIdNotRegistered,
            "broker {broker_id} is not registered"
        );
    };
    let mut records = Vec::new();
    if !b.in_controlled_shutdown {
        records.push(record(Record::BrokerControlledShutdown(
            pb::BrokerControlledShutdownRecord {
                broker_id,
                broker_epoch: b.epoch,
            },
        )));
    }
    let live = Liveness {
        dead: Some(broker_id),
        ..Liveness::of(image)
    };
    let mut stuck = Vec::new();
    for (tid, p) in image.partitions_of_broker(broker_id) {
        let topic = &image.topics[&tid];
        let cur = &topic.partitions[&p];
        if !cur.isr.contains(&broker_id) {
            continue;
        }
        let isr: Vec<i32> = cur
            .isr
            .iter()
            .copied()
            .filter(|r| *r != broker_id)
            .collect();
        let min_isr = effective_min_isr(topic, cur, default_min_isr);
        let target = if cur.leader == broker_id {
            let t = reelect(cur, isr, &live, false, min_isr);
            if t.leader == NO_LEADER || t.isr.is_empty() {
                stuck.push((topic.name.clone(), p));
                continue;
            }
            t
        } else if isr.is_empty() {
            continue;
        } else {
            // Another broker leads (kept), or none does (elect one if possible).
            reelect(cur, isr, &live, false, min_isr)
        };
        records.extend(change_record(tid, p, cur, &target));
    }
    stuck.sort();
    Ok(ControlledShutdown { records, stuck })
}

/// Decides removing `broker_id` from the cluster: its leaderships and ISR
/// memberships are handed over as for [`fence_broker`], then an
/// `UnregisterBrokerRecord`. Fails when the broker is not registered.
pub fn unregister_broker(
    image: &ClusterImage,
    broker_id: i32,
    default_min_isr: usize,
) -> Result<Vec<pb::MetadataRecord>> {
    let Some(b) = image.broker(broker_id) else {
        bail!(
            BrokerIdNotRegistered,
            "broker {broker_id} is not registered"
        );
    };
    let mut records = partition_changes_for_dead(image, broker_id, &[], default_min_isr);
    records.push(record(Record::UnregisterBroker(
        pb::UnregisterBrokerRecord {
            broker_id,
            broker_epoch: b.epoch,
        },
    )));
    Ok(records)
}

/// Number of partitions `broker_id` still leads (controlled shutdown completes at 0).
pub fn remaining_leaderships(image: &ClusterImage, broker_id: i32) -> usize {
    image.leader_count(broker_id)
}

#[cfg(test)]
#[path = "brokers_test.rs"]
mod tests;
