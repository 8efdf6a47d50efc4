//! `Fetch`: one request per leader broker for the assigned partitions it
//! leads, as a consumer (`replica_id` -1) with the leader epoch metadata
//! knows (so a stale leader answers FENCED_LEADER_EPOCH), and the decoding
//! of its answer. Requests to a leader go as rounds of its
//! [`FetchSession`] (one long-lived `FetchStream`), kept between rounds in
//! [`Shared::sessions`]. A `read_committed` consumer's answers are decoded
//! with the aborted transactions they carry (their records are dropped).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use strom_log::AbortedFilter;
use strom_proto::v1 as pb;
use strom_proto::v1::ErrorCode;
use strom_proto::v1::broker_service_client::BrokerServiceClient;
use strom_proto::{FetchSession, StromError};

use super::Shared;
use super::config::{ConsumerConfig, IsolationLevel};
use super::decode::{Decoded, decode};
use crate::admin::{TopicId, TopicPartition};
use crate::cluster::Leader;
use crate::error::{Error, error_code};
use crate::pool::MAX_MESSAGE_SIZE;

/// One partition of a fetch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchTarget {
    pub(crate) tp: TopicPartition,
    pub(crate) offset: i64,
    /// The consumer's generation of the partition when sent.
    pub(crate) generation: u64,
    /// The leader epoch metadata knows, -1 when unknown.
    pub(crate) leader_epoch: i32,
}

/// One partition's answer.
#[derive(Debug)]
pub(crate) enum FetchAnswer {
    /// Records (possibly none) and the partition's offsets.
    Data {
        decoded: Decoded,
        high_watermark: i64,
    },
    /// A partition error.
    Failed {
        error: Error,
        leader: Option<pb::LeaderIdAndEpoch>,
        log_start_offset: i64,
        high_watermark: i64,
    },
}

/// Each target with its answer, or the targets and the error of the whole
/// request.
pub(crate) type FetchResult = Result<Vec<(FetchTarget, FetchAnswer)>, (Vec<FetchTarget>, Error)>;

/// A finished fetch.
#[derive(Debug)]
pub(crate) struct FetchOutcome {
    pub(crate) leader: Leader,
    pub(crate) result: FetchResult,
}

/// The request for `targets` (all led by one broker).
pub(crate) fn fetch_request(
    config: &ConsumerConfig,
    targets: &[FetchTarget],
    topic_ids: &HashMap<String, TopicId>,
) -> pb::FetchRequest {
    let mut topics: BTreeMap<&str, Vec<pb::FetchPartition>> = BTreeMap::new();
    for t in targets {
        topics
            .entry(&t.tp.topic)
            .or_default()
            .push(pb::FetchPartition {
                partition: t.tp.partition,
                fetch_offset: t.offset,
                current_leader_epoch: t.leader_epoch,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: clamp_i32(config.max_partition_fetch_bytes),
                replica_durable_offset: 0,
            });
    }
    pb::FetchRequest {
        replica_id: -1,
        replica_epoch: -1,
        max_wait_ms: clamp_i32(config.fetch_max_wait.as_millis() as usize),
        min_bytes: clamp_i32(config.fetch_min_bytes),
        max_bytes: clamp_i32(config.fetch_max_bytes),
        isolation_level: pb::IsolationLevel::from(config.isolation_level) as i32,
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| pb::FetchTopic {
                topic: topic.to_owned(),
                topic_id: topic_ids
                    .get(topic)
                    .map(|id| id.as_bytes().to_vec())
                    .unwrap_or_default(),
                partitions,
            })
            .collect(),
    }
}

fn clamp_i32(value: usize) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// Decodes every target's answer in `response`.
pub(crate) fn fetch_answers(
    config: &ConsumerConfig,
    targets: Vec<FetchTarget>,
    response: pb::FetchResponse,
) -> Vec<(FetchTarget, FetchAnswer)> {
    let mut partitions: HashMap<TopicPartition, pb::FetchPartitionResponse> = HashMap::new();
    for topic in response.topics {
        for p in topic.partitions {
            partitions.insert(TopicPartition::new(topic.topic.clone(), p.partition), p);
        }
    }
    targets
        .into_iter()
        .map(|target| {
            let answer = match partitions.remove(&target.tp) {
                None => FetchAnswer::Failed {
                    error: Error::strom(
                        ErrorCode::UnknownServerError,
                        format!("the fetch response holds no result for {}", target.tp),
                    ),
                    leader: None,
                    log_start_offset: -1,
                    high_watermark: -1,
                },
                Some(p) => match error_code(p.error_code) {
                    ErrorCode::None => FetchAnswer::Data {
                        decoded: decode(
                            &target.tp.topic,
                            target.tp.partition,
                            p.records,
                            target.offset,
                            config.check_crcs,
                            config.max_partition_fetch_bytes,
                            aborted_filter(config.isolation_level, &p.aborted_transactions),
                        ),
                        // The end this consumer can read to: lag counts up
                        // to the last stable offset when reading committed,
                        // as Kafka's consumer.
                        high_watermark: match config.isolation_level {
                            IsolationLevel::ReadUncommitted => p.high_watermark,
                            IsolationLevel::ReadCommitted => p.last_stable_offset,
                        },
                    },
                    code => FetchAnswer::Failed {
                        error: Error::Strom(StromError::new(
                            code,
                            if p.error_message.is_empty() {
                                format!("cannot fetch {} at offset {}", target.tp, target.offset)
                            } else {
                                p.error_message
                            },
                        )),
                        leader: p.current_leader.filter(|l| l.leader_id >= 0),
                        log_start_offset: p.log_start_offset,
                        high_watermark: p.high_watermark,
                    },
                },
            };
            (target, answer)
        })
        .collect()
}

/// The `read_committed` filter for one partition's answer; `None` when
/// reading uncommitted (Kafka's consumer ignores the list then too).
fn aborted_filter(
    isolation: IsolationLevel,
    aborted: &[pb::AbortedTransaction],
) -> Option<AbortedFilter> {
    (isolation == IsolationLevel::ReadCommitted).then(|| {
        AbortedFilter::from_starts(aborted.iter().map(|a| (a.producer_id, a.first_offset)))
    })
}

/// Answers up to this many record bytes are decoded on the async thread;
/// a hand-off to the blocking pool costs more than decoding them.
const INLINE_DECODE_BYTES: usize = 64 << 10;

/// Sends one fetch to `leader` and decodes the answer (a large one off the
/// async threads: decompressing it takes a while).
pub(crate) async fn fetch(
    shared: Arc<Shared>,
    leader: Leader,
    targets: Vec<FetchTarget>,
) -> FetchOutcome {
    let config = &shared.config;
    let topic_ids: HashMap<String, TopicId> = shared.metadata.read(|m| {
        targets
            .iter()
            .filter_map(|t| Some((t.tp.topic.clone(), m.topic_id(&t.tp.topic)?)))
            .collect()
    });
    let request = fetch_request(config, &targets, &topic_ids);
    let wait = config.fetch_max_wait + config.client.request_timeout;
    // The leader's fetch session, if the last round with it went well: one
    // fetch per leader is in flight at a time, so it is never shared.
    let idle = shared
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&leader.address);
    let mut session = match idle {
        Some(session) => session,
        None => match shared.pool.channel(&leader.address) {
            Ok(channel) => FetchSession::new(
                BrokerServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_SIZE),
            ),
            Err(e) => {
                return FetchOutcome {
                    leader,
                    result: Err((targets, e)),
                };
            }
        },
    };
    let response = match session.fetch(request, wait).await {
        Ok(response) => {
            shared
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(leader.address.clone(), session);
            response
        }
        Err(status) if status.code() == tonic::Code::DeadlineExceeded => {
            let error = Error::strom(
                ErrorCode::RequestTimedOut,
                format!(
                    "no fetch answer from broker {} ({}) within {} ms",
                    leader.id,
                    leader.address,
                    wait.as_millis()
                ),
            );
            return FetchOutcome {
                leader,
                result: Err((targets, error)),
            };
        }
        Err(status) => {
            let error = Error::from_status(&leader.address, status);
            return FetchOutcome {
                leader,
                result: Err((targets, error)),
            };
        }
    };
    let bytes: usize = response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.records.len())
        .sum();
    if bytes <= INLINE_DECODE_BYTES {
        let result = Ok(fetch_answers(config, targets, response));
        return FetchOutcome { leader, result };
    }
    let decode_config = config.clone();
    let sent = targets.clone();
    let decoded =
        tokio::task::spawn_blocking(move || fetch_answers(&decode_config, targets, response)).await;
    let result = decoded.map_err(|e| {
        (
            sent,
            Error::strom(
                ErrorCode::UnknownServerError,
                format!("decoding a fetch failed: {e}"),
            ),
        )
    });
    FetchOutcome { leader, result }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use strom_log::{Compression, RecordBatchBuilder};

    use super::*;

    fn target(topic: &str, partition: i32, offset: i64) -> FetchTarget {
        FetchTarget {
            tp: TopicPartition::new(topic, partition),
            offset,
            generation: 1,
            leader_epoch: 6,
        }
    }

    #[test]
    fn request_is_a_consumer_fetch_with_leader_epochs() {
        let config = ConsumerConfig::default();
        let id: TopicId = "0191f3a4-5b6c-7d8e-9f00-112233445566".parse().unwrap();
        let ids = HashMap::from([("a".to_owned(), id)]);
        let request = fetch_request(&config, &[target("b", 1, 10), target("a", 0, 5)], &ids);
        assert_eq!((request.replica_id, request.replica_epoch), (-1, -1));
        assert_eq!(request.max_wait_ms, 500);
        assert_eq!(request.min_bytes, 1);
        assert_eq!(request.max_bytes, 50 << 20);
        assert_eq!(request.topics[0].topic, "a");
        assert_eq!(request.topics[0].topic_id, id.as_bytes().to_vec());
        assert!(
            request.topics[1].topic_id.is_empty(),
            "unknown id is left out"
        );
        let p = &request.topics[1].partitions[0];
        assert_eq!(
            (p.partition, p.fetch_offset, p.current_leader_epoch),
            (1, 10, 6)
        );
        assert_eq!(p.partition_max_bytes, 1 << 20);
        assert_eq!(p.last_fetched_epoch, -1);
    }

    #[test]
    fn answers_are_decoded_per_target() {
        let mut builder = RecordBatchBuilder::new(Compression::Lz4).base_offset(3);
        for i in 0..4 {
            builder.append(i, None, Some(b"x"), &[]);
        }
        let response = pb::FetchResponse {
            topics: vec![pb::FetchTopicResponse {
                topic: "t".into(),
                topic_id: Vec::new(),
                partitions: vec![
                    pb::FetchPartitionResponse {
                        partition: 0,
                        high_watermark: 7,
                        records: builder.build(),
                        ..Default::default()
                    },
                    pb::FetchPartitionResponse {
                        partition: 1,
                        error_code: ErrorCode::OffsetOutOfRange as i32,
                        error_message: "offset 99 is out of range [0, 12]".into(),
                        log_start_offset: 0,
                        high_watermark: 12,
                        records: Bytes::new(),
                        ..Default::default()
                    },
                ],
            }],
            throttle_time_ms: 0,
        };
        let answers = fetch_answers(
            &ConsumerConfig::default(),
            vec![target("t", 0, 5), target("t", 1, 99), target("t", 2, 0)],
            response,
        );
        let FetchAnswer::Data {
            decoded,
            high_watermark,
        } = &answers[0].1
        else {
            panic!("partition 0 has data");
        };
        let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [5, 6]);
        assert_eq!((decoded.next_offset, *high_watermark), (Some(7), 7));
        let FetchAnswer::Failed {
            error,
            high_watermark,
            ..
        } = &answers[1].1
        else {
            panic!("partition 1 failed");
        };
        assert_eq!(error.code(), Some(ErrorCode::OffsetOutOfRange));
        assert_eq!(*high_watermark, 12);
        let FetchAnswer::Failed { error, .. } = &answers[2].1 else {
            panic!("partition 2 is missing");
        };
        assert_eq!(error.code(), Some(ErrorCode::UnknownServerError));
    }

    #[test]
    fn read_committed_answers_drop_aborted_records_and_end_at_the_last_stable_offset() {
        // Producer 9's transaction at 0..=1 was aborted; plain records at 2..=3.
        let mut aborted = RecordBatchBuilder::new(Compression::None)
            .base_offset(0)
            .producer(9, 0, 0)
            .transactional(true);
        aborted.append(0, None, Some(b"a"), &[]);
        aborted.append(0, None, Some(b"a"), &[]);
        let mut plain = RecordBatchBuilder::new(Compression::None).base_offset(2);
        plain.append(0, None, Some(b"p"), &[]);
        plain.append(0, None, Some(b"p"), &[]);
        let records = Bytes::from([aborted.build(), plain.build()].concat());
        let response = || pb::FetchResponse {
            topics: vec![pb::FetchTopicResponse {
                topic: "t".into(),
                topic_id: Vec::new(),
                partitions: vec![pb::FetchPartitionResponse {
                    partition: 0,
                    high_watermark: 10,
                    last_stable_offset: 4,
                    records: records.clone(),
                    aborted_transactions: vec![pb::AbortedTransaction {
                        producer_id: 9,
                        first_offset: 0,
                    }],
                    ..Default::default()
                }],
            }],
            throttle_time_ms: 0,
        };
        // (isolation, offsets delivered, end reported)
        let table = [
            (IsolationLevel::ReadCommitted, vec![2, 3], 4),
            (IsolationLevel::ReadUncommitted, vec![0, 1, 2, 3], 10),
        ];
        for (isolation, want, end) in table {
            let config = ConsumerConfig {
                isolation_level: isolation,
                ..ConsumerConfig::default()
            };
            let answers = fetch_answers(&config, vec![target("t", 0, 0)], response());
            let FetchAnswer::Data {
                decoded,
                high_watermark,
            } = &answers[0].1
            else {
                panic!("partition 0 has data");
            };
            let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, want, "{isolation}");
            assert_eq!((decoded.next_offset, *high_watermark), (Some(4), end));
        }
    }
}
