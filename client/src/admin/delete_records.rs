//! `Admin::delete_records`: Kafka's `deleteRecords`, sent to each
//! partition's leader (`BrokerService.DeleteRecords`), with leaders found
//! through `MetadataService` and followed through the `current_leader`
//! hints of NOT_LEADER_OR_FOLLOWER answers.
//!
//! All or nothing, as far as the brokers can tell: a first round asks
//! every leader to check its partitions without changing them
//! (`validate_only`: leader, `cleanup.policy`, offset at most the high
//! watermark). Only when every partition passes does the second round
//! delete. A high watermark only grows, so an offset that passed stays
//! valid; a leader change between the rounds is retried at the new leader.

use std::collections::BTreeMap;

use strom_proto::v1 as pb;
use strom_proto::v1::ErrorCode;
use strom_proto::v1::broker_service_client::BrokerServiceClient;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Admin, DeletedRecords, TopicPartition, request};
use crate::cluster::{Leader, MetadataCache};
use crate::error::{Error, Result, error_code};
use crate::pool::MAX_MESSAGE_SIZE;
use crate::retry::{Backoff, invalidates_metadata, is_retriable, is_retriable_for_partition};

/// One partition's answer.
type Answer = std::result::Result<i64, (Error, Option<pb::LeaderIdAndEpoch>)>;

impl Admin {
    /// Deletes the records of each partition below the given offset (-1:
    /// below the high watermark), moving its log start offset there on the
    /// leader; whole segments below it are removed from every replica.
    /// Returns each partition's new low watermark (log start offset),
    /// sorted by partition.
    ///
    /// Every partition is checked before any is changed (see the module
    /// docs): an unknown topic or partition (UNKNOWN_TOPIC_OR_PARTITION),
    /// an offset beyond the high watermark (OFFSET_OUT_OF_RANGE, naming the
    /// valid range) or a topic whose `cleanup.policy` lacks `delete`
    /// (POLICY_VIOLATION) fails the call, naming the partition, and
    /// deletes nothing.
    pub async fn delete_records(
        &self,
        offsets: BTreeMap<TopicPartition, i64>,
    ) -> Result<Vec<DeletedRecords>> {
        if offsets.is_empty() {
            return Ok(Vec::new());
        }
        let config = &self.inner.config;
        let deadline = Instant::now() + config.request_timeout;
        let metadata = MetadataCache::new(config.clone(), self.inner.pool.clone());
        metadata.add_topics(offsets.keys().map(|tp| tp.topic.as_str()));
        self.delete_records_round(&metadata, &offsets, true, deadline)
            .await?;
        let done = self
            .delete_records_round(&metadata, &offsets, false, deadline)
            .await?;
        Ok(done
            .into_iter()
            .map(|(tp, low_watermark)| DeletedRecords {
                topic: tp.topic,
                partition: tp.partition,
                low_watermark,
            })
            .collect())
    }

    /// Sends `offsets` to their leaders until each is answered, retrying
    /// leader changes and transient errors until `deadline`; the first
    /// error that retrying cannot help fails the round.
    async fn delete_records_round(
        &self,
        metadata: &MetadataCache,
        offsets: &BTreeMap<TopicPartition, i64>,
        validate_only: bool,
        deadline: Instant,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let config = &self.inner.config;
        let mut pending: Vec<(TopicPartition, i64)> =
            offsets.iter().map(|(tp, o)| (tp.clone(), *o)).collect();
        let mut done = BTreeMap::new();
        let mut attempt = 0u32;
        let mut last_error: Option<Error> = None;
        while !pending.is_empty() {
            if attempt > 0 {
                let delay = Backoff::delay_for_attempt(
                    config.retry_backoff,
                    config.retry_backoff_max,
                    attempt,
                );
                if Instant::now() + delay >= deadline {
                    return Err(Error::Timeout {
                        what: format!(
                            "deleting records did not complete within {} ms{}",
                            config.request_timeout.as_millis(),
                            last_error.map_or_else(String::new, |e| format!(" (last error: {e})"))
                        ),
                    });
                }
                tokio::time::sleep(delay).await;
            }
            attempt += 1;
            let refresh = attempt == 1
                || pending
                    .iter()
                    .any(|(tp, _)| metadata.read(|m| m.leader(tp).is_none()));
            if refresh {
                match tokio::time::timeout_at(deadline, metadata.refresh()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) if !is_retriable(&e) => return Err(e),
                    Ok(Err(e)) => last_error = Some(e),
                    Err(_) => {}
                }
            }
            let (groups, waiting) = group_by_leader(metadata, pending)?;
            pending = waiting;
            if !pending.is_empty() {
                last_error = Some(Error::strom(
                    ErrorCode::LeaderNotAvailable,
                    format!("no leader known for {}", pending[0].0),
                ));
            }
            let mut calls = JoinSet::new();
            for (leader, partitions) in groups.into_values() {
                let admin = self.clone();
                calls.spawn(async move {
                    let answers = admin
                        .send_delete_records(&leader, &partitions, validate_only, deadline)
                        .await;
                    (leader, partitions, answers)
                });
            }
            while let Some(joined) = calls.join_next().await {
                let (leader, partitions, answers) = joined.map_err(|e| {
                    Error::strom(
                        ErrorCode::UnknownServerError,
                        format!("delete records task failed: {e}"),
                    )
                })?;
                let answers = match answers {
                    Ok(answers) => answers,
                    Err(error) => {
                        if !is_retriable(&error) {
                            return Err(error);
                        }
                        self.inner.pool.evict(&leader.address);
                        metadata.mark_stale();
                        pending.extend(partitions);
                        last_error = Some(error);
                        continue;
                    }
                };
                for ((tp, offset), answer) in partitions.into_iter().zip(answers) {
                    match answer {
                        Ok(low_watermark) => {
                            done.insert(tp, low_watermark);
                        }
                        Err((error, hint)) => {
                            let moved = hint
                                .as_ref()
                                .is_some_and(|h| metadata.apply_leader_hint(&tp, h, leader.id));
                            if invalidates_metadata(&error) && !moved {
                                metadata.mark_stale();
                            }
                            let topic_known = metadata.read(|m| m.has_topic(&tp.topic));
                            if !is_retriable_for_partition(&error, topic_known) {
                                return Err(error);
                            }
                            last_error = Some(error);
                            pending.push((tp, offset));
                        }
                    }
                }
            }
        }
        Ok(done)
    }

    /// One DeleteRecords request to `leader`; an answer per partition, in
    /// order (one missing from the response is UNKNOWN_SERVER_ERROR).
    async fn send_delete_records(
        &self,
        leader: &Leader,
        partitions: &[(TopicPartition, i64)],
        validate_only: bool,
        deadline: Instant,
    ) -> Result<Vec<Answer>> {
        let mut topics: BTreeMap<&str, Vec<pb::DeleteRecordsPartition>> = BTreeMap::new();
        for (tp, offset) in partitions {
            topics
                .entry(&tp.topic)
                .or_default()
                .push(pb::DeleteRecordsPartition {
                    partition: tp.partition,
                    offset: *offset,
                });
        }
        let message = pb::DeleteRecordsRequest {
            topics: topics
                .into_iter()
                .map(|(topic, partitions)| pb::DeleteRecordsTopic {
                    topic: topic.to_owned(),
                    partitions,
                })
                .collect(),
            validate_only,
        };
        let channel = self.inner.pool.channel(&leader.address)?;
        let mut client =
            BrokerServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_SIZE);
        let timeout = deadline.saturating_duration_since(Instant::now());
        let response =
            match tokio::time::timeout(timeout, client.delete_records(request(message, timeout)))
                .await
            {
                Ok(Ok(response)) => response.into_inner(),
                Ok(Err(status)) => return Err(Error::from_status(&leader.address, status)),
                Err(_) => {
                    return Err(Error::strom(
                        ErrorCode::RequestTimedOut,
                        format!(
                            "no DeleteRecords answer from broker {} ({})",
                            leader.id, leader.address
                        ),
                    ));
                }
            };
        let mut answers: BTreeMap<TopicPartition, Answer> = BTreeMap::new();
        for topic in response.topics {
            for p in topic.partitions {
                let tp = TopicPartition::new(topic.topic.clone(), p.partition);
                let answer = match error_code(p.error_code) {
                    ErrorCode::None => Ok(p.low_watermark),
                    code => {
                        let message = if p.error_message.is_empty() {
                            format!("cannot delete records of {tp}")
                        } else {
                            p.error_message
                        };
                        Err((
                            Error::strom(code, message),
                            p.current_leader.filter(|l| l.leader_id >= 0),
                        ))
                    }
                };
                answers.insert(tp, answer);
            }
        }
        Ok(partitions
            .iter()
            .map(|(tp, _)| {
                answers.remove(tp).unwrap_or_else(|| {
                    Err((
                        Error::strom(
                            ErrorCode::UnknownServerError,
                            format!("the DeleteRecords response holds no result for {tp}"),
                        ),
                        None,
                    ))
                })
            })
            .collect())
    }
}

/// Partitions grouped by their leader's address, and those without a known
/// leader. A topic or partition metadata says does not exist fails now.
#[allow(clippy::type_complexity)]
fn group_by_leader(
    metadata: &MetadataCache,
    pending: Vec<(TopicPartition, i64)>,
) -> Result<(
    BTreeMap<(String, i32), (Leader, Vec<(TopicPartition, i64)>)>,
    Vec<(TopicPartition, i64)>,
)> {
    let mut groups: BTreeMap<(String, i32), (Leader, Vec<(TopicPartition, i64)>)> = BTreeMap::new();
    let mut waiting = Vec::new();
    for (tp, offset) in pending {
        let (leader, count, topic_error) = metadata.read(|m| {
            (
                m.leader(&tp),
                m.partition_count(&tp.topic),
                m.topic_error(&tp.topic),
            )
        });
        match (leader, count, topic_error) {
            (Some(leader), _, _) => {
                groups
                    .entry((leader.address.clone(), leader.id))
                    .or_insert_with(|| (leader, Vec::new()))
                    .1
                    .push((tp, offset));
            }
            (None, Some(count), _)
                if usize::try_from(tp.partition)
                    .ok()
                    .is_none_or(|p| p >= count) =>
            {
                return Err(Error::strom(
                    ErrorCode::UnknownTopicOrPartition,
                    format!(
                        "partition {} of topic '{}' does not exist ({count} partitions)",
                        tp.partition, tp.topic
                    ),
                ));
            }
            (None, None, Some(ErrorCode::UnknownTopicOrPartition)) => {
                return Err(Error::strom(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("topic '{}' does not exist", tp.topic),
                ));
            }
            _ => waiting.push((tp, offset)),
        }
    }
    Ok((groups, waiting))
}
