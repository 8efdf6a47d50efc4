//! `BrokerService`: the data plane's gRPC surface; each RPC lives in its
//! own file.

use std::sync::Arc;

use strom_proto::v1::broker_service_server::BrokerService;
use strom_proto::v1::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetsForLeaderEpochRequest, OffsetsForLeaderEpochResponse, ProduceRequest, ProduceResponse,
};
use tonic::{Request, Response, Status};

use super::traffic::Traffic;
use crate::replica::ReplicaManager;

/// Serves produce, fetch and offsets from the local replicas.
#[derive(Debug, Clone)]
pub struct BrokerServiceImpl {
    replicas: Arc<ReplicaManager>,
    traffic: Arc<Traffic>,
}

impl BrokerServiceImpl {
    /// Serves `replicas`.
    pub fn new(replicas: Arc<ReplicaManager>) -> Self {
        Self {
            replicas,
            traffic: Arc::default(),
        }
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
        let req = req.into_inner();
        let sizes = Traffic::produce_sizes(&req);
        let resp = super::produce::produce(&self.replicas, req).await;
        self.traffic.record_produce(&sizes, &resp);
        Ok(Response::new(resp))
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

    async fn list_offsets(
        &self,
        req: Request<ListOffsetsRequest>,
    ) -> Result<Response<ListOffsetsResponse>, Status> {
        Ok(Response::new(super::list_offsets::list_offsets(
            &self.replicas,
            req.into_inner(),
        )))
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
}
