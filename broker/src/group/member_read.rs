//! `ConsumeMemberRecords`: decoded records of every partition a member
//! owns, for thin clients. Any broker takes the call; one that is not the
//! group's coordinator forwards it there once. The coordinator checks the
//! member and its epoch in the shard ([`strom_group::Shard::member_assignment`]),
//! picks each partition's start ([`strom_group::position::start`]: the
//! client's position, else the committed offset, else the reset) and
//! reads all owned partitions at once on their leaders through
//! [`Peers`]. A partition that cannot be read carries its own error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use strom_group::position::{OffsetReset, Start, start};
use strom_proto::StromError;
use strom_proto::v1::{
    ConsumeMemberRecordsRequest, ConsumeMemberRecordsResponse, ConsumeRecordsRequest, ErrorCode,
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic, MemberPartitionRecords,
};

use super::GroupCoordinator;
use super::peers::Peers;

/// How long a leader may take beyond the read's own wait.
const LEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// One owned partition to read: topic, partition, committed offset.
pub type Owned = (String, i32, Option<i64>);

fn invalid(message: String) -> StromError {
    StromError::new(ErrorCode::InvalidRequest, message)
}

/// Serves the call; `forwarded` when it came from another broker (it is
/// then not forwarded again).
pub async fn consume_member_records(
    c: &Arc<GroupCoordinator>,
    req: ConsumeMemberRecordsRequest,
    forwarded: bool,
) -> Result<ConsumeMemberRecordsResponse, StromError> {
    if req.max_records < 0 || req.max_wait_ms < 0 {
        return Err(invalid(format!(
            "max_records ({}) and max_wait_ms ({}) must not be negative",
            req.max_records, req.max_wait_ms
        )));
    }
    if let Some(p) = req.positions.iter().find(|p| p.offset < 0) {
        return Err(invalid(format!(
            "position {} of {}-{} is negative",
            p.offset, p.topic, p.partition
        )));
    }
    let reset = OffsetReset::parse(&req.auto_offset_reset).ok_or_else(|| {
        invalid(format!(
            "auto_offset_reset {:?} is not earliest, latest or none",
            req.auto_offset_reset
        ))
    })?;
    let timeout =
        Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)) + LEADER_TIMEOUT;
    let owned = match c
        .member_partitions(&req.group_id, &req.member_id, req.member_epoch)
        .await
    {
        Ok(owned) => owned,
        Err(e) if e.code == ErrorCode::NotCoordinator && !forwarded => {
            let (node, address, _) = c.find_coordinator(&req.group_id)?;
            if node == c.node_id() {
                return Err(e);
            }
            return c.peers().forward(address, req, timeout).await;
        }
        Err(e) => return Err(e),
    };
    let given: HashMap<(&str, i32), i64> = req
        .positions
        .iter()
        .map(|p| ((p.topic.as_str(), p.partition), p.offset))
        .collect();
    let leaders = c.leaders(&owned);
    let reads = owned
        .iter()
        .zip(leaders)
        .map(|((topic, partition, committed), leader)| {
            let from = start(
                given.get(&(topic.as_str(), *partition)).copied(),
                *committed,
                reset,
            );
            read_partition(c.peers(), &req, topic, *partition, leader, from, timeout)
        });
    Ok(ConsumeMemberRecordsResponse {
        partitions: join_all(reads).await,
    })
}

/// Reads one partition from `from` on `leader`; errors become the
/// partition's.
async fn read_partition(
    peers: &dyn Peers,
    req: &ConsumeMemberRecordsRequest,
    topic: &str,
    partition: i32,
    leader: Option<i32>,
    from: Start,
    timeout: Duration,
) -> MemberPartitionRecords {
    let mut out = MemberPartitionRecords {
        topic: topic.to_owned(),
        partition,
        offset: -1,
        next_offset: -1,
        high_watermark: -1,
        ..MemberPartitionRecords::default()
    };
    let result = async {
        let leader = leader.ok_or_else(|| {
            StromError::new(
                ErrorCode::LeaderNotAvailable,
                format!("{topic}-{partition} has no leader now"),
            )
        })?;
        let offset = match from {
            Start::At(o) => o,
            Start::NoPosition => {
                return Err(StromError::new(
                    ErrorCode::OffsetOutOfRange,
                    format!(
                        "{topic}-{partition} has no committed offset and auto_offset_reset is none"
                    ),
                ));
            }
            Start::Earliest | Start::Latest => {
                let at = if from == Start::Earliest { -2 } else { -1 };
                reset_offset(peers, req, topic, partition, leader, at, timeout).await?
            }
        };
        out.offset = offset;
        let read = ConsumeRecordsRequest {
            topic: topic.to_owned(),
            partition,
            offset,
            max_records: req.max_records,
            max_wait_ms: req.max_wait_ms,
            isolation_level: req.isolation_level,
        };
        peers.consume(leader, read, timeout).await
    }
    .await;
    match result {
        Ok(r) => {
            out.records = r.records;
            out.next_offset = r.next_offset;
            out.high_watermark = r.high_watermark;
        }
        Err(e) => {
            out.error = e.code as i32;
            out.error_message = e.message;
        }
    }
    out
}

/// The log start (`at` -2) or end (-1) offset of the partition.
async fn reset_offset(
    peers: &dyn Peers,
    req: &ConsumeMemberRecordsRequest,
    topic: &str,
    partition: i32,
    leader: i32,
    at: i64,
    timeout: Duration,
) -> Result<i64, StromError> {
    let list = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: req.isolation_level,
        topics: vec![ListOffsetsTopic {
            topic: topic.to_owned(),
            partitions: vec![ListOffsetsPartition {
                partition,
                timestamp: at,
                current_leader_epoch: -1,
            }],
        }],
    };
    let r = peers.list_offsets(leader, list, timeout).await?;
    let p = r
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition == partition)
        .ok_or_else(|| {
            StromError::new(
                ErrorCode::UnknownServerError,
                format!("ListOffsets did not answer {topic}-{partition}"),
            )
        })?;
    if p.error_code != ErrorCode::None as i32 {
        let code = ErrorCode::try_from(p.error_code).unwrap_or(ErrorCode::UnknownServerError);
        return Err(StromError::new(code, p.error_message));
    }
    Ok(p.offset)
}
