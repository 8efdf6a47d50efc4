//! The server side of `RaftService`: hands peers' requests to openraft.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::Serialize;
use strom_proto::StromError;
use strom_proto::v1::raft_service_server::RaftService;
use strom_proto::v1::{ErrorCode, RaftMessage};
use tonic::{Request, Response, Status};

use super::types::{NodeId, Raft};

/// Serves Raft RPCs for one controller.
#[derive(Clone)]
pub struct RaftServiceImpl {
    raft: Raft,
    node_id: NodeId,
    fingerprint: u64,
    /// When a refusal was last logged (ms since the epoch), to log a peer
    /// that keeps knocking once per interval, not per request.
    last_warned_ms: Arc<AtomicI64>,
}

impl std::fmt::Debug for RaftServiceImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftServiceImpl").finish_non_exhaustive()
    }
}

impl RaftServiceImpl {
    /// Serves `raft` as node `node_id` of the quorum with `fingerprint`
    /// ([`super::quorum_fingerprint`]).
    pub fn new(raft: Raft, node_id: NodeId, fingerprint: u64) -> Self {
        Self {
            raft,
            node_id,
            fingerprint,
            last_warned_ms: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }

    /// Checks that a request comes from this quorum and is meant for this
    /// node before openraft sees it (Kafka's INCONSISTENT_CLUSTER_ID): a
    /// leader of another cluster that reaches a reused address must not be
    /// able to move this node's term or log.
    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<T, Status> {
        let msg = req.into_inner();
        let refusal = if msg.quorum_fingerprint != self.fingerprint {
            Some(format!(
                "raft request from a controller of another quorum (voter-set fingerprint \
                 {:016x}, this quorum's is {:016x}); every controller must be configured \
                 with the same controller.quorum.voters",
                msg.quorum_fingerprint, self.fingerprint
            ))
        } else if i64::from(msg.target_id) != i64::try_from(self.node_id).unwrap_or(-1) {
            Some(format!(
                "raft request meant for node {}, but this is node {}",
                msg.target_id, self.node_id
            ))
        } else {
            None
        };
        if let Some(message) = refusal {
            self.warn_throttled(&message);
            return Err(StromError::new(ErrorCode::InconsistentClusterId, message).to_status());
        }
        bincode::deserialize(&msg.payload)
            .map_err(|e| Status::invalid_argument(format!("malformed raft message: {e}")))
    }

    fn warn_throttled(&self, message: &str) {
        const EVERY_MS: i64 = 10_000;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let last = self.last_warned_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= EVERY_MS
            && self
                .last_warned_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(error = message, "refused raft request");
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Response<RaftMessage>, Status> {
    bincode::serialize(value)
        .map(|payload| {
            Response::new(RaftMessage {
                payload,
                ..Default::default()
            })
        })
        .map_err(|e| Status::internal(format!("encode raft response: {e}")))
}

#[tonic::async_trait]
impl RaftService for RaftServiceImpl {
    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let result = self.raft.vote(self.decode(req)?).await;
        encode(&result)
    }

    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let result = self.raft.append_entries(self.decode(req)?).await;
        encode(&result)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let result = self.raft.install_snapshot(self.decode(req)?).await;
        encode(&result)
    }
}
