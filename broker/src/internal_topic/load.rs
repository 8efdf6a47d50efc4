//! Reading a coordinator partition's local log from its start to its end,
//! for a shard to replay. Runs on a blocking thread (file reads).

use bytes::Bytes;
use strom_proto::v1::ErrorCode;

use crate::replica::{PartError, ReplicaManager};

/// Reads `topic`-`partition` from its log start to its log end, handing
/// each read (its bytes and the offset it was read at, whose first batch
/// may start below it) to `replay`, which returns the offset after its last
/// batch.
pub fn read_all(
    rm: &ReplicaManager,
    topic: &str,
    partition: i32,
    mut replay: impl FnMut(Bytes, i64) -> Result<i64, PartError>,
) -> Result<(), PartError> {
    let part = rm.partition(topic, partition)?;
    let reader = part.reader();
    let mut offset = reader.log_start_offset();
    let end = reader.log_end_offset();
    while offset < end {
        let data = reader.read(offset, 1 << 20).map_err(|e| {
            PartError::new(
                ErrorCode::KafkaStorageError,
                format!("load {topic}-{partition} at offset {offset}: {e}"),
            )
        })?;
        if data.records.is_empty() {
            break;
        }
        offset = replay(data.records, offset)?;
    }
    Ok(())
}
