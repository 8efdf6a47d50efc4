//! TxnOffsetCommit: the group coordinator's transactional offset path
//! ([`Coordinator::txn_commit_offsets`](strom_broker::group::Coordinator::txn_commit_offsets)),
//! the call gRPC's TxnOffsetCommit makes. The member id and generation
//! (v3+) are checked as the member id and epoch of an OffsetCommit; before
//! v3 they are absent (empty, -1): a consumer that assigns its partitions
//! itself. The group instance id (v3+) is not checked apart: the member id
//! names the member. The group decides for the request as a whole, so every
//! partition carries its answer.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use strom_group::{CommitEntry, CommitRequest, TxnCommitRequest};
use strom_proto::StromError;
use strom_proto::v1::ErrorCode;

use super::Broker;
use crate::errors::txn_error_code;

/// The first version whose clients know PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 3;

/// The group core's request of `req`.
pub fn txn_commit(req: &TxnOffsetCommitRequest) -> TxnCommitRequest {
    TxnCommitRequest {
        producer_id: req.producer_id.0,
        producer_epoch: req.producer_epoch,
        commit: CommitRequest {
            group_id: req.group_id.0.to_string(),
            member_id: req.member_id.to_string(),
            member_epoch: req.generation_id,
            offsets: req
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| CommitEntry {
                        topic: t.name.0.to_string(),
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p
                            .committed_metadata
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_default(),
                    })
                })
                .collect(),
        },
    }
}

async fn commit(broker: &Broker, req: &TxnOffsetCommitRequest) -> Result<(), StromError> {
    strom_txn::validate_transactional_id(&req.transactional_id.0)
        .map_err(|e| StromError::new(ErrorCode::InvalidRequest, e.message))?;
    let Some(groups) = &broker.groups else {
        return Err(StromError::new(
            ErrorCode::CoordinatorNotAvailable,
            "this broker runs no group coordinator",
        ));
    };
    groups
        .txn_commit_offsets(&req.transactional_id.0, txn_commit(req))
        .await
}

/// Answers one TxnOffsetCommit request.
pub async fn answer(
    broker: &Broker,
    req: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let code = match commit(broker, &req).await {
        Ok(()) => 0,
        Err(e) => txn_error_code(e.code, version, FENCED_SINCE),
    };
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .into_iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
