//! `BrokerService.Produce`: leader appends, then acks=all waits for the ISR.
//!
//! Every partition of the request is validated and appended on its own (a
//! bad batch fails only its partition, and writes nothing there). With
//! acks=all the ISR must hold `min.insync.replicas` members before anything
//! is written (NOT_ENOUGH_REPLICAS), and the answer waits — on partition
//! notifications, not by polling — until the high watermark passes the
//! batches, the leadership ends (NOT_LEADER_OR_FOLLOWER) or the request's
//! timeout expires (REQUEST_TIMED_OUT).

use std::time::Duration;

use bytes::Bytes;
use strom_proto::v1::{
    ErrorCode, ProducePartitionResponse, ProduceRequest, ProduceResponse, ProduceTopicResponse,
};

use super::leader_hint_for;
use crate::replica::partition::Wake;
use crate::replica::{PartError, ReplicaManager};

/// A partition's answer before the acks=all wait.
struct Pending {
    topic: usize,
    response: ProducePartitionResponse,
    /// `(offset after the last record, leader epoch)` to wait for.
    wait: Option<(
        i64,
        i32,
        std::sync::Arc<crate::replica::partition::Partition>,
    )>,
}

fn error_response(partition: i32, e: &PartError) -> ProducePartitionResponse {
    ProducePartitionResponse {
        partition,
        error_code: e.code as i32,
        error_message: e.message.clone(),
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        current_leader: None,
    }
}

/// Handles one produce request.
pub(crate) async fn produce(rm: &ReplicaManager, req: ProduceRequest) -> ProduceResponse {
    let acks = req.acks;
    let request_error = if !matches!(acks, -1..=1) {
        Some(PartError::new(
            ErrorCode::InvalidRequiredAcks,
            format!("acks must be -1 (all), 0 or 1, got {acks}"),
        ))
    } else if req.timeout_ms < 0 {
        Some(PartError::new(
            ErrorCode::InvalidRequest,
            format!("timeout_ms must not be negative, got {}", req.timeout_ms),
        ))
    } else if !req.transactional_id.is_empty() {
        Some(PartError::new(
            ErrorCode::UnsupportedVersion,
            "transactional produce is not supported yet",
        ))
    } else {
        None
    };
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));

    let mut topics = Vec::with_capacity(req.topics.len());
    let mut pending = Vec::new();
    // Dropped after every partition is appended: fetches wake once.
    let mut wakes = Vec::new();
    for (ti, topic) in req.topics.into_iter().enumerate() {
        topics.push(ProduceTopicResponse {
            topic: topic.topic.clone(),
            partitions: Vec::with_capacity(topic.partitions.len()),
        });
        for p in topic.partitions {
            let result = match &request_error {
                Some(e) => Err(e.clone()),
                None => append(rm, &topic.topic, p.partition, p.records, acks).await,
            };
            pending.push(match result {
                Ok((response, wait, wake)) => {
                    wakes.push(wake);
                    Pending {
                        topic: ti,
                        wait,
                        response,
                    }
                }
                Err(e) => {
                    let mut response = error_response(p.partition, &e);
                    response.current_leader =
                        leader_hint_for(rm, &topic.topic, p.partition, e.code);
                    Pending {
                        topic: ti,
                        response,
                        wait: None,
                    }
                }
            });
        }
    }

    drop(wakes);

    let waits = pending.into_iter().map(|mut p| async move {
        if let Some((required, epoch, part)) = p.wait.take()
            && let Err(e) = part.wait_for_isr(required, epoch, deadline).await
        {
            let partition = p.response.partition;
            // The records are in the leader's log but not acknowledged.
            p.response = error_response(partition, &e);
            p.response.current_leader = leader_hint_for(rm, &part.topic, partition, e.code);
        }
        p
    });
    for p in futures::future::join_all(waits).await {
        topics[p.topic].partitions.push(p.response);
    }
    ProduceResponse {
        topics,
        throttle_time_ms: 0,
    }
}

type Appended = (
    ProducePartitionResponse,
    Option<(
        i64,
        i32,
        std::sync::Arc<crate::replica::partition::Partition>,
    )>,
    Wake,
);

async fn append(
    rm: &ReplicaManager,
    topic: &str,
    partition: i32,
    records: Bytes,
    acks: i32,
) -> Result<Appended, PartError> {
    if records.is_empty() {
        return Err(PartError::new(
            ErrorCode::CorruptMessage,
            "the request holds no record batch",
        ));
    }
    let part = rm.partition(topic, partition)?;
    let (info, epoch, wake) = part.append_as_leader(records, acks).await?;
    let response = ProducePartitionResponse {
        partition,
        error_code: ErrorCode::None as i32,
        error_message: String::new(),
        base_offset: info.first_offset,
        log_append_time_ms: info.log_append_time.unwrap_or(-1),
        log_start_offset: part.reader().log_start_offset(),
        current_leader: None,
    };
    let wait = (acks == -1).then(|| (info.last_offset + 1, epoch, part));
    Ok((response, wait, wake))
}
