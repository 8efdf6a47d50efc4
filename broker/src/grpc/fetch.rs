//! `BrokerService.Fetch`, for consumers (`replica_id = -1`, reads up to the
//! high watermark from the leader) and followers (`replica_id` = their
//! broker id, reads up to the log end and reports the follower's progress).
//!
//! A follower fetch first updates the leader's view of that follower (which
//! may move the high watermark or start an ISR expansion) and checks its
//! last fetched epoch for divergence. Then, like Kafka's delayed fetch, the
//! request waits until `min_bytes` are available, a partition errors, or
//! `max_wait_ms` passes, woken by partition notifications.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use strom_proto::StromError;
use strom_proto::v1::{
    EpochEndOffset, ErrorCode, FetchPartitionResponse, FetchRequest, FetchResponse,
    FetchTopicResponse, IsolationLevel,
};
use tokio::sync::watch;
use uuid::Uuid;

use super::leader_hint_for;
use crate::replica::partition::Partition;
use crate::replica::{PartError, ReplicaManager};

/// One requested partition, resolved.
struct Slot {
    topic: usize,
    partition: i32,
    fetch_offset: i64,
    max_bytes: usize,
    part: Result<Arc<Partition>, PartError>,
    /// Set for follower fetches whose log diverged.
    diverging: Option<(i32, i64)>,
}

fn part_error(
    rm: &ReplicaManager,
    topic: &str,
    partition: i32,
    e: &PartError,
) -> FetchPartitionResponse {
    FetchPartitionResponse {
        partition,
        error_code: e.code as i32,
        error_message: e.message.clone(),
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        log_end_offset: -1,
        diverging_epoch: None,
        current_leader: leader_hint_for(rm, topic, partition, e.code),
        records: Default::default(),
    }
}

/// Handles one fetch request.
pub(crate) async fn fetch(
    rm: &ReplicaManager,
    req: FetchRequest,
) -> Result<FetchResponse, StromError> {
    if req.max_wait_ms < 0 || req.min_bytes < 0 {
        return Err(StromError::new(
            ErrorCode::InvalidRequest,
            format!(
                "max_wait_ms ({}) and min_bytes ({}) must not be negative",
                req.max_wait_ms, req.min_bytes
            ),
        ));
    }
    if req.replica_id < -1 {
        return Err(StromError::new(
            ErrorCode::InvalidRequest,
            format!(
                "replica_id must be -1 or a broker id, got {}",
                req.replica_id
            ),
        ));
    }
    let follower = req.replica_id >= 0;
    let max_bytes = if req.max_bytes <= 0 {
        i32::MAX
    } else {
        req.max_bytes
    };
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0));

    let mut topics = Vec::with_capacity(req.topics.len());
    let mut slots = Vec::new();
    for (ti, t) in req.topics.into_iter().enumerate() {
        let id = rm
            .cache()
            .with_image(|image| image.topic_by_name(&t.topic).map(|x| x.id));
        topics.push(FetchTopicResponse {
            topic: t.topic.clone(),
            topic_id: id.map(|i| i.as_bytes().to_vec()).unwrap_or_default(),
            partitions: Vec::with_capacity(t.partitions.len()),
        });
        let id_mismatch =
            !t.topic_id.is_empty() && (Uuid::from_slice(&t.topic_id).ok() != id || id.is_none());
        for p in t.partitions {
            let mut slot = Slot {
                topic: ti,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                part: Err(PartError::new(ErrorCode::UnknownServerError, "")),
                diverging: None,
            };
            slot.part = if id_mismatch {
                Err(PartError::new(
                    ErrorCode::UnknownTopicId,
                    format!("topic {} does not have the requested topic id", t.topic),
                ))
            } else if p.partition_max_bytes <= 0 {
                Err(PartError::new(
                    ErrorCode::InvalidFetchSize,
                    format!(
                        "partition_max_bytes must be positive, got {}",
                        p.partition_max_bytes
                    ),
                ))
            } else if p.fetch_offset < 0 {
                Err(PartError::new(
                    ErrorCode::OffsetOutOfRange,
                    format!("fetch offset {} is negative", p.fetch_offset),
                ))
            } else {
                rm.partition(&t.topic, p.partition).and_then(|part| {
                    if follower {
                        let f = part.on_follower_fetch(
                            req.replica_id,
                            p.fetch_offset,
                            p.last_fetched_epoch,
                            p.current_leader_epoch,
                        )?;
                        if let Some(change) = f.expand {
                            rm.isr_sender().submit(part.clone(), change);
                        }
                        slot.diverging = f.diverging;
                    } else {
                        part.check_leader(p.current_leader_epoch)?;
                    }
                    Ok(part)
                })
            };
            slots.push(slot);
        }
    }

    // Subscribe before the first read so no change between read and wait
    // is missed.
    let mut watches: Vec<watch::Receiver<u64>> = slots
        .iter()
        .filter_map(|s| s.part.as_ref().ok().map(|p| p.subscribe()))
        .collect();
    let isolation =
        IsolationLevel::try_from(req.isolation_level).unwrap_or(IsolationLevel::ReadUncommitted);
    loop {
        let (responses, bytes, complete) =
            read_all(rm, &slots, &topics, follower, max_bytes, isolation);
        let now = tokio::time::Instant::now();
        if complete
            || bytes >= usize::try_from(req.min_bytes).unwrap_or(0)
            || now >= deadline
            || watches.is_empty()
        {
            for (ti, r) in responses {
                topics[ti].partitions.push(r);
            }
            return Ok(FetchResponse {
                topics,
                throttle_time_ms: 0,
            });
        }
        let mut changed: FuturesUnordered<_> = watches.iter_mut().map(|w| w.changed()).collect();
        tokio::select! {
            _ = changed.next() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Reads every slot once: the responses, the record bytes, and whether the
/// request should complete now regardless of `min_bytes` (an error or a
/// divergence to report).
fn read_all(
    rm: &ReplicaManager,
    slots: &[Slot],
    topics: &[FetchTopicResponse],
    follower: bool,
    max_bytes: i32,
    _isolation: IsolationLevel,
) -> (Vec<(usize, FetchPartitionResponse)>, usize, bool) {
    let mut budget = usize::try_from(max_bytes).unwrap_or(usize::MAX);
    let mut total = 0usize;
    let mut complete = false;
    let mut out = Vec::with_capacity(slots.len());
    for s in slots {
        let topic = &topics[s.topic].topic;
        let part = match &s.part {
            Ok(p) => p,
            Err(e) => {
                complete = true;
                out.push((s.topic, part_error(rm, topic, s.partition, e)));
                continue;
            }
        };
        let reader = part.reader();
        let hw = reader.high_watermark();
        let mut r = FetchPartitionResponse {
            partition: s.partition,
            error_code: ErrorCode::None as i32,
            error_message: String::new(),
            high_watermark: hw,
            // Until transactions exist the last stable offset is the high
            // watermark.
            last_stable_offset: hw,
            log_start_offset: reader.log_start_offset(),
            log_end_offset: reader.log_end_offset(),
            diverging_epoch: None,
            current_leader: None,
            records: Default::default(),
        };
        if let Some((epoch, end_offset)) = s.diverging {
            complete = true;
            r.diverging_epoch = Some(EpochEndOffset { epoch, end_offset });
            out.push((s.topic, r));
            continue;
        }
        // At least one batch for the first partition with data, then only
        // what fits the response budget.
        let limit = s.max_bytes.min(budget);
        if limit == 0 && total > 0 {
            out.push((s.topic, r));
            continue;
        }
        let read = if follower {
            part.read_all(s.fetch_offset, limit.max(1))
        } else {
            // The leadership may have moved while the request waited.
            part.check_leader(-1)
                .and_then(|()| part.read_committed(s.fetch_offset, limit.max(1)))
        };
        match read {
            Ok(data) => {
                let n = data.records.len();
                total += n;
                budget = budget.saturating_sub(n);
                r.high_watermark = data.high_watermark;
                r.last_stable_offset = data.high_watermark;
                r.log_start_offset = data.log_start_offset;
                r.log_end_offset = data.log_end_offset;
                r.records = data.records;
            }
            Err(e) => {
                complete = true;
                r.error_code = e.code as i32;
                r.error_message = e.message.clone();
                r.current_leader = leader_hint_for(rm, topic, s.partition, e.code);
            }
        }
        out.push((s.topic, r));
    }
    (out, total, complete)
}
