//! `TransactionService` on the client port: each RPC in its own file.

use strom_proto::v1::transaction_service_server::TransactionService;
use strom_proto::v1::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, ListTransactionsRequest, ListTransactionsResponse,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};
use tonic::{Request, Response, Status};

use crate::txn::TxnCoordinatorRef;

/// Serves transactions from this broker's coordinator.
#[derive(Debug, Clone)]
pub struct TransactionServiceImpl {
    coordinator: TxnCoordinatorRef,
}

impl TransactionServiceImpl {
    /// Serves `coordinator`.
    pub fn new(coordinator: TxnCoordinatorRef) -> Self {
        Self { coordinator }
    }
}

#[tonic::async_trait]
impl TransactionService for TransactionServiceImpl {
    async fn add_partitions_to_txn(
        &self,
        req: Request<AddPartitionsToTxnRequest>,
    ) -> Result<Response<AddPartitionsToTxnResponse>, Status> {
        super::add_partitions_to_txn::add_partitions_to_txn(&self.coordinator, req.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn add_offsets_to_txn(
        &self,
        req: Request<AddOffsetsToTxnRequest>,
    ) -> Result<Response<AddOffsetsToTxnResponse>, Status> {
        super::add_offsets_to_txn::add_offsets_to_txn(&self.coordinator, req.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn end_txn(
        &self,
        req: Request<EndTxnRequest>,
    ) -> Result<Response<EndTxnResponse>, Status> {
        super::end_txn::end_txn(&self.coordinator, req.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn txn_offset_commit(
        &self,
        req: Request<TxnOffsetCommitRequest>,
    ) -> Result<Response<TxnOffsetCommitResponse>, Status> {
        super::txn_offset_commit::txn_offset_commit(&self.coordinator, req.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn write_txn_markers(
        &self,
        req: Request<WriteTxnMarkersRequest>,
    ) -> Result<Response<WriteTxnMarkersResponse>, Status> {
        Ok(Response::new(
            super::write_txn_markers::write_txn_markers(&self.coordinator, req.into_inner()).await,
        ))
    }

    async fn describe_transactions(
        &self,
        req: Request<DescribeTransactionsRequest>,
    ) -> Result<Response<DescribeTransactionsResponse>, Status> {
        super::describe_transactions::describe_transactions(&self.coordinator, req.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn list_transactions(
        &self,
        req: Request<ListTransactionsRequest>,
    ) -> Result<Response<ListTransactionsResponse>, Status> {
        super::list_transactions::list_transactions(&self.coordinator, req.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
}
