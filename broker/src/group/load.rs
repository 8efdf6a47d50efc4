//! Loading a shard: replay the partition's local log, from its start to its
//! end, into a fresh [`Shard`]. Runs on a blocking thread (file reads).

use bytes::Bytes;
use strom_group::{GroupConfig, Record, Shard};
use strom_log::batch::BatchIter;
use strom_log::batch::control::marker_of;
use strom_proto::v1::ErrorCode;

use crate::replica::{PartError, ReplicaManager};

/// Reads `topic`-`partition` from its log start to its log end and replays
/// every record. A record that does not decode is skipped with a warning
/// (it cannot have been written by this coordinator). Records of a
/// transactional batch (`TxnOffsetCommit`) wait for their producer's
/// marker, which commits or drops them (docs/transactions.md); records are
/// replayed in log order so the shard can tell which commit came last.
pub(super) fn load(
    rm: &ReplicaManager,
    topic: &str,
    partition: i32,
    config: GroupConfig,
) -> Result<Shard, PartError> {
    let mut shard = Shard::new(config);
    crate::internal_topic::load::read_all(rm, topic, partition, |data, offset| {
        replay_batches(&mut shard, data, offset, topic, partition)
    })?;
    Ok(shard)
}

/// Replays the batches of `data` (read at `offset`, whose first batch may
/// start below it) into `shard`, in log order; returns the offset after
/// the last batch.
fn replay_batches(
    shard: &mut Shard,
    data: Bytes,
    mut offset: i64,
    topic: &str,
    partition: i32,
) -> Result<i64, PartError> {
    let mut records = Vec::new();
    for batch in BatchIter::new(data) {
        let batch = batch.map_err(|e| {
            PartError::new(
                ErrorCode::CorruptMessage,
                format!("load {topic}-{partition} at offset {offset}: {e}"),
            )
        })?;
        let next = batch.next_offset();
        if batch.is_control() {
            match marker_of(&batch, 0) {
                Ok(Some(marker)) => {
                    shard.replay(&records);
                    records.clear();
                    shard.replay_marker(marker.producer_id, marker.commit);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    topic, partition, offset = batch.base_offset(), error = %e,
                    "skipping a control batch that is not a transaction marker"
                ),
            }
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
        let transactional = batch.is_transactional();
        if transactional {
            shard.replay(&records);
            records.clear();
        }
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
        if transactional {
            shard.replay_transactional(batch.producer_id(), &records);
            records.clear();
        }
        offset = next;
    }
    shard.replay(&records);
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use strom_group::{CommitEntry, CommitRequest, Topics};
    use strom_log::batch::control::{EndTxnMarker, build_marker_batch};
    use strom_log::{Compression, RecordBatchBuilder};

    use super::*;

    /// A batch of the records `commit` produces for `offset` of g/t-0,
    /// transactional for `producer` if given, at log offset `at`.
    fn commit_batch(shard: &Shard, offset: i64, producer: Option<i64>, at: i64) -> Bytes {
        let topics = Topics::new([strom_group::TopicInfo {
            id: strom_group::Uuid::from_u128(1),
            name: "t".into(),
            partitions: 1,
        }]);
        let req = CommitRequest {
            group_id: "g".into(),
            member_id: String::new(),
            member_epoch: -1,
            offsets: vec![CommitEntry {
                topic: "t".into(),
                partition: 0,
                offset,
                leader_epoch: -1,
                metadata: String::new(),
            }],
        };
        let records = shard.commit_offsets(&req, &topics, 1).unwrap();
        let mut b = RecordBatchBuilder::new(Compression::None).base_offset(at);
        if let Some(pid) = producer {
            b = b.producer(pid, 0, 0).transactional(true);
        }
        for r in &records {
            let (k, v) = r.encode();
            b.append(1, Some(&k), v.as_deref(), &[]);
        }
        b.build()
    }

    fn marker(pid: i64, commit: bool, at: i64) -> Bytes {
        let m = EndTxnMarker {
            commit,
            coordinator_epoch: 0,
        };
        let batch = build_marker_batch(pid, 0, m, 1);
        let mut bytes = batch.to_vec();
        bytes[..8].copy_from_slice(&at.to_be_bytes());
        Bytes::from(bytes)
    }

    fn committed(shard: &Shard) -> Option<i64> {
        shard
            .offsets("g")
            .and_then(|o| o.get(&("t".to_owned(), 0)))
            .map(|v| v.offset)
    }

    #[test]
    fn transactional_commits_wait_for_their_marker() {
        let proto = Shard::new(GroupConfig::default());
        let log: Vec<Bytes> = vec![
            commit_batch(&proto, 5, None, 0),
            commit_batch(&proto, 10, Some(7), 1), // committed below
            commit_batch(&proto, 20, Some(8), 2), // aborted below
            marker(8, false, 3),
            commit_batch(&proto, 30, Some(9), 4), // still open at the end
        ];
        let mut shard = Shard::new(GroupConfig::default());
        let mut offset = 0;
        for (i, batch) in log.iter().enumerate() {
            offset = replay_batches(&mut shard, batch.clone(), offset, "o", 0).unwrap();
            assert_eq!(offset, i as i64 + 1);
        }
        assert_eq!(
            committed(&shard),
            Some(5),
            "nothing transactional is visible yet"
        );
        assert!(shard.has_pending_offsets("g", None));
        let end = replay_batches(&mut shard, marker(7, true, 5), offset, "o", 0).unwrap();
        assert_eq!(end, 6);
        assert_eq!(committed(&shard), Some(10));
        // All in one read gives the same.
        let all: Vec<u8> = log
            .iter()
            .chain([&marker(7, true, 5)])
            .flat_map(|b| b.to_vec())
            .collect();
        let mut again = Shard::new(GroupConfig::default());
        replay_batches(&mut again, Bytes::from(all), 0, "o", 0).unwrap();
        assert_eq!(committed(&again), Some(10));
        assert!(
            again.has_pending_offsets("g", None),
            "producer 9 is still open"
        );
    }
}
