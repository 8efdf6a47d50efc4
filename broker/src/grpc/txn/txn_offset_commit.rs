//! `TransactionService.TxnOffsetCommit`, served by the group's coordinator.

use strom_proto::StromError;
use strom_proto::v1::{ErrorCode, TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::convert;
use crate::txn::TxnCoordinatorRef;

/// Writes the offsets as pending in the producer's transaction.
pub(super) async fn txn_offset_commit(
    c: &TxnCoordinatorRef,
    req: TxnOffsetCommitRequest,
) -> Result<TxnOffsetCommitResponse, StromError> {
    strom_txn::validate_transactional_id(&req.transactional_id)
        .map_err(crate::txn::coordinator::txn_error)?;
    let Some(groups) = c.groups() else {
        return Err(StromError::new(
            ErrorCode::UnsupportedVersion,
            "this broker runs no group coordinator",
        ));
    };
    let transactional_id = req.transactional_id.clone();
    groups
        .txn_commit_offsets(&transactional_id, convert::txn_commit(req)?)
        .await?;
    Ok(TxnOffsetCommitResponse {})
}
