//! `BrokerService.DescribeProducers`: each partition's producers at its
//! leader ([`ReplicaManager::describe_producers`]), answered per partition
//! in the request's order.

use strom_proto::v1::{
    DescribeProducersPartition, DescribeProducersRequest, DescribeProducersResponse, ErrorCode,
    ProducerState,
};

use super::leader_hint_for;
use crate::replica::{ActiveProducer, ReplicaManager};

impl From<ActiveProducer> for ProducerState {
    fn from(p: ActiveProducer) -> Self {
        ProducerState {
            producer_id: p.producer_id,
            producer_epoch: i32::from(p.producer_epoch),
            last_sequence: p.last_sequence,
            last_timestamp: p.last_timestamp,
            coordinator_epoch: p.coordinator_epoch,
            current_txn_start_offset: p.current_txn_start_offset,
        }
    }
}

/// Handles one DescribeProducers request.
pub(crate) async fn describe_producers(
    rm: &ReplicaManager,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut partitions = Vec::new();
    for t in req.topics {
        for p in t.partitions {
            partitions.push(match rm.describe_producers(&t.topic, p).await {
                Ok(producers) => DescribeProducersPartition {
                    topic: t.topic.clone(),
                    partition: p,
                    error_code: ErrorCode::None as i32,
                    error_message: String::new(),
                    current_leader: None,
                    active_producers: producers.into_iter().map(Into::into).collect(),
                },
                Err(e) => DescribeProducersPartition {
                    topic: t.topic.clone(),
                    partition: p,
                    error_code: e.code as i32,
                    current_leader: leader_hint_for(rm, &t.topic, p, e.code),
                    error_message: e.message,
                    active_producers: Vec::new(),
                },
            });
        }
    }
    DescribeProducersResponse { partitions }
}
