//! Where the coordinator of an internal topic's partition is.

use strom_metadata::ClusterImage;

/// Where the leader of an internal topic's partition is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorLookup {
    /// The topic does not exist yet.
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

/// The leader of `topic`-`partition` in `image`.
pub fn lookup(image: &ClusterImage, topic: &str, partition: i32) -> CoordinatorLookup {
    let Some(t) = image.topic_by_name(topic) else {
        return CoordinatorLookup::NoTopic;
    };
    let Some(p) = t.partition(partition) else {
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
