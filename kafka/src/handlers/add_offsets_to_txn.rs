//! AddOffsetsToTxn:
//! [`TxnCoordinator::add_offsets`](strom_broker::txn::TxnCoordinator::add_offsets),
//! the call gRPC's AddOffsetsToTxn makes.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::Broker;
use crate::errors::{kafka_code, txn_error_code};

/// The first version whose clients know PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 2;

/// Answers one AddOffsetsToTxn request.
pub async fn answer(
    broker: &Broker,
    req: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let code = match broker.txn_coordinator() {
        Ok(c) => match c
            .add_offsets(
                &req.transactional_id.0,
                req.producer_id.0,
                req.producer_epoch,
                &req.group_id.0,
            )
            .await
        {
            Ok(()) => 0,
            Err(e) => txn_error_code(e.code, version, FENCED_SINCE),
        },
        Err(e) => kafka_code(e.code),
    };
    AddOffsetsToTxnResponse::default().with_error_code(code)
}
