//! `BrokerService.DeleteRecords`: convert, then call the replica manager's
//! [`delete_records`](crate::replica::ReplicaManager::delete_records),
//! which holds the rules (leader only, at most the high watermark, -1 for
//! the high watermark, `cleanup.policy`).

use strom_proto::v1::{
    DeleteRecordsPartitionResult, DeleteRecordsRequest, DeleteRecordsResponse,
    DeleteRecordsTopicResult, ErrorCode,
};

use super::leader_hint_for;
use crate::replica::{RecordsToDelete, ReplicaManager};

/// Handles one DeleteRecords request.
pub(crate) async fn delete_records(
    rm: &ReplicaManager,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let requests: Vec<RecordsToDelete> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| RecordsToDelete {
                topic: t.topic.clone(),
                partition: p.partition,
                offset: p.offset,
            })
        })
        .collect();
    let mut results = rm
        .delete_records(requests, req.validate_only)
        .await
        .into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| DeleteRecordsTopicResult {
            partitions: t
                .partitions
                .iter()
                .zip(results.by_ref())
                .map(|(p, result)| match result {
                    Ok(low_watermark) => DeleteRecordsPartitionResult {
                        partition: p.partition,
                        error_code: ErrorCode::None as i32,
                        error_message: String::new(),
                        low_watermark,
                        current_leader: None,
                    },
                    Err(e) => DeleteRecordsPartitionResult {
                        partition: p.partition,
                        error_code: e.code as i32,
                        current_leader: leader_hint_for(rm, &t.topic, p.partition, e.code),
                        error_message: e.message,
                        low_watermark: -1,
                    },
                })
                .collect(),
            topic: t.topic,
        })
        .collect();
    DeleteRecordsResponse { topics }
}
