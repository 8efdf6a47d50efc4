//! DescribeProducers: each partition's producers at its leader
//! ([`ReplicaManager::describe_producers`], the call gRPC's
//! DescribeProducers makes), answered per partition in the request's
//! order.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use strom_broker::ReplicaManager;

use super::text;
use crate::errors::kafka_code;

/// Answers one DescribeProducers request.
pub async fn answer(
    rm: &ReplicaManager,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut partitions = Vec::with_capacity(t.partition_indexes.len());
        for p in t.partition_indexes {
            let out = PartitionResponse::default().with_partition_index(p);
            partitions.push(match rm.describe_producers(&name, p).await {
                Ok(producers) => out.with_active_producers(
                    producers
                        .into_iter()
                        .map(|a| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(a.producer_id))
                                .with_producer_epoch(i32::from(a.producer_epoch))
                                .with_last_sequence(a.last_sequence)
                                .with_last_timestamp(a.last_timestamp)
                                .with_coordinator_epoch(a.coordinator_epoch)
                                .with_current_txn_start_offset(a.current_txn_start_offset)
                        })
                        .collect(),
                ),
                Err(e) => out
                    .with_error_code(kafka_code(e.code))
                    .with_error_message(Some(text(e.message))),
            });
        }
        topics.push(
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    DescribeProducersResponse::default().with_topics(topics)
}
