//! `RecordsService` on the client port.

use std::sync::Arc;

use strom_proto::v1::records_service_server::RecordsService;
use strom_proto::v1::{
    ConsumeRecordsRequest, ConsumeRecordsResponse, ProduceRecordsRequest, ProduceResponse,
};
use tonic::{Request, Response, Status};

use crate::replica::ReplicaManager;

/// Serves `ProduceRecords` and `ConsumeRecords` from the local replicas.
#[derive(Debug, Clone)]
pub struct RecordsServiceImpl {
    replicas: Arc<ReplicaManager>,
}

impl RecordsServiceImpl {
    /// Serves `replicas`.
    pub fn new(replicas: Arc<ReplicaManager>) -> Self {
        Self { replicas }
    }
}

#[tonic::async_trait]
impl RecordsService for RecordsServiceImpl {
    async fn produce_records(
        &self,
        req: Request<ProduceRecordsRequest>,
    ) -> Result<Response<ProduceResponse>, Status> {
        Ok(Response::new(
            super::produce_records::produce_records(&self.replicas, req.into_inner()).await,
        ))
    }

    async fn consume_records(
        &self,
        req: Request<ConsumeRecordsRequest>,
    ) -> Result<Response<ConsumeRecordsResponse>, Status> {
        super::consume_records::consume_records(&self.replicas, req.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
}
