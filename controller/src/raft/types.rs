//! The openraft type configuration: what a Raft entry carries and returns.

use std::fmt;
use std::io::Cursor;

use prost::Message;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use strom_metadata::pb::{MetadataBatch, MetadataRecord};

/// Controller node id (the `--node-id` of a controller).
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Strom's controller quorum types.
    pub TypeConfig:
        D = Proposal,
        R = ApplyOutcome,
);

/// The Raft handle of a controller.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// Log id (term + index).
pub type LogId = openraft::LogId<NodeId>;
/// Storage error.
pub type StorageError = openraft::StorageError<NodeId>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
/// Membership as stored in the state machine.
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;

/// A batch of metadata records proposed as one Raft entry; applied
/// atomically (all records or none).
///
/// On disk and on the wire it is an encoded `strom.metadata.v1.MetadataBatch`,
/// so the metadata log stays readable by protobuf's compatibility rules.
#[derive(Clone, Default, PartialEq)]
pub struct Proposal {
    /// The records, in order.
    pub records: Vec<MetadataRecord>,
}

impl fmt::Debug for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proposal({} records)", self.records.len())
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl Proposal {
    /// Encodes as a `MetadataBatch`.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        for record in &self.records {
            prost::encoding::message::encode(1, record, &mut buf);
        }
        buf
    }

    /// Decodes a `MetadataBatch`.
    pub fn decode(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Ok(Self {
            records: MetadataBatch::decode(bytes)?.records,
        })
    }
}

impl Serialize for Proposal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.encode())
    }
}

impl<'de> Deserialize<'de> for Proposal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> serde::de::Visitor<'de> for BytesVisitor {
            type Value = Proposal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an encoded metadata batch")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Proposal, E> {
                Proposal::decode(v).map_err(E::custom)
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Proposal, E> {
                self.visit_bytes(&v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Proposal, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element::<u8>()? {
                    bytes.push(b);
                }
                Proposal::decode(&bytes).map_err(serde::de::Error::custom)
            }
        }
        deserializer.deserialize_bytes(BytesVisitor)
    }
}

/// What applying one entry produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyOutcome {
    /// Set when the state machine rejected the batch (nothing was applied):
    /// the proto `ErrorCode` number and a message.
    pub rejected: Option<(i32, String)>,
}

#[cfg(test)]
mod tests {
    use strom_metadata::pb::{ClusterRecord, metadata_record::Record};

    use super::*;

    #[test]
    fn proposal_round_trips_through_bincode() {
        let p = Proposal {
            records: vec![MetadataRecord {
                record: Some(Record::Cluster(ClusterRecord {
                    cluster_id: "c".into(),
                })),
            }],
        };
        let bytes = bincode::serialize(&p).expect("serialize");
        let back: Proposal = bincode::deserialize(&bytes).expect("deserialize");
        assert_eq!(back, p);
        let json = serde_json::to_vec(&p).expect("json");
        assert_eq!(
            serde_json::from_slice::<Proposal>(&json).expect("json back"),
            p
        );
    }
}
