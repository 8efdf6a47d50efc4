//! `GroupService` on the client port: each RPC in its own file.

use strom_proto::v1::group_service_server::GroupService;
use strom_proto::v1::{
    ConsumeMemberRecordsRequest, ConsumeMemberRecordsResponse,
    ConsumerGroupAssignmentStreamRequest, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, DeleteGroupRequest, DeleteGroupResponse, DescribeGroupRequest,
    DescribeGroupResponse, FindCoordinatorRequest, FindCoordinatorResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::group::Coordinator;
use crate::txn::TxnCoordinatorRef;

/// Serves consumer groups from this broker's coordinator.
#[derive(Debug, Clone)]
pub struct GroupServiceImpl {
    coordinator: Coordinator,
    transactions: Option<TxnCoordinatorRef>,
    closing: CancellationToken,
}

impl GroupServiceImpl {
    /// Serves `coordinator`. When `closing` is cancelled (the server shuts
    /// down) the assignment streams end, so a graceful shutdown does not
    /// wait on members that keep them open.
    pub fn new(coordinator: Coordinator, closing: CancellationToken) -> Self {
        Self {
            coordinator,
            transactions: None,
            closing,
        }
    }

    /// Answers FindCoordinator for transactional ids from `transactions`.
    pub fn with_transactions(mut self, transactions: TxnCoordinatorRef) -> Self {
        self.transactions = Some(transactions);
        self
    }
}

#[tonic::async_trait]
impl GroupService for GroupServiceImpl {
    async fn find_coordinator(
        &self,
        req: Request<FindCoordinatorRequest>,
    ) -> Result<Response<FindCoordinatorResponse>, Status> {
        super::find_coordinator::find_coordinator(
            &self.coordinator,
            self.transactions.as_ref(),
            req.into_inner(),
        )
        .map(Response::new)
        .map_err(Status::from)
    }

    async fn consumer_group_heartbeat(
        &self,
        req: Request<ConsumerGroupHeartbeatRequest>,
    ) -> Result<Response<ConsumerGroupHeartbeatResponse>, Status> {
        let host = req
            .remote_addr()
            .map(|a| format!("/{}", a.ip()))
            .unwrap_or_default();
        super::heartbeat::heartbeat(&self.coordinator, req.into_inner(), host)
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    type ConsumerGroupAssignmentStreamStream = super::assignment_stream::Events;

    async fn consumer_group_assignment_stream(
        &self,
        req: Request<ConsumerGroupAssignmentStreamRequest>,
    ) -> Result<Response<Self::ConsumerGroupAssignmentStreamStream>, Status> {
        super::assignment_stream::assignment_stream(
            &self.coordinator,
            req.into_inner(),
            self.closing.clone(),
        )
        .await
        .map(Response::new)
        .map_err(Status::from)
    }

    async fn consume_member_records(
        &self,
        req: Request<ConsumeMemberRecordsRequest>,
    ) -> Result<Response<ConsumeMemberRecordsResponse>, Status> {
        super::consume_member_records::consume_member_records(&self.coordinator, req)
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn offset_commit(
        &self,
        req: Request<OffsetCommitRequest>,
    ) -> Result<Response<OffsetCommitResponse>, Status> {
        super::offset_commit::offset_commit(&self.coordinator, req.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn offset_fetch(
        &self,
        req: Request<OffsetFetchRequest>,
    ) -> Result<Response<OffsetFetchResponse>, Status> {
        super::offset_fetch::offset_fetch(&self.coordinator, req.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn offset_delete(
        &self,
        req: Request<OffsetDeleteRequest>,
    ) -> Result<Response<OffsetDeleteResponse>, Status> {
        super::offset_delete::offset_delete(&self.coordinator, req.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn list_groups(
        &self,
        _req: Request<ListGroupsRequest>,
    ) -> Result<Response<ListGroupsResponse>, Status> {
        Ok(Response::new(
            super::list_groups::list_groups(&self.coordinator).await,
        ))
    }

    async fn describe_group(
        &self,
        req: Request<DescribeGroupRequest>,
    ) -> Result<Response<DescribeGroupResponse>, Status> {
        super::describe_group::describe_group(&self.coordinator, req.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn delete_group(
        &self,
        req: Request<DeleteGroupRequest>,
    ) -> Result<Response<DeleteGroupResponse>, Status> {
        super::delete_group::delete_group(&self.coordinator, req.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
}
