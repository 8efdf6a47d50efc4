//! DescribeLogDirs: this broker's one log directory and the size of each
//! replica in it, as the replica manager reports them to heartbeats
//! (`ReplicaSizes`, the sizes reassignment progress and the balancer use).
//! An offline directory (KIP-112, `LogDirHealth`) is
//! KAFKA_STORAGE_ERROR. Strom has no future replicas (intra-broker moves):
//! `offset_lag` is 0 and `is_future_key` false; the disk's total and usable
//! bytes (v4) are -1, unknown here.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use strom_broker::ReplicaManager;
use strom_broker::lifecycle::ReplicaSizes;
use strom_proto::v1::ErrorCode;

use super::text;
use crate::errors::kafka_code;

/// Answers one DescribeLogDirs request.
pub fn answer(rm: &ReplicaManager, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let health = rm.log_dir_health();
    let dir = DescribeLogDirsResult::default()
        .with_log_dir(text(health.dir().display().to_string()))
        .with_total_bytes(-1)
        .with_usable_bytes(-1);
    if health.is_offline() {
        return DescribeLogDirsResponse::default().with_results(vec![
            dir.with_error_code(kafka_code(ErrorCode::KafkaStorageError)),
        ]);
    }
    let sizes = rm.replica_sizes();
    // topic name → (partition, bytes), in name and partition order.
    let mut by_topic: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    rm.cache().with_image(|image| {
        for (id, partition, bytes) in sizes {
            let Some(topic) = image.topic_by_id(&id) else {
                continue;
            };
            let wanted = req.topics.as_ref().is_none_or(|topics| {
                topics
                    .iter()
                    .any(|t| t.topic.as_str() == topic.name && t.partitions.contains(&partition))
            });
            if wanted {
                by_topic
                    .entry(topic.name.clone())
                    .or_default()
                    .insert(partition, bytes);
            }
        }
    });
    let topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            DescribeLogDirsTopic::default()
                .with_name(TopicName(text(name)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(p, bytes)| {
                            DescribeLogDirsPartition::default()
                                .with_partition_index(p)
                                .with_partition_size(bytes)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(vec![dir.with_topics(topics)])
}
