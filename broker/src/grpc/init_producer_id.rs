//! `BrokerService.InitProducerId`: a new producer id from the replica
//! manager's block for an idempotent producer; the transaction
//! coordinator's decision for a transactional one.

use strom_proto::StromError;
use strom_proto::v1::{ErrorCode, InitProducerIdRequest, InitProducerIdResponse};

use super::txn::convert;
use crate::replica::ReplicaManager;
use crate::txn::TxnCoordinatorRef;

/// Handles one InitProducerId request.
pub(crate) async fn init_producer_id(
    rm: &ReplicaManager,
    transactions: Option<&TxnCoordinatorRef>,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let answer = if req.transactional_id.is_empty() {
        rm.new_producer_id().await.map(|id| (id, 0))
    } else {
        transactional(transactions, req).await
    };
    match answer {
        Ok((producer_id, producer_epoch)) => InitProducerIdResponse {
            error_code: ErrorCode::None as i32,
            error_message: String::new(),
            producer_id,
            producer_epoch: i32::from(producer_epoch),
        },
        Err(e) => InitProducerIdResponse {
            error_code: e.code as i32,
            error_message: e.message,
            producer_id: -1,
            producer_epoch: -1,
        },
    }
}

async fn transactional(
    transactions: Option<&TxnCoordinatorRef>,
    req: InitProducerIdRequest,
) -> Result<(i64, i16), StromError> {
    let Some(c) = transactions else {
        return Err(StromError::new(
            ErrorCode::UnsupportedVersion,
            "this broker runs no transaction coordinator",
        ));
    };
    // KIP-360: a producer re-initialising after an abortable error sends
    // the id and epoch it holds; a new producer -1.
    let expected = if req.producer_id >= 0 {
        Some((
            req.producer_id,
            convert::producer_epoch(req.producer_epoch)?,
        ))
    } else {
        None
    };
    c.init_producer_id(&req.transactional_id, req.transaction_timeout_ms, expected)
        .await
}
