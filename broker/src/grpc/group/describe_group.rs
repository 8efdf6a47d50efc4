//! `GroupService.DescribeGroup`.

use strom_proto::StromError;
use strom_proto::v1::{DescribeGroupRequest, DescribeGroupResponse};

use super::convert::description_to_pb;
use crate::group::Coordinator;

/// The group's state, assignor, epochs and members.
pub(super) async fn describe_group(
    c: &Coordinator,
    req: DescribeGroupRequest,
) -> Result<DescribeGroupResponse, StromError> {
    let d = c.describe_group(&req.group_id).await?;
    Ok(description_to_pb(d, &c.topics_view()))
}
