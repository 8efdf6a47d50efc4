//! Writing a decision: its records as one uncompressed batch (keys and
//! values in Kafka's format, null values for tombstones), appended with
//! acks=all at the shard's leader epoch.

use bytes::Bytes;
use strom_group::Record;
use strom_log::batch::{Compression, RecordBatchBuilder};

use crate::replica::{Appended, PartError, ReplicaManager};

/// The batch of `records`, timestamped `now_ms`.
pub(super) fn batch(records: &[Record], now_ms: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None);
    for r in records {
        let (key, value) = r.encode();
        b.append(now_ms, Some(&key), value.as_deref(), &[]);
    }
    b.build()
}

/// Appends `records` to the offsets partition at `leader_epoch`.
pub(super) async fn write(
    rm: &ReplicaManager,
    topic: &str,
    partition: i32,
    leader_epoch: i32,
    records: &[Record],
    now_ms: i64,
    timeout_ms: i32,
) -> Result<Appended, PartError> {
    rm.append_at_epoch(
        topic,
        partition,
        batch(records, now_ms),
        leader_epoch,
        timeout_ms,
    )
    .await
}
