//! InitProducerId: [`strom_broker::txn::init_producer_id`], idempotent or
//! transactional.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::Broker;
use crate::errors::kafka_code;

/// Answers one InitProducerId request.
pub async fn answer(broker: &Broker, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let transactional_id = req.transactional_id.as_ref().map(|t| t.0.as_str());
    // KIP-360: a transactional producer re-initialising after an abortable
    // error sends the id and epoch it holds; a new one -1.
    let expected = (transactional_id.is_some() && req.producer_id.0 >= 0)
        .then_some((req.producer_id.0, req.producer_epoch));
    match strom_broker::txn::init_producer_id(
        &broker.replicas,
        broker.transactions.as_ref(),
        transactional_id,
        req.transaction_timeout_ms,
        expected,
    )
    .await
    {
        Ok((id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(e) => InitProducerIdResponse::default()
            .with_error_code(kafka_code(e.code))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}
