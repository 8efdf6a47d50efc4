//! `ListOffsets`: offsets by position (earliest -2, latest -1) or by
//! timestamp, sent to each partition's leader. One attempt
//! ([`list_offsets_once`], used by the consumer's background resets) and a
//! retrying lookup ([`list_offsets`], used by the offset queries).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use strom_proto::StromError;
use strom_proto::v1 as pb;
use strom_proto::v1::ErrorCode;
use strom_proto::v1::broker_service_client::BrokerServiceClient;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Shared;
use super::config::IsolationLevel;
use crate::admin::TopicPartition;
use crate::cluster::Leader;
use crate::error::{Error, Result, error_code};
use crate::pool::MAX_MESSAGE_SIZE;
use crate::retry::{Backoff, invalidates_metadata, is_retriable_for_partition};

/// An offset a leader answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListedOffset {
    /// -1 when no record has a timestamp at or after the one asked for.
    pub(crate) offset: i64,
    /// The record's timestamp for a timestamp lookup, else -1.
    pub(crate) timestamp: i64,
    pub(crate) leader_epoch: Option<i32>,
}

/// One partition's answer.
#[derive(Debug, Clone)]
pub(crate) enum OffsetAnswer {
    Found(ListedOffset),
    Failed {
        error: Error,
        leader: Option<pb::LeaderIdAndEpoch>,
    },
}

/// A partition and the timestamp to look up (-2 earliest, -1 latest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffsetQuery {
    pub(crate) tp: TopicPartition,
    pub(crate) timestamp: i64,
    /// The leader epoch the client believes current, -1 to skip the check.
    pub(crate) leader_epoch: i32,
}

/// The request for `queries`.
pub(crate) fn list_offsets_request(
    isolation: IsolationLevel,
    queries: &[OffsetQuery],
) -> pb::ListOffsetsRequest {
    let mut topics: BTreeMap<&str, Vec<pb::ListOffsetsPartition>> = BTreeMap::new();
    for q in queries {
        topics
            .entry(&q.tp.topic)
            .or_default()
            .push(pb::ListOffsetsPartition {
                partition: q.tp.partition,
                timestamp: q.timestamp,
                current_leader_epoch: q.leader_epoch,
            });
    }
    pb::ListOffsetsRequest {
        replica_id: -1,
        isolation_level: pb::IsolationLevel::from(isolation) as i32,
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| pb::ListOffsetsTopic {
                topic: topic.to_owned(),
                partitions,
            })
            .collect(),
    }
}

/// Every partition's answer in a response.
pub(crate) fn offset_answers(
    response: pb::ListOffsetsResponse,
) -> HashMap<TopicPartition, OffsetAnswer> {
    let mut answers = HashMap::new();
    for topic in response.topics {
        for p in topic.partitions {
            let tp = TopicPartition::new(topic.topic.clone(), p.partition);
            let answer = match error_code(p.error_code) {
                ErrorCode::None => OffsetAnswer::Found(ListedOffset {
                    offset: p.offset,
                    timestamp: p.timestamp,
                    leader_epoch: Some(p.leader_epoch).filter(|e| *e >= 0),
                }),
                code => {
                    let message = if p.error_message.is_empty() {
                        format!("cannot list offsets of {tp}")
                    } else {
                        p.error_message
                    };
                    OffsetAnswer::Failed {
                        error: Error::Strom(StromError::new(code, message)),
                        leader: p.current_leader.filter(|l| l.leader_id >= 0),
                    }
                }
            };
            answers.insert(tp, answer);
        }
    }
    answers
}

/// Sends one ListOffsets request to `leader`; every query gets an answer
/// (a partition missing from the response is UNKNOWN_SERVER_ERROR). `Err`
/// is a failure of the whole request.
pub(crate) async fn list_offsets_once(
    shared: &Shared,
    leader: &Leader,
    queries: &[OffsetQuery],
) -> Result<Vec<(OffsetQuery, OffsetAnswer)>> {
    let config = &shared.config;
    let request = list_offsets_request(config.isolation_level, queries);
    let channel = shared.pool.channel(&leader.address)?;
    let mut client = BrokerServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_SIZE);
    let timeout = config.client.request_timeout;
    let mut message = tonic::Request::new(request);
    message.set_timeout(timeout);
    let response = match tokio::time::timeout(timeout, client.list_offsets(message)).await {
        Ok(Ok(response)) => response.into_inner(),
        Ok(Err(status)) => return Err(Error::from_status(&leader.address, status)),
        Err(_) => {
            return Err(Error::strom(
                ErrorCode::RequestTimedOut,
                format!(
                    "no ListOffsets answer from broker {} ({}) within {} ms",
                    leader.id,
                    leader.address,
                    timeout.as_millis()
                ),
            ));
        }
    };
    let mut answers = offset_answers(response);
    Ok(queries
        .iter()
        .map(|q| {
            let answer = answers
                .remove(&q.tp)
                .unwrap_or_else(|| OffsetAnswer::Failed {
                    error: Error::strom(
                        ErrorCode::UnknownServerError,
                        format!("the ListOffsets response holds no result for {}", q.tp),
                    ),
                    leader: None,
                });
            (q.clone(), answer)
        })
        .collect())
}

/// After a failed request to `leader`: forget a connection that broke or
/// hung, and refresh metadata.
pub(crate) fn forget_connection(shared: &Shared, leader: &Leader, error: &Error) {
    if matches!(error, Error::Transport { .. }) || error.code() == Some(ErrorCode::RequestTimedOut)
    {
        shared.pool.evict(&leader.address);
        shared.metadata.mark_stale();
    }
}

/// Applies a partition error's consequences to metadata (leader hint,
/// refresh) and tells whether retrying may help.
pub(crate) fn note_partition_error(
    shared: &Shared,
    tp: &TopicPartition,
    error: &Error,
    hint: Option<&pb::LeaderIdAndEpoch>,
    previous_leader: i32,
) -> bool {
    let moved = hint.is_some_and(|h| shared.metadata.apply_leader_hint(tp, h, previous_leader));
    if invalidates_metadata(error) && !moved {
        shared.metadata.mark_stale();
    }
    let topic_known = shared.metadata.read(|m| m.has_topic(&tp.topic));
    is_retriable_for_partition(error, topic_known)
}

/// Looks up `queries` (timestamps -2, -1 or real ones), retrying leader
/// changes and transient errors until `request.timeout.ms`. A topic or
/// partition metadata says does not exist fails at once.
pub(crate) async fn list_offsets(
    shared: &Arc<Shared>,
    queries: Vec<(TopicPartition, i64)>,
) -> Result<BTreeMap<TopicPartition, ListedOffset>> {
    let config = &shared.config;
    let deadline = Instant::now() + config.client.request_timeout;
    shared
        .metadata
        .add_topics(queries.iter().map(|(tp, _)| tp.topic.as_str()));
    let mut pending: Vec<(TopicPartition, i64)> = queries;
    let mut found = BTreeMap::new();
    let mut attempt = 0u32;
    let mut last_error: Option<Error> = None;
    while !pending.is_empty() {
        if attempt > 0 {
            let delay = Backoff::delay_for_attempt(
                config.client.retry_backoff,
                config.client.retry_backoff_max,
                attempt,
            );
            if Instant::now() + delay >= deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "listing offsets did not complete within {} ms{}",
                        config.client.request_timeout.as_millis(),
                        last_error.map_or_else(String::new, |e| format!(" (last error: {e})"))
                    ),
                });
            }
            tokio::time::sleep(delay).await;
        }
        attempt += 1;
        let refresh = shared
            .metadata
            .refresh_due(Instant::now(), config.metadata_max_age)
            .is_some()
            || pending
                .iter()
                .any(|(tp, _)| shared.metadata.read(|m| m.leader(tp).is_none()));
        if refresh
            && let Ok(Err(e)) = tokio::time::timeout_at(deadline, shared.metadata.refresh()).await
        {
            last_error = Some(e);
        }
        // Group by leader; partitions metadata says do not exist fail now.
        let mut groups: BTreeMap<(String, i32), (Leader, Vec<OffsetQuery>)> = BTreeMap::new();
        let mut waiting = Vec::new();
        for (tp, timestamp) in pending.drain(..) {
            let lookup = shared.metadata.read(|m| {
                (
                    m.leader(&tp),
                    m.leader_epoch(&tp),
                    m.partition_count(&tp.topic),
                    m.topic_error(&tp.topic),
                )
            });
            match lookup {
                (Some(leader), epoch, _, _) => {
                    groups
                        .entry((leader.address.clone(), leader.id))
                        .or_insert_with(|| (leader, Vec::new()))
                        .1
                        .push(OffsetQuery {
                            tp,
                            timestamp,
                            leader_epoch: epoch,
                        });
                }
                (None, _, Some(count), _) if tp.partition as usize >= count => {
                    return Err(Error::strom(
                        ErrorCode::UnknownTopicOrPartition,
                        format!(
                            "partition {} of topic '{}' does not exist ({count} partitions)",
                            tp.partition, tp.topic
                        ),
                    ));
                }
                (None, _, None, Some(ErrorCode::UnknownTopicOrPartition)) => {
                    return Err(Error::strom(
                        ErrorCode::UnknownTopicOrPartition,
                        format!("topic '{}' does not exist", tp.topic),
                    ));
                }
                _ => {
                    last_error = Some(Error::strom(
                        ErrorCode::LeaderNotAvailable,
                        format!("no leader known for {tp}"),
                    ));
                    waiting.push((tp, timestamp));
                }
            }
        }
        pending = waiting;
        let mut calls = JoinSet::new();
        for (leader, queries) in groups.into_values() {
            let shared = shared.clone();
            calls.spawn(async move {
                let result = list_offsets_once(&shared, &leader, &queries).await;
                (leader, queries, result)
            });
        }
        while let Some(done) = calls.join_next().await {
            let (leader, queries, result) = done.map_err(|e| {
                Error::strom(
                    ErrorCode::UnknownServerError,
                    format!("offset lookup task failed: {e}"),
                )
            })?;
            match result {
                Ok(answers) => {
                    for (query, answer) in answers {
                        match answer {
                            OffsetAnswer::Found(listed) => {
                                found.insert(query.tp, listed);
                            }
                            OffsetAnswer::Failed {
                                error,
                                leader: hint,
                            } => {
                                if !note_partition_error(
                                    shared,
                                    &query.tp,
                                    &error,
                                    hint.as_ref(),
                                    leader.id,
                                ) {
                                    return Err(error);
                                }
                                last_error = Some(error);
                                pending.push((query.tp, query.timestamp));
                            }
                        }
                    }
                }
                Err(error) => {
                    forget_connection(shared, &leader, &error);
                    if !crate::retry::is_retriable(&error) {
                        return Err(error);
                    }
                    shared.metadata.mark_stale();
                    pending.extend(queries.into_iter().map(|q| (q.tp, q.timestamp)));
                    last_error = Some(error);
                }
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_groups_partitions_by_topic() {
        let query = |topic: &str, partition, timestamp| OffsetQuery {
            tp: TopicPartition::new(topic, partition),
            timestamp,
            leader_epoch: 3,
        };
        let request = list_offsets_request(
            IsolationLevel::ReadCommitted,
            &[
                query("b", 0, -2),
                query("a", 1, -1),
                query("b", 2, 1_700_000_000_000),
            ],
        );
        assert_eq!(request.replica_id, -1);
        assert_eq!(
            request.isolation_level,
            pb::IsolationLevel::ReadCommitted as i32
        );
        type Layout<'a> = Vec<(&'a str, Vec<(i32, i64, i32)>)>;
        let layout: Layout<'_> = request
            .topics
            .iter()
            .map(|t| {
                (
                    t.topic.as_str(),
                    t.partitions
                        .iter()
                        .map(|p| (p.partition, p.timestamp, p.current_leader_epoch))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            layout,
            [
                ("a", vec![(1, -1, 3)]),
                ("b", vec![(0, -2, 3), (2, 1_700_000_000_000, 3)])
            ]
        );
    }

    #[test]
    fn answers_carry_offsets_or_errors() {
        let response = pb::ListOffsetsResponse {
            topics: vec![pb::ListOffsetsTopicResponse {
                topic: "t".into(),
                partitions: vec![
                    pb::ListOffsetsPartitionResponse {
                        partition: 0,
                        offset: 17,
                        timestamp: -1,
                        leader_epoch: 2,
                        ..Default::default()
                    },
                    pb::ListOffsetsPartitionResponse {
                        partition: 1,
                        error_code: ErrorCode::FencedLeaderEpoch as i32,
                        current_leader: Some(pb::LeaderIdAndEpoch {
                            leader_id: 2,
                            leader_epoch: 8,
                            leader_address: "h2:1".into(),
                        }),
                        ..Default::default()
                    },
                ],
            }],
        };
        let answers = offset_answers(response);
        assert!(matches!(
            answers[&TopicPartition::new("t", 0)],
            OffsetAnswer::Found(ListedOffset {
                offset: 17,
                timestamp: -1,
                leader_epoch: Some(2)
            })
        ));
        let OffsetAnswer::Failed { error, leader } = &answers[&TopicPartition::new("t", 1)] else {
            panic!("partition 1 failed");
        };
        assert_eq!(error.code(), Some(ErrorCode::FencedLeaderEpoch));
        assert_eq!(leader.as_ref().map(|l| l.leader_epoch), Some(8));
    }
}
