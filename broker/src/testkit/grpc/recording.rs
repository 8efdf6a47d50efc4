//! [`Recorded`]: the real `BrokerService` of one broker behind a thin
//! layer that writes down, in a shared [`CallLog`], which calls reached it
//! and what it answered for each partition; and that can answer
//! `ProduceStream` with UNIMPLEMENTED, as a broker from before that RPC
//! does. Every call is served by the wrapped [`BrokerServiceImpl`].

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::{Stream, StreamExt};
use strom_proto::v1::broker_service_server::BrokerService;
use strom_proto::v1::{
    DeleteRecordsRequest, DeleteRecordsResponse, DescribeProducersRequest,
    DescribeProducersResponse, ErrorCode, FetchRequest, FetchResponse, InitProducerIdRequest,
    InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse, OffsetsForLeaderEpochRequest,
    OffsetsForLeaderEpochResponse, ProduceRequest, ProduceResponse, ProduceStreamRequest,
    ProduceStreamResponse,
};
use tonic::{Request, Response, Status, Streaming};

use crate::grpc::BrokerServiceImpl;
use crate::grpc::traffic::count_records;

/// A `BrokerService` RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rpc {
    /// Unary `Produce`.
    Produce,
    /// `ProduceStream` (one call per stream; its answers are recorded one
    /// by one).
    ProduceStream,
    /// Unary `Fetch`.
    Fetch,
    /// `FetchStream` (one call per stream; its answers are recorded one by
    /// one).
    FetchStream,
    /// `ListOffsets`.
    ListOffsets,
    /// `OffsetsForLeaderEpoch`.
    OffsetsForLeaderEpoch,
    /// `InitProducerId`.
    InitProducerId,
    /// `DeleteRecords` (`validate_only` or for real).
    DeleteRecords {
        /// The request only checked.
        validate_only: bool,
    },
}

/// A call that reached a broker's real service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The broker that served it.
    pub broker: i32,
    /// The RPC.
    pub rpc: Rpc,
}

/// One partition of an answer a broker sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    /// The broker that answered.
    pub broker: i32,
    /// The RPC answered (a stream's answers name the stream).
    pub rpc: Rpc,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The partition's error code.
    pub error: ErrorCode,
    /// Records the answer carried (fetches; 0 for other RPCs).
    pub records: u64,
}

#[derive(Debug, Default)]
struct Log {
    calls: Vec<Call>,
    answers: Vec<Answered>,
}

/// Every call and answer of the brokers of a cluster, in the order they
/// happened.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    inner: Arc<Mutex<Log>>,
}

impl CallLog {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// How many `rpc` calls reached a broker.
    pub fn count(&self, rpc: Rpc) -> usize {
        self.lock().calls.iter().filter(|c| c.rpc == rpc).count()
    }

    /// The answers so far for `topic`-`partition`.
    pub fn answers(&self, topic: &str, partition: i32) -> Vec<Answered> {
        self.lock()
            .answers
            .iter()
            .filter(|a| a.topic == topic && a.partition == partition)
            .cloned()
            .collect()
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        *self.lock() = Log::default();
    }

    fn call(&self, broker: i32, rpc: Rpc) {
        self.lock().calls.push(Call { broker, rpc });
    }

    fn produced(&self, broker: i32, rpc: Rpc, response: &ProduceResponse) {
        let mut log = self.lock();
        for t in &response.topics {
            for p in &t.partitions {
                log.answers.push(Answered {
                    broker,
                    rpc,
                    topic: t.topic.clone(),
                    partition: p.partition,
                    error: code(p.error_code),
                    records: 0,
                });
            }
        }
    }

    fn fetched(&self, broker: i32, rpc: Rpc, response: &FetchResponse) {
        let mut log = self.lock();
        for t in &response.topics {
            for p in &t.partitions {
                log.answers.push(Answered {
                    broker,
                    rpc,
                    topic: t.topic.clone(),
                    partition: p.partition,
                    error: code(p.error_code),
                    records: count_records(&p.records),
                });
            }
        }
    }

    fn listed(&self, broker: i32, response: &ListOffsetsResponse) {
        let mut log = self.lock();
        for t in &response.topics {
            for p in &t.partitions {
                log.answers.push(Answered {
                    broker,
                    rpc: Rpc::ListOffsets,
                    topic: t.topic.clone(),
                    partition: p.partition,
                    error: code(p.error_code),
                    records: 0,
                });
            }
        }
    }

    fn deleted(&self, broker: i32, rpc: Rpc, response: &DeleteRecordsResponse) {
        let mut log = self.lock();
        for t in &response.topics {
            for p in &t.partitions {
                log.answers.push(Answered {
                    broker,
                    rpc,
                    topic: t.topic.clone(),
                    partition: p.partition,
                    error: code(p.error_code),
                    records: 0,
                });
            }
        }
    }
}

fn code(value: i32) -> ErrorCode {
    ErrorCode::try_from(value).unwrap_or(ErrorCode::UnknownServerError)
}

/// Broker `broker`'s real `BrokerService`, recorded.
#[derive(Debug, Clone)]
pub struct Recorded {
    broker: i32,
    inner: BrokerServiceImpl,
    log: CallLog,
    /// Cleared: `ProduceStream` is answered UNIMPLEMENTED.
    produce_stream: Arc<AtomicBool>,
}

impl Recorded {
    /// Records `inner`, broker `broker`'s service, into `log`; serves
    /// `ProduceStream` while `produce_stream` is set.
    pub fn new(
        broker: i32,
        inner: BrokerServiceImpl,
        log: CallLog,
        produce_stream: Arc<AtomicBool>,
    ) -> Self {
        Self {
            broker,
            inner,
            log,
            produce_stream,
        }
    }
}

type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl BrokerService for Recorded {
    async fn produce(
        &self,
        req: Request<ProduceRequest>,
    ) -> Result<Response<ProduceResponse>, Status> {
        self.log.call(self.broker, Rpc::Produce);
        let resp = self.inner.produce(req).await?;
        self.log.produced(self.broker, Rpc::Produce, resp.get_ref());
        Ok(resp)
    }

    type ProduceStreamStream = Answers<ProduceStreamResponse>;

    async fn produce_stream(
        &self,
        req: Request<Streaming<ProduceStreamRequest>>,
    ) -> Result<Response<Self::ProduceStreamStream>, Status> {
        if !self.produce_stream.load(Ordering::Relaxed) {
            return Err(Status::unimplemented(
                "this broker serves unary Produce only, as one from before ProduceStream",
            ));
        }
        self.log.call(self.broker, Rpc::ProduceStream);
        let (broker, log) = (self.broker, self.log.clone());
        let answers = self.inner.produce_stream(req).await?.into_inner();
        Ok(Response::new(Box::pin(answers.inspect(move |answer| {
            if let Ok(ProduceStreamResponse {
                response: Some(r), ..
            }) = answer
            {
                log.produced(broker, Rpc::ProduceStream, r);
            }
        }))))
    }

    async fn fetch(&self, req: Request<FetchRequest>) -> Result<Response<FetchResponse>, Status> {
        self.log.call(self.broker, Rpc::Fetch);
        let resp = self.inner.fetch(req).await?;
        self.log.fetched(self.broker, Rpc::Fetch, resp.get_ref());
        Ok(resp)
    }

    type FetchStreamStream = Answers<FetchResponse>;

    async fn fetch_stream(
        &self,
        req: Request<Streaming<FetchRequest>>,
    ) -> Result<Response<Self::FetchStreamStream>, Status> {
        self.log.call(self.broker, Rpc::FetchStream);
        let (broker, log) = (self.broker, self.log.clone());
        let answers = self.inner.fetch_stream(req).await?.into_inner();
        Ok(Response::new(Box::pin(answers.inspect(move |answer| {
            if let Ok(r) = answer {
                log.fetched(broker, Rpc::FetchStream, r);
            }
        }))))
    }

    async fn list_offsets(
        &self,
        req: Request<ListOffsetsRequest>,
    ) -> Result<Response<ListOffsetsResponse>, Status> {
        self.log.call(self.broker, Rpc::ListOffsets);
        let resp = self.inner.list_offsets(req).await?;
        self.log.listed(self.broker, resp.get_ref());
        Ok(resp)
    }

    async fn offsets_for_leader_epoch(
        &self,
        req: Request<OffsetsForLeaderEpochRequest>,
    ) -> Result<Response<OffsetsForLeaderEpochResponse>, Status> {
        self.log.call(self.broker, Rpc::OffsetsForLeaderEpoch);
        self.inner.offsets_for_leader_epoch(req).await
    }

    async fn delete_records(
        &self,
        req: Request<DeleteRecordsRequest>,
    ) -> Result<Response<DeleteRecordsResponse>, Status> {
        let rpc = Rpc::DeleteRecords {
            validate_only: req.get_ref().validate_only,
        };
        self.log.call(self.broker, rpc);
        let resp = self.inner.delete_records(req).await?;
        self.log.deleted(self.broker, rpc, resp.get_ref());
        Ok(resp)
    }

    async fn init_producer_id(
        &self,
        req: Request<InitProducerIdRequest>,
    ) -> Result<Response<InitProducerIdResponse>, Status> {
        self.log.call(self.broker, Rpc::InitProducerId);
        self.inner.init_producer_id(req).await
    }

    async fn describe_producers(
        &self,
        req: Request<DescribeProducersRequest>,
    ) -> Result<Response<DescribeProducersResponse>, Status> {
        self.inner.describe_producers(req).await
    }
}
