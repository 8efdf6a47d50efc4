//! Writing a coordinator decision: its records (Kafka-format keys and
//! values, null values for tombstones) as one uncompressed batch, appended
//! with acks=all at the leader epoch the shard was loaded at.

use bytes::Bytes;
use strom_log::batch::{Compression, RecordBatchBuilder};
use strom_proto::StromError;
use strom_proto::v1::ErrorCode;

use crate::replica::{Appended, PartError, ReplicaManager};

/// An encoded record: key and value (`None`: a tombstone).
pub type Encoded = (Vec<u8>, Option<Vec<u8>>);

/// The batch of `records`, timestamped `now_ms`.
pub fn batch(records: &[Encoded], now_ms: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None);
    for (key, value) in records {
        b.append(now_ms, Some(key), value.as_deref(), &[]);
    }
    b.build()
}

/// The transactional batch of `records` for `producer_id` at
/// `producer_epoch` from `base_sequence` (TxnOffsetCommit: the records stay
/// pending until the producer's marker).
pub fn transactional_batch(
    records: &[Encoded],
    now_ms: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None)
        .producer(producer_id, producer_epoch, base_sequence)
        .transactional(true);
    for (key, value) in records {
        b.append(now_ms, Some(key), value.as_deref(), &[]);
    }
    b.build()
}

/// Appends `records` to `topic`-`partition` at `leader_epoch`, acks=all.
pub async fn write(
    rm: &ReplicaManager,
    topic: &str,
    partition: i32,
    leader_epoch: i32,
    records: Bytes,
    timeout_ms: i32,
) -> Result<Appended, PartError> {
    rm.append_at_epoch(topic, partition, records, leader_epoch, timeout_ms)
        .await
}

/// Kafka's mapping of a failed coordinator write to what the client sees:
/// retriable at the same coordinator (COORDINATOR_NOT_AVAILABLE) or after
/// finding it again (NOT_COORDINATOR). `key` names what was written for
/// (`group "g"`, `transactional id "t"`).
pub fn write_error(e: PartError, key: &str) -> StromError {
    let code = match e.code {
        ErrorCode::UnknownTopicOrPartition
        | ErrorCode::NotEnoughReplicas
        | ErrorCode::NotEnoughReplicasAfterAppend
        | ErrorCode::RequestTimedOut => ErrorCode::CoordinatorNotAvailable,
        _ => ErrorCode::NotCoordinator,
    };
    StromError::new(code, format!("the write for {key} failed: {}", e.message))
}
