//! `BrokerService.ListOffsets`: convert, then call the replica manager's
//! lookup ([`ReplicaManager::list_offset`]), which holds the rules.

use strom_proto::StromError;
use strom_proto::v1::{
    ErrorCode, ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopicResponse,
};

use super::fetch::isolation;
use super::leader_hint_for;
use crate::replica::ReplicaManager;
pub use crate::replica::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};

/// Handles one ListOffsets request.
pub(crate) fn list_offsets(
    rm: &ReplicaManager,
    req: ListOffsetsRequest,
) -> Result<ListOffsetsResponse, StromError> {
    let isolation = isolation(req.isolation_level)?;
    let topics = req
        .topics
        .into_iter()
        .map(|t| ListOffsetsTopicResponse {
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    match rm.list_offset(
                        &t.topic,
                        p.partition,
                        p.timestamp,
                        p.current_leader_epoch,
                        isolation,
                    ) {
                        Ok(found) => ListOffsetsPartitionResponse {
                            partition: p.partition,
                            error_code: ErrorCode::None as i32,
                            error_message: String::new(),
                            timestamp: found.timestamp,
                            offset: found.offset,
                            leader_epoch: found.leader_epoch,
                            current_leader: None,
                        },
                        Err(e) => ListOffsetsPartitionResponse {
                            partition: p.partition,
                            error_code: e.code as i32,
                            error_message: e.message,
                            timestamp: -1,
                            offset: -1,
                            leader_epoch: -1,
                            current_leader: leader_hint_for(rm, &t.topic, p.partition, e.code),
                        },
                    }
                })
                .collect(),
            topic: t.topic,
        })
        .collect();
    Ok(ListOffsetsResponse { topics })
}
