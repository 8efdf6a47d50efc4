//! `BrokerService.InitProducerId`: convert, then call
//! [`crate::txn::init_producer_id`] (idempotent or transactional).

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
    match answer(rm, transactions, req).await {
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

async fn answer(
    rm: &ReplicaManager,
    transactions: Option<&TxnCoordinatorRef>,
    req: InitProducerIdRequest,
) -> Result<(i64, i16), StromError> {
    // KIP-360: a producer re-initialising after an abortable error sends
    // the id and epoch it holds; a new producer -1.
    let expected = if req.producer_id >= 0 && !req.transactional_id.is_empty() {
        Some((
            req.producer_id,
            convert::producer_epoch(req.producer_epoch)?,
        ))
    } else {
        None
    };
    let transactional_id =
        (!req.transactional_id.is_empty()).then_some(req.transactional_id.as_str());
    crate::txn::init_producer_id(
        rm,
        transactions,
        transactional_id,
        req.transaction_timeout_ms,
        expected,
    )
    .await
}
