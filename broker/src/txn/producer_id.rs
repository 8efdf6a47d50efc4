//! InitProducerId for every front end: a new producer id from the replica
//! manager's block for an idempotent producer; the transaction
//! coordinator's decision for a transactional one.

use strom_proto::StromError;
use strom_proto::v1::ErrorCode;

use super::TxnCoordinatorRef;
use crate::replica::ReplicaManager;

/// `(producer id, epoch)` for a producer. `transactional_id` is `None` for
/// an idempotent producer. `expected` is KIP-360's id and epoch that a
/// transactional producer re-initialising after an abortable error still
/// holds (`None` for a new producer).
pub async fn init_producer_id(
    rm: &ReplicaManager,
    transactions: Option<&TxnCoordinatorRef>,
    transactional_id: Option<&str>,
    transaction_timeout_ms: i32,
    expected: Option<(i64, i16)>,
) -> Result<(i64, i16), StromError> {
    let Some(transactional_id) = transactional_id else {
        return rm.new_producer_id().await.map(|id| (id, 0));
    };
    let Some(c) = transactions else {
        return Err(StromError::new(
            ErrorCode::UnsupportedVersion,
            "this broker runs no transaction coordinator",
        ));
    };
    c.init_producer_id(transactional_id, transaction_timeout_ms, expected)
        .await
}
