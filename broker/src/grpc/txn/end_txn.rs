//! `TransactionService.EndTxn`.

use strom_proto::StromError;
use strom_proto::v1::{EndTxnRequest, EndTxnResponse};

use super::convert;
use crate::txn::TxnCoordinatorRef;

/// Commits or aborts; answers with the id and epoch for the next
/// transaction.
pub(super) async fn end_txn(
    c: &TxnCoordinatorRef,
    req: EndTxnRequest,
) -> Result<EndTxnResponse, StromError> {
    let epoch = convert::producer_epoch(req.producer_epoch)?;
    let (producer_id, producer_epoch) = c
        .end_txn(
            &req.transactional_id,
            req.producer_id,
            epoch,
            req.committed,
            strom_txn::TxnVersion::V2,
        )
        .await?;
    Ok(EndTxnResponse {
        producer_id,
        producer_epoch: i32::from(producer_epoch),
    })
}
