//! OffsetCommit: the group coordinator's `commit_offsets`, the same call as
//! gRPC's. The classic generation is the member epoch; a commit from an
//! older or newer one is ILLEGAL_GENERATION, as Kafka answers classic
//! members. When the core refuses one partition (unknown, negative offset,
//! metadata too long), the others are committed one by one and each gets
//! its own answer, as in Kafka.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use strom_group::{CommitEntry, CommitRequest};
use strom_proto::StromError;
use strom_proto::v1::ErrorCode;

use super::Broker;
use super::group_util::coordinator;
use crate::errors::{ILLEGAL_GENERATION, kafka_code};

/// The Kafka error code of a refused classic commit.
fn commit_code(e: &StromError) -> i16 {
    match e.code {
        ErrorCode::StaleMemberEpoch | ErrorCode::FencedMemberEpoch | ErrorCode::GroupIdNotFound => {
            ILLEGAL_GENERATION
        }
        code => kafka_code(code),
    }
}

fn partition_level(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::UnknownTopicOrPartition
            | ErrorCode::InvalidRequest
            | ErrorCode::OffsetMetadataTooLarge
    )
}

/// Answers one OffsetCommit request.
pub async fn answer(
    broker: &Broker,
    req: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let entries: Vec<CommitEntry> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| CommitEntry {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p
                    .committed_metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            })
        })
        .collect();
    let codes: Vec<i16> = if version <= 4 && req.retention_time_ms != -1 {
        // Per-commit retention (v2-v4) is not implemented: offsets expire
        // by `offsets.retention.minutes` only.
        vec![kafka_code(ErrorCode::InvalidRequest); entries.len()]
    } else {
        commit(broker, &req, entries.clone()).await
    };
    let mut codes = codes.into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(0))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// One error code per entry, in order.
async fn commit(broker: &Broker, req: &OffsetCommitRequest, entries: Vec<CommitEntry>) -> Vec<i16> {
    let n = entries.len();
    let c = match coordinator(broker) {
        Ok(c) => c,
        Err(e) => return vec![kafka_code(e.code); n],
    };
    let request = |offsets: Vec<CommitEntry>| CommitRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        member_epoch: req.generation_id_or_member_epoch,
        offsets,
    };
    match c.commit_offsets(request(entries.clone())).await {
        Ok(()) => vec![0; n],
        Err(e) if n > 1 && partition_level(e.code) => {
            let mut codes = Vec::with_capacity(n);
            for entry in entries {
                codes.push(match c.commit_offsets(request(vec![entry])).await {
                    Ok(()) => 0,
                    Err(e) => commit_code(&e),
                });
            }
            codes
        }
        Err(e) => vec![commit_code(&e); n],
    }
}
