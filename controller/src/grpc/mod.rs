//! `ControllerService` over gRPC: one file per RPC, routing here.
//!
//! Writes and reads that need the leader's view are served locally when this
//! node is the active controller, otherwise forwarded once to the leader
//! (marked with the `x-strom-forwarded` header so they never bounce), or
//! answered NOT_CONTROLLER with the leader's address.

mod allocate_producer_ids;
mod alter_broker_decommission;
mod alter_partition;
mod alter_partition_reassignments;
mod broker_heartbeat;
mod controlled_shutdown;
mod create_partitions;
mod create_topics;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_topics;
mod elect_leaders;
mod incremental_alter_configs;
mod list_partition_reassignments;
mod register_broker;
mod unregister_broker;
mod watch_metadata;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use futures::Stream;
use strom_proto::v1::controller_service_client::ControllerServiceClient;
use strom_proto::v1::controller_service_server::ControllerService;
use strom_proto::v1::*;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::Controller;
use crate::error::ControllerError;

const FORWARDED_HEADER: &str = "x-strom-forwarded";

/// The gRPC face of a [`Controller`].
#[derive(Debug, Clone)]
pub struct ControllerGrpc {
    ctl: Controller,
    peers: std::sync::Arc<Mutex<HashMap<String, ControllerServiceClient<Channel>>>>,
}

impl ControllerGrpc {
    /// Serves `ctl`.
    pub fn new(ctl: Controller) -> Self {
        Self {
            ctl,
            peers: Default::default(),
        }
    }

    /// A connection to the leader at `addr`. A cached channel is reused
    /// while it works; otherwise a new connection is made eagerly, so that a
    /// dead leader fails the forward at once (connection refused) instead of
    /// stalling it while a lazy channel keeps reconnecting.
    async fn peer(&self, addr: &str) -> Result<ControllerServiceClient<Channel>, Status> {
        if let Some(c) = self
            .peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(addr)
        {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| Status::internal(format!("bad controller address {addr}: {e}")))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            // A leader that vanished without closing the connection (cut
            // off, paused, powered off) must fail the forward within a few
            // seconds, not after TCP gives up; the caller then retries on
            // the new leader.
            .http2_keep_alive_interval(crate::quorum_client::KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(crate::quorum_client::KEEP_ALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| Status::unavailable(format!("cannot reach leader {addr}: {e}")))?;
        let client = ControllerServiceClient::new(channel)
            .max_decoding_message_size(strom_proto::MAX_CONTROL_MESSAGE_BYTES)
            .max_encoding_message_size(strom_proto::MAX_CONTROL_MESSAGE_BYTES);
        self.peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(addr.to_owned(), client.clone());
        Ok(client)
    }

    /// Drops the cached connection to `addr` after it failed, so that the
    /// next forward dials afresh.
    fn forget_peer(&self, addr: &str) {
        self.peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(addr);
    }

    /// Serves `req` locally when leading, else forwards it to the leader.
    async fn route<Req, Resp>(
        &self,
        req: Request<Req>,
        local: impl AsyncFnOnce(Req) -> Result<Resp, ControllerError>,
        remote: impl AsyncFnOnce(
            ControllerServiceClient<Channel>,
            Request<Req>,
        ) -> Result<Response<Resp>, Status>,
    ) -> Result<Response<Resp>, Status> {
        if self.ctl.is_leader() {
            return match local(req.into_inner()).await {
                Ok(resp) => Ok(Response::new(resp)),
                Err(e) => Err(e.into()),
            };
        }
        let leader = self.ctl.leader();
        let not_controller = || {
            Status::from(ControllerError::NotController {
                leader: leader.clone(),
            })
        };
        if req.metadata().contains_key(FORWARDED_HEADER) {
            return Err(not_controller());
        }
        let Some((_, addr)) = &leader else {
            return Err(not_controller());
        };
        // The leader we know of did not answer: pointing the client at it
        // would only make it wait on the same dead node, so the answer
        // names no leader and the client retries here, by when this node
        // may know the new one.
        let unreachable_leader = || Status::from(ControllerError::NotController { leader: None });
        let client = match self.peer(addr).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(leader = %addr, error = %e, "leader unreachable");
                return Err(unreachable_leader());
            }
        };
        let deadline = self.ctl.config().request_timeout;
        let mut forwarded = Request::new(req.into_inner());
        forwarded.metadata_mut().insert(
            FORWARDED_HEADER,
            tonic::metadata::MetadataValue::from_static("1"),
        );
        forwarded.set_timeout(deadline);
        match tokio::time::timeout(deadline, remote(client, forwarded)).await {
            Ok(Ok(resp)) => Ok(resp),
            // The leader answered with a typed error: pass it through.
            Ok(Err(status))
                if status.code() != tonic::Code::Unavailable
                    && status.code() != tonic::Code::Unknown =>
            {
                Err(status)
            }
            Ok(Err(status)) => {
                tracing::debug!(leader = ?leader, error = %status, "forwarding to leader failed");
                self.forget_peer(addr);
                Err(unreachable_leader())
            }
            Err(_elapsed) => {
                tracing::debug!(leader = ?leader, "forwarding to leader timed out");
                self.forget_peer(addr);
                Err(unreachable_leader())
            }
        }
    }
}

/// The per-item outcome of a batch RPC: like Kafka, each item gets its own
/// code, but a lost leadership fails the whole request so that the client
/// retries it on the new leader.
fn item_error(e: ControllerError) -> Result<(i32, String), ControllerError> {
    match e {
        e @ ControllerError::NotController { .. } => Err(e),
        e => {
            let strom = e.to_strom();
            Ok((strom.code as i32, strom.message))
        }
    }
}

fn missing(field: &str) -> ControllerError {
    ControllerError::InvalidRequest(format!("missing or invalid field '{field}'"))
}

type WatchStream =
    Pin<Box<dyn Stream<Item = Result<WatchMetadataResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ControllerService for ControllerGrpc {
    async fn register_broker(
        &self,
        req: Request<RegisterBrokerRequest>,
    ) -> Result<Response<RegisterBrokerResponse>, Status> {
        self.route(
            req,
            async |r| self.register_broker_local(r).await,
            async |mut c, r| c.register_broker(r).await,
        )
        .await
    }

    async fn broker_heartbeat(
        &self,
        req: Request<BrokerHeartbeatRequest>,
    ) -> Result<Response<BrokerHeartbeatResponse>, Status> {
        self.route(
            req,
            async |r| self.broker_heartbeat_local(r).await,
            async |mut c, r| c.broker_heartbeat(r).await,
        )
        .await
    }

    async fn controlled_shutdown(
        &self,
        req: Request<ControlledShutdownRequest>,
    ) -> Result<Response<ControlledShutdownResponse>, Status> {
        self.route(
            req,
            async |r| self.controlled_shutdown_local(r).await,
            async |mut c, r| c.controlled_shutdown(r).await,
        )
        .await
    }

    async fn allocate_producer_ids(
        &self,
        req: Request<AllocateProducerIdsRequest>,
    ) -> Result<Response<AllocateProducerIdsResponse>, Status> {
        self.route(
            req,
            async |r| self.allocate_producer_ids_local(r).await,
            async |mut c, r| c.allocate_producer_ids(r).await,
        )
        .await
    }

    async fn alter_partition(
        &self,
        req: Request<AlterPartitionRequest>,
    ) -> Result<Response<AlterPartitionResponse>, Status> {
        self.route(
            req,
            async |r| self.alter_partition_local(r).await,
            async |mut c, r| c.alter_partition(r).await,
        )
        .await
    }

    async fn create_topics(
        &self,
        req: Request<CreateTopicsRequest>,
    ) -> Result<Response<CreateTopicsResponse>, Status> {
        self.route(
            req,
            async |r| self.create_topics_local(r).await,
            async |mut c, r| c.create_topics(r).await,
        )
        .await
    }

    async fn delete_topics(
        &self,
        req: Request<DeleteTopicsRequest>,
    ) -> Result<Response<DeleteTopicsResponse>, Status> {
        self.route(
            req,
            async |r| self.delete_topics_local(r).await,
            async |mut c, r| c.delete_topics(r).await,
        )
        .await
    }

    async fn create_partitions(
        &self,
        req: Request<CreatePartitionsRequest>,
    ) -> Result<Response<CreatePartitionsResponse>, Status> {
        self.route(
            req,
            async |r| self.create_partitions_local(r).await,
            async |mut c, r| c.create_partitions(r).await,
        )
        .await
    }

    async fn elect_leaders(
        &self,
        req: Request<ElectLeadersRequest>,
    ) -> Result<Response<ElectLeadersResponse>, Status> {
        self.route(
            req,
            async |r| self.elect_leaders_local(r).await,
            async |mut c, r| c.elect_leaders(r).await,
        )
        .await
    }

    async fn alter_partition_reassignments(
        &self,
        req: Request<AlterPartitionReassignmentsRequest>,
    ) -> Result<Response<AlterPartitionReassignmentsResponse>, Status> {
        self.route(
            req,
            async |r| self.alter_partition_reassignments_local(r).await,
            async |mut c, r| c.alter_partition_reassignments(r).await,
        )
        .await
    }

    async fn list_partition_reassignments(
        &self,
        req: Request<ListPartitionReassignmentsRequest>,
    ) -> Result<Response<ListPartitionReassignmentsResponse>, Status> {
        // Only the leader has the replica sizes of the heartbeats.
        self.route(
            req,
            async |r| self.list_partition_reassignments_local(r),
            async |mut c, r| c.list_partition_reassignments(r).await,
        )
        .await
    }

    async fn alter_broker_decommission(
        &self,
        req: Request<AlterBrokerDecommissionRequest>,
    ) -> Result<Response<AlterBrokerDecommissionResponse>, Status> {
        self.route(
            req,
            async |r| self.alter_broker_decommission_local(r).await,
            async |mut c, r| c.alter_broker_decommission(r).await,
        )
        .await
    }

    async fn unregister_broker(
        &self,
        req: Request<UnregisterBrokerRequest>,
    ) -> Result<Response<UnregisterBrokerResponse>, Status> {
        self.route(
            req,
            async |r| self.unregister_broker_local(r).await,
            async |mut c, r| c.unregister_broker(r).await,
        )
        .await
    }

    async fn describe_configs(
        &self,
        req: Request<DescribeConfigsRequest>,
    ) -> Result<Response<DescribeConfigsResponse>, Status> {
        self.route(
            req,
            async |r| Ok(self.describe_configs_local(r)),
            async |mut c, r| c.describe_configs(r).await,
        )
        .await
    }

    async fn incremental_alter_configs(
        &self,
        req: Request<IncrementalAlterConfigsRequest>,
    ) -> Result<Response<IncrementalAlterConfigsResponse>, Status> {
        self.route(
            req,
            async |r| self.incremental_alter_configs_local(r).await,
            async |mut c, r| c.incremental_alter_configs(r).await,
        )
        .await
    }

    async fn describe_cluster(
        &self,
        req: Request<DescribeClusterRequest>,
    ) -> Result<Response<DescribeClusterResponse>, Status> {
        // Only the leader knows voter lag; without a leader, answer locally.
        if self.ctl.leader().is_none() {
            return Ok(Response::new(self.describe_cluster_local()));
        }
        self.route(
            req,
            async |_| Ok(self.describe_cluster_local()),
            async |mut c, r| c.describe_cluster(r).await,
        )
        .await
    }

    async fn describe_topics(
        &self,
        req: Request<MetadataRequest>,
    ) -> Result<Response<MetadataResponse>, Status> {
        self.route(
            req,
            async |r| Ok(self.describe_topics_local(r)),
            async |mut c, r| c.describe_topics(r).await,
        )
        .await
    }

    type WatchMetadataStream = WatchStream;

    async fn watch_metadata(
        &self,
        req: Request<WatchMetadataRequest>,
    ) -> Result<Response<Self::WatchMetadataStream>, Status> {
        Ok(Response::new(self.watch_metadata_local(req.into_inner())))
    }
}
