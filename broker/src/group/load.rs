//! Loading a shard: replay the partition's local log, from its start to its
//! end, into a fresh [`Shard`]. Runs on a blocking thread (file reads).

use strom_group::{GroupConfig, Record, Shard};
use strom_log::batch::BatchIter;
use strom_proto::v1::ErrorCode;

use crate::replica::{PartError, ReplicaManager};

/// Reads `topic`-`partition` from its log start to its log end and replays
/// every record. A record that does not decode is skipped with a warning
/// (it cannot have been written by this coordinator).
pub(super) fn load(
    rm: &ReplicaManager,
    topic: &str,
    partition: i32,
    config: GroupConfig,
) -> Result<Shard, PartError> {
    let part = rm.partition(topic, partition)?;
    let reader = part.reader();
    let mut shard = Shard::new(config);
    let mut offset = reader.log_start_offset();
    let end = reader.log_end_offset();
    let mut records = Vec::new();
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
        for batch in BatchIter::new(data.records) {
            let batch = batch.map_err(|e| {
                PartError::new(
                    ErrorCode::CorruptMessage,
                    format!("load {topic}-{partition} at offset {offset}: {e}"),
                )
            })?;
            let next = batch.next_offset();
            if batch.is_control() {
                offset = next;
                continue;
            }
            let decoded = batch.records().map_err(|e| {
                PartError::new(
                    ErrorCode::CorruptMessage,
                    format!(
                        "load {topic}-{partition} batch at {}: {e}",
                        batch.base_offset()
                    ),
                )
            })?;
            for r in decoded {
                if r.offset < offset {
                    continue;
                }
                let Some(key) = r.key.as_deref() else {
                    continue;
                };
                match Record::decode(key, r.value.as_deref()) {
                    Ok(rec) => records.push(rec),
                    Err(e) => tracing::warn!(
                        topic, partition, offset = r.offset, error = %e,
                        "skipping an offsets-topic record that does not decode"
                    ),
                }
            }
            offset = next;
        }
        shard.replay(&records);
        records.clear();
    }
    Ok(shard)
}
