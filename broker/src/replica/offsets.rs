//! Offset lookups on the partition leader, for every front end:
//! ListOffsets (earliest, latest, by timestamp) and OffsetsForLeaderEpoch
//! (KIP-101).

use strom_log::OffsetSpec;
use strom_proto::v1::ErrorCode;

use super::{Isolation, PartError, ReplicaManager};

/// Kafka's `ListOffsetsRequest.EARLIEST_TIMESTAMP`.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// Kafka's `ListOffsetsRequest.LATEST_TIMESTAMP`.
pub const LATEST_TIMESTAMP: i64 = -1;

/// What a ListOffsets lookup found on the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; -1 when no record has a timestamp at or after the one
    /// asked for.
    pub offset: i64,
    /// The record's timestamp for a timestamp lookup, else -1.
    pub timestamp: i64,
    /// The leader's current epoch.
    pub leader_epoch: i32,
}

impl ReplicaManager {
    /// ListOffsets for one partition on its leader: earliest (the log
    /// start), latest (the high watermark; the last stable offset for
    /// READ_COMMITTED) or the first offset whose timestamp is at or after
    /// `timestamp`. A timestamp lookup never answers an offset at or above
    /// that bound (Kafka's `lastFetchableOffset`).
    pub fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
        current_leader_epoch: i32,
        isolation: Isolation,
    ) -> Result<ListedOffset, PartError> {
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
        let part = self.partition(topic, partition)?;
        part.check_leader(current_leader_epoch)?;
        let (_, leader_epoch) = part.role();
        let reader = part.reader();
        let fetchable = match isolation {
            Isolation::ReadUncommitted => reader.high_watermark(),
            Isolation::ReadCommitted => reader.last_stable_offset(),
        };
        let listed = |offset, timestamp| ListedOffset {
            offset,
            timestamp,
            leader_epoch,
        };
        match spec {
            OffsetSpec::Earliest => Ok(listed(reader.log_start_offset(), -1)),
            OffsetSpec::Latest => Ok(listed(fetchable, -1)),
            OffsetSpec::Timestamp(_) => {
                let found = reader
                    .list_offset(spec)
                    .map_err(|e| PartError::from_log(&e))?
                    .filter(|o| o.offset < fetchable);
                Ok(found.map_or(listed(-1, -1), |o| listed(o.offset, o.timestamp)))
            }
        }
    }

    /// OffsetsForLeaderEpoch for one partition on its leader: `(epoch, end
    /// offset)` of the largest epoch at or below `leader_epoch`, `None`
    /// when the log knows no such epoch.
    pub fn end_offset_for_epoch(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
        leader_epoch: i32,
    ) -> Result<Option<(i32, i64)>, PartError> {
        let part = self.partition(topic, partition)?;
        part.check_leader(current_leader_epoch)?;
        if leader_epoch < 0 {
            return Err(PartError::new(
                ErrorCode::InvalidRequest,
                format!("leader_epoch must not be negative, got {leader_epoch}"),
            ));
        }
        Ok(part.reader().end_offset_for_epoch(leader_epoch))
    }
}
