//! Transactions, as kafka-transactions sees them (KIP-664): list (every
//! broker's coordinated ids), describe (at the id's coordinator), the
//! producers of partitions (DescribeProducers at each leader), and the
//! abort of a partition's open transaction by writing an ABORT marker at
//! its leader (Kafka's `abortTransaction`, for hanging transactions).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use strom_proto::v1 as pb;
use strom_proto::v1::ErrorCode;
use strom_proto::v1::broker_service_client::BrokerServiceClient;
use strom_proto::v1::group_service_client::GroupServiceClient;
use strom_proto::v1::transaction_service_client::TransactionServiceClient;
use tokio::time::Instant;
use tonic::transport::Channel;

use super::{Admin, TopicPartition, request};
use crate::error::{Error, Result, error_code, item_error};
use crate::pool::MAX_MESSAGE_SIZE as MAX_RESPONSE;
use crate::retry::{self, Backoff};

/// A transactional id in `strom transactions list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransactionListing {
    /// The id.
    pub transactional_id: String,
    /// The broker coordinating it.
    pub coordinator: i32,
    /// Its producer id.
    pub producer_id: i64,
    /// Kafka's state name (Empty, Ongoing, PrepareCommit, ...).
    pub state: String,
}

/// A transactional id as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransactionDescription {
    /// The broker coordinating it.
    pub coordinator_id: i32,
    /// The id.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// Its producer epoch.
    pub producer_epoch: i32,
    /// Kafka's state name.
    pub state: String,
    /// `transaction.timeout.ms`.
    pub transaction_timeout_ms: i32,
    /// When the open transaction started (ms since the epoch), `None`
    /// without one.
    pub transaction_start_time_ms: Option<i64>,
    /// The partitions of the open (or completing) transaction.
    pub topic_partitions: Vec<TopicPartition>,
}

/// A producer as a partition leader tracks it (Kafka's `ProducerState`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProducerState {
    /// Producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i32,
    /// Coordinator epoch of the last marker written for it, `None` when
    /// none was.
    pub latest_coordinator_epoch: Option<i32>,
    /// Sequence of its last record in this epoch, -1 when none.
    pub last_sequence: i32,
    /// When its last batch was appended (ms since the epoch).
    pub last_timestamp: i64,
    /// First offset of its open transaction in the partition, `None`
    /// without one.
    pub current_transaction_start_offset: Option<i64>,
}

impl From<pb::ProducerState> for ProducerState {
    fn from(p: pb::ProducerState) -> Self {
        ProducerState {
            producer_id: p.producer_id,
            producer_epoch: p.producer_epoch,
            latest_coordinator_epoch: (p.coordinator_epoch >= 0).then_some(p.coordinator_epoch),
            last_sequence: p.last_sequence,
            last_timestamp: p.last_timestamp,
            current_transaction_start_offset: (p.current_txn_start_offset >= 0)
                .then_some(p.current_txn_start_offset),
        }
    }
}

/// The producer of `producers` whose open transaction starts at
/// `start_offset`, if any.
pub fn producer_at_start_offset(
    producers: &[ProducerState],
    start_offset: i64,
) -> Option<&ProducerState> {
    producers
        .iter()
        .find(|p| p.current_transaction_start_offset == Some(start_offset))
}

impl Admin {
    /// Every transactional id of the cluster: each broker lists the ids it
    /// coordinates, filtered by Kafka state names and producer ids (empty:
    /// all). An unknown state name is INVALID_REQUEST. Sorted by id.
    pub async fn list_transactions(
        &self,
        states: &[String],
        producer_ids: &[i64],
    ) -> Result<Vec<TransactionListing>> {
        let cluster = self.describe_cluster().await?;
        let req = pb::ListTransactionsRequest {
            state_filters: states.to_vec(),
            producer_id_filters: producer_ids.to_vec(),
        };
        let mut out = Vec::new();
        for b in cluster.brokers {
            let channel = self.inner.pool.channel(&b.address)?;
            let timeout = self.inner.config.request_timeout;
            let r = TransactionServiceClient::new(channel)
                .max_decoding_message_size(MAX_RESPONSE)
                .list_transactions(request(req.clone(), timeout))
                .await;
            match r {
                Ok(r) => out.extend(r.into_inner().transactions.into_iter().map(|t| {
                    TransactionListing {
                        transactional_id: t.transactional_id,
                        coordinator: b.id,
                        producer_id: t.producer_id,
                        state: t.state,
                    }
                })),
                // A broker that is down coordinates nothing now; the new
                // leaders of its transaction-log partitions answer.
                Err(status) => {
                    let e = Error::from_status(&b.address, status);
                    if !retry::is_retriable(&e) {
                        return Err(e);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out.dedup_by(|a, b| a.transactional_id == b.transactional_id);
        Ok(out)
    }

    /// One transactional id at its coordinator (TRANSACTIONAL_ID_NOT_FOUND
    /// for an unknown id, INVALID_REQUEST for an empty or over-long one).
    pub async fn describe_transaction(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionDescription> {
        let req = pb::DescribeTransactionsRequest {
            transactional_id: transactional_id.to_owned(),
        };
        let (coordinator_id, d) = self
            .txn_coordinator(transactional_id, "describe transaction", |mut c, t| {
                let req = req.clone();
                async move { c.describe_transactions(request(req, t)).await }
            })
            .await?;
        Ok(TransactionDescription {
            coordinator_id,
            transactional_id: d.transactional_id,
            producer_id: d.producer_id,
            producer_epoch: d.producer_epoch,
            state: d.state,
            transaction_timeout_ms: d.transaction_timeout_ms,
            transaction_start_time_ms: (d.transaction_start_time_ms >= 0)
                .then_some(d.transaction_start_time_ms),
            topic_partitions: d
                .topics
                .into_iter()
                .flat_map(|t| {
                    let topic = t.topic;
                    t.partitions
                        .into_iter()
                        .map(move |partition| TopicPartition {
                            topic: topic.clone(),
                            partition,
                        })
                })
                .collect(),
        })
    }

    /// Calls `TransactionService` on `transactional_id`'s coordinator,
    /// finding it again while the call fails with a retriable error, until
    /// the request timeout; returns the coordinator's id with the answer.
    async fn txn_coordinator<T, F, Fut>(
        &self,
        transactional_id: &str,
        what: &str,
        mut f: F,
    ) -> Result<(i32, T)>
    where
        F: FnMut(TransactionServiceClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let inner = &self.inner;
        let deadline = Instant::now() + inner.config.request_timeout;
        let mut backoff = Backoff::new(inner.config.retry_backoff, inner.config.retry_backoff_max);
        loop {
            let find = pb::FindCoordinatorRequest {
                group_id: transactional_id.to_owned(),
                key_type: pb::CoordinatorKeyType::Transaction as i32,
            };
            let found = retry::call(&inner.config, &inner.pool, "find coordinator", |ch, t| {
                let find = find.clone();
                async move {
                    GroupServiceClient::new(ch)
                        .find_coordinator(request(find, t))
                        .await
                }
            })
            .await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let channel = inner.pool.channel(&found.address)?;
            let client =
                TransactionServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE);
            let error = match tokio::time::timeout(remaining, f(client, remaining)).await {
                Ok(Ok(r)) => return Ok((found.node_id, r.into_inner())),
                Ok(Err(status)) => Error::from_status(&found.address, status),
                Err(_) => {
                    return Err(Error::Timeout {
                        what: format!("{what} for {transactional_id:?} timed out"),
                    });
                }
            };
            if !retry::is_retriable(&error) || Instant::now() >= deadline {
                return Err(error);
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// The producers of each partition, asked of its leader (one
    /// DescribeProducers request per leader), sorted by producer id, in
    /// the order of `partitions`. Leader changes and other retriable
    /// errors are retried until the request timeout; an unknown topic or
    /// partition (UNKNOWN_TOPIC_OR_PARTITION) is that partition's error.
    pub async fn describe_producers(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<Vec<ProducerState>>)>> {
        let config = &self.inner.config;
        let deadline = Instant::now() + config.request_timeout;
        let mut backoff = Backoff::new(config.retry_backoff, config.retry_backoff_max);
        let mut topics: Vec<String> = partitions.iter().map(|tp| tp.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        let mut done: BTreeMap<TopicPartition, Result<Vec<ProducerState>>> = BTreeMap::new();
        loop {
            let pending: Vec<&TopicPartition> = partitions
                .iter()
                .filter(|tp| !done.contains_key(*tp))
                .collect();
            if pending.is_empty() {
                break;
            }
            let metadata = self.metadata(&topics).await?;
            let mut by_leader: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
            let mut last: Option<Error> = None;
            for tp in pending {
                let Some(topic) = metadata.topics.iter().find(|t| t.name == tp.topic) else {
                    done.insert(tp.clone(), Err(unknown(tp)));
                    continue;
                };
                let Some(p) = topic
                    .partitions
                    .iter()
                    .find(|p| p.partition == tp.partition)
                else {
                    done.insert(tp.clone(), Err(unknown(tp)));
                    continue;
                };
                let address = p.leader.and_then(|l| {
                    metadata
                        .brokers
                        .iter()
                        .find(|b| b.id == l)
                        .map(|b| b.address.clone())
                });
                match address {
                    Some(a) => by_leader.entry(a).or_default().push(tp.clone()),
                    None => {
                        last = Some(Error::strom(
                            ErrorCode::LeaderNotAvailable,
                            format!("{tp} has no leader"),
                        ))
                    }
                }
            }
            for (address, tps) in by_leader {
                match self.describe_producers_at(&address, &tps).await {
                    Ok(answers) => {
                        for (tp, answer) in answers {
                            match answer {
                                Err(e) if retry::is_retriable(&e) => last = Some(e),
                                other => {
                                    done.insert(tp, other);
                                }
                            }
                        }
                    }
                    Err(e) if retry::is_retriable(&e) => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
            if partitions.iter().all(|tp| done.contains_key(tp)) {
                break;
            }
            let delay = backoff.next_delay();
            if Instant::now() + delay >= deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "describing producers did not complete within {} ms{}",
                        config.request_timeout.as_millis(),
                        last.map_or_else(String::new, |e| format!(" (last error: {e})"))
                    ),
                });
            }
            tokio::time::sleep(delay).await;
        }
        Ok(partitions
            .iter()
            .map(|tp| {
                let answer = done.remove(tp).unwrap_or_else(|| Err(unknown(tp)));
                (tp.clone(), answer)
            })
            .collect())
    }

    /// One DescribeProducers request to the broker at `address`.
    async fn describe_producers_at(
        &self,
        address: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<Vec<ProducerState>>)>> {
        let mut topics: Vec<pb::DescribeProducersTopic> = Vec::new();
        for tp in partitions {
            match topics.iter_mut().find(|t| t.topic == tp.topic) {
                Some(t) => t.partitions.push(tp.partition),
                None => topics.push(pb::DescribeProducersTopic {
                    topic: tp.topic.clone(),
                    partitions: vec![tp.partition],
                }),
            }
        }
        let channel = self.inner.pool.channel(address)?;
        let resp = BrokerServiceClient::new(channel)
            .max_decoding_message_size(MAX_RESPONSE)
            .describe_producers(request(
                pb::DescribeProducersRequest { topics },
                self.inner.config.request_timeout,
            ))
            .await
            .map_err(|s| Error::from_status(address, s))?
            .into_inner();
        Ok(resp
            .partitions
            .into_iter()
            .map(|p| {
                let tp = TopicPartition {
                    topic: p.topic,
                    partition: p.partition,
                };
                let answer = match item_error(p.error_code, &p.error_message) {
                    Some(e) => Err(Error::Strom(e)),
                    None => {
                        let mut producers: Vec<ProducerState> =
                            p.active_producers.into_iter().map(Into::into).collect();
                        producers.sort_by_key(|p| p.producer_id);
                        Ok(producers)
                    }
                };
                (tp, answer)
            })
            .collect())
    }

    /// The producers of one partition at its leader.
    pub async fn describe_partition_producers(
        &self,
        tp: &TopicPartition,
    ) -> Result<Vec<ProducerState>> {
        self.describe_producers(std::slice::from_ref(tp))
            .await?
            .into_iter()
            .next()
            .map_or_else(|| Err(unknown(tp)), |(_, answer)| answer)
    }

    /// Aborts the open transaction that starts at `start_offset` on `tp`
    /// (Kafka's `abortTransaction`, for a hanging transaction whose
    /// coordinator no longer knows it): finds its producer with
    /// DescribeProducers and writes an ABORT marker at the partition's
    /// leader with the producer's epoch, so the last stable offset moves
    /// past it. Returns the producer aborted. No open transaction starts
    /// there: INVALID_TXN_STATE, nothing written.
    pub async fn abort_transaction(
        &self,
        tp: &TopicPartition,
        start_offset: i64,
    ) -> Result<ProducerState> {
        let producers = self.describe_partition_producers(tp).await?;
        let Some(producer) = producer_at_start_offset(&producers, start_offset).cloned() else {
            let open: Vec<i64> = producers
                .iter()
                .filter_map(|p| p.current_transaction_start_offset)
                .collect();
            return Err(Error::strom(
                ErrorCode::InvalidTxnState,
                format!(
                    "no open transaction starts at offset {start_offset} of {tp} (open transactions start at {open:?})"
                ),
            ));
        };
        let marker = pb::TxnMarker {
            producer_id: producer.producer_id,
            producer_epoch: producer.producer_epoch,
            committed: false,
            coordinator_epoch: producer.latest_coordinator_epoch.unwrap_or(0),
            topics: vec![pb::TxnTopic {
                topic: tp.topic.clone(),
                partitions: vec![tp.partition],
            }],
        };
        let config = &self.inner.config;
        let deadline = Instant::now() + config.request_timeout;
        let mut backoff = Backoff::new(config.retry_backoff, config.retry_backoff_max);
        loop {
            let error = match self.write_abort_marker(tp, &marker).await {
                Ok(()) => return Ok(producer),
                Err(e) => e,
            };
            let delay = backoff.next_delay();
            if !retry::is_retriable_for_partition(&error, true)
                || Instant::now() + delay >= deadline
            {
                return Err(error);
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// WriteTxnMarkers with `marker` at `tp`'s leader.
    async fn write_abort_marker(&self, tp: &TopicPartition, marker: &pb::TxnMarker) -> Result<()> {
        let metadata = self.metadata(std::slice::from_ref(&tp.topic)).await?;
        let leader = metadata
            .topics
            .iter()
            .find(|t| t.name == tp.topic)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == tp.partition))
            .ok_or_else(|| unknown(tp))?
            .leader
            .and_then(|l| metadata.brokers.iter().find(|b| b.id == l))
            .ok_or_else(|| {
                Error::strom(ErrorCode::LeaderNotAvailable, format!("{tp} has no leader"))
            })?
            .address
            .clone();
        let channel = self.inner.pool.channel(&leader)?;
        let resp = TransactionServiceClient::new(channel)
            .write_txn_markers(request(
                pb::WriteTxnMarkersRequest {
                    markers: vec![marker.clone()],
                },
                self.inner.config.request_timeout,
            ))
            .await
            .map_err(|s| Error::from_status(&leader, s))?
            .into_inner();
        let result = resp
            .markers
            .into_iter()
            .flat_map(|m| m.partitions)
            .find(|p| p.topic == tp.topic && p.partition == tp.partition)
            .ok_or_else(|| {
                Error::strom(
                    ErrorCode::UnknownServerError,
                    format!("the leader of {tp} did not answer for it"),
                )
            })?;
        match error_code(result.error_code) {
            ErrorCode::None => Ok(()),
            _ => Err(Error::Strom(
                item_error(result.error_code, &result.error_message).unwrap_or_else(|| {
                    strom_proto::StromError::new(ErrorCode::UnknownServerError, "marker refused")
                }),
            )),
        }
    }
}

fn unknown(tp: &TopicPartition) -> Error {
    Error::strom(
        ErrorCode::UnknownTopicOrPartition,
        format!("{tp} does not exist"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(producer_id: i64, start: i64, coordinator_epoch: i32) -> pb::ProducerState {
        pb::ProducerState {
            producer_id,
            producer_epoch: 3,
            last_sequence: 7,
            last_timestamp: 1000,
            coordinator_epoch,
            current_txn_start_offset: start,
        }
    }

    #[test]
    fn producer_states_map_unset_fields_to_none() {
        let p = ProducerState::from(state(5, -1, -1));
        assert_eq!(p.current_transaction_start_offset, None);
        assert_eq!(p.latest_coordinator_epoch, None);
        let p = ProducerState::from(state(5, 42, 0));
        assert_eq!(p.current_transaction_start_offset, Some(42));
        assert_eq!(p.latest_coordinator_epoch, Some(0));
    }

    #[test]
    fn the_aborted_producer_is_the_one_whose_transaction_starts_at_the_offset() {
        let producers: Vec<ProducerState> = [state(1, -1, 0), state(2, 10, 0), state(3, 20, 1)]
            .into_iter()
            .map(Into::into)
            .collect();
        let table = [(10, Some(2)), (20, Some(3)), (15, None), (-1, None)];
        for (offset, want) in table {
            assert_eq!(
                producer_at_start_offset(&producers, offset).map(|p| p.producer_id),
                want,
                "start offset {offset}"
            );
        }
    }
}
