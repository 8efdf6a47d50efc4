//! An in-process cluster for the producer's and consumer's tests: brokers
//! serving `MetadataService` and `BrokerService` on 127.0.0.1:0 over one
//! shared state, in which a test sets partition leaders, what metadata
//! advertises (possibly stale), and scripted partition errors. Logs keep
//! the batches as produced, with offsets and leader epochs assigned.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strom_log::RecordBatch;
use strom_log::batch::BatchIter;
use strom_proto::v1 as pb;
use strom_proto::v1::ErrorCode;
use strom_proto::v1::broker_service_server::{BrokerService, BrokerServiceServer};
use strom_proto::v1::metadata_service_server::{MetadataService, MetadataServiceServer};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use crate::admin::TopicPartition;

/// Leader id and epoch per partition, by topic.
pub(crate) type Leaders = BTreeMap<String, Vec<(i32, i32)>>;

/// Everything the mock brokers share.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) brokers: BTreeMap<i32, String>,
    /// The truth: each partition's leader and epoch.
    pub(crate) leaders: Leaders,
    /// What `Metadata` answers when set (e.g. a stale view); else `leaders`.
    pub(crate) advertised: Option<Leaders>,
    /// Batches written, offsets assigned.
    pub(crate) logs: HashMap<TopicPartition, Vec<Bytes>>,
    /// Errors the leader answers to the next produces of a partition.
    pub(crate) produce_errors: HashMap<TopicPartition, VecDeque<ErrorCode>>,
    /// (broker, partition, batches) of every produce partition seen.
    pub(crate) produce_calls: Vec<(i32, TopicPartition, usize)>,
    /// (broker, partition, fetch offset) of every fetch partition seen.
    pub(crate) fetch_calls: Vec<(i32, TopicPartition, i64)>,
    /// `ProduceStream` calls answered UNIMPLEMENTED, as by a broker from
    /// before it; else each stream message is answered as `Produce`.
    pub(crate) unary_produce_only: bool,
    /// `ProduceStream` calls opened.
    pub(crate) produce_streams: usize,
    /// Log start offsets moved by `DeleteRecords` (0 when absent).
    pub(crate) log_starts: HashMap<TopicPartition, i64>,
    /// (broker, validate only, partitions) of every `DeleteRecords` call.
    pub(crate) delete_records_calls: Vec<(i32, bool, usize)>,
}

impl State {
    fn end_offset(&self, tp: &TopicPartition) -> i64 {
        self.logs
            .get(tp)
            .and_then(|log| log.last())
            .and_then(|b| RecordBatch::from_bytes(b.clone()).ok())
            .map_or(0, |b| b.next_offset())
    }

    fn leader(&self, tp: &TopicPartition) -> Option<(i32, i32)> {
        self.leaders
            .get(&tp.topic)?
            .get(usize::try_from(tp.partition).ok()?)
            .copied()
    }

    fn hint(&self, tp: &TopicPartition) -> Option<pb::LeaderIdAndEpoch> {
        let (id, epoch) = self.leader(tp)?;
        Some(pb::LeaderIdAndEpoch {
            leader_id: id,
            leader_epoch: epoch,
            leader_address: self.brokers.get(&id).cloned().unwrap_or_default(),
        })
    }

    /// The error a broker `id` answers for `tp` as a non-leader, if it is not
    /// the leader (or the topic does not exist).
    fn not_leader(&self, id: i32, tp: &TopicPartition) -> Option<ErrorCode> {
        match self.leader(tp) {
            None => Some(ErrorCode::UnknownTopicOrPartition),
            Some((leader, _)) if leader != id => Some(ErrorCode::NotLeaderOrFollower),
            Some(_) => None,
        }
    }

    /// Appends the concatenated batches of a produce; returns the base offset.
    fn append(&mut self, tp: &TopicPartition, records: Bytes) -> Result<i64, ErrorCode> {
        let (_, epoch) = self.leader(tp).ok_or(ErrorCode::UnknownTopicOrPartition)?;
        let mut next = self.end_offset(tp);
        let base = next;
        let mut batches = Vec::new();
        for batch in BatchIter::new(records) {
            let batch = batch.map_err(|_| ErrorCode::CorruptMessage)?;
            batch.validate().map_err(|_| ErrorCode::CorruptMessage)?;
            let mut bytes = BytesMut::from(&batch.as_bytes()[..]);
            bytes[0..8].copy_from_slice(&next.to_be_bytes());
            bytes[12..16].copy_from_slice(&epoch.to_be_bytes());
            next += i64::from(batch.last_offset_delta()) + 1;
            batches.push(bytes.freeze());
        }
        self.logs.entry(tp.clone()).or_default().extend(batches);
        Ok(base)
    }

    /// Every value written to `tp`, in offset order.
    pub(crate) fn values(&self, tp: &TopicPartition) -> Vec<Bytes> {
        self.logs
            .get(tp)
            .into_iter()
            .flatten()
            .flat_map(|b| {
                RecordBatch::from_bytes(b.clone())
                    .unwrap()
                    .records()
                    .unwrap()
            })
            .filter_map(|r| r.value)
            .collect()
    }
}

/// One broker of the mock cluster.
#[derive(Debug, Clone)]
struct MockBroker {
    id: i32,
    state: Arc<Mutex<State>>,
}

impl MockBroker {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

#[tonic::async_trait]
impl MetadataService for MockBroker {
    async fn metadata(
        &self,
        request: Request<pb::MetadataRequest>,
    ) -> Result<Response<pb::MetadataResponse>, Status> {
        let state = self.state();
        let view = state.advertised.as_ref().unwrap_or(&state.leaders);
        let topics = request
            .into_inner()
            .topics
            .into_iter()
            .map(|name| match view.get(&name) {
                None => pb::TopicMetadata {
                    name,
                    error_code: ErrorCode::UnknownTopicOrPartition as i32,
                    ..Default::default()
                },
                Some(partitions) => pb::TopicMetadata {
                    topic_id: vec![1; 16],
                    partitions: partitions
                        .iter()
                        .zip(0..)
                        .map(
                            |(&(leader, leader_epoch), partition)| pb::PartitionMetadata {
                                partition,
                                leader,
                                leader_epoch,
                                ..Default::default()
                            },
                        )
                        .collect(),
                    name,
                    ..Default::default()
                },
            })
            .collect();
        Ok(Response::new(pb::MetadataResponse {
            cluster_id: "mock".into(),
            controller_id: 1,
            brokers: state
                .brokers
                .iter()
                .map(|(id, address)| pb::BrokerDescription {
                    id: *id,
                    address: address.clone(),
                    ..Default::default()
                })
                .collect(),
            topics,
            metadata_offset: 1,
        }))
    }
}

#[tonic::async_trait]
impl BrokerService for MockBroker {
    async fn produce(
        &self,
        request: Request<pb::ProduceRequest>,
    ) -> Result<Response<pb::ProduceResponse>, Status> {
        let request = request.into_inner();
        let mut state = self.state();
        let mut topics = Vec::new();
        for topic in request.topics {
            let mut partitions = Vec::new();
            for p in topic.partitions {
                let tp = TopicPartition::new(topic.topic.clone(), p.partition);
                let batches = BatchIter::new(p.records.clone()).count();
                state.produce_calls.push((self.id, tp.clone(), batches));
                let scripted = match state.not_leader(self.id, &tp) {
                    Some(code) => Some(code),
                    None => state
                        .produce_errors
                        .get_mut(&tp)
                        .and_then(VecDeque::pop_front),
                };
                let result = match scripted {
                    Some(code) => Err(code),
                    None => state.append(&tp, p.records),
                };
                partitions.push(match result {
                    Ok(base_offset) => pb::ProducePartitionResponse {
                        partition: p.partition,
                        base_offset,
                        log_append_time_ms: -1,
                        ..Default::default()
                    },
                    Err(code) => pb::ProducePartitionResponse {
                        partition: p.partition,
                        error_code: code as i32,
                        error_message: format!(
                            "mock broker {} says {}",
                            self.id,
                            code.as_str_name()
                        ),
                        base_offset: -1,
                        current_leader: state.hint(&tp),
                        ..Default::default()
                    },
                });
            }
            topics.push(pb::ProduceTopicResponse {
                topic: topic.topic,
                partitions,
            });
        }
        Ok(Response::new(pb::ProduceResponse {
            topics,
            throttle_time_ms: 0,
        }))
    }

    type ProduceStreamStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<pb::ProduceStreamResponse, Status>> + Send + 'static>,
    >;

    async fn produce_stream(
        &self,
        request: Request<tonic::Streaming<pb::ProduceStreamRequest>>,
    ) -> Result<Response<Self::ProduceStreamStream>, Status> {
        {
            let mut state = self.state();
            if state.unary_produce_only {
                return Err(Status::unimplemented(
                    "this mock broker serves unary Produce only",
                ));
            }
            state.produce_streams += 1;
        }
        // Each message answered in turn, as `Produce` answers it.
        let answers = futures::stream::unfold(
            (self.clone(), request.into_inner()),
            |(broker, mut inbound)| async move {
                let message = match inbound.message().await {
                    Ok(Some(message)) => message,
                    Ok(None) => return None,
                    Err(status) => return Some((Err(status), (broker, inbound))),
                };
                let answer = match message.request {
                    Some(request) => broker.produce(Request::new(request)).await.map(|r| {
                        pb::ProduceStreamResponse {
                            correlation_id: message.correlation_id,
                            response: Some(r.into_inner()),
                        }
                    }),
                    None => Err(Status::invalid_argument("a message without a request")),
                };
                Some((answer, (broker, inbound)))
            },
        );
        Ok(Response::new(Box::pin(answers)))
    }

    type FetchStreamStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<pb::FetchResponse, Status>> + Send + 'static>,
    >;

    async fn fetch_stream(
        &self,
        _request: Request<tonic::Streaming<pb::FetchRequest>>,
    ) -> Result<Response<Self::FetchStreamStream>, Status> {
        // As a broker before `FetchStream`: the consumer falls back to
        // unary `Fetch`.
        Err(Status::unimplemented(
            "the mock broker serves unary Fetch only",
        ))
    }

    async fn fetch(
        &self,
        request: Request<pb::FetchRequest>,
    ) -> Result<Response<pb::FetchResponse>, Status> {
        let request = request.into_inner();
        let response = {
            let mut state = self.state();
            let mut topics = Vec::new();
            let mut any = false;
            for topic in request.topics {
                let mut partitions = Vec::new();
                for p in topic.partitions {
                    let tp = TopicPartition::new(topic.topic.clone(), p.partition);
                    state
                        .fetch_calls
                        .push((self.id, tp.clone(), p.fetch_offset));
                    let end = state.end_offset(&tp);
                    let epoch = state.leader(&tp).map_or(-1, |(_, e)| e);
                    let fenced = p.current_leader_epoch >= 0 && p.current_leader_epoch < epoch;
                    let error = state.not_leader(self.id, &tp).or(if fenced {
                        Some(ErrorCode::FencedLeaderEpoch)
                    } else if p.fetch_offset > end {
                        Some(ErrorCode::OffsetOutOfRange)
                    } else {
                        None
                    });
                    let mut answer = pb::FetchPartitionResponse {
                        partition: p.partition,
                        high_watermark: end,
                        last_stable_offset: end,
                        log_start_offset: 0,
                        log_end_offset: end,
                        ..Default::default()
                    };
                    if let Some(code) = error {
                        answer.error_code = code as i32;
                        answer.error_message =
                            format!("mock broker {} says {}", self.id, code.as_str_name());
                        answer.current_leader = state.hint(&tp);
                    } else {
                        let mut records = BytesMut::new();
                        for batch in state.logs.get(&tp).into_iter().flatten() {
                            let view = RecordBatch::from_bytes(batch.clone()).unwrap();
                            if view.last_offset() < p.fetch_offset {
                                continue;
                            }
                            if !records.is_empty()
                                && records.len() + batch.len() > p.partition_max_bytes as usize
                            {
                                break;
                            }
                            records.extend_from_slice(batch);
                        }
                        any |= !records.is_empty();
                        answer.records = records.freeze();
                    }
                    partitions.push(answer);
                }
                topics.push(pb::FetchTopicResponse {
                    topic: topic.topic,
                    topic_id: topic.topic_id,
                    partitions,
                });
            }
            (
                any,
                pb::FetchResponse {
                    topics,
                    throttle_time_ms: 0,
                },
            )
        };
        if !response.0 {
            // A short long-poll, so idle consumers do not spin.
            let wait =
                Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0).min(20));
            tokio::time::sleep(wait).await;
        }
        Ok(Response::new(response.1))
    }

    async fn list_offsets(
        &self,
        request: Request<pb::ListOffsetsRequest>,
    ) -> Result<Response<pb::ListOffsetsResponse>, Status> {
        let state = self.state();
        let topics = request
            .into_inner()
            .topics
            .into_iter()
            .map(|topic| pb::ListOffsetsTopicResponse {
                partitions: topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let tp = TopicPartition::new(topic.topic.clone(), p.partition);
                        if let Some(code) = state.not_leader(self.id, &tp) {
                            return pb::ListOffsetsPartitionResponse {
                                partition: p.partition,
                                error_code: code as i32,
                                current_leader: state.hint(&tp),
                                ..Default::default()
                            };
                        }
                        let (offset, timestamp) = match p.timestamp {
                            -2 => (0, -1),
                            -1 => (state.end_offset(&tp), -1),
                            ts => state
                                .logs
                                .get(&tp)
                                .into_iter()
                                .flatten()
                                .flat_map(|b| {
                                    RecordBatch::from_bytes(b.clone())
                                        .unwrap()
                                        .records()
                                        .unwrap()
                                })
                                .find(|r| r.timestamp >= ts)
                                .map_or((-1, -1), |r| (r.offset, r.timestamp)),
                        };
                        pb::ListOffsetsPartitionResponse {
                            partition: p.partition,
                            offset,
                            timestamp,
                            leader_epoch: state.leader(&tp).map_or(-1, |(_, e)| e),
                            ..Default::default()
                        }
                    })
                    .collect(),
                topic: topic.topic,
            })
            .collect();
        Ok(Response::new(pb::ListOffsetsResponse { topics }))
    }

    async fn offsets_for_leader_epoch(
        &self,
        _request: Request<pb::OffsetsForLeaderEpochRequest>,
    ) -> Result<Response<pb::OffsetsForLeaderEpochResponse>, Status> {
        Err(Status::unimplemented("not used by clients"))
    }

    /// As a broker: leaders only, at most the end offset (the mock's high
    /// watermark), -1 for it; `validate_only` changes nothing.
    async fn delete_records(
        &self,
        request: Request<pb::DeleteRecordsRequest>,
    ) -> Result<Response<pb::DeleteRecordsResponse>, Status> {
        let request = request.into_inner();
        let mut state = self.state();
        let count = request.topics.iter().map(|t| t.partitions.len()).sum();
        state
            .delete_records_calls
            .push((self.id, request.validate_only, count));
        let mut topics = Vec::new();
        for topic in request.topics {
            let mut partitions = Vec::new();
            for p in topic.partitions {
                let tp = TopicPartition::new(topic.topic.clone(), p.partition);
                let mut result = pb::DeleteRecordsPartitionResult {
                    partition: p.partition,
                    low_watermark: -1,
                    ..Default::default()
                };
                if let Some(code) = state.not_leader(self.id, &tp) {
                    result.error_code = code as i32;
                    result.current_leader = state.hint(&tp);
                    partitions.push(result);
                    continue;
                }
                let end = state.end_offset(&tp);
                let start = state.log_starts.get(&tp).copied().unwrap_or(0);
                let target = if p.offset == -1 { end } else { p.offset };
                if target < 0 || target > end {
                    result.error_code = ErrorCode::OffsetOutOfRange as i32;
                    result.error_message = format!("valid offsets are {start} to {end}");
                } else {
                    result.low_watermark = target.max(start);
                    if !request.validate_only {
                        state.log_starts.insert(tp, result.low_watermark);
                    }
                }
                partitions.push(result);
            }
            topics.push(pb::DeleteRecordsTopicResult {
                topic: topic.topic,
                partitions,
            });
        }
        Ok(Response::new(pb::DeleteRecordsResponse { topics }))
    }
}

/// Running mock brokers; dropping it stops them.
#[derive(Debug)]
pub(crate) struct MockCluster {
    pub(crate) state: Arc<Mutex<State>>,
    stops: Vec<oneshot::Sender<()>>,
}

impl MockCluster {
    /// Starts `brokers` brokers (ids 1..=brokers) with `leaders`.
    pub(crate) async fn start(brokers: i32, leaders: Leaders) -> Self {
        let state = Arc::new(Mutex::new(State {
            leaders,
            ..State::default()
        }));
        let mut stops = Vec::new();
        for id in 1..=brokers {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap().to_string();
            state.lock().unwrap().brokers.insert(id, address);
            let broker = MockBroker {
                id,
                state: state.clone(),
            };
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(MetadataServiceServer::new(broker.clone()))
                    .add_service(BrokerServiceServer::new(broker))
                    .serve_with_incoming_shutdown(
                        tonic::transport::server::TcpIncoming::from(listener),
                        async {
                            let _ = stopped.await;
                        },
                    ),
            );
        }
        Self { state, stops }
    }

    /// The address of broker `id`.
    pub(crate) fn address(&self, id: i32) -> String {
        self.state.lock().unwrap().brokers[&id].clone()
    }

    /// Locks the shared state.
    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use strom_log::Compression;

    use super::*;
    use crate::producer::partition_for_key;
    use crate::{
        Acks, Consumer, ConsumerConfig, Error, OffsetReset, Producer, ProducerConfig,
        ProducerRecord,
    };

    fn leaders(topic: &str, partitions: &[(i32, i32)]) -> Leaders {
        BTreeMap::from([(topic.to_owned(), partitions.to_vec())])
    }

    fn producer_config(cluster: &MockCluster) -> ProducerConfig {
        let mut config = ProducerConfig::new(&cluster.address(1)).unwrap();
        config.client.retry_backoff = Duration::from_millis(1);
        config.client.retry_backoff_max = Duration::from_millis(5);
        config
    }

    fn consumer_config(cluster: &MockCluster, reset: OffsetReset) -> ConsumerConfig {
        let mut config = ConsumerConfig::new(&cluster.address(1)).unwrap();
        config.client.retry_backoff = Duration::from_millis(1);
        config.client.retry_backoff_max = Duration::from_millis(5);
        config.fetch_max_wait = Duration::from_millis(10);
        config.auto_offset_reset = reset;
        config
    }

    /// Sends `values` to `tp` one after another; returns the offsets.
    async fn produce(
        producer: &Producer,
        tp: &TopicPartition,
        values: &[String],
    ) -> Vec<crate::Result<i64>> {
        let mut deliveries = Vec::new();
        for value in values {
            let record = ProducerRecord::new(tp.topic.clone())
                .partition(tp.partition)
                .value(value.clone());
            deliveries.push(producer.send(record).await.unwrap());
        }
        let mut offsets = Vec::new();
        for delivery in deliveries {
            offsets.push(delivery.await.map(|m| m.offset));
        }
        offsets
    }

    fn values(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("value-{i}")).collect()
    }

    /// Reads until `n` records arrived (a bounded number of polls).
    async fn consume(consumer: &mut Consumer, n: usize) -> Vec<(i64, String)> {
        let mut records = Vec::new();
        for _ in 0..500 {
            if records.len() >= n {
                break;
            }
            for r in consumer.poll(Duration::from_millis(50)).await.unwrap() {
                let value = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
                records.push((r.offset, value));
            }
        }
        records
    }

    #[tokio::test]
    async fn producer_follows_leader_hints_and_keeps_partition_order() {
        let cluster = MockCluster::start(2, leaders("t", &[(2, 5)])).await;
        cluster.state().advertised = Some(leaders("t", &[(1, 4)]));
        let mut config = producer_config(&cluster);
        config.batch_size = 200; // several batches, several per request
        config.compression = Compression::Lz4;
        let producer = Producer::connect(config).await.unwrap();
        let tp = TopicPartition::new("t", 0);
        let offsets = produce(&producer, &tp, &values(50)).await;
        let offsets: Vec<i64> = offsets.into_iter().map(Result::unwrap).collect();
        assert_eq!(offsets, (0..50).collect::<Vec<_>>());
        producer.close().await.unwrap();
        let state = cluster.state();
        let written: Vec<String> = state
            .values(&tp)
            .iter()
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .collect();
        assert_eq!(written, values(50));
        assert_eq!(
            state.produce_calls[0].0, 1,
            "first sent to the stale leader"
        );
        assert!(
            state.produce_calls[1..].iter().all(|(b, _, _)| *b == 2),
            "then only to the hinted one"
        );
        assert!(
            state.produce_calls.iter().any(|(_, _, n)| *n > 1),
            "batches travel together"
        );
    }

    #[tokio::test]
    async fn producer_streams_its_requests_and_falls_back_to_unary_calls() {
        for unary_only in [false, true] {
            let cluster = MockCluster::start(1, leaders("t", &[(1, 0)])).await;
            cluster.state().unary_produce_only = unary_only;
            let mut config = producer_config(&cluster);
            config.linger = Duration::ZERO;
            let producer = Producer::connect(config).await.unwrap();
            let tp = TopicPartition::new("t", 0);
            for round in 0..3 {
                let offsets = produce(&producer, &tp, &values(4)).await;
                let offsets: Vec<i64> = offsets.into_iter().map(Result::unwrap).collect();
                assert_eq!(offsets.len(), 4, "unary only: {unary_only}");
                assert_eq!(offsets[0], round * 4, "unary only: {unary_only}");
            }
            producer.close().await.unwrap();
            let state = cluster.state();
            assert_eq!(state.values(&tp).len(), 12, "unary only: {unary_only}");
            // One stream serves every request; without it, none is open.
            let streams = if unary_only { 0 } else { 1 };
            assert_eq!(state.produce_streams, streams, "unary only: {unary_only}");
        }
    }

    #[tokio::test]
    async fn retriable_errors_are_retried_and_fatal_ones_fail_the_records() {
        let cluster = MockCluster::start(1, leaders("t", &[(1, 0), (1, 0)])).await;
        {
            let mut state = cluster.state();
            let p0 = TopicPartition::new("t", 0);
            let p1 = TopicPartition::new("t", 1);
            state.produce_errors.insert(
                p0,
                VecDeque::from([
                    ErrorCode::NotEnoughReplicas,
                    ErrorCode::NotEnoughReplicasAfterAppend,
                ]),
            );
            state
                .produce_errors
                .insert(p1, VecDeque::from([ErrorCode::CorruptMessage]));
        }
        let producer = Producer::connect(producer_config(&cluster)).await.unwrap();
        let p0 = produce(&producer, &TopicPartition::new("t", 0), &values(3)).await;
        assert_eq!(
            p0.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let p1 = produce(&producer, &TopicPartition::new("t", 1), &values(1)).await;
        let error = p1.into_iter().next().unwrap().unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::CorruptMessage));
        producer.close().await.unwrap();
    }

    #[tokio::test]
    async fn retries_end_at_the_delivery_timeout_naming_the_last_error() {
        let cluster = MockCluster::start(1, leaders("t", &[(1, 0)])).await;
        let tp = TopicPartition::new("t", 0);
        cluster.state().produce_errors.insert(
            tp.clone(),
            VecDeque::from(vec![ErrorCode::NotEnoughReplicas; 100_000]),
        );
        let mut config = producer_config(&cluster);
        config.linger = Duration::ZERO;
        config.client.request_timeout = Duration::from_millis(100);
        config.delivery_timeout = Duration::from_millis(200);
        let producer = Producer::connect(config).await.unwrap();
        let error = produce(&producer, &tp, &values(1))
            .await
            .remove(0)
            .unwrap_err();
        assert_eq!(
            error.code(),
            Some(strom_proto::v1::ErrorCode::RequestTimedOut)
        );
        assert!(
            error
                .to_string()
                .contains("last error: NOT_ENOUGH_REPLICAS"),
            "{error}"
        );
        producer.close().await.unwrap();
        assert!(cluster.state().values(&tp).is_empty());
    }

    #[tokio::test]
    async fn acks_zero_reports_offset_minus_one_and_still_writes() {
        let cluster = MockCluster::start(1, leaders("t", &[(1, 0)])).await;
        let mut config = producer_config(&cluster);
        config.acks = Acks::None;
        let producer = Producer::connect(config).await.unwrap();
        let tp = TopicPartition::new("t", 0);
        let offsets = produce(&producer, &tp, &values(5)).await;
        assert!(offsets.into_iter().all(|o| o.unwrap() == -1));
        producer.close().await.unwrap();
        assert_eq!(cluster.state().values(&tp).len(), 5);
    }

    #[tokio::test]
    async fn callbacks_hear_each_outcome_once_before_close_returns() {
        let cluster = MockCluster::start(1, leaders("t", &[(1, 0), (1, 0)])).await;
        let p1 = TopicPartition::new("t", 1);
        cluster
            .state()
            .produce_errors
            .insert(p1, VecDeque::from([ErrorCode::CorruptMessage]));
        for acks in [Acks::All, Acks::None] {
            let mut config = producer_config(&cluster);
            config.acks = acks;
            config.batch_size = 200;
            let producer = Producer::connect(config).await.unwrap();
            // (partition, value index, outcome), in the order heard.
            type Heard = Vec<(i32, usize, Result<i64, ErrorCode>)>;
            let heard: Arc<Mutex<Heard>> = Arc::default();
            for i in 0..40 {
                let partition = if i % 10 == 9 { 1 } else { 0 };
                let heard = heard.clone();
                let record = ProducerRecord::new("t")
                    .partition(partition)
                    .value(format!("v{i}"));
                producer
                    .send_with_callback(record, move |outcome| {
                        let outcome = outcome.map(|m| m.offset).map_err(|e| e.code().unwrap());
                        heard.lock().unwrap().push((partition, i, outcome));
                        // A panicking callback must not stop the others.
                        assert!(i != 3, "callback 3 panics on purpose");
                    })
                    .await
                    .unwrap();
            }
            producer.close().await.unwrap();
            let mut heard = std::mem::take(&mut *heard.lock().unwrap());
            heard.sort_by_key(|(_, i, _)| *i);
            assert_eq!(heard.len(), 40, "acks {acks:?}: each callback once");
            let mut p0_offsets = Vec::new();
            let mut p1_failed = 0;
            for (partition, i, outcome) in heard {
                match (acks, partition, outcome) {
                    (Acks::None, _, Ok(-1)) | (Acks::All, 1, Ok(_)) => {}
                    (Acks::All, 0, Ok(offset)) => p0_offsets.push(offset),
                    (Acks::All, 1, Err(ErrorCode::CorruptMessage)) => p1_failed += 1,
                    other => panic!("record {i}: unexpected {other:?}"),
                }
            }
            if acks == Acks::All {
                assert!(p1_failed > 0, "the failed batch's records hear the error");
                let first = p0_offsets[0];
                let want: Vec<i64> = (first..first + 36).collect();
                assert_eq!(p0_offsets, want, "partition order kept");
            }
        }
    }

    #[tokio::test]
    async fn keyed_records_land_where_the_java_client_puts_them() {
        let cluster = MockCluster::start(1, leaders("t", &[(1, 0), (1, 0), (1, 0)])).await;
        let producer = Producer::connect(producer_config(&cluster)).await.unwrap();
        for key in ["21", "foobar", "abc", "a-little-bit-long-string"] {
            let delivery = producer
                .send(ProducerRecord::new("t").key(key).value(key))
                .await
                .unwrap();
            let metadata = delivery.await.unwrap();
            assert_eq!(
                metadata.partition,
                partition_for_key(key.as_bytes(), 3),
                "{key}"
            );
        }
        let keyless = producer
            .send(ProducerRecord::new("t").value("x"))
            .await
            .unwrap();
        assert!((0..3).contains(&keyless.await.unwrap().partition));
        producer.close().await.unwrap();
    }

    #[tokio::test]
    async fn send_to_a_missing_topic_fails_after_max_block() {
        let cluster = MockCluster::start(1, leaders("t", &[(1, 0)])).await;
        let mut config = producer_config(&cluster);
        config.max_block = Duration::from_millis(50);
        let producer = Producer::connect(config).await.unwrap();
        let error = producer
            .send(ProducerRecord::new("nope").value("v"))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::UnknownTopicOrPartition));
        assert_eq!(
            error.detail(),
            "topic 'nope' not present in metadata after 50 ms"
        );
        let error = producer
            .send(ProducerRecord::new("t").partition(3).value("v"))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::UnknownTopicOrPartition));
        producer.close().await.unwrap();
    }

    #[tokio::test]
    async fn consumer_reads_in_order_across_a_stale_leader_and_epoch() {
        let cluster = MockCluster::start(2, leaders("t", &[(2, 5)])).await;
        let tp = TopicPartition::new("t", 0);
        let producer = Producer::connect(producer_config(&cluster)).await.unwrap();
        produce(&producer, &tp, &values(30)).await;
        producer.close().await.unwrap();
        // Metadata still names broker 2 but at an old epoch: FENCED_LEADER_EPOCH first.
        cluster.state().advertised = Some(leaders("t", &[(2, 4)]));
        let mut config = consumer_config(&cluster, OffsetReset::Earliest);
        config.max_poll_records = 7;
        let mut consumer = Consumer::connect(config).await.unwrap();
        consumer.assign([tp.clone()]);
        let records = consume(&mut consumer, 30).await;
        let want: Vec<(i64, String)> = values(30)
            .into_iter()
            .zip(0..)
            .map(|(v, o)| (o, v))
            .collect();
        assert_eq!(records, want);
        assert_eq!(consumer.position(&tp).await.unwrap(), 30);
        assert_eq!(consumer.current_lag(&tp), Some(0));
        // Then the leader moves to broker 1 behind metadata's back.
        cluster.state().leaders = leaders("t", &[(1, 6)]);
        consumer.seek(&tp, 10).unwrap();
        let again = consume(&mut consumer, 20).await;
        assert_eq!(again.first().map(|r| r.0), Some(10));
        assert_eq!(again.len(), 20);
        assert!(cluster.state().fetch_calls.iter().any(|(b, _, _)| *b == 1));
    }

    #[tokio::test]
    async fn out_of_range_positions_reset_or_fail_by_policy() {
        let cluster = MockCluster::start(1, leaders("t", &[(1, 0)])).await;
        let tp = TopicPartition::new("t", 0);
        let producer = Producer::connect(producer_config(&cluster)).await.unwrap();
        produce(&producer, &tp, &values(20)).await;
        producer.close().await.unwrap();

        let mut strict = Consumer::connect(consumer_config(&cluster, OffsetReset::None))
            .await
            .unwrap();
        strict.assign([tp.clone()]);
        let error = strict.poll(Duration::from_millis(10)).await.unwrap_err();
        assert!(
            matches!(error, Error::InvalidArgument(_)),
            "no position: {error}"
        );
        strict.seek(&tp, 100).unwrap();
        let mut error = None;
        for _ in 0..100 {
            if let Err(e) = strict.poll(Duration::from_millis(50)).await {
                error = Some(e);
                break;
            }
        }
        let error = error.expect("out of range surfaces");
        assert_eq!(error.code(), Some(ErrorCode::OffsetOutOfRange));
        assert!(
            error.to_string().ends_with("valid offsets are 0 to 20"),
            "{error}"
        );

        let mut lenient = Consumer::connect(consumer_config(&cluster, OffsetReset::Earliest))
            .await
            .unwrap();
        lenient.assign([tp.clone()]);
        lenient.seek(&tp, 100).unwrap();
        let records = consume(&mut lenient, 20).await;
        assert_eq!(records.first().map(|r| r.0), Some(0));
    }

    #[tokio::test]
    async fn offsets_queries_and_seeks_by_position_and_time() {
        let cluster = MockCluster::start(1, leaders("t", &[(1, 0)])).await;
        let tp = TopicPartition::new("t", 0);
        let producer = Producer::connect(producer_config(&cluster)).await.unwrap();
        for (i, value) in values(10).into_iter().enumerate() {
            let record = ProducerRecord::new("t")
                .partition(0)
                .value(value)
                .timestamp(1_000 + i as i64 * 10);
            producer.send(record).await.unwrap().await.unwrap();
        }
        producer.close().await.unwrap();
        let mut consumer = Consumer::connect(consumer_config(&cluster, OffsetReset::Latest))
            .await
            .unwrap();
        assert_eq!(
            consumer
                .beginning_offsets(std::slice::from_ref(&tp))
                .await
                .unwrap()[&tp],
            0
        );
        assert_eq!(
            consumer
                .end_offsets(std::slice::from_ref(&tp))
                .await
                .unwrap()[&tp],
            10
        );
        let found = consumer
            .offsets_for_times([(tp.clone(), 1_045)])
            .await
            .unwrap();
        assert_eq!(
            found[&tp].map(|f| (f.offset, f.timestamp)),
            Some((5, 1_050))
        );
        let none = consumer
            .offsets_for_times([(tp.clone(), 9_999)])
            .await
            .unwrap();
        assert_eq!(none[&tp], None);
        consumer.assign([tp.clone()]);
        assert_eq!(
            consumer.position(&tp).await.unwrap(),
            10,
            "latest by default"
        );
        consumer.seek_to_timestamp(&tp, 1_071).await.unwrap();
        assert_eq!(consumer.position(&tp).await.unwrap(), 8);
        consumer.seek_to_beginning(&[]).unwrap();
        assert_eq!(consumer.position(&tp).await.unwrap(), 0);
        let error = consumer
            .end_offsets(&[TopicPartition::new("missing", 0)])
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::UnknownTopicOrPartition));
    }

    #[tokio::test]
    async fn admin_deletes_records_at_the_leaders_after_checking_every_partition() {
        use crate::{Admin, ClientConfig, DeletedRecords};

        // t-0 moved to broker 2 (metadata still says 1); t-1 is on 1.
        let cluster = MockCluster::start(2, leaders("t", &[(2, 5), (1, 3)])).await;
        let (t0, t1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        let producer = Producer::connect(producer_config(&cluster)).await.unwrap();
        for tp in [&t0, &t1] {
            let offsets = produce(&producer, tp, &values(10)).await;
            assert!(offsets.iter().all(Result::is_ok));
        }
        producer.close().await.unwrap();
        cluster.state().advertised = Some(leaders("t", &[(1, 4), (1, 3)]));
        let admin = Admin::connect(ClientConfig {
            bootstrap_servers: vec![cluster.address(1)],
            retry_backoff: Duration::from_millis(1),
            retry_backoff_max: Duration::from_millis(5),
            ..ClientConfig::default()
        })
        .await
        .unwrap();

        // One partition beyond its high watermark: nothing is deleted.
        let err = admin
            .delete_records(BTreeMap::from([(t0.clone(), 4), (t1.clone(), 11)]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::OffsetOutOfRange), "{err}");
        assert!(
            err.to_string().contains("valid offsets are 0 to 10"),
            "{err}"
        );
        let err = admin
            .delete_records(BTreeMap::from([(TopicPartition::new("nope", 0), 1)]))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(ErrorCode::UnknownTopicOrPartition),
            "{err}"
        );
        let err = admin
            .delete_records(BTreeMap::from([(TopicPartition::new("t", 7), 1)]))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(ErrorCode::UnknownTopicOrPartition),
            "{err}"
        );
        assert!(cluster.state().log_starts.is_empty(), "nothing changed");
        assert!(
            cluster.state().delete_records_calls.iter().all(|c| c.1),
            "refused requests were only checked"
        );

        // Both valid: t-0 reaches its leader through the hint, -1 is the
        // high watermark.
        cluster.state().delete_records_calls.clear();
        let done = admin
            .delete_records(BTreeMap::from([(t0.clone(), 4), (t1.clone(), -1)]))
            .await
            .unwrap();
        assert_eq!(
            done,
            [
                DeletedRecords {
                    topic: "t".into(),
                    partition: 0,
                    low_watermark: 4
                },
                DeletedRecords {
                    topic: "t".into(),
                    partition: 1,
                    low_watermark: 10
                },
            ]
        );
        let state = cluster.state();
        assert_eq!(state.log_starts, HashMap::from([(t0, 4), (t1, 10)]));
        let calls = &state.delete_records_calls;
        let first_delete = calls.iter().position(|c| !c.1).unwrap();
        assert!(
            calls[..first_delete].iter().all(|c| c.1),
            "checks come first: {calls:?}"
        );
        assert!(calls[first_delete..].iter().all(|c| !c.1), "{calls:?}");
        assert!(
            calls[first_delete..].iter().any(|c| c.0 == 2),
            "t-0 deleted at broker 2: {calls:?}"
        );
    }
}
