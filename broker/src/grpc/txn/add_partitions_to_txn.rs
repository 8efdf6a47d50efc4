//! `TransactionService.AddPartitionsToTxn`.

use strom_proto::StromError;
use strom_proto::v1::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::convert;
use crate::txn::TxnCoordinatorRef;

/// Adds the partitions to the producer's transaction.
pub(super) async fn add_partitions_to_txn(
    c: &TxnCoordinatorRef,
    req: AddPartitionsToTxnRequest,
) -> Result<AddPartitionsToTxnResponse, StromError> {
    let epoch = convert::producer_epoch(req.producer_epoch)?;
    c.add_partitions(
        &req.transactional_id,
        req.producer_id,
        epoch,
        convert::partitions(req.topics),
    )
    .await?;
    Ok(AddPartitionsToTxnResponse {})
}
