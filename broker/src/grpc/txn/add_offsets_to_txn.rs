//! `TransactionService.AddOffsetsToTxn`.

use strom_proto::StromError;
use strom_proto::v1::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::convert;
use crate::txn::TxnCoordinatorRef;

/// Adds the group's offsets partition to the producer's transaction.
pub(super) async fn add_offsets_to_txn(
    c: &TxnCoordinatorRef,
    req: AddOffsetsToTxnRequest,
) -> Result<AddOffsetsToTxnResponse, StromError> {
    let epoch = convert::producer_epoch(req.producer_epoch)?;
    c.add_offsets(&req.transactional_id, req.producer_id, epoch, &req.group_id)
        .await?;
    Ok(AddOffsetsToTxnResponse {})
}
