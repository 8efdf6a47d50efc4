//! OffsetDelete: the group coordinator's `delete_offsets`, the same call
//! as gRPC's. A topic some member subscribes to is refused per partition
//! (GROUP_SUBSCRIBED_TO_TOPIC) while the other topics' offsets are deleted,
//! as in Kafka.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use strom_proto::v1::ErrorCode;

use super::Broker;
use super::group_util::coordinator;
use crate::errors::kafka_code;

/// Answers one OffsetDelete request.
pub async fn answer(broker: &Broker, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let c = match coordinator(broker) {
        Ok(c) => c,
        Err(e) => return OffsetDeleteResponse::default().with_error_code(kafka_code(e.code)),
    };
    let group_id = req.group_id.0.as_str();
    let partitions =
        |t: &kafka_protocol::messages::offset_delete_request::OffsetDeleteRequestTopic| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index))
                .collect::<Vec<_>>()
        };
    let all: Vec<(String, i32)> = req.topics.iter().flat_map(partitions).collect();
    // One code per topic.
    let codes: Vec<i16> = match c.delete_offsets(group_id, all).await {
        Ok(()) => vec![0; req.topics.len()],
        Err(e) if e.code == ErrorCode::GroupSubscribedToTopic => {
            let mut codes = Vec::with_capacity(req.topics.len());
            for t in &req.topics {
                codes.push(match c.delete_offsets(group_id, partitions(t)).await {
                    Ok(()) => 0,
                    Err(e) => kafka_code(e.code),
                });
            }
            codes
        }
        Err(e) => return OffsetDeleteResponse::default().with_error_code(kafka_code(e.code)),
    };
    let topics = req
        .topics
        .into_iter()
        .zip(codes)
        .map(|(t, code)| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
