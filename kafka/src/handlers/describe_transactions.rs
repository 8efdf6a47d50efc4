//! DescribeTransactions: each id's state at its coordinator
//! ([`TxnCoordinator::describe`](strom_broker::txn::TxnCoordinator::describe),
//! the call gRPC's DescribeTransactions makes); an id coordinated
//! elsewhere is NOT_COORDINATOR, one unknown TRANSACTIONAL_ID_NOT_FOUND.

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};

use super::{Broker, text};
use crate::errors::kafka_code;

/// Answers one DescribeTransactions request.
pub async fn answer(
    broker: &Broker,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut states = Vec::with_capacity(req.transactional_ids.len());
    for id in req.transactional_ids {
        let out = TransactionState::default()
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_transaction_start_time_ms(-1)
            .with_transaction_state(text(""));
        let described = match broker.txn_coordinator() {
            Ok(c) => c.describe(&id.0).await,
            Err(e) => Err(e),
        };
        states.push(
            match described {
                Ok(m) => {
                    let mut topics: Vec<TopicData> = Vec::new();
                    for (topic, p) in &m.partitions {
                        match topics.last_mut() {
                            Some(t) if t.topic.0.as_str() == topic => t.partitions.push(*p),
                            _ => topics.push(
                                TopicData::default()
                                    .with_topic(TopicName(text(topic.clone())))
                                    .with_partitions(vec![*p]),
                            ),
                        }
                    }
                    out.with_transaction_state(text(m.state.name()))
                        .with_transaction_timeout_ms(m.timeout_ms)
                        .with_transaction_start_time_ms(m.start_ms)
                        .with_producer_id(ProducerId(m.producer_id))
                        .with_producer_epoch(m.producer_epoch)
                        .with_topics(topics)
                }
                Err(e) => out.with_error_code(kafka_code(e.code)),
            }
            .with_transactional_id(id),
        );
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
