//! Loading a transaction log shard: replay a `__transaction_state`
//! partition's local log, from its start to its end, into a fresh
//! [`TxnShard`]. Runs on a blocking thread (file reads).

use bytes::Bytes;
use strom_log::batch::BatchIter;
use strom_proto::v1::ErrorCode;
use strom_txn::{Record, TRANSACTION_STATE_TOPIC, TxnConfig, TxnShard};

use crate::replica::{PartError, ReplicaManager};

/// Replays partition `partition` into a shard led at `coordinator_epoch`.
/// A record that does not decode is skipped with a warning (this
/// coordinator cannot have written it).
pub(super) fn load(
    rm: &ReplicaManager,
    partition: i32,
    coordinator_epoch: i32,
    config: TxnConfig,
) -> Result<TxnShard, PartError> {
    let mut shard = TxnShard::new(config, coordinator_epoch);
    crate::internal_topic::load::read_all(
        rm,
        TRANSACTION_STATE_TOPIC,
        partition,
        |data, offset| replay_batches(&mut shard, data, offset, partition),
    )?;
    Ok(shard)
}

/// Replays the records of `data` (read at `offset`, whose first batch may
/// start below it) into `shard`; returns the offset after the last batch.
fn replay_batches(
    shard: &mut TxnShard,
    data: Bytes,
    mut offset: i64,
    partition: i32,
) -> Result<i64, PartError> {
    let topic = TRANSACTION_STATE_TOPIC;
    for batch in BatchIter::new(data) {
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
        let mut records = Vec::new();
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
                    "skipping a transaction-log record that does not decode"
                ),
            }
        }
        shard.replay(&records);
        offset = next;
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use strom_log::{Compression, RecordBatchBuilder};
    use strom_txn::{TxnMetadata, TxnState};

    use super::*;

    fn metadata(epoch: i16, state: TxnState) -> TxnMetadata {
        TxnMetadata {
            producer_id: 7,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: epoch,
            timeout_ms: 60_000,
            state,
            partitions: if state.is_prepare() || state == TxnState::Ongoing {
                BTreeSet::from([("t".to_owned(), 0)])
            } else {
                BTreeSet::new()
            },
            last_update_ms: 1,
            start_ms: 1,
            client_transaction_version: 2,
        }
    }

    fn batch(records: &[Record], at: i64) -> Bytes {
        let mut b = RecordBatchBuilder::new(Compression::None).base_offset(at);
        for r in records {
            let (k, v) = r.encode();
            b.append(1, Some(&k), v.as_deref(), &[]);
        }
        b.build()
    }

    #[test]
    fn replay_keeps_the_last_state_of_each_id_and_its_pending_markers() {
        let log = [
            batch(&[Record::put("a", metadata(0, TxnState::Empty))], 0),
            batch(
                &[
                    Record::put("a", metadata(0, TxnState::Ongoing)),
                    Record::put("b", metadata(0, TxnState::Empty)),
                ],
                1,
            ),
            batch(&[Record::put("a", metadata(1, TxnState::PrepareCommit))], 3),
            batch(&[Record::tombstone("b")], 4),
            batch(&[Record::put("c", metadata(0, TxnState::Empty))], 5),
        ];
        let mut shard = TxnShard::new(TxnConfig::default(), 3);
        let mut offset = 0;
        for b in &log {
            offset = replay_batches(&mut shard, b.clone(), offset, 0).expect("replays");
        }
        assert_eq!(offset, 6);
        let a = shard.get("a").expect("a is known");
        assert_eq!((a.producer_epoch, a.state), (1, TxnState::PrepareCommit));
        assert!(shard.get("b").is_none(), "the tombstone removed b");
        let pending = shard.pending_markers();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].transactional_id, "a");
        assert_eq!(pending[0].coordinator_epoch, 3);

        // A read that starts inside a batch skips the records below it.
        let mut again = TxnShard::new(TxnConfig::default(), 3);
        replay_batches(&mut again, log[1].clone(), 2, 0).expect("replays");
        assert!(again.get("a").is_none(), "offset 1 was below the read");
        assert!(again.get("b").is_some());
    }

    #[test]
    fn a_truncated_batch_fails_the_load() {
        let mut cut = batch(&[Record::put("a", metadata(0, TxnState::Empty))], 0).to_vec();
        cut.truncate(cut.len() - 3);
        let mut shard = TxnShard::new(TxnConfig::default(), 0);
        let e = replay_batches(&mut shard, Bytes::from(cut), 0, 0).expect_err("truncated");
        assert_eq!(e.code, ErrorCode::CorruptMessage);
    }
}
