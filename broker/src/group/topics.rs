//! The metadata image as the pure core's [`Topics`], and where a group's
//! coordinator is.

use strom_group::{OFFSETS_TOPIC, TopicInfo, Topics};
use strom_metadata::ClusterImage;

/// The cluster's topics, internal ones included (a regex never matches
/// them; the core skips `__` names).
pub(super) fn topics(image: &ClusterImage) -> Topics {
    Topics::new(image.topics().map(|t| TopicInfo {
        id: t.id,
        name: t.name.clone(),
        partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
    }))
}

/// Where the coordinator of an offsets partition is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CoordinatorLookup {
    /// The offsets topic does not exist yet.
    NoTopic,
    /// The partition has no leader now.
    NoLeader,
    /// The leader: id and client address.
    Leader {
        /// Broker id.
        node_id: i32,
        /// host:port.
        address: String,
    },
}

/// The leader of `__consumer_offsets` partition `partition` in `image`.
pub(super) fn lookup(image: &ClusterImage, partition: i32) -> CoordinatorLookup {
    let Some(topic) = image.topic_by_name(OFFSETS_TOPIC) else {
        return CoordinatorLookup::NoTopic;
    };
    let Some(p) = topic.partition(partition) else {
        return CoordinatorLookup::NoLeader;
    };
    match image.broker(p.leader) {
        Some(b) if p.leader >= 0 => CoordinatorLookup::Leader {
            node_id: p.leader,
            address: strom_proto::convert::broker_address(b),
        },
        _ => CoordinatorLookup::NoLeader,
    }
}
