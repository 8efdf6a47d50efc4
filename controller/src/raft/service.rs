//! The server side of `RaftService`: hands peers' requests to openraft.

use serde::Serialize;
use strom_proto::v1::RaftMessage;
use strom_proto::v1::raft_service_server::RaftService;
use tonic::{Request, Response, Status};

use super::types::Raft;

/// Serves Raft RPCs for one controller.
#[derive(Clone)]
pub struct RaftServiceImpl {
    raft: Raft,
}

impl std::fmt::Debug for RaftServiceImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftServiceImpl").finish_non_exhaustive()
    }
}

impl RaftServiceImpl {
    /// Serves `raft`.
    pub fn new(raft: Raft) -> Self {
        Self { raft }
    }
}

fn decode<T: serde::de::DeserializeOwned>(req: Request<RaftMessage>) -> Result<T, Status> {
    bincode::deserialize(&req.into_inner().payload)
        .map_err(|e| Status::invalid_argument(format!("malformed raft message: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Response<RaftMessage>, Status> {
    bincode::serialize(value)
        .map(|payload| Response::new(RaftMessage { payload }))
        .map_err(|e| Status::internal(format!("encode raft response: {e}")))
}

#[tonic::async_trait]
impl RaftService for RaftServiceImpl {
    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let result = self.raft.vote(decode(req)?).await;
        encode(&result)
    }

    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let result = self.raft.append_entries(decode(req)?).await;
        encode(&result)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let result = self.raft.install_snapshot(decode(req)?).await;
        encode(&result)
    }
}
