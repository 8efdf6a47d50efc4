//! `GroupService.FindCoordinator`.

use strom_proto::StromError;
use strom_proto::v1::{FindCoordinatorRequest, FindCoordinatorResponse};

use crate::group::Coordinator;

/// Answers with the leader of the group's offsets partition.
pub(super) fn find_coordinator(
    c: &Coordinator,
    req: FindCoordinatorRequest,
) -> Result<FindCoordinatorResponse, StromError> {
    let (node_id, address, partition) = c.find_coordinator(&req.group_id)?;
    Ok(FindCoordinatorResponse {
        node_id,
        address,
        partition,
    })
}
