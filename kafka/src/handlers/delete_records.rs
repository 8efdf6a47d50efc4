//! DeleteRecords: the replica manager's `delete_records`, the call the
//! gRPC DeleteRecords makes (it holds the rules: leader only, at most the
//! high watermark, -1 for the high watermark, `cleanup.policy`). Kafka
//! clients send each partition to its leader.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use strom_broker::ReplicaManager;
use strom_broker::replica::RecordsToDelete;

use crate::errors::kafka_code;

/// Answers one DeleteRecords request.
pub async fn answer(rm: &ReplicaManager, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let requests: Vec<RecordsToDelete> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| RecordsToDelete {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.offset,
            })
        })
        .collect();
    let mut results = rm.delete_records(requests, false).await.into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .zip(results.by_ref())
                .map(|(p, result)| {
                    let out = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    match result {
                        Ok(low_watermark) => out.with_low_watermark(low_watermark),
                        Err(e) => out
                            .with_low_watermark(-1)
                            .with_error_code(kafka_code(e.code)),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
