//! `BrokerService.Fetch` (and each round of `FetchStream`): convert, then
//! call the replica manager's one read path
//! ([`ReplicaManager::fetch`](crate::replica::ReplicaManager::fetch)),
//! which holds every rule (epochs, divergence, follower progress, ISR
//! expansion, the delayed-fetch wait).

use strom_proto::StromError;
use strom_proto::v1::{
    AbortedTransaction, EpochEndOffset, ErrorCode, FetchPartitionResponse, FetchRequest,
    FetchResponse, FetchTopicResponse, IsolationLevel,
};
use uuid::Uuid;

use super::leader_hint_for;
use crate::replica::{FetchParams, FetchPartition, FetchedPartition, Isolation, ReplicaManager};

/// Handles one fetch request.
pub(crate) async fn fetch(
    rm: &ReplicaManager,
    req: FetchRequest,
) -> Result<FetchResponse, StromError> {
    let isolation = isolation(req.isolation_level)?;
    let mut topics = Vec::with_capacity(req.topics.len());
    let mut partitions = Vec::new();
    for t in req.topics {
        // Bytes that are no UUID can match no topic: the nil id stands in.
        let topic_id =
            (!t.topic_id.is_empty()).then(|| Uuid::from_slice(&t.topic_id).unwrap_or(Uuid::nil()));
        topics.push((t.topic.clone(), t.partitions.len()));
        partitions.extend(t.partitions.into_iter().map(|p| FetchPartition {
            topic: t.topic.clone(),
            topic_id,
            partition: p.partition,
            fetch_offset: p.fetch_offset,
            current_leader_epoch: p.current_leader_epoch,
            last_fetched_epoch: p.last_fetched_epoch,
            durable_offset: p.replica_durable_offset,
            max_bytes: p.partition_max_bytes,
        }));
    }
    let fetched = rm
        .fetch(FetchParams {
            replica_id: req.replica_id,
            max_wait_ms: req.max_wait_ms,
            min_bytes: req.min_bytes,
            max_bytes: req.max_bytes,
            isolation,
            partitions,
        })
        .await
        .map_err(|e| StromError::new(e.code, e.message))?;
    let mut fetched = fetched.into_iter();
    let topics = topics
        .into_iter()
        .map(|(topic, count)| {
            let id = rm
                .cache()
                .with_image(|image| image.topic_by_name(&topic).map(|x| x.id));
            FetchTopicResponse {
                topic_id: id.map(|i| i.as_bytes().to_vec()).unwrap_or_default(),
                partitions: fetched
                    .by_ref()
                    .take(count)
                    .map(|p| partition_response(rm, p))
                    .collect(),
                topic,
            }
        })
        .collect();
    Ok(FetchResponse {
        topics,
        throttle_time_ms: 0,
    })
}

/// The request's isolation level; a value the proto does not define is
/// `INVALID_REQUEST`.
pub(crate) fn isolation(level: i32) -> Result<Isolation, StromError> {
    match IsolationLevel::try_from(level) {
        Ok(IsolationLevel::ReadUncommitted) => Ok(Isolation::ReadUncommitted),
        Ok(IsolationLevel::ReadCommitted) => Ok(Isolation::ReadCommitted),
        Err(_) => Err(StromError::new(
            ErrorCode::InvalidRequest,
            format!(
                "unknown isolation level {level}: expected READ_UNCOMMITTED (0) or READ_COMMITTED (1)"
            ),
        )),
    }
}

fn partition_response(rm: &ReplicaManager, p: FetchedPartition) -> FetchPartitionResponse {
    let (error_code, error_message, current_leader) = match p.error {
        None => (ErrorCode::None as i32, String::new(), None),
        Some(e) => (
            e.code as i32,
            e.message,
            leader_hint_for(rm, &p.topic, p.partition, e.code),
        ),
    };
    FetchPartitionResponse {
        partition: p.partition,
        error_code,
        error_message,
        high_watermark: p.high_watermark,
        last_stable_offset: p.last_stable_offset,
        log_start_offset: p.log_start_offset,
        log_end_offset: p.log_end_offset,
        diverging_epoch: p
            .diverging_epoch
            .map(|(epoch, end_offset)| EpochEndOffset { epoch, end_offset }),
        current_leader,
        records: p.records,
        aborted_transactions: p
            .aborted_transactions
            .iter()
            .map(|a| AbortedTransaction {
                producer_id: a.producer_id,
                first_offset: a.first_offset,
            })
            .collect(),
    }
}
