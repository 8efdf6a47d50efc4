//! Conversions between the protobuf records and the image's domain types,
//! and small constructors for the records the decision functions emit.

use uuid::Uuid;

use crate::error::{Result, bail};
use crate::image::PartitionState;
use crate::pb;
use crate::pb::metadata_record::Record;

/// Parses a topic id carried in a `bytes` field (16 bytes, not the nil UUID).
pub fn topic_id_from_bytes(bytes: &[u8]) -> Result<Uuid> {
    match Uuid::from_slice(bytes) {
        Ok(id) if !id.is_nil() => Ok(id),
        Ok(_) => bail!(CorruptMessage, "topic id is the nil uuid"),
        Err(_) => bail!(
            CorruptMessage,
            "topic id has {} bytes, expected 16",
            bytes.len()
        ),
    }
}

/// Wraps a record payload into a [`pb::MetadataRecord`].
pub fn record(r: Record) -> pb::MetadataRecord {
    pb::MetadataRecord { record: Some(r) }
}

/// A `PartitionRecord` holding the full `state` of `topic_id`/`partition`.
pub fn partition_record(
    topic_id: Uuid,
    partition: i32,
    state: &PartitionState,
) -> pb::MetadataRecord {
    record(Record::Partition(pb::PartitionRecord {
        topic_id: topic_id.as_bytes().to_vec(),
        partition,
        replicas: state.replicas.clone(),
        isr: state.isr.clone(),
        leader: state.leader,
        leader_epoch: state.leader_epoch,
        partition_epoch: state.partition_epoch,
        elr: state.elr.clone(),
        adding_replicas: state.adding.clone(),
        removing_replicas: state.removing.clone(),
    }))
}

/// The short name of a record's payload type, for messages.
pub(crate) fn kind_name(r: &Record) -> &'static str {
    match r {
        Record::Cluster(_) => "cluster",
        Record::RegisterBroker(_) => "register broker",
        Record::FenceBroker(_) => "fence broker",
        Record::UnfenceBroker(_) => "unfence broker",
        Record::BrokerControlledShutdown(_) => "broker controlled shutdown",
        Record::UnregisterBroker(_) => "unregister broker",
        Record::Topic(_) => "topic",
        Record::Partition(_) => "partition",
        Record::PartitionChange(_) => "partition change",
        Record::RemoveTopic(_) => "remove topic",
        Record::Config(_) => "config",
        Record::ProducerIds(_) => "producer ids",
        Record::BrokerDecommission(_) => "broker decommission",
    }
}

impl pb::ReplicaList {
    /// A replica list of `ids`.
    pub fn of(ids: Vec<i32>) -> Self {
        pb::ReplicaList { ids }
    }
}
