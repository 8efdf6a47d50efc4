//! `GroupService.DeleteGroup`.

use strom_proto::StromError;
use strom_proto::v1::{DeleteGroupRequest, DeleteGroupResponse};

use crate::group::Coordinator;

/// Deletes a group without members, with its offsets.
pub(super) async fn delete_group(
    c: &Coordinator,
    req: DeleteGroupRequest,
) -> Result<DeleteGroupResponse, StromError> {
    c.delete_group(&req.group_id).await?;
    Ok(DeleteGroupResponse {})
}
