//! ISR changes requested by partition leaders (`AlterPartition`).

use uuid::Uuid;

use crate::apply::first_duplicate;
use crate::election::{Target, change_record};
use crate::error::{Result, bail};
use crate::image::{ClusterImage, effective_min_isr};
use crate::pb;

/// Decides an `AlterPartition` request of `broker_id` (epoch `broker_epoch`)
/// setting the ISR of `topic_id`/`partition` to `new_isr`, with Kafka's checks
/// in order:
///
/// 1. the broker is registered (`BROKER_ID_NOT_REGISTERED`) with epoch
///    `broker_epoch` (`STALE_BROKER_EPOCH`);
/// 2. the partition exists (`UNKNOWN_TOPIC_ID`, `UNKNOWN_TOPIC_OR_PARTITION`);
/// 3. the broker leads it (`NOT_LEADER_OR_FOLLOWER`);
/// 4. `leader_epoch` is current (`FENCED_LEADER_EPOCH` when older,
///    `NOT_LEADER_OR_FOLLOWER` when newer);
/// 5. `partition_epoch` is current (`INVALID_UPDATE_VERSION`);
/// 6. `new_isr` is a non-empty duplicate-free subset of the replicas holding
///    the leader (`INVALID_REQUEST`);
/// 7. every member added is alive: unfenced, not shutting down (`INELIGIBLE_REPLICA`).
///
/// Returns no records when `new_isr` equals the current ISR. The eligible
/// leader replicas follow the new ISR ([`next_elr`](crate::next_elr)), with
/// `default_min_isr` as `min.insync.replicas` for topics without the config.
#[allow(clippy::too_many_arguments)] // mirrors the request's fields one to one
pub fn alter_partition(
    image: &ClusterImage,
    broker_id: i32,
    broker_epoch: i64,
    topic_id: &Uuid,
    partition: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    new_isr: &[i32],
    default_min_isr: usize,
) -> Result<Vec<pb::MetadataRecord>> {
    let Some(b) = image.broker(broker_id) else {
        bail!(
            BrokerIdNotRegistered,
            "broker {broker_id} is not registered"
        );
    };
    if b.epoch != broker_epoch {
        bail!(
            StaleBrokerEpoch,
            "broker {broker_id} epoch {broker_epoch} is not its current epoch {}",
            b.epoch
        );
    }
    let Some(topic) = image.topic_by_id(topic_id) else {
        bail!(UnknownTopicId, "topic id {topic_id} does not exist");
    };
    let name = &topic.name;
    let Some(cur) = topic.partition(partition) else {
        bail!(
            UnknownTopicOrPartition,
            "partition {name}-{partition} does not exist"
        );
    };
    if cur.leader != broker_id {
        bail!(
            NotLeaderOrFollower,
            "broker {broker_id} is not the leader of {name}-{partition} (leader is {})",
            cur.leader
        );
    }
    if leader_epoch < cur.leader_epoch {
        bail!(
            FencedLeaderEpoch,
            "leader epoch {leader_epoch} of {name}-{partition} is older than {}",
            cur.leader_epoch
        );
    }
    if leader_epoch > cur.leader_epoch {
        bail!(
            NotLeaderOrFollower,
            "leader epoch {leader_epoch} of {name}-{partition} is newer than {}",
            cur.leader_epoch
        );
    }
    if partition_epoch != cur.partition_epoch {
        bail!(
            InvalidUpdateVersion,
            "partition epoch {partition_epoch} of {name}-{partition} is not the current {}",
            cur.partition_epoch
        );
    }
    if new_isr.is_empty() {
        bail!(InvalidRequest, "new isr of {name}-{partition} is empty");
    }
    if let Some(d) = first_duplicate(new_isr) {
        bail!(
            InvalidRequest,
            "new isr of {name}-{partition} lists {d} more than once"
        );
    }
    if let Some(r) = new_isr.iter().find(|r| !cur.replicas.contains(r)) {
        bail!(
            InvalidRequest,
            "new isr member {r} is not a replica of {name}-{partition}"
        );
    }
    if !new_isr.contains(&broker_id) {
        bail!(
            InvalidRequest,
            "new isr of {name}-{partition} does not contain the leader {broker_id}"
        );
    }
    if let Some(r) = new_isr
        .iter()
        .find(|r| !cur.isr.contains(r) && !image.is_alive(**r))
    {
        bail!(
            IneligibleReplica,
            "replica {r} cannot join the isr of {name}-{partition}: it is fenced, shutting down or unregistered"
        );
    }
    let min_isr = effective_min_isr(topic, cur, default_min_isr);
    let target = Target::new(cur, new_isr.to_vec(), cur.leader, min_isr);
    Ok(change_record(*topic_id, partition, cur, &target)
        .into_iter()
        .collect())
}

#[cfg(test)]
#[path = "isr_test.rs"]
mod tests;
