//! `BrokerService.ListOffsets`: earliest (log start), latest (high
//! watermark; the last stable offset for READ_COMMITTED) or the first offset
//! at or after a timestamp, from the partition leader. A timestamp lookup
//! never answers an offset at or above that bound (Kafka's
//! `lastFetchableOffset`).

use strom_log::OffsetSpec;
use strom_proto::StromError;
use strom_proto::v1::{
    ErrorCode, ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopicResponse,
};

use super::fetch::isolation;
use super::leader_hint_for;
use crate::replica::{Isolation, PartError, ReplicaManager};

/// Kafka's `ListOffsetsRequest.EARLIEST_TIMESTAMP`.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// Kafka's `ListOffsetsRequest.LATEST_TIMESTAMP`.
pub const LATEST_TIMESTAMP: i64 = -1;

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
                    match lookup(
                        rm,
                        &t.topic,
                        p.partition,
                        p.timestamp,
                        p.current_leader_epoch,
                        isolation,
                    ) {
                        Ok((offset, timestamp, leader_epoch)) => ListOffsetsPartitionResponse {
                            partition: p.partition,
                            error_code: ErrorCode::None as i32,
                            error_message: String::new(),
                            timestamp,
                            offset,
                            leader_epoch,
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

/// `(offset, timestamp, leader epoch)` for one partition.
fn lookup(
    rm: &ReplicaManager,
    topic: &str,
    partition: i32,
    timestamp: i64,
    current_leader_epoch: i32,
    isolation: Isolation,
) -> Result<(i64, i64, i32), PartError> {
    let spec = match timestamp {
        EARLIEST_TIMESTAMP => OffsetSpec::Earliest,
        LATEST_TIMESTAMP => OffsetSpec::Latest,
        t if t >= 0 => OffsetSpec::Timestamp(t),
        t => {
            return Err(PartError::new(
                ErrorCode::InvalidRequest,
                format!("timestamp must be -2 (earliest), -1 (latest) or ≥ 0, got {t}"),
            ));
        }
    };
    let part = rm.partition(topic, partition)?;
    part.check_leader(current_leader_epoch)?;
    let (_, epoch) = part.role();
    let reader = part.reader();
    let fetchable = match isolation {
        Isolation::ReadUncommitted => reader.high_watermark(),
        Isolation::ReadCommitted => reader.last_stable_offset(),
    };
    match spec {
        OffsetSpec::Earliest => Ok((reader.log_start_offset(), -1, epoch)),
        OffsetSpec::Latest => Ok((fetchable, -1, epoch)),
        OffsetSpec::Timestamp(_) => {
            let found = reader
                .list_offset(spec)
                .map_err(|e| PartError::from_log(&e))?
                .filter(|o| o.offset < fetchable);
            Ok(found.map_or((-1, -1, epoch), |o| (o.offset, o.timestamp, epoch)))
        }
    }
}
