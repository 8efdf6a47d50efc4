//! ListTransactions v0: the transactional ids this broker coordinates
//! ([`TxnCoordinator::list`](strom_broker::txn::TxnCoordinator::list),
//! the call gRPC's ListTransactions makes), filtered by state and producer
//! id. A state filter Kafka does not define is answered in
//! `unknown_state_filters`, as Kafka does, and matches nothing. v1's
//! duration filter and v2's id pattern are not served.

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use strom_txn::TxnState;

use super::{Broker, text};
use crate::errors::kafka_code;

/// Answers one ListTransactions request.
pub async fn answer(broker: &Broker, req: ListTransactionsRequest) -> ListTransactionsResponse {
    let c = match broker.txn_coordinator() {
        Ok(c) => c,
        Err(e) => return ListTransactionsResponse::default().with_error_code(kafka_code(e.code)),
    };
    let mut states = Vec::new();
    let mut unknown = Vec::new();
    for f in req.state_filters {
        match TxnState::ALL.into_iter().find(|s| s.name() == f.as_str()) {
            Some(s) => states.push(s),
            None => unknown.push(f),
        }
    }
    let out = ListTransactionsResponse::default().with_unknown_state_filters(unknown.clone());
    // Only unknown states asked for: nothing matches (an empty filter
    // would list everything).
    if states.is_empty() && !unknown.is_empty() {
        return out;
    }
    let producer_ids: Vec<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let listed = c.list(&states, &producer_ids).await;
    out.with_transaction_states(
        listed
            .into_iter()
            .map(|l| {
                TransactionState::default()
                    .with_transactional_id(TransactionalId(text(l.transactional_id)))
                    .with_producer_id(ProducerId(l.producer_id))
                    .with_transaction_state(text(l.state.name()))
            })
            .collect(),
    )
}
