//! `BrokerService`: the data plane's gRPC surface; each RPC lives in its
//! own file.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use strom_proto::v1::broker_service_server::BrokerService;
use strom_proto::v1::{
    DeleteRecordsRequest, DeleteRecordsResponse, DescribeProducersRequest,
    DescribeProducersResponse, FetchRequest, FetchResponse, InitProducerIdRequest,
    InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse, OffsetsForLeaderEpochRequest,
    OffsetsForLeaderEpochResponse, ProduceRequest, ProduceResponse, ProduceStreamRequest,
    ProduceStreamResponse,
};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use super::traffic::Traffic;
use crate::replica::ReplicaManager;
use crate::txn::TxnCoordinatorRef;

/// Serves produce, fetch and offsets from the local replicas.
#[derive(Debug, Clone)]
pub struct BrokerServiceImpl {
    replicas: Arc<ReplicaManager>,
    transactions: Option<TxnCoordinatorRef>,
    traffic: Arc<Traffic>,
    closing: CancellationToken,
}

impl BrokerServiceImpl {
    /// Serves `replicas`. When `closing` is cancelled (the server shuts
    /// down) the long-lived `ProduceStream`s and `FetchStream`s end, so a
    /// graceful shutdown does not wait on clients that keep them open.
    pub fn new(replicas: Arc<ReplicaManager>, closing: CancellationToken) -> Self {
        Self {
            replicas,
            transactions: None,
            traffic: Arc::default(),
            closing,
        }
    }

    /// Serves InitProducerId with a transactional id from `coordinator`
    /// (without one, such requests are refused).
    pub fn with_transactions(mut self, coordinator: TxnCoordinatorRef) -> Self {
        self.transactions = Some(coordinator);
        self
    }

    /// Bytes and records in and out, for metrics.
    pub fn traffic(&self) -> Arc<Traffic> {
        self.traffic.clone()
    }
}

#[tonic::async_trait]
impl BrokerService for BrokerServiceImpl {
    async fn produce(
        &self,
        req: Request<ProduceRequest>,
    ) -> Result<Response<ProduceResponse>, Status> {
        let arrived = Instant::now();
        let req = req.into_inner();
        let sizes = Traffic::produce_sizes(&req);
        let resp = super::produce::produce(&self.replicas, req).await;
        self.traffic.record_produce(&sizes, &resp, arrived);
        Ok(Response::new(resp))
    }

    type ProduceStreamStream =
        Pin<Box<dyn Stream<Item = Result<ProduceStreamResponse, Status>> + Send + 'static>>;

    async fn produce_stream(
        &self,
        req: Request<Streaming<ProduceStreamRequest>>,
    ) -> Result<Response<Self::ProduceStreamStream>, Status> {
        Ok(Response::new(Box::pin(super::produce::produce_stream(
            self.replicas.clone(),
            self.traffic.clone(),
            req.into_inner(),
            self.closing.clone(),
        ))))
    }

    async fn fetch(&self, req: Request<FetchRequest>) -> Result<Response<FetchResponse>, Status> {
        let req = req.into_inner();
        let replica_id = req.replica_id;
        let resp = super::fetch::fetch(&self.replicas, req)
            .await
            .map_err(Status::from)?;
        self.traffic.record_fetch(replica_id, &resp);
        Ok(Response::new(resp))
    }

    type FetchStreamStream =
        Pin<Box<dyn Stream<Item = Result<FetchResponse, Status>> + Send + 'static>>;

    async fn fetch_stream(
        &self,
        req: Request<Streaming<FetchRequest>>,
    ) -> Result<Response<Self::FetchStreamStream>, Status> {
        let replicas = self.replicas.clone();
        let traffic = self.traffic.clone();
        // One request at a time, answered in order; the first rejected
        // request ends the stream with its status. When the client goes
        // away, hyper drops this stream and with it any fetch still
        // waiting; when the server shuts down, the stream ends.
        let responses = futures::stream::unfold(Some(req.into_inner()), move |inbound| {
            let replicas = replicas.clone();
            let traffic = traffic.clone();
            async move {
                let mut inbound = inbound?;
                let req = match inbound.message().await {
                    Ok(Some(req)) => req,
                    Ok(None) => return None,
                    Err(status) => return Some((Err(status), None)),
                };
                let replica_id = req.replica_id;
                match super::fetch::fetch(&replicas, req).await {
                    Ok(resp) => {
                        traffic.record_fetch(replica_id, &resp);
                        Some((Ok(resp), Some(inbound)))
                    }
                    Err(e) => Some((Err(Status::from(e)), None)),
                }
            }
        })
        .take_until(self.closing.clone().cancelled_owned());
        Ok(Response::new(Box::pin(responses)))
    }

    async fn list_offsets(
        &self,
        req: Request<ListOffsetsRequest>,
    ) -> Result<Response<ListOffsetsResponse>, Status> {
        let resp = super::list_offsets::list_offsets(&self.replicas, req.into_inner())?;
        Ok(Response::new(resp))
    }

    async fn offsets_for_leader_epoch(
        &self,
        req: Request<OffsetsForLeaderEpochRequest>,
    ) -> Result<Response<OffsetsForLeaderEpochResponse>, Status> {
        Ok(Response::new(
            super::offsets_for_leader_epoch::offsets_for_leader_epoch(
                &self.replicas,
                req.into_inner(),
            ),
        ))
    }

    async fn delete_records(
        &self,
        req: Request<DeleteRecordsRequest>,
    ) -> Result<Response<DeleteRecordsResponse>, Status> {
        Ok(Response::new(
            super::delete_records::delete_records(&self.replicas, req.into_inner()).await,
        ))
    }

    async fn init_producer_id(
        &self,
        req: Request<InitProducerIdRequest>,
    ) -> Result<Response<InitProducerIdResponse>, Status> {
        Ok(Response::new(
            super::init_producer_id::init_producer_id(
                &self.replicas,
                self.transactions.as_ref(),
                req.into_inner(),
            )
            .await,
        ))
    }

    async fn describe_producers(
        &self,
        req: Request<DescribeProducersRequest>,
    ) -> Result<Response<DescribeProducersResponse>, Status> {
        Ok(Response::new(
            super::describe_producers::describe_producers(&self.replicas, req.into_inner()).await,
        ))
    }
}
