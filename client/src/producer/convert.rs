//! Produce requests from drained batches, and per-partition outcomes from
//! produce responses.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strom_proto::StromError;
use strom_proto::v1 as pb;
use strom_proto::v1::ErrorCode;

use super::accumulator::ProducerBatch;
use super::config::Acks;
use crate::admin::TopicPartition;
use crate::error::{Error, error_code};

/// What the leader answered for one partition of a produce request.
#[derive(Debug, Clone)]
pub(crate) enum PartitionOutcome {
    /// Written; the request's batches start at `base_offset`.
    Acked {
        base_offset: i64,
        /// The broker's append time on `LogAppendTime` topics, else -1.
        log_append_time: i64,
    },
    /// Not written.
    Failed {
        error: Error,
        /// Where the partition's leader is now, when the broker said.
        leader: Option<pb::LeaderIdAndEpoch>,
    },
}

/// The request for `batches` (grouped by partition, in send order); each
/// partition's batches are concatenated in its `records`. Encodes (and
/// compresses) batches not encoded yet.
pub(crate) fn produce_request(
    acks: Acks,
    timeout: Duration,
    transactional_id: &str,
    batches: &mut [(TopicPartition, Vec<ProducerBatch>)],
) -> pb::ProduceRequest {
    let mut topics: BTreeMap<&str, Vec<pb::ProducePartitionData>> = BTreeMap::new();
    for (tp, partition_batches) in batches.iter_mut() {
        let encoded: Vec<Bytes> = partition_batches
            .iter_mut()
            .map(ProducerBatch::encode)
            .collect();
        let records = match encoded.as_slice() {
            [one] => one.clone(),
            many => {
                let mut all = BytesMut::with_capacity(many.iter().map(Bytes::len).sum());
                for batch in many {
                    all.extend_from_slice(batch);
                }
                all.freeze()
            }
        };
        topics
            .entry(&tp.topic)
            .or_default()
            .push(pb::ProducePartitionData {
                partition: tp.partition,
                records,
            });
    }
    pb::ProduceRequest {
        acks: acks.as_i32(),
        timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| pb::ProduceTopicData {
                topic: topic.to_owned(),
                partitions,
            })
            .collect(),
        transactional_id: transactional_id.to_owned(),
    }
}

/// The outcome of every partition in a produce response.
pub(crate) fn partition_outcomes(
    response: pb::ProduceResponse,
) -> HashMap<TopicPartition, PartitionOutcome> {
    let mut outcomes = HashMap::new();
    for topic in response.topics {
        for p in topic.partitions {
            let tp = TopicPartition::new(topic.topic.clone(), p.partition);
            let outcome = match error_code(p.error_code) {
                ErrorCode::None => PartitionOutcome::Acked {
                    base_offset: p.base_offset,
                    log_append_time: p.log_append_time_ms,
                },
                code => {
                    let message = if p.error_message.is_empty() {
                        format!("the leader rejected the records for {tp}")
                    } else {
                        p.error_message
                    };
                    let leader = p.current_leader.filter(|l| l.leader_id >= 0);
                    let mut error = StromError::new(code, message);
                    if let Some(l) = &leader {
                        error = error.with_leader(l.leader_id, l.leader_address.clone());
                    }
                    PartitionOutcome::Failed {
                        error: Error::Strom(error),
                        leader,
                    }
                }
            };
            outcomes.insert(tp, outcome);
        }
    }
    outcomes
}

/// The outcome for a partition the response left out.
pub(crate) fn missing_outcome(tp: &TopicPartition) -> PartitionOutcome {
    PartitionOutcome::Failed {
        error: Error::strom(
            ErrorCode::UnknownServerError,
            format!("the produce response holds no result for {tp}"),
        ),
        leader: None,
    }
}

#[cfg(test)]
mod tests {
    use strom_log::Compression;
    use strom_log::batch::BatchIter;
    use tokio::sync::oneshot;
    use tokio::time::Instant;

    use super::super::accumulator::{BatchSettings, Completion, NewRecord, RecordAccumulator};
    use super::*;

    fn drained(partitions: &[(&str, i32, usize)]) -> Vec<(TopicPartition, Vec<ProducerBatch>)> {
        let mut acc = RecordAccumulator::new(BatchSettings {
            batch_size: 100,
            linger: Duration::ZERO,
            compression: Compression::Lz4,
            delivery_timeout: Duration::from_secs(60),
            idempotent: false,
            max_in_flight: 5,
            transactional: false,
        });
        let now = Instant::now();
        let mut tps = Vec::new();
        for (topic, partition, records) in partitions {
            let tp = TopicPartition::new(*topic, *partition);
            for _ in 0..*records {
                let (tx, _rx) = oneshot::channel();
                acc.append(
                    &tp,
                    NewRecord {
                        timestamp: 5,
                        key: None,
                        value: Some(&[1; 50]),
                        headers: &[],
                        size: 60,
                        completion: Completion::Future(Some(tx)),
                        memory: None,
                    },
                    || now,
                );
            }
            tps.push(tp);
        }
        acc.drain(&tps, 1 << 20, now, false)
    }

    #[test]
    fn request_groups_partitions_by_topic_and_concatenates_batches() {
        let mut batches = drained(&[("b", 0, 1), ("a", 1, 3), ("b", 2, 1)]);
        let request = produce_request(Acks::All, Duration::from_secs(30), "", &mut batches);
        assert_eq!(request.acks, -1);
        assert_eq!(request.timeout_ms, 30_000);
        let layout: Vec<(&str, Vec<i32>)> = request
            .topics
            .iter()
            .map(|t| {
                (
                    t.topic.as_str(),
                    t.partitions.iter().map(|p| p.partition).collect(),
                )
            })
            .collect();
        assert_eq!(layout, [("a", vec![1]), ("b", vec![0, 2])]);
        let records = request.topics[0].partitions[0].records.clone();
        let batches: Vec<_> = BatchIter::new(records).collect::<Result<_, _>>().unwrap();
        assert_eq!(batches.len(), 3, "one batch per record at batch.size 100");
        for batch in batches {
            batch.validate().unwrap();
            assert_eq!(batch.compression().unwrap(), Compression::Lz4);
        }
    }

    #[test]
    fn response_partitions_become_outcomes() {
        let response = pb::ProduceResponse {
            topics: vec![pb::ProduceTopicResponse {
                topic: "t".into(),
                partitions: vec![
                    pb::ProducePartitionResponse {
                        partition: 0,
                        base_offset: 42,
                        log_append_time_ms: -1,
                        ..Default::default()
                    },
                    pb::ProducePartitionResponse {
                        partition: 1,
                        error_code: ErrorCode::NotLeaderOrFollower as i32,
                        error_message: "not the leader".into(),
                        base_offset: -1,
                        current_leader: Some(pb::LeaderIdAndEpoch {
                            leader_id: 3,
                            leader_epoch: 9,
                            leader_address: "h3:9092".into(),
                        }),
                        ..Default::default()
                    },
                    pb::ProducePartitionResponse {
                        partition: 2,
                        error_code: ErrorCode::RecordTooLarge as i32,
                        current_leader: Some(pb::LeaderIdAndEpoch {
                            leader_id: -1,
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ],
            }],
            throttle_time_ms: 0,
        };
        let outcomes = partition_outcomes(response);
        assert!(matches!(
            outcomes[&TopicPartition::new("t", 0)],
            PartitionOutcome::Acked {
                base_offset: 42,
                log_append_time: -1
            }
        ));
        let PartitionOutcome::Failed { error, leader } = &outcomes[&TopicPartition::new("t", 1)]
        else {
            panic!("partition 1 failed");
        };
        assert_eq!(error.to_string(), "NOT_LEADER_OR_FOLLOWER: not the leader");
        assert_eq!(leader.as_ref().map(|l| l.leader_id), Some(3));
        let PartitionOutcome::Failed { error, leader } = &outcomes[&TopicPartition::new("t", 2)]
        else {
            panic!("partition 2 failed");
        };
        assert_eq!(error.code(), Some(ErrorCode::RecordTooLarge));
        assert_eq!(error.detail(), "the leader rejected the records for t-2");
        assert!(leader.is_none(), "an unknown leader is no hint");
    }
}
