//! AddPartitionsToTxn v0-v3 (the client's form: one transaction):
//! [`TxnCoordinator::add_partitions`](strom_broker::txn::TxnCoordinator::add_partitions),
//! the call gRPC's AddPartitionsToTxn makes. The coordinator decides for
//! the request as a whole, so every partition carries its answer. v4+
//! (brokers verifying for each other, KIP-890) is not served: Strom's
//! leaders verify over gRPC.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::Broker;
use crate::errors::{kafka_code, txn_error_code};

/// The first version whose clients know PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 2;

/// Answers one AddPartitionsToTxn request.
pub async fn answer(
    broker: &Broker,
    req: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let partitions: Vec<(String, i32)> = req
        .v3_and_below_topics
        .iter()
        .flat_map(|t| {
            let topic = t.name.0.to_string();
            t.partitions.iter().map(move |p| (topic.clone(), *p))
        })
        .collect();
    let code = match broker.txn_coordinator() {
        Ok(c) => match c
            .add_partitions(
                &req.v3_and_below_transactional_id.0,
                req.v3_and_below_producer_id.0,
                req.v3_and_below_producer_epoch,
                partitions,
            )
            .await
        {
            Ok(()) => 0,
            Err(e) => txn_error_code(e.code, version, FENCED_SINCE),
        },
        Err(e) => kafka_code(e.code),
    };
    let results = req
        .v3_and_below_topics
        .into_iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name)
                .with_results_by_partition(
                    t.partitions
                        .into_iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(p)
                                .with_partition_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}
