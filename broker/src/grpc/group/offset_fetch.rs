//! `GroupService.OffsetFetch`.

use strom_proto::StromError;
use strom_proto::v1::{OffsetFetchPartition, OffsetFetchRequest, OffsetFetchResponse};

use super::convert::partitions_from_pb;
use crate::group::Coordinator;

/// The group's committed offsets (-1 where nothing is committed);
/// `require_stable`: UNSTABLE_OFFSET_COMMIT while a transactional commit
/// of a wanted partition is pending.
pub(super) async fn offset_fetch(
    c: &Coordinator,
    req: OffsetFetchRequest,
) -> Result<OffsetFetchResponse, StromError> {
    let wanted = (!req.topics.is_empty()).then(|| partitions_from_pb(&req.topics));
    let fetched = c
        .fetch_offsets(&req.group_id, wanted, req.require_stable)
        .await?;
    Ok(OffsetFetchResponse {
        partitions: fetched
            .into_iter()
            .map(|((topic, partition), v)| match v {
                Some(v) => OffsetFetchPartition {
                    topic,
                    partition,
                    offset: v.offset,
                    leader_epoch: v.leader_epoch,
                    metadata: v.metadata,
                    commit_timestamp_ms: v.commit_timestamp_ms,
                },
                None => OffsetFetchPartition {
                    topic,
                    partition,
                    offset: -1,
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp_ms: -1,
                },
            })
            .collect(),
    })
}
