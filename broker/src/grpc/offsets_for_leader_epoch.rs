//! `BrokerService.OffsetsForLeaderEpoch` (KIP-101): the end offset of a
//! leader epoch on the partition leader, for clients checking their
//! position after a leader change (KIP-320) and for tools. The lookup is
//! [`ReplicaManager::end_offset_for_epoch`].

use strom_proto::v1::{
    EpochEndOffsetResult, ErrorCode, OffsetForLeaderTopicResult, OffsetsForLeaderEpochRequest,
    OffsetsForLeaderEpochResponse,
};

use super::leader_hint_for;
use crate::replica::ReplicaManager;

/// Handles one OffsetsForLeaderEpoch request.
pub(crate) fn offsets_for_leader_epoch(
    rm: &ReplicaManager,
    req: OffsetsForLeaderEpochRequest,
) -> OffsetsForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| OffsetForLeaderTopicResult {
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    match rm.end_offset_for_epoch(
                        &t.topic,
                        p.partition,
                        p.current_leader_epoch,
                        p.leader_epoch,
                    ) {
                        Ok(found) => {
                            let (leader_epoch, end_offset) = found.unwrap_or((-1, -1));
                            EpochEndOffsetResult {
                                partition: p.partition,
                                error_code: ErrorCode::None as i32,
                                error_message: String::new(),
                                leader_epoch,
                                end_offset,
                                current_leader: None,
                            }
                        }
                        Err(e) => EpochEndOffsetResult {
                            partition: p.partition,
                            error_code: e.code as i32,
                            error_message: e.message,
                            leader_epoch: -1,
                            end_offset: -1,
                            current_leader: leader_hint_for(rm, &t.topic, p.partition, e.code),
                        },
                    }
                })
                .collect(),
            topic: t.topic,
        })
        .collect();
    OffsetsForLeaderEpochResponse { topics }
}
