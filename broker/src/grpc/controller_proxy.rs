//! `ControllerService` on a broker-only node: every call goes to the active
//! controller (the quorum client follows NOT_CONTROLLER hints), as Kafka
//! brokers forward admin requests to the KRaft controller.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use strom_controller_client::QuorumClient;
use strom_proto::v1::controller_service_server::ControllerService;
use strom_proto::v1::*;
use tonic::{Request, Response, Status};

/// Forwards to the quorum.
#[derive(Debug, Clone)]
pub struct ControllerProxy {
    quorum: Arc<QuorumClient>,
    timeout: std::time::Duration,
}

impl ControllerProxy {
    /// Forwards through `quorum`, giving each call `timeout`.
    pub fn new(quorum: Arc<QuorumClient>, timeout: std::time::Duration) -> Self {
        Self { quorum, timeout }
    }
}

macro_rules! forward {
    ($self:ident, $req:ident, $method:ident) => {{
        let req = $req.into_inner();
        $self
            .quorum
            .call($self.timeout, async |mut c| c.$method(req.clone()).await)
            .await
            .map(Response::new)
            .map_err(|e| e.to_status())
    }};
}

type WatchStream =
    Pin<Box<dyn Stream<Item = Result<WatchMetadataResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ControllerService for ControllerProxy {
    async fn register_broker(
        &self,
        r: Request<RegisterBrokerRequest>,
    ) -> Result<Response<RegisterBrokerResponse>, Status> {
        forward!(self, r, register_broker)
    }
    async fn broker_heartbeat(
        &self,
        r: Request<BrokerHeartbeatRequest>,
    ) -> Result<Response<BrokerHeartbeatResponse>, Status> {
        forward!(self, r, broker_heartbeat)
    }
    async fn controlled_shutdown(
        &self,
        r: Request<ControlledShutdownRequest>,
    ) -> Result<Response<ControlledShutdownResponse>, Status> {
        forward!(self, r, controlled_shutdown)
    }
    async fn alter_partition(
        &self,
        r: Request<AlterPartitionRequest>,
    ) -> Result<Response<AlterPartitionResponse>, Status> {
        forward!(self, r, alter_partition)
    }
    async fn allocate_producer_ids(
        &self,
        r: Request<AllocateProducerIdsRequest>,
    ) -> Result<Response<AllocateProducerIdsResponse>, Status> {
        forward!(self, r, allocate_producer_ids)
    }
    async fn create_topics(
        &self,
        r: Request<CreateTopicsRequest>,
    ) -> Result<Response<CreateTopicsResponse>, Status> {
        forward!(self, r, create_topics)
    }
    async fn delete_topics(
        &self,
        r: Request<DeleteTopicsRequest>,
    ) -> Result<Response<DeleteTopicsResponse>, Status> {
        forward!(self, r, delete_topics)
    }
    async fn create_partitions(
        &self,
        r: Request<CreatePartitionsRequest>,
    ) -> Result<Response<CreatePartitionsResponse>, Status> {
        forward!(self, r, create_partitions)
    }
    async fn elect_leaders(
        &self,
        r: Request<ElectLeadersRequest>,
    ) -> Result<Response<ElectLeadersResponse>, Status> {
        forward!(self, r, elect_leaders)
    }
    async fn alter_partition_reassignments(
        &self,
        r: Request<AlterPartitionReassignmentsRequest>,
    ) -> Result<Response<AlterPartitionReassignmentsResponse>, Status> {
        forward!(self, r, alter_partition_reassignments)
    }
    async fn list_partition_reassignments(
        &self,
        r: Request<ListPartitionReassignmentsRequest>,
    ) -> Result<Response<ListPartitionReassignmentsResponse>, Status> {
        forward!(self, r, list_partition_reassignments)
    }
    async fn alter_broker_decommission(
        &self,
        r: Request<AlterBrokerDecommissionRequest>,
    ) -> Result<Response<AlterBrokerDecommissionResponse>, Status> {
        forward!(self, r, alter_broker_decommission)
    }
    async fn unregister_broker(
        &self,
        r: Request<UnregisterBrokerRequest>,
    ) -> Result<Response<UnregisterBrokerResponse>, Status> {
        forward!(self, r, unregister_broker)
    }
    async fn describe_configs(
        &self,
        r: Request<DescribeConfigsRequest>,
    ) -> Result<Response<DescribeConfigsResponse>, Status> {
        forward!(self, r, describe_configs)
    }
    async fn incremental_alter_configs(
        &self,
        r: Request<IncrementalAlterConfigsRequest>,
    ) -> Result<Response<IncrementalAlterConfigsResponse>, Status> {
        forward!(self, r, incremental_alter_configs)
    }
    async fn describe_cluster(
        &self,
        r: Request<DescribeClusterRequest>,
    ) -> Result<Response<DescribeClusterResponse>, Status> {
        forward!(self, r, describe_cluster)
    }
    async fn describe_topics(
        &self,
        r: Request<MetadataRequest>,
    ) -> Result<Response<MetadataResponse>, Status> {
        forward!(self, r, describe_topics)
    }

    type WatchMetadataStream = WatchStream;

    async fn watch_metadata(
        &self,
        r: Request<WatchMetadataRequest>,
    ) -> Result<Response<Self::WatchMetadataStream>, Status> {
        let req = r.into_inner();
        let Some(addr) = self.quorum.any_voter() else {
            return Err(Status::unavailable("no controller voters configured"));
        };
        let mut client = self.quorum.client_for(&addr).map_err(|e| e.to_status())?;
        let stream = client.watch_metadata(req).await?.into_inner();
        Ok(Response::new(Box::pin(stream)))
    }
}
