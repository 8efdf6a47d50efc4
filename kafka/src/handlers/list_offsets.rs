//! ListOffsets: the replica manager's lookup
//! ([`ReplicaManager::list_offset`]) per partition.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use strom_broker::ReplicaManager;
use strom_broker::replica::Isolation;
use strom_proto::v1::ErrorCode;

use crate::errors::kafka_code;

/// Answers one ListOffsets request.
pub fn answer(rm: &ReplicaManager, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let isolation = match req.isolation_level {
        0 => Ok(Isolation::ReadUncommitted),
        1 => Ok(Isolation::ReadCommitted),
        _ => Err(kafka_code(ErrorCode::InvalidRequest)),
    };
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let out = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let found = isolation.and_then(|isolation| {
                        rm.list_offset(
                            &name,
                            p.partition_index,
                            p.timestamp,
                            p.current_leader_epoch,
                            isolation,
                        )
                        .map_err(|e| kafka_code(e.code))
                    });
                    match found {
                        Ok(found) => {
                            let out = out
                                .with_timestamp(found.timestamp)
                                .with_offset(found.offset);
                            if version >= 4 {
                                out.with_leader_epoch(found.leader_epoch)
                            } else {
                                out
                            }
                        }
                        Err(code) => out.with_error_code(code).with_timestamp(-1).with_offset(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
