//! OffsetForLeaderEpoch (KIP-101, KIP-320): the replica manager's
//! [`ReplicaManager::end_offset_for_epoch`] per partition.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use strom_broker::ReplicaManager;

use crate::errors::kafka_code;

/// Answers one OffsetForLeaderEpoch request.
pub fn answer(
    rm: &ReplicaManager,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.topic.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let out = EpochEndOffset::default().with_partition(p.partition);
                    match rm.end_offset_for_epoch(
                        &name,
                        p.partition,
                        p.current_leader_epoch,
                        p.leader_epoch,
                    ) {
                        Ok(found) => {
                            let (epoch, end) = found.unwrap_or((-1, -1));
                            out.with_leader_epoch(epoch).with_end_offset(end)
                        }
                        Err(e) => out
                            .with_error_code(kafka_code(e.code))
                            .with_leader_epoch(-1)
                            .with_end_offset(-1),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
