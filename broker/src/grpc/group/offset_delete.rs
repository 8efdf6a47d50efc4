//! `GroupService.OffsetDelete`.

use strom_proto::StromError;
use strom_proto::v1::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::convert::partitions_from_pb;
use crate::group::Coordinator;

/// Deletes the offsets of partitions no member subscribes to.
pub(super) async fn offset_delete(
    c: &Coordinator,
    req: OffsetDeleteRequest,
) -> Result<OffsetDeleteResponse, StromError> {
    c.delete_offsets(&req.group_id, partitions_from_pb(&req.topics))
        .await?;
    Ok(OffsetDeleteResponse {})
}
